"""One table from upstream failures to Anthropic errors: `{"type": "error", "error": {"type", "message"}}`."""

from __future__ import annotations

import json
import re

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


RETRIED = (408, 409, 429)  # and every 5xx: what claude retries, and what may succeed when retried


class ProxyError(Exception):
    """An error to send to the client as an Anthropic error response (or an `error` event mid-stream).

    `retry=False` says that asking again cannot help (a rejected key, no server at the address, an
    answer that is not a completion): claude then gives up at once with our message, instead of
    retrying for minutes. `hidden` is an exception of our own code that this answer stands in for:
    it is logged with its traceback, so a bug of ours never passes for the client's or the provider's."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None, *,
                 retry: bool | None = None, hidden: BaseException | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.retry = (status in RETRIED or status >= 500) if retry is None else retry
        self.hidden = hidden

    @property
    def response_headers(self) -> dict[str, str]:
        """The headers of the HTTP answer: claude 2.1.329 honours `x-should-retry`."""
        return self.headers if self.retry else {**self.headers, "x-should-retry": "false"}

    @property
    def error_type(self) -> str:
        if self.status >= 500 and not self.retry:
            return "api_error"  # claude retries any `overloaded_error`, whatever x-should-retry says
        if self.status in ERROR_TYPES:
            return ERROR_TYPES[self.status]
        return "api_error" if self.status >= 500 else "invalid_request_error"

    def body(self) -> dict:
        return {"type": "error", "error": {"type": self.error_type, "message": self.message}}


def from_upstream_status(status: int, raw: bytes, headers, profile: str, max_tokens: int | None = None) -> ProxyError:
    """A non-2xx upstream answer; the provider's own message is kept, or a full context put in
    Anthropic's words, to which claude reacts as it does with Anthropic."""
    if status in (400, 413) and (overflow := context_overflow(raw.decode("utf-8", "replace"), max_tokens)):
        return ProxyError(400, overflow)
    message = upstream_message(raw) or f"HTTP {status}"
    if status in (401, 403):
        message = (f"the provider rejected the key of profile '{profile}' ({status}: {message}); "
                   f"store a new one with `ccs key set {profile}`")
    else:
        message = f"upstream {status}: {message}"
    kept = {name: headers[name] for name in ("retry-after",) if name in headers}
    return ProxyError(status, message, kept)


# How providers say the context is full, as (input tokens, context limit): vLLM, OpenAI and DeepSeek,
# llama.cpp, Gemini, Mistral.
_OVERFLOWS = [re.compile(pattern, re.I | re.S) for pattern in (
    r"maximum context length is (?P<limit>\d+) tokens and your request has (?P<input>\d+) input tokens",
    r"maximum context length is (?P<limit>\d+) tokens\. However, you requested \d+ tokens \((?P<input>\d+) in the messages",
    r"maximum context length is (?P<limit>\d+) tokens\. However, your messages resulted in (?P<input>\d+) tokens",
    r"exceeds the available context size.*\"n_prompt_tokens\": ?(?P<input>\d+).*\"n_ctx\": ?(?P<limit>\d+)",
    r"input token count \((?P<input>\d+)\) exceeds the maximum number of tokens allowed \((?P<limit>\d+)\)",
    r"prompt contains (?P<input>\d+) tokens.*too large for model with (?P<limit>\d+) maximum context length",
)]
# A full context said without numbers: OpenAI's Responses API.
_OVERFLOW_WORDS = re.compile(r"exceeds the context window|context_length_exceeded", re.I)
# A model's fixed cap on output tokens: OpenAI (both APIs), DeepSeek, Groq.
_OUTPUT_CAPS = [re.compile(pattern, re.I) for pattern in (
    r"supports at most (\d+) completion tokens",
    r"valid range of max_tokens is \[1, ?(\d+)\]",
    r"max_(?:completion_)?tokens`? must be less than or equal to `?(\d+)",
    r"max_output_tokens'?: integer above maximum value\. Expected a value <= ?(\d+)",  # the Responses API
)]


def context_overflow(error: str, max_tokens: int | None) -> str | None:
    """Anthropic's message for a full context: claude lowers max_tokens on the first, compacts on the second."""
    for pattern in _OVERFLOWS:
        if found := pattern.search(error):
            used, limit = int(found["input"]), int(found["limit"])
            if used < limit and max_tokens:
                return (f"input length and `max_tokens` exceed context limit: {used} + {max_tokens} > {limit}, "
                        "decrease input length or `max_tokens` and try again")
            return f"prompt is too long: {used} tokens > {limit} maximum"
    if _OVERFLOW_WORDS.search(error):
        return f"prompt is too long: {upstream_message(error.encode()) or 'the input exceeds the context window'}"
    return None


def output_cap(error: bytes) -> int | None:
    """The most output tokens a model allows, when its provider's error says so."""
    text = error.decode("utf-8", "replace")
    for pattern in _OUTPUT_CAPS:
        if found := pattern.search(text):
            return int(found[1])
    return None


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


# The Responses API's error codes (a failed response, an `error` event) by the status they stand for;
# any other code is a server error, or the request's fault when it reads `invalid_...`.
RESPONSE_CODES = {"rate_limit_exceeded": 429, "insufficient_quota": 429, "server_error": 500,
                  "server_is_overloaded": 529, "slow_down": 529}


def from_response_error(error: dict, what: str = "upstream error in stream") -> ProxyError:
    """A Responses `error` (`{code, message, type?}`) in Anthropic's words; a full context as claude knows one."""
    code = str(error.get("code") or error.get("type") or "")
    message = str(error.get("message") or code or "no message")
    overflow = context_overflow(message, None)
    if overflow or code == "context_length_exceeded":
        return ProxyError(400, overflow or f"prompt is too long: {message}")
    status = RESPONSE_CODES.get(code) or (400 if code.startswith("invalid") else 500)
    return ProxyError(status, f"{what}: {message}")


def from_transport(error: BaseException, url: str, profile: str) -> ProxyError:
    """No (whole) answer from the provider, in the words every command uses (diagnosis.FAILURES), naming the
    profile and the URL. Where asking again cannot help (no server there, an unknown host, TLS), claude is told
    not to retry; a time-out or a dropped connection it may retry."""
    from ..diagnosis import failure
    from ..http_client import failure_kind

    kind = failure_kind(error)
    message = f"profile '{profile}': {failure(kind, url, str(error) or type(error).__name__)}"
    if kind == "timeout":
        return ProxyError(504, message)
    return ProxyError(502, message, retry=kind not in ("refused", "dns", "tls"))


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
