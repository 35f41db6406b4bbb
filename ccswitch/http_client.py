"""The one HTTP client that talks to providers (aiohttp): the proxy's upstream side, and the checks
(`ccs test`, `ccs models`, `ccs doctor`) that ask providers the way the proxy does.

aiohttp loads the system's certificates twice when it is imported (two default TLS contexts, ~40 ms and
2 MB); ccs imports it without them and gives each HTTPS provider a context of its own, loaded once. A
plain-HTTP server on this machine never loads certificates at all.
"""

from __future__ import annotations

import functools
import threading
from urllib.parse import urlsplit

from .profiles import on_this_machine

_IMPORTING = threading.Lock()


def aiohttp():
    """The aiohttp module, imported without loading certificates for contexts ccs never uses."""
    import ssl
    import sys

    if (module := sys.modules.get("aiohttp")) is not None:
        return module
    with _IMPORTING:
        loading = ssl.SSLContext.load_default_certs, ssl.SSLContext.set_default_verify_paths
        ssl.SSLContext.load_default_certs = ssl.SSLContext.set_default_verify_paths = lambda *args, **kwargs: None
        try:
            import aiohttp as module
        finally:
            ssl.SSLContext.load_default_certs, ssl.SSLContext.set_default_verify_paths = loading
    return module


def web():
    """aiohttp's server side (the proxy's front), imported the same way."""
    aiohttp()
    from aiohttp import web as module

    return module


@functools.cache
def tls_context():
    """The system's certificates (and SSL_CERT_FILE / SSL_CERT_DIR), loaded once for every HTTPS provider."""
    import ssl

    context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
    return context


def session(url: str, *, read_timeout: float | None, connections: int = 256, socket_factory=None):
    """A pooled client for the server at `url`: connections kept alive from one request to the next, the
    environment's HTTP(S)_PROXY honoured unless the server is on this machine, answers asked for uncompressed
    (a compressed stream would wait in the decoder; one compressed anyway is decoded as it arrives),
    redirects not followed. `read_timeout`: the longest wait for the next bytes of an answer."""
    http = aiohttp()
    parts = urlsplit(url)
    local = on_this_machine(parts.hostname or "")
    connector = http.TCPConnector(limit=connections, keepalive_timeout=60, socket_factory=socket_factory,
                                  ssl=tls_context() if parts.scheme == "https" else False)
    timeout = http.ClientTimeout(total=None, sock_connect=10.0, sock_read=read_timeout)
    return http.ClientSession(connector=connector, timeout=timeout, trust_env=not local,
                              headers={"accept-encoding": "identity"}, auto_decompress=True,
                              skip_auto_headers=("User-Agent",), raise_for_status=False)


def errors() -> tuple[type[BaseException], ...]:
    """How a provider's connection fails under a request or a body being read."""
    return aiohttp().ClientError, TimeoutError


def failure_kind(error: BaseException) -> str:
    """Why a request got no (whole) answer: "timeout", "tls", "dns", "refused" (no connection), "broken" (cut
    off after it began), or "other"."""
    import ssl

    http = aiohttp()
    if isinstance(error, TimeoutError):  # asyncio's too, and aiohttp's ServerTimeoutError
        return "timeout"
    if isinstance(error, (http.ClientSSLError, ssl.SSLError)):
        return "tls"
    if isinstance(error, http.ClientConnectorDNSError):
        return "dns"
    if isinstance(error, http.ClientConnectorError):
        text = str(error)
        if any(word in text for word in ("SSL", "TLS", "certificate")):
            return "tls"
        return "refused"
    if isinstance(error, (http.ClientPayloadError, http.ServerDisconnectedError, http.ClientOSError,
                          ConnectionError)):
        return "broken"
    return "other"
