"""The proxy's front: aiohttp's server as any local process meets it, before the token is even checked.

Request heads are bounded (8 KB a line, 128 headers, MAX_HEAD bytes in all) and a connection that sends no
whole request for KEEPALIVE seconds is closed; a head the parser refuses is answered and nothing more is read
from that connection; past a budget of connections (below the descriptors the process may open) the oldest
one that never brought the token is cut to make room for the new one (else an idle one), whatever it is
waiting for, so the client is served however many other connections a local process opens.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from .. import http_client
from . import jsonio
from .errors import ProxyError

KEEPALIVE = 30.0  # seconds a connection may wait without a whole request (longer than claude keeps one idle)
MAX_CONNECTIONS = 256  # client connections at once, at most (fewer when the descriptor limit is lower)
ANSWER_GRACE = 1.0  # seconds a refused connection has to take its answer before it is cut
MAX_HEAD = 64 * 1024  # bytes of one request head (claude's are about 2 KB): 128 long headers held 1 MB each


def front_server(app):
    """aiohttp's server for `app`: bounded request heads, idle connections closed, a budget of connections
    (see the module's docstring); a client that leaves cancels its request's handler."""
    web = http_client.web()
    from aiohttp import web_protocol
    budget = connection_budget()

    class Handler(web_protocol.RequestHandler):
        trusted = False  # set by the app once a request on this connection brought the token
        head_bytes = 0  # of the head being received
        body = None  # the payload of the last request received, until its end
        socket = None  # the connection's transport
        dropped = False  # by `drop`: it leaves the server's table only at the loop's next turn

        def data_received(self, data: bytes) -> None:
            in_head = self.body is None or self.body.is_eof()
            received = self._request_count
            super().data_received(data)
            if self._request_count > received:  # a whole head came (and maybe its body)
                self.head_bytes, self.body = 0, self._messages[-1][1] if self._messages else None
            elif in_head:
                self.head_bytes += len(data)
                if self.head_bytes > MAX_HEAD:
                    self.refuse(431, f"request head over {MAX_HEAD // 1024} KiB")
            if self._messages and isinstance(self._messages[-1][0], web_protocol._ErrInfo):
                # aiohttp goes on parsing what follows a head it refused until it has sent its 400, each piece
                # kept alive by that error's traceback until the garbage collector runs (a 100 MB header
                # took 16 MB a time): after the first error nothing more is read
                self.transport.pause_reading()

        def refuse(self, status: int, message: str) -> None:
            """An Anthropic-shaped error and the connection closed, outside aiohttp's request loop."""
            body = jsonio.dumps(ProxyError(status, message, retry=False).body())
            self.socket.write(b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
                                 b"connection: close\r\n\r\n%s" % (status, HTTPStatus(status).phrase.encode(),
                                                                      len(body), body))
            self.drop(grace=ANSWER_GRACE)

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self.socket = transport  # aiohttp forgets it when it closes the connection: `drop` may still need it

        def drop(self, grace: float = 0.0) -> None:
            """Close the connection for good: a closed transport keeps its socket until what is still to be sent
            is sent, and a client that never reads (answers to requests it pipelined) would keep it for ever."""
            self.dropped = True
            self.force_close()
            self._loop.call_later(grace, self.socket.abort)

    class Front(web.Server):
        def __call__(self) -> Handler:
            return Handler(self, loop=self._loop, **self._kwargs)

        def connection_made(self, handler, transport) -> None:
            super().connection_made(handler, transport)
            if len(self._connections) > budget:  # one that never brought the token goes, else an idle one
                others = [h for h in self._connections if h is not handler and not h.dropped]
                victims = [h for h in others if not h.trusted] or [h for h in others if not h._request_in_progress]
                if victims:
                    victims[0].drop()

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
