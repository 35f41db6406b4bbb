"""The proxy's front: aiohttp's server as any local process meets it, before the token is even checked.

Request heads are bounded (8 KB a line, 128 headers) and a connection that sends no whole request for
KEEPALIVE seconds is closed; a head the parser refuses is answered 400 and nothing more is read from that
connection; past a budget of connections (below the descriptors the process may open) the longest idle one
makes room for the new one, so a valid client is served however many slow ones are open.
"""

from __future__ import annotations

import logging

from .. import http_client

KEEPALIVE = 30.0  # seconds a connection may wait without a whole request (longer than claude keeps one idle)
MAX_CONNECTIONS = 1024  # client connections at once, at most (fewer when the descriptor limit is lower)


def front_server(app):
    """aiohttp's server for `app`: bounded request heads, idle connections closed, a budget of connections
    (see the module's docstring); a client that leaves cancels its request's handler."""
    web = http_client.web()
    from aiohttp import web_protocol
    budget = connection_budget()

    class Handler(web_protocol.RequestHandler):
        def data_received(self, data: bytes) -> None:
            """aiohttp goes on parsing what follows a head it refused until it has sent its 400, each piece
            kept alive by that error's traceback until the garbage collector runs (a 100 MB header took
            16 MB a time): after the first error nothing more is read."""
            super().data_received(data)
            if self._messages and isinstance(self._messages[-1][0], web_protocol._ErrInfo):
                self.transport.pause_reading()

    class Front(web.Server):
        def __call__(self) -> Handler:
            return Handler(self, loop=self._loop, **self._kwargs)

        def connection_made(self, handler, transport) -> None:
            super().connection_made(handler, transport)
            if len(self._connections) > budget:  # the longest idle connection goes (a whole request never came)
                idle = [h for h in self._connections if h is not handler and not getattr(h, "_request_in_progress",
                                                                                          True)]
                if idle:
                    idle[0].force_close()

    quiet = logging.getLogger("aiohttp")  # its tracebacks of malformed requests say nothing new
    quiet.propagate = False
    quiet.handlers = [logging.NullHandler()]
    return Front(app, handler_cancellation=True, keepalive_timeout=KEEPALIVE, access_log=None,
                 max_line_size=8190, max_field_size=8190, max_headers=128)


def connection_budget() -> int:
    """How many client connections may be open at once: each may need an upstream one and the process its
    own few descriptors, so about half of what the process may open (raised to its hard limit first)."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or soft < hard:
            wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
    except (ImportError, ValueError, OSError):  # Windows; a limit the process may not raise
        return MAX_CONNECTIONS
    return max(16, min(MAX_CONNECTIONS, (soft - 32) // 2))
