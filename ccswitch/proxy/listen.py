"""Where the proxy listens, apart from the proxy: `ccs run` binds the socket and starts claude at
once, while the serving thread imports httpx2 and uvicorn (most of the proxy's ready time) and
starts serving. The kernel holds claude's first connection meanwhile, and claude takes longer to
start than the proxy takes to be ready, so nobody waits for those imports any more.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import sys
import threading
from collections.abc import Iterator

from ..errors import CcsError
from ..launch import Endpoint

HOST = "127.0.0.1"


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


@contextlib.contextmanager
def serve_in_background(profile, secret: str | None) -> Iterator[Endpoint]:
    """`ccs run`: the proxy lives exactly as long as claude; its log goes to a file, not the terminal.
    Yields as soon as the socket listens (see the module's docstring)."""
    from .. import files

    files.state_dir().mkdir(parents=True, exist_ok=True)
    log_file = str(files.state_dir() / "proxy.log")
    sock, token = bind(), new_token()
    done = threading.Event()

    def serve() -> None:
        try:
            from .server import running_for

            with running_for(profile, secret, log_file=log_file, sock=sock, token=token):
                done.wait()
        except Exception as e:  # claude runs already: its requests meet a closed socket, the user this line
            print(f"ccs: error: the proxy failed to start: {type(e).__name__}: {e}", file=sys.stderr)
            sock.close()

    thread = threading.Thread(target=serve, name="ccs-proxy-start", daemon=True)
    thread.start()
    try:
        yield Endpoint(url_of(sock), token, log_file)
    finally:
        done.set()
        thread.join(10)
        sock.close()
