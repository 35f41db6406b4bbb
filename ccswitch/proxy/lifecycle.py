"""Where and how long the proxy runs: a socket on 127.0.0.1, aiohttp's server on an event loop in a thread,
the `Endpoint` claude is pointed at, the log.

`ccs run` binds the socket and starts claude at once; then the serving thread imports aiohttp (most of
the proxy's ready time), builds the router and starts serving. The kernel holds claude's first
connection meanwhile, and claude takes longer to start than the proxy takes to be ready, so nobody waits
for those imports. This module imports none of them at its top for that reason.

Any local process can connect: what the front takes from it is bounded (see front.py).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable, Iterator
from typing import NamedTuple

from ..errors import CcsError, fail

HOST = "127.0.0.1"
# How long `ccs run` waits, once claude is gone, for the proxy to stop: its server (5 s), then the usage log's
# writer (usage.CLOSE_SECONDS), which no row may be lost to.
STOP_SECONDS = 45.0
STOP_GRACE = 2.0  # seconds requests under way get when the proxy stops


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
    import base64  # what secrets.token_urlsafe does, without hashlib's OpenSSL on `ccs run`'s path

    return "ccs-" + base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()


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
            recorder=None, search=None) -> Iterator[Endpoint]:
    """Serve `router` in a thread for as long as the `with` block; yields where clients connect, with their
    token. `sock` and `token`: a socket already listening (see `bind`), else one is bound on `port`.
    `recorder`: the usage log's `Recorder`, closed (its queue written) after the last request. `search`: the
    web search backend (search_backends.Searcher), if one is configured."""
    from . import proxy_log
    from .app import MAX_REQUEST_MB, ProxyApp

    try:
        token = token or new_token()
        sock = sock or bind(port)
        log = proxy_log.handler(log_file, quiet)
        app = ProxyApp(router, token, client, max_request_mb or MAX_REQUEST_MB, recorder and recorder.record, search)
        serving = Serving(app, sock)
        try:
            serving.start()
            yield Endpoint(url_of(sock), token, log_file)
        finally:
            serving.stop()
            sock.close()
            log.close()
    finally:
        if recorder is not None:
            recorder.close()


class Serving:
    """aiohttp's low-level server for `app` on its own event loop in a thread (uvloop where there is one)."""

    def __init__(self, app, sock: socket.socket):
        self.app = app
        self.sock = sock
        self.ready = threading.Event()
        self.failure: BaseException | None = None
        self.loop = None
        self.stopping = None
        self.thread = threading.Thread(target=self._run, name="ccs-proxy", daemon=True)

    def start(self) -> None:
        self.thread.start()
        self.ready.wait()
        if self.failure is not None:
            raise RuntimeError(f"the proxy failed to start: {type(self.failure).__name__}: {self.failure}")

    def stop(self) -> None:
        if self.loop is not None and self.stopping is not None and self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.stopping.set)
        self.thread.join(STOP_GRACE + 3)

    def _run(self) -> None:
        import asyncio

        try:
            import uvloop

            self.loop = uvloop.new_event_loop()
        except ImportError:  # Windows, or no uvloop: asyncio's own loop
            self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._serve())
        except BaseException as e:  # noqa: BLE001 (whatever stopped it, start() says so)
            self.failure = self.failure or e
        finally:
            self.ready.set()
            self.loop.close()

    async def _serve(self) -> None:
        import asyncio

        from .front import front_server

        self.stopping = asyncio.Event()
        await self.app.startup()
        front = front_server(self.app)
        server = await self.loop.create_server(front, sock=self.sock)
        self.ready.set()
        try:
            await self.stopping.wait()
        finally:
            server.close()
            await front.shutdown(STOP_GRACE)
            await self.app.shutdown()


def running_for(config, profile, keys: dict[str, str | None], test: bool = False, **options):
    """`running` with what the profile says: its routes, timeout and request limit; each request recorded in
    the usage log, at its target profile's prices (`test`: as `ccs test`'s own), which tells the router the
    spend against budgets; web search with the file's `[search]` backend."""
    from .. import prices, usage
    from .router import Router
    from .search_backends import searcher_for

    router = Router.for_profile(config, profile, keys, os.environ)
    recorder = usage.Recorder(profile.name, prices.ProfilePrices(config), test=test, watch=router.budgets)
    return running(router, max_request_mb=profile.max_request_mb, recorder=recorder, search=searcher_for(config),
                   **options)


@contextlib.contextmanager
def serve_in_background(config, profile, keys: dict[str, str | None]) -> Iterator[tuple[Endpoint, Callable]]:
    """`ccs run`: the proxy lives exactly as long as claude; its log goes to a file, not the terminal.
    Yields as soon as the socket listens, with the function that starts serving: called once claude has
    been started, so the proxy's imports never delay claude's own start (see the module's docstring)."""
    log_file = log_path()
    sock, token = bind(), new_token()
    serving, done = threading.Event(), threading.Event()

    def serve() -> None:
        try:
            with running_for(config, profile, keys, log_file=log_file, sock=sock, token=token):
                serving.set()
                done.wait()
        except Exception as e:  # claude runs already: its requests meet a closed socket, the user this line
            if not done.is_set():
                fail(f"the proxy failed to start: {type(e).__name__}: {e}")
            sock.close()

    thread = threading.Thread(target=serve, name="ccs-proxy-start", daemon=True)
    try:
        yield Endpoint(url_of(sock), token, log_file), thread.start
    finally:
        done.set()
        # A proxy that serves stops in order (every request's usage row written); one still importing when
        # the command is already done (`ccs run NAME -- true`) has served nobody, and is left to the exit.
        if serving.is_set():
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
    if profile.signed_with:
        raise CcsError(f"profile '{name}' is signed in by claude itself, with {profile.signed_with}: it cannot be "
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


def log_path() -> str:
    """The proxy's log under `ccs run` and `ccs test`: in the state dir, 0600 (it may quote a provider's error,
    and a provider's error may quote a prompt)."""
    from .. import files

    return str(files.own_dir(files.state_dir()) / "proxy.log")
