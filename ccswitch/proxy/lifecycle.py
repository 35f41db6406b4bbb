"""Where and how long the proxy runs: a socket on 127.0.0.1, uvicorn in a thread, the `Endpoint`
claude is pointed at, the log.

`ccs run` binds the socket and starts claude at once, while the serving thread imports httpx2 and
uvicorn (most of the proxy's ready time), builds the router and starts serving. The kernel holds
claude's first connection meanwhile, and claude takes longer to start than the proxy takes to be
ready, so nobody waits for those imports. This module imports neither at its top for that reason.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import sys
import threading
from collections.abc import Iterator
from typing import NamedTuple

from ..errors import CcsError, fail

HOST = "127.0.0.1"
LOG_BYTES = 1_000_000  # the proxy log under `ccs run` is rotated at this size, one old file kept
# How long `ccs run` waits, once claude is gone, for the proxy to stop: its server (5 s), then the usage log's
# writer (usage.CLOSE_SECONDS), which no row may be lost to.
STOP_SECONDS = 45.0


class Endpoint(NamedTuple):
    """Where claude should send requests instead of the profile's base URL (the embedded proxy)."""

    url: str
    token: str
    log: str | None = None  # the proxy's log file, when it has one


def bind(port: int = 0) -> socket.socket:
    """A listening socket on loopback; port 0 lets the OS pick a free one."""
    # proto must say TCP: asyncio only disables Nagle (TCP_NODELAY) on accepted sockets that do, and
    # without it every response's second write waits ~40 ms for a delayed ACK
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError as e:
        sock.close()
        raise CcsError(f"cannot listen on {HOST}:{port}: {e.strerror}") from None
    sock.listen(512)
    return sock


def new_token() -> str:
    return "ccs-" + secrets.token_urlsafe(32)


def url_of(sock: socket.socket) -> str:
    """Where clients reach a socket from `bind`."""
    return f"http://{HOST}:{sock.getsockname()[1]}"


def keys_for(config, profile) -> dict[str, str | None]:
    """The keys a profile's proxy needs from the start: its own and its routes' (a missing one is a clear
    error before claude starts, not a failed request later). Other profiles' are looked up when used."""
    from .. import keys

    if problems := config.route_problems(profile):
        raise CcsError(f"profile '{profile.name}': {problems[0]}")
    return {p.name: keys.lookup(p, config.secret_store) for p in [profile, *config.route_targets(profile)]}


@contextlib.contextmanager
def running(router, port: int = 0, client=None, log_file: str | None = None, max_request_mb: int | None = None,
            quiet: bool = False, sock: socket.socket | None = None, token: str | None = None,
            recorder=None) -> Iterator[Endpoint]:
    """Serve `router` in a thread for as long as the `with` block; yields where clients connect, with their
    token. `sock` and `token`: a socket already listening (see `bind`), else one is bound on `port`.
    `recorder`: the usage log's `Recorder`, closed (its queue written) after the last request."""
    from .app import MAX_REQUEST_MB, ProxyApp

    try:
        token = token or new_token()
        sock = sock or bind(port)
        log = log_handler(log_file, quiet)
        app = ProxyApp(router, token, client, max_request_mb or MAX_REQUEST_MB, recorder and recorder.record)
        server = make_server(app, log)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="ccs-proxy", daemon=True)
        thread.start()
        while not server.started and thread.is_alive():
            thread.join(0.002)
        try:
            if not server.started:
                raise RuntimeError("the proxy failed to start")
            yield Endpoint(url_of(sock), token, log_file)
        finally:
            server.should_exit = True
            thread.join(5)
            sock.close()
            log.close()
    finally:
        if recorder is not None:
            recorder.close()


def running_for(config, profile, keys: dict[str, str | None], test: bool = False, **options):
    """`running` with what the profile says: its routes, timeout and request limit; each request recorded in
    the usage log, at its target profile's prices (`test`: as `ccs test`'s own)."""
    from .. import prices, usage
    from .router import Router

    router = Router.for_profile(config, profile, keys, os.environ)
    return running(router, max_request_mb=profile.max_request_mb,
                   recorder=usage.Recorder(profile.name, prices.ProfilePrices(config), test=test), **options)


