"""OpenAI Chat Completions answers -> Anthropic messages: one function for whole responses, and the
reader of a Chat Completions stream, which says what to write through `anthropic.EventWriter` (the
event grammar Claude Code relies on lives there).
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from .anthropic import EventWriter, event, new_message_id
from .errors import ProxyError, from_stream_error
from .to_openai import ToolNames, with_signature

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use",
                "content_filter": "refusal"}


def new_tool_id(call: dict | None = None) -> str:
    """A fresh `toolu_` id, carrying the thought signature (Gemini 3) of the call it stands for."""
    return with_signature("toolu_" + secrets.token_hex(12), thought_signature(call or {}))


def thought_signature(call: dict) -> str | None:
    extra = _object(call.get("extra_content"), "a tool call's extra_content")
    signature = _object(extra.get("google"), "extra_content.google").get("thought_signature")
    return signature if isinstance(signature, str) else None


def usage_of(usage) -> dict:
    """OpenAI usage -> Anthropic usage: cached prompt tokens are reported apart from the rest.

    Cached tokens are where OpenAI puts them, or DeepSeek's `prompt_cache_hit_tokens`, or Kimi's `cached_tokens`."""
    usage = usage if isinstance(usage, dict) else {}
    details = usage.get("prompt_tokens_details")
    details = details if isinstance(details, dict) else {}
    prompt = _count(usage.get("prompt_tokens"))
    cached = min(prompt, _count(details.get("cached_tokens")) or _count(usage.get("prompt_cache_hit_tokens"))
                 or _count(usage.get("cached_tokens")))
    return {"input_tokens": prompt - cached, "output_tokens": _count(usage.get("completion_tokens")),
            "cache_read_input_tokens": cached, "cache_creation_input_tokens": 0}


def estimated_usage(input_tokens: int, output_chars: int) -> dict:
    """For a provider that reports no usage: claude sizes its context (and when to compact) from these."""
    return {"input_tokens": input_tokens, "output_tokens": math.ceil(output_chars / 4),
            "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}


def _count(value) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value if isinstance(value, int) and value > 0 else 0


def stop_reason_of(finish_reason: str | None, has_tool_calls: bool) -> str:
    return "tool_use" if has_tool_calls else STOP_REASONS.get(finish_reason or "stop", "end_turn")


def content_text(content) -> str:
    """Message content as text: most providers send a string, some a list of text parts."""
    if isinstance(content, list):
        return "".join(part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str))
    return content if isinstance(content, str) else ""


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


def _object(value, what: str) -> dict:
    """A part of the provider's answer that must be an object (null counts as empty): any other shape is
    the provider's fault, said plainly, never a crash of ours."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    raise _odd_shape(what, value, "an object")


def _array(value, what: str) -> list:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    raise _odd_shape(what, value, "a list")


