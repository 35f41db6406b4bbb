"""Tool calls across APIs: the names and ids each API accepts, and a provider's thought signature kept
inside the id claude sends back (so it survives resumed sessions with no state in the proxy)."""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import secrets
import string

MAX_TOOL_NAME = 64
# Gemini 3 wants each step's thought signature back on its first function call, or answers 400; this
# documented value stands in for one that is lost (a history from another model or an older session).
SIGNATURE_STANDIN = "skip_thought_signature_validator"
_SIGNATURE_MARK = "_sig_"
_ID_ALPHABET = string.digits + string.ascii_letters


class ToolNames:
    """OpenAI caps function names at 64 characters: long names are shortened with a hash and restored."""

    def __init__(self) -> None:
        self.original: dict[str, str] = {}

    def shorten(self, name: str) -> str:
        if len(name) <= MAX_TOOL_NAME:
            return name
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        short = f"{name[:MAX_TOOL_NAME - 9]}_{digest}"
        self.original[short] = name
        return short

    def restore(self, name: str) -> str:
        return self.original.get(name, name)


def new_tool_id(signature: str | None = None) -> str:
    """A fresh `toolu_` id for a provider's tool call, carrying its thought signature, if any."""
    return with_signature("toolu_" + secrets.token_hex(12), signature)


def with_signature(tool_id: str, signature: str | None) -> str:
    """A tool_use id carrying the provider's thought signature: Claude Code sends ids back verbatim."""
    if not signature:
        return tool_id
    return tool_id + _SIGNATURE_MARK + base64.urlsafe_b64encode(signature.encode()).rstrip(b"=").decode()


def split_signature(tool_id: str) -> tuple[str, str | None]:
    """(claude's tool_use id without the signature, the thought signature riding in it, if any)."""
    short, mark, encoded = tool_id.partition(_SIGNATURE_MARK)
    if not mark:
        return tool_id, None
    try:
        return short, base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        return tool_id, None


@functools.lru_cache(maxsize=8192)
def call_id(tool_use_id: str) -> str:
    """The id the provider sees for a tool call: 9 letters and digits derived from claude's id (its
    thought signature aside), the one shape every provider takes; Mistral's API and templates insist on it.
    The same claude id always gives the same call id, so a call and its result pair up across turns."""
    number = int.from_bytes(hashlib.sha256(split_signature(tool_use_id)[0].encode()).digest()[:8], "big")
    digits = []
    for _ in range(9):
        number, digit = divmod(number, len(_ID_ALPHABET))
        digits.append(_ID_ALPHABET[digit])
    return "".join(digits)


# ---------------------------------------------------------------- reasoning carried in a thinking signature
# The Responses API's reasoning, kept with `store: false`, comes back only as an encrypted item; it rides to claude
# in the thinking block's signature (claude sends thinking back verbatim) and returns to the provider next turn.
# The signature says whose it is: encrypted reasoning verifies only with the account that made it, and an
# Anthropic signature is no encrypted reasoning.
_REASONING_MARK = "ccs-reasoning."


def signer_tag(profile: str) -> str:
    """A short mark for the profile whose provider encrypted a reasoning item (its name never shows)."""
    return hashlib.sha256(profile.lower().encode()).hexdigest()[:8]


def reasoning_signature(encrypted: str, signer: str) -> str:
    return f"{_REASONING_MARK}{signer}.{encrypted}"


def signed_reasoning(signature: str, signer: str) -> str | None:
    """The encrypted reasoning in a thinking block's signature, if `signer`'s provider made it."""
    mark = f"{_REASONING_MARK}{signer}."
    return (signature[len(mark):] or None) if signature.startswith(mark) else None


def ours(signature: str) -> bool:
    """A signature the proxy made (never one an Anthropic-API provider can verify)."""
    return signature.startswith(_REASONING_MARK)