@contextlib.contextmanager
def serve_in_background(config, profile, keys: dict[str, str | None]) -> Iterator[Endpoint]:
    """`ccs run`: the proxy lives exactly as long as claude; its log goes to a file, not the terminal.
    Yields as soon as the socket listens (see the module's docstring)."""
    log_file = log_path()
    sock, token = bind(), new_token()
    done = threading.Event()

    def serve() -> None:
        try:
            with running_for(config, profile, keys, log_file=log_file, sock=sock, token=token):
                done.wait()
        except Exception as e:  # claude runs already: its requests meet a closed socket, the user this line
            fail(f"the proxy failed to start: {type(e).__name__}: {e}")
            sock.close()

    thread = threading.Thread(target=serve, name="ccs-proxy-start", daemon=True)
    thread.start()
    try:
        yield Endpoint(url_of(sock), token, log_file)
    finally:
        done.set()
        thread.join(STOP_SECONDS)
        sock.close()


def serve_forever(config, profile, keys, port: int, announce, quiet: bool = False) -> None:
    """`ccs proxy`: serve until SIGINT/SIGTERM, then shut down cleanly. `announce(url, token)` runs once bound."""
    import signal

    # Blocked before the server thread starts (it inherits the mask), the signals stay pending until
    # sigwait takes them: none can land on the server thread or slip in before the wait.
    stopping = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stopping)
    with running_for(config, profile, keys, port=port, quiet=quiet) as endpoint:
        announce(endpoint.url, endpoint.token)
        signal.sigwait(stopping)


def serve_profile(name: str, port: int = 0, as_json: bool = False, quiet: bool = False) -> None:
    """`ccs proxy NAME`: a profile's proxy in the foreground for other clients; prints where and the token."""
    import json

    from .. import profiles

    config = profiles.load()
    profile = config.get(name)
    if profile.auth == "login":
        raise CcsError(f"profile '{name}' uses claude's own login, which only claude can send: it cannot be "
                       "served through the proxy")
    keys = keys_for(config, profile)

    def announce(url: str, token: str) -> None:
        if as_json:
            print(json.dumps({"base_url": url, "token": token}), flush=True)
        else:
            print(f"ccs proxy for '{name}' on {url}\n  ANTHROPIC_BASE_URL={url}\n  ANTHROPIC_AUTH_TOKEN={token}\n"
                  "Ctrl-C stops it.", flush=True)

    serve_forever(config, profile, keys, port, announce, quiet)


# ---------------------------------------------------------------- the log


def make_server(app, log: logging.Handler):
    """uvicorn for our app, logging through `log` (see `log_handler`)."""
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=2,
                            server_header=False, date_header=False, log_config=None)
    logging.getLogger("uvicorn").handlers = [log]
    logging.getLogger("uvicorn").propagate = False
    return uvicorn.Server(config)


def log_path() -> str:
    """The proxy's log under `ccs run` and `ccs test`: in the state dir, 0600 (it may quote a provider's error,
    and a provider's error may quote a prompt)."""
    from .. import files

    return str(files.own_dir(files.state_dir()) / "proxy.log")


def log_handler(log_file: str | None, quiet: bool) -> logging.Handler:
    """Where uvicorn's log and ours go (a line per request unless `quiet`): `log_file` under `ccs run`
    (never over claude's screen), rotated; else stderr, never blocking (see StderrLog)."""
    if log_file:
        from logging.handlers import RotatingFileHandler  # here: not on `ccs run`'s way to starting claude

        class PrivateLog(RotatingFileHandler):
            """Its files (the current one and the one rotated away) only this user can read."""

            def _open(self):
                os.close(os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
                os.chmod(self.baseFilename, 0o600)  # one an older ccs created 0644
                return super()._open()

        handler: logging.Handler = PrivateLog(log_file, maxBytes=LOG_BYTES, backupCount=1)
    else:
        handler = StderrLog()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    ours = logging.getLogger("ccswitch")
    ours.handlers = [handler]
    ours.propagate = False
    ours.setLevel(logging.WARNING if quiet else logging.INFO)
    return handler


class StderrLog(logging.Handler):
    """Log lines straight to stderr's file descriptor, each piece only when it can be taken at once.
    An IDE that starts `ccs proxy` may never read its stderr: once that pipe is full, a plain write
    would stall the event loop, and every request with it. Such lines are dropped instead."""

    def emit(self, record: logging.LogRecord) -> None:
        import select

        text = self.format(record) + "\n"
        try:
            fd = sys.stderr.fileno()
        except (AttributeError, ValueError, OSError):  # replaced by something with no descriptor (a test's)
            sys.stderr.write(text)
            return
        data = text.encode(errors="replace")
        for start in range(0, len(data), select.PIPE_BUF):  # a pipe takes up to PIPE_BUF bytes whole
            if not select.select([], [fd], [], 0)[1]:
                return
            os.write(fd, data[start:start + select.PIPE_BUF])
