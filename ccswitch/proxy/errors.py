"""One table from upstream failures to Anthropic errors: `{"type": "error", "error": {"type", "message"}}`."""

from __future__ import annotations

import json

import httpx

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "overloaded_error",
    503: "overloaded_error",
    504: "overloaded_error",
    529: "overloaded_error",
}


class ProxyError(Exception):
    """An error to send to the client as an Anthropic error response (or an `error` event mid-stream)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}

    @property
    def error_type(self) -> str:
        if self.status in ERROR_TYPES:
            return ERROR_TYPES[self.status]
        return "api_error" if self.status >= 500 else "invalid_request_error"

    def body(self) -> dict:
        return {"type": "error", "error": {"type": self.error_type, "message": self.message}}


def from_upstream_status(status: int, raw: bytes, headers, profile: str) -> ProxyError:
    """A non-2xx upstream answer; the provider's own message is kept."""
    message = upstream_message(raw) or f"HTTP {status}"
    if status in (401, 403):
        message = (f"the provider rejected the key of profile '{profile}' ({status}: {message}); "
                   f"store a new one with `ccs key set {profile}`")
    else:
        message = f"upstream {status}: {message}"
    kept = {name: headers[name] for name in ("retry-after",) if name in headers}
    return ProxyError(status, message, kept)


def from_stream_error(payload: dict) -> ProxyError:
    """`data: {"error": ...}` inside a 200 stream."""
    error = payload.get("error")
    status = 500
    if isinstance(error, dict):
        code = error.get("code") or error.get("status")
        if isinstance(code, int) and 400 <= code < 600:
            status = code
        elif str(code).isdigit() and 400 <= int(code) < 600:
            status = int(code)
        message = str(error.get("message") or error)
    else:
        message = str(error)
    return ProxyError(status, f"upstream error in stream: {message}")


def from_transport(exc: httpx.HTTPError, url: str) -> ProxyError:
    """Timeouts and connection failures: an error the client retries, never a hang or a traceback."""
    if isinstance(exc, httpx.TimeoutException):
        return ProxyError(504, f"the provider did not answer in time ({type(exc).__name__}) at {url}")
    if isinstance(exc, httpx.ConnectError):
        return ProxyError(502, f"cannot connect to the provider at {url}: {exc}")
    return ProxyError(502, f"the connection to the provider failed: {type(exc).__name__}: {exc}")


def upstream_message(raw: bytes) -> str:
    try:
        data = json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace").strip()[:500]
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict):
            return str(error.get("message") or error.get("msg") or json.dumps(error)[:500])
        if isinstance(error, list) and error and isinstance(error[0], dict):  # Gemini wraps errors in a list
            return str(error[0].get("error", {}).get("message") or error[0])
        return str(error)
    return str(data)[:500]
