"""The proxy's ASGI front: loopback Host names only, the session token, a small path table, the body
read as JSON, and every error answered in Anthropic's shape (with any provider key masked)."""

from __future__ import annotations

import contextlib
import hmac
import logging
import math
import re

import httpx2

from . import jsonio
from .anthropic import InvalidRequest, check_request, estimate_tokens
from .errors import ProxyError
from .exchange import Exchanges
from .router import Router

ALLOWED_HOSTS = {"127.0.0.1", "localhost", "[::1]"}
HOST_HEADER = re.compile(r"(?P<name>\[[0-9a-fA-F:.]*\]|[^:\[\]]*)(?::\d+)?")
MAX_REQUEST_MB = 64  # the default limit on a request body; `max_request_mb` in a profile
JSON_HEADERS = [(b"content-type", b"application/json")]

log = logging.getLogger("ccswitch.proxy")


class ProxyApp:
    """Anthropic Messages API in front; behind it, the providers the router names."""

    def __init__(self, router: Router, token: str, client: httpx2.AsyncClient | None = None,
                 max_request_mb: int = MAX_REQUEST_MB, record=None):
        self.router = router
        self.token = token.encode()
        self.exchanges = Exchanges(router, client, record)
        self.max_body = max_request_mb * 1024 * 1024
        self.routes = {
            ("POST", "/v1/messages"): self.messages,
            ("POST", "/v1/messages/count_tokens"): self.count_tokens,
            ("GET", "/v1/models"): self.models,
        }

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            try:
                await self._route(scope, receive, send)
            except ProxyError as e:
                await respond_error(send, self._reported(e))
            except Exception as e:  # a bug of ours: log it, and still answer in Anthropic's shape
                error = ProxyError(500, f"internal error in the ccs proxy: {type(e).__name__}", retry=False, hidden=e)
                with contextlib.suppress(Exception):  # unless the response had already begun
                    await respond_error(send, self._reported(error))

    def _reported(self, error: ProxyError) -> ProxyError:
        """The error as the client gets it, and one line in the log (with the traceback when an exception of
        ours is behind it). A provider that echoes the key in its error message gets it masked."""
        error.message = self.router.masked(error.message)
        if error.hidden is not None:
            log.error("ccs proxy: a bug in ccs, answered as %s %s", error.status, error.message, exc_info=error.hidden)
        else:
            log.warning("ccs proxy: answered %s %s", error.status, error.message)
        return error

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                for upstream in [*([self.router.own] if self.router.own else []), *await self.router.warm()]:
                    self.exchanges.client_for(upstream)  # TLS set up now, not in the first request
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.exchanges.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _route(self, scope, receive, send) -> None:
        headers = dict(scope["headers"])
        host = host_name(headers.get(b"host", b"").decode("latin-1"))
        if host not in ALLOWED_HOSTS:  # a browser tricked by DNS rebinding sends another Host
            raise ProxyError(403, f"host {host or '(none)'!r} is not allowed; use 127.0.0.1")
        method, path = scope["method"], scope["path"]
        if path in ("/", "/api/hello", "/health") and method in ("GET", "HEAD"):
            return await respond_json(send, 200, {"status": "ok"}, head=method == "HEAD")
        if not self._authorized(headers):
            raise ProxyError(401, "missing or wrong session token: this proxy only serves the `claude` that "
                                  "`ccs run` started (or the token `ccs proxy` printed)")
        handler = self.routes.get((method, path))
        if handler is None:
            raise ProxyError(404, f"{method} {path} is not served by the ccs proxy")
        await handler(scope, headers, receive, send)

    def _authorized(self, headers: dict) -> bool:
        offered = headers.get(b"x-api-key") or b""
        authorization = headers.get(b"authorization") or b""
        if authorization[:7].lower() == b"bearer ":
            offered = offered or authorization[7:].strip()
        return hmac.compare_digest(offered, self.token)

    async def messages(self, scope, headers: dict, receive, send) -> None:
        req = await read_json(receive, headers, self.max_body)
        await self.exchanges.messages(req, scope["headers"], receive, send, self._reported)

    async def count_tokens(self, scope, headers: dict, receive, send) -> None:
        req = await read_json(receive, headers, self.max_body)
        try:
            check_request(req, counting=True)
        except InvalidRequest as e:
            raise ProxyError(400, str(e)) from None
        await respond_json(send, 200, {"input_tokens": estimate_tokens(req)})

    async def models(self, scope, headers: dict, receive, send) -> None:
        await respond_json(send, 200, self.router.models_page())


def host_name(host: str) -> str:
    """The name in a Host header without its port (`127.0.0.1:8080`, `[::1]:8080`, `LOCALHOST`); "" if malformed."""
    found = HOST_HEADER.fullmatch(host)
    return found["name"].lower() if found else ""


async def read_json(receive, headers: dict, limit: int) -> dict:
    """The request body as a JSON object; what JSON allows but no provider's wire carries is a 400."""
    too_large = ProxyError(413, f"request body over {limit // (1024 * 1024)} MiB (the proxy's limit: raise "
                                "`max_request_mb` in the profile)")
    declared = headers.get(b"content-length", b"0")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ProxyError(400, "the client disconnected while sending the request")
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > limit:
            raise too_large
        if not message.get("more_body"):
            break
    try:
        data = jsonio.loads(b"".join(chunks), parse_constant=_not_a_number, parse_float=_finite)
    except RecursionError:
        raise ProxyError(400, "the request body is nested too deeply") from None
    except ValueError as e:
        raise ProxyError(400, f"the request body is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise ProxyError(400, "the request body must be a JSON object")
    return data


def _not_a_number(word: str):
    raise ValueError(f"{word} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range for a number")
    return value


async def respond_json(send, status: int, data: dict, headers: dict | None = None, head: bool = False) -> None:
    body = jsonio.dumps(data)
    extra = [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status,
                "headers": [*JSON_HEADERS, (b"content-length", str(len(body)).encode()), *extra]})
    await send({"type": "http.response.body", "body": b"" if head else body})


async def respond_error(send, error: ProxyError) -> None:
    await respond_json(send, error.status, error.body(), error.response_headers)
