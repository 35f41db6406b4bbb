"""What a failed request to a provider means and what fixes it, in the words every command uses: `ccs
doctor`, `ccs test`, `ccs models`. A provider's own words are kept short, with the key masked where a
provider quotes it back."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from . import keys


ANTHROPIC_VERSION = "2023-06-01"


def status_diagnosis(status: int, message: str, profile: str, not_found: str) -> str:
    """What an error status from a provider (or the proxy in front of it) means, and the fix."""
    if status in (401, 403):
        meaning = f"the key was rejected: `ccs key set {profile}`"
    elif status == 404:
        meaning = f"wrong base_url or model: {not_found}"
    elif status == 429:
        meaning = "rate limited or out of credit: wait a minute, or look at the account's balance"
    elif status >= 500:
        meaning = "the provider failed or could not be reached: try again later; is base_url right?"
    else:
        meaning = "the provider refused the request"
    return f"{meaning} ({status}: {message})" if message else f"{meaning} ({status})"


def error_message(raw: bytes, secret: str | None) -> str:
    """The message in an error answer (Anthropic's or OpenAI's shape, else its text)."""
    try:
        return message_in(json.loads(raw), secret)
    except ValueError:
        return one_line(raw.decode("utf-8", "replace"), secret)


def message_in(data, secret: str | None) -> str:
    """`{"error": {"message": ...}}` (an error event too) -> the message."""
    error = data.get("error", data) if isinstance(data, dict) else data
    return one_line(str(error.get("message") or error) if isinstance(error, dict) else str(error), secret)


def one_line(text: str, secret: str | None) -> str:
    """A provider's words for a line of ours: short, and the key masked where the provider quotes it back."""
    if secret:
        text = text.replace(secret, keys.mask(secret))
    return " ".join(text.split())[:300]


def transport_diagnosis(error: Exception, url: str) -> str:
    """A request to `url` that got no answer at all: which of the usual reasons, and where to look."""
    import httpx2

    text = " ".join(str(error).split()) or type(error).__name__
    where = urlsplit(url).netloc
    if isinstance(error, httpx2.TimeoutException):
        return f"no answer from {where} in time ({type(error).__name__}): is the server up? is base_url right?"
    if isinstance(error, httpx2.ConnectError):
        if any(word in text for word in ("SSL", "TLS", "certificate")):
            return f"TLS with {where} failed ({text}): an untrusted certificate, or https:// to a plain HTTP server?"
        if any(word in text for word in ("name resolution", "not known", "nodename", "getaddrinfo")):
            return f"the host name {urlsplit(url).hostname} does not resolve ({text}): is base_url right?"
        return f"cannot connect to {where} ({text}): is the server running? is base_url right?"
    return f"the connection failed ({type(error).__name__}: {text})"
