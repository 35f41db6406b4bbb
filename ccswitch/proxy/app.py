"""The proxy's front, an aiohttp handler: loopback Host names only, the session token, a small path table,
the body read as JSON, and every error answered in Anthropic's shape (with any provider key masked)."""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
import re

from . import jsonio
from .anthropic import InvalidRequest, check_request, estimate_tokens
from .errors import ProxyError
from .exchange import Exchanges
from .pipeline import JSON_CONTENT, REPLY
from .router import Router

ALLOWED_HOSTS = {"127.0.0.1", "localhost", "[::1]"}
HOST_HEADER = re.compile(r"(?P<name>\[[0-9a-fA-F:.]*\]|[^:\[\]]*)(?::\d+)?")
MAX_REQUEST_MB = 64  # the default limit on a request body; `max_request_mb` in a profile

log = logging.getLogger("ccswitch.proxy")


class ProxyApp:
    """Anthropic Messages API in front; behind it, the providers the router names."""

    def __init__(self, router: Router, token: str, client=None, max_request_mb: int = MAX_REQUEST_MB, record=None,
                 search=None):
        self.router = router
        self.token = token.encode()
        self.exchanges = Exchanges(router, client, record, search)
        self.max_body = max_request_mb * 1024 * 1024
        self.routes = {
            ("POST", "/v1/messages"): self.messages,
            ("POST", "/v1/messages/count_tokens"): self.count_tokens,
            ("GET", "/v1/models"): self.models,
        }

    async def startup(self) -> None:
        """The providers' clients made before the first request (TLS set up now, not then)."""
        for upstream in [*([self.router.own] if self.router.own else []), *await self.router.warm()]:
            self.exchanges.client_for(upstream)

    async def shutdown(self) -> None:
        await self.exchanges.close()

    async def __call__(self, request):
        try:
            return await self._route(request)
        except ProxyError as e:
            return error_response(self._reported(e))
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a bug of ours: log it, and still answer in Anthropic's shape
            error = self._reported(ProxyError(500, f"internal error in the ccs proxy: {type(e).__name__}", retry=False,
                                              hidden=e))
            begun = request.get(REPLY)
            return begun.response if begun is not None and begun.started else error_response(error)

    def _reported(self, error: ProxyError) -> ProxyError:
        """The error as the client gets it, and one line in the log (with the traceback when an exception of
        ours is behind it). A provider that echoes the key in its error message gets it masked."""
        error.message = self.router.masked(error.message)
        if error.hidden is not None:
            log.error("ccs proxy: a bug in ccs, answered as %s %s", error.status, error.message, exc_info=error.hidden)
        else:
            log.warning("ccs proxy: answered %s %s", error.status, error.message)
        return error

    async def _route(self, request):
        host = host_name(request.headers.get("Host", ""))
        if host not in ALLOWED_HOSTS:  # a browser tricked by DNS rebinding sends another Host
            raise ProxyError(403, f"host {host or '(none)'!r} is not allowed; use 127.0.0.1")
        method, path = request.method, request.path
        if path in ("/", "/api/hello", "/health") and method in ("GET", "HEAD"):
            return json_response(200, {"status": "ok"})
        self._authorize(request.headers)
        request.protocol.trusted = True  # its connection is the client's: the front closes others first
        handler = self.routes.get((method, path))
        if handler is None:
            raise ProxyError(404, f"{method} {path} is not served by the ccs proxy")
        return await handler(request)

    def _authorize(self, headers) -> None:
        """The session token, as a bearer or an x-api-key. claude sends both when a settings file has an
        apiKeyHelper: the helper's key must not pass for the token."""
        # (a header that is not UTF-8 reaches here with its bytes escaped: it is simply not the token)
        api_key = headers.get("x-api-key", "").encode(errors="surrogateescape")
        authorization = headers.get("authorization", "").encode(errors="surrogateescape")
        bearer = authorization[7:].strip() if authorization[:7].lower() == b"bearer " else b""
        offered = api_key or bearer
        if hmac.compare_digest(offered, self.token):
            return
        if bearer and hmac.compare_digest(bearer, self.token):
            raise ProxyError(401, "the session token came with another key (x-api-key): claude sends one when a "
                                  "Claude Code settings file has an apiKeyHelper; `ccs run` overrides that for the "
                                  "claude it starts, a program starting claude itself must pass it "
                                  "`--settings $CCS_CLAUDE_SETTINGS` (see `ccs doctor`)")
        raise ProxyError(401, "missing or wrong session token: this proxy only serves the `claude` that "
                              "`ccs run` started (or the token `ccs proxy` printed)")

    async def messages(self, request):
        req = await read_json(request, self.max_body)
        return await self.exchanges.messages(req, request, self._reported)

    async def count_tokens(self, request):
        req = await read_json(request, self.max_body)
        try:
            check_request(req, counting=True)
        except InvalidRequest as e:
            raise ProxyError(400, str(e)) from None
        return json_response(200, {"input_tokens": estimate_tokens(req)})

    async def models(self, request):
        return json_response(200, self.router.models_page())


def host_name(host: str) -> str:
    """The name in a Host header without its port (`127.0.0.1:8080`, `[::1]:8080`, `LOCALHOST`); "" if malformed."""
    found = HOST_HEADER.fullmatch(host)
    return found["name"].lower() if found else ""


async def read_json(request, limit: int) -> dict:
    """The request body as a JSON object; what JSON allows but no provider's wire carries is a 400."""
    too_large = ProxyError(413, f"request body over {limit // (1024 * 1024)} MiB (the proxy's limit: raise "
                                "`max_request_mb` in the profile)")
    declared = request.headers.get("content-length", "0")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks = []
    size = 0
    while chunk := await request.content.readany():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise too_large
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


def json_response(status: int, data: dict, headers: dict | None = None):
    from ..http_client import web

    return web().Response(status=status, body=jsonio.dumps(data), headers={**JSON_CONTENT, **(headers or {})})


def error_response(error: ProxyError):
    return json_response(error.status, error.body(), error.response_headers)
