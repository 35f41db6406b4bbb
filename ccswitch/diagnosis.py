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
    elif status == 429 and "budget" in message:  # the proxy's own refusal: the message says how to raise it
        meaning = "over the profile's budget"
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


# Why a request got no answer (see http_client.failure_kind): what happened, and where to look.
FAILURES = {
    "refused": ("cannot connect to {where}", "is the server running? is base_url right?"),
    "dns": ("the host name {host} does not resolve", "is base_url right?"),
    "tls": ("TLS with {where} failed", "an untrusted certificate, or https:// to a plain HTTP server?"),
    "timeout": ("no answer from {where} in time", "is the server up? is base_url right?"),
    "broken": ("the connection to {where} broke off", "the provider or the network dropped it"),
    "other": ("the connection to {where} failed", ""),
}


def failure(kind: str, url: str, detail: str = "") -> str:
    """A request to `url` that got no answer, in the words of FAILURES: `cannot connect to URL (Connection
    refused): is the server running? is base_url right?`."""
    parts = urlsplit(url)
    what, fix = FAILURES.get(kind, FAILURES["other"])
    said = what.format(where=url, host=parts.hostname or url)
    detail = " ".join(detail.split())[:300]
    return said + (f" ({detail})" if detail else "") + (f": {fix}" if fix else "")


def transport_diagnosis(error: BaseException, url: str) -> str:
    """`failure` for an exception of the HTTP client."""
    from .http_client import failure_kind

    return failure(failure_kind(error), url, str(error) or type(error).__name__)