def _text(value, what: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise _odd_shape(what, value, "a string")


def _odd_shape(what: str, value, expected: str) -> ProxyError:
    return ProxyError(502, f"the provider's answer has an unexpected shape: {what} is {type(value).__name__}, "
                           f"not {expected}", retry=False)


# What our own reading code raises if the checks above missed a shape: answered as a 502, logged as our bug.
UNREADABLE = (AttributeError, TypeError, KeyError, ValueError)


def unreadable(exc: Exception) -> ProxyError:
    return ProxyError(502, f"the provider's answer has an unexpected shape ({type(exc).__name__}: {exc})",
                      retry=False, hidden=exc)


def translate_response(resp, model: str, names: ToolNames, estimate_input: Callable[[], int] = lambda: 0) -> dict:
    """A whole (non-streaming) OpenAI response as an Anthropic message."""
    try:
        return _translate_response(_object(resp, "the answer"), model, names, estimate_input)
    except UNREADABLE as e:
        raise unreadable(e) from None


def _translate_response(resp: dict, model: str, names: ToolNames, estimate_input: Callable[[], int]) -> dict:
    if resp.get("error"):
        raise from_stream_error(resp)
    choices = _array(resp.get("choices"), "choices")
    if not choices:
        raise ProxyError(502, "the provider answered without any choices", retry=False)
    choice = _object(choices[0], "a choice")
    message = _object(choice.get("message"), "choices.0.message")
    content: list[dict] = []
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        content.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    refusal = _text(message.get("refusal"), "message.refusal")
    if text := content_text(message.get("content")) or refusal:
        content.append({"type": "text", "text": text})
    calls = [_object(call, "a tool call") for call in _array(message.get("tool_calls"), "message.tool_calls")]
    for call in calls:
        function = _object(call.get("function"), "a tool call's function")
        name = _text(function.get("name"), "a tool call's name") or ""
        content.append({"type": "tool_use", "id": new_tool_id(call), "name": names.restore(name),
                        "input": parse_arguments(function.get("arguments"))})
    finish = _text(choice.get("finish_reason"), "finish_reason")
    if finish == "error":
        raise ProxyError(502, "the provider ended the answer with an error")
    finish = "content_filter" if refusal else finish
    if resp.get("usage"):
        usage = usage_of(resp["usage"])
    else:
        usage = estimated_usage(estimate_input(), len(json.dumps(content, ensure_ascii=False)))
    return {"id": new_message_id(), "type": "message", "role": "assistant", "model": model, "content": content,
            "stop_reason": stop_reason_of(finish, bool(calls)), "stop_sequence": None, "usage": usage}


# ---------------------------------------------------------------- streaming


@dataclass
class _Call:
    """One tool call as its fragments arrive."""

    id: str
    upstream_id: str | None
    name: str = ""
    arguments: str = ""  # everything received, to recognise providers that resend it cumulatively
    held: str = ""  # received while another call's block was open
    block: int | None = None  # its content block index once opened
    done: bool = False


class StreamTranslator:
    """Feed it OpenAI chunks (parsed JSON); it returns Anthropic SSE bytes. `finish()` closes the message.

    Raises ProxyError for an error inside the stream; the caller decides whether that is still an
    HTTP error (nothing sent yet: `started` is False) or an `error` event.
    """

    def __init__(self, model: str, names: ToolNames, estimate_input: Callable[[], int] = lambda: 0):
        self.model = model
        self.names = names
        self.estimate_input = estimate_input  # for a provider that reports no usage
        self.generated = 0  # characters of text, reasoning and tool arguments, for the same
        self.writer = EventWriter(model)
        self.calls: list[_Call] = []
        self.by_index: dict[int, _Call] = {}
        self.current: _Call | None = None  # the call whose block is open
        self.finish_reason: str | None = None
        self.done = False  # Chat Completions says it is done with `[DONE]`, which the SSE parser reads
        self.usage: dict | None = None  # as the provider reported it
        self.finished = False

    def feed(self, chunk: dict) -> bytes:
        try:
            return self._feed(chunk)
        except UNREADABLE as e:
            raise unreadable(e) from None

    def _feed(self, chunk) -> bytes:
        chunk = _object(chunk, "a stream chunk")
        if chunk.get("error"):
            raise from_stream_error(chunk)
        out: list[bytes] = []
        self.writer.start(out)
        if usage := chunk.get("usage") or _object(chunk.get("x_groq"), "x_groq").get("usage"):  # Groq's own place
            self.usage = usage
        for choice in _array(chunk.get("choices"), "choices"):
            choice = _object(choice, "a choice")
            if choice.get("index", 0) != 0:
                continue
            delta = _object(choice.get("delta"), "a choice's delta")
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                self._reasoning(reasoning, out)
            if text := content_text(delta.get("content")):
                self._text(text, out)
            if isinstance(delta.get("refusal"), str) and delta["refusal"]:  # OpenAI streams refusals apart
                self._text(delta["refusal"], out)
                self.finish_reason = "content_filter"
            for fragment in _array(delta.get("tool_calls"), "delta.tool_calls"):
                self._tool_fragment(_object(fragment, "a tool call"), out)
            finish = _text(choice.get("finish_reason"), "finish_reason")
            if finish and self.finish_reason != "content_filter":  # a refusal stays one
                self.finish_reason = finish
        if self.finish_reason == "error":
            raise ProxyError(502, "the provider ended the stream with finish_reason \"error\"")
        return b"".join(out)

    def finish(self) -> bytes:
        """Close the open block, emit held tool calls in order, then message_delta and message_stop."""
        out: list[bytes] = []
        self.writer.start(out)
        self._close_block(out)
        for call in self.calls:
            if not call.done:
                self._open_call(call, out)
                self._close_block(out)
        self.finished = True
        self.writer.end(stop_reason_of(self.finish_reason, bool(self.calls)), self.usage_so_far(), out)
        return b"".join(out)

    def usage_so_far(self) -> dict:
        """The provider's usage when it reported one, else an estimate (claude sizes its context from it)."""
        return usage_of(self.usage) if self.usage else estimated_usage(self.estimate_input(), self.generated)

    @property
    def started(self) -> bool:
        return self.writer.started

    def error_event(self, error: ProxyError) -> bytes:
        return event("error", error.body())

    # -- blocks

    def _open_block(self, kind: str, block: dict, out: list[bytes]) -> int:
        self._close_block(out)
        return self.writer.open_block(kind, block, out)

    def _close_block(self, out: list[bytes]) -> None:
        self.writer.close_block(out)
        if self.current is not None:
            self.current.done = True
            self.current = None

    def _delta(self, delta: dict, out: list[bytes]) -> None:
        self.writer.delta(delta, out)

    def _reasoning(self, text: str, out: list[bytes]) -> None:
        if self.writer.open != "thinking":
            if self.writer.blocks:  # thinking goes before the answer; once text or tools began it cannot
                return
            self._open_block("thinking", {"type": "thinking", "thinking": "", "signature": ""}, out)
        self.generated += len(text)
        self._delta({"type": "thinking_delta", "thinking": text}, out)

    def _text(self, text: str, out: list[bytes]) -> None:
        if self.writer.open != "text":
            self._open_block("text", {"type": "text", "text": ""}, out)
        self.generated += len(text)
        self._delta({"type": "text_delta", "text": text}, out)

    # -- tool calls

    def _tool_fragment(self, fragment: dict, out: list[bytes]) -> None:
        function = _object(fragment.get("function"), "a tool call's function")
        name = _text(function.get("name"), "a tool call's name")
        index = fragment.get("index")
        if not (index is None or isinstance(index, int)):
            raise _odd_shape("a tool call's index", index, "an integer")
        upstream_id = fragment.get("id")
        call = self._call_for(index, str(upstream_id) if upstream_id not in (None, "") else None, name)
        if name and not call.name:
            call.name = self.names.restore(name)
        if call.block is None and thought_signature(fragment):
            call.id = new_tool_id(fragment)
        arguments = function.get("arguments") or ""
        if not isinstance(arguments, str):  # a provider that sends an object instead of a JSON string
            arguments = json.dumps(arguments)
        if call.arguments and arguments.startswith(call.arguments) and len(call.arguments) > 1:
            arguments = arguments[len(call.arguments):]  # cumulative: keep only what is new
        call.arguments += arguments
        self.generated += len(arguments)
        if call is self.current:
            if arguments:
                self._delta({"type": "input_json_delta", "partial_json": arguments}, out)
            return
        call.held += arguments
        if call.name and (self.current is None or _complete_json(self.current.arguments)):
            self._open_call(call, out)

    def _call_for(self, index: int | None, upstream_id: str | None, name: str | None) -> _Call:
        """The call a fragment belongs to; a new id on a known index, or no index and no id, handled."""
        if index is None and upstream_id is None and self.calls:
            last = self.calls[-1]
            if not (name and last.name and _complete_json(last.arguments)):
                return last  # a continuation; a named fragment after a complete call starts the next one
        existing = self.by_index.get(index) if index is not None else None
        if existing is None and upstream_id is not None:
            existing = next((c for c in self.calls if c.upstream_id == upstream_id), None)
        if existing is not None and not (upstream_id and existing.upstream_id and upstream_id != existing.upstream_id):
            return existing
        call = _Call(id=new_tool_id(), upstream_id=upstream_id)
        self.calls.append(call)
        if index is not None:
            self.by_index[index] = call
        return call

    def _open_call(self, call: _Call, out: list[bytes]) -> None:
        call.block = self._open_block("tool", {"type": "tool_use", "id": call.id, "name": call.name or "unknown",
                                               "input": {}}, out)
        self.current = call
        if call.held:
            self._delta({"type": "input_json_delta", "partial_json": call.held}, out)
            call.held = ""


def _complete_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True
