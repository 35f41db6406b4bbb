"""Reading a provider's JSON answer without trusting its shape: a part of the wrong type is the
provider's fault, said plainly as a 502, never a crash of ours. Shared by every translator."""

from __future__ import annotations

import json
import math

from .anthropic import EventWriter, event
from .errors import ProxyError


def estimated_usage(input_tokens: int, output_chars: int) -> dict:
    """For a provider that reports no usage: claude sizes its context (and when to compact) from these."""
    return {"input_tokens": input_tokens, "output_tokens": math.ceil(output_chars / 4),
            "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}


def count(value) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value if isinstance(value, int) and value > 0 else 0


def parse_arguments(arguments) -> dict:
    """Tool arguments as an object; text that is not a JSON object is kept rather than lost."""
    if isinstance(arguments, dict):  # a provider that sends the object itself
        return arguments
    if not arguments:
        return {}
    if not isinstance(arguments, str):
        return {"_value": arguments}
    try:
        value = json.loads(arguments)
    except ValueError:
        return {"_raw_arguments": arguments}
    return value if isinstance(value, dict) else {"_value": value}


def object_at(value, what: str) -> dict:
    """A part of the provider's answer that must be an object (null counts as empty): any other shape is
    the provider's fault, said plainly, never a crash of ours."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    raise odd_shape(what, value, "an object")


def array_at(value, what: str) -> list:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    raise odd_shape(what, value, "a list")


def text_at(value, what: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise odd_shape(what, value, "a string")


def odd_shape(what: str, value, expected: str) -> ProxyError:
    return ProxyError(502, f"the provider's answer has an unexpected shape: {what} is {type(value).__name__}, "
                           f"not {expected}", retry=False)


# What our own reading code raises if the checks above missed a shape: answered as a 502, logged as our bug.
UNREADABLE = (AttributeError, TypeError, KeyError, ValueError)


def unreadable(exc: Exception) -> ProxyError:
    return ProxyError(502, f"the provider's answer has an unexpected shape ({type(exc).__name__}: {exc})",
                      retry=False, hidden=exc)


class StreamTranslation:
    """What the stream translators of every API kind share: the Anthropic events they write, the usage the
    provider reported (read by the kind's `usage_of`) or an estimate, and an error as an `error` event."""

    @staticmethod
    def usage_of(usage: dict) -> dict:
        raise NotImplementedError

    def __init__(self, model: str, estimate_input):
        self.estimate_input = estimate_input  # for a provider that reports no usage
        self.generated = 0  # characters of text, reasoning and tool arguments, for the same
        self.writer = EventWriter(model)
        self.finish_reason: str | None = None
        self.usage: dict | None = None  # as the provider reported it
        self.finished = False

    def usage_so_far(self) -> dict:
        """The provider's usage when it reported one, else an estimate (claude sizes its context from it)."""
        return self.usage_of(self.usage) if self.usage else estimated_usage(self.estimate_input(), self.generated)

    def error_event(self, error: ProxyError) -> bytes:
        return event("error", error.body())
