"""OpenAI Chat Completions answers -> Anthropic messages: one function for whole responses, and the
reader of a Chat Completions stream, which says what to write through `anthropic.EventWriter` (the
event grammar Claude Code relies on lives there).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from .anthropic import new_message_id
from .answer_shapes import (UNREADABLE, StreamTranslation, array_at, count, estimated_usage, object_at, odd_shape,
                            parse_arguments, text_at, unreadable)
from .errors import ProxyError, from_stream_error
from .tool_ids import ToolNames, new_tool_id

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use",
                "content_filter": "refusal"}


def thought_signature(call: dict) -> str | None:
    extra = object_at(call.get("extra_content"), "a tool call's extra_content")
    signature = object_at(extra.get("google"), "extra_content.google").get("thought_signature")
    return signature if isinstance(signature, str) else None


def usage_of(usage) -> dict:
    """OpenAI usage -> Anthropic usage: cached prompt tokens are reported apart from the rest.

    Cached tokens are where OpenAI puts them, or DeepSeek's `prompt_cache_hit_tokens`, or Kimi's `cached_tokens`."""
    usage = usage if isinstance(usage, dict) else {}
    details = usage.get("prompt_tokens_details")
    details = details if isinstance(details, dict) else {}
    prompt = count(usage.get("prompt_tokens"))
    cached = min(prompt, count(details.get("cached_tokens")) or count(usage.get("prompt_cache_hit_tokens"))
                 or count(usage.get("cached_tokens")))
    return {"input_tokens": prompt - cached, "output_tokens": count(usage.get("completion_tokens")),
            "cache_read_input_tokens": cached, "cache_creation_input_tokens": 0}


def stop_reason_of(finish_reason: str | None, has_tool_calls: bool) -> str:
    return "tool_use" if has_tool_calls else STOP_REASONS.get(finish_reason or "stop", "end_turn")


# OpenRouter's `reasoning_details`: where each kind of entry keeps its words (an encrypted one keeps none)
DETAIL_WORDS = {"reasoning.text": "text", "reasoning.summary": "summary"}


def reasoning_text(part: dict) -> str:
    """The reasoning a message or a delta shows: the words of OpenRouter's `reasoning_details` when it sends
    them, else the `reasoning_content` or `reasoning` string (which OpenRouter sends beside the details, the
    same words once more)."""
    details = part.get("reasoning_details")
    shown = []
    for detail in details if isinstance(details, list) else ():
        words = DETAIL_WORDS.get(detail.get("type")) if isinstance(detail, dict) else None
        if words and isinstance(detail.get(words), str):
            shown.append(detail[words])
    if shown:
        return "".join(shown)
    reasoning = part.get("reasoning_content") or part.get("reasoning")
    return reasoning if isinstance(reasoning, str) else ""


def content_text(content) -> str:
    """Message content as text: most providers send a string, some a list of text parts."""
    if isinstance(content, list):
        return "".join(part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str))
    return content if isinstance(content, str) else ""


def translate_response(resp, model: str, names: ToolNames, estimate_input: Callable[[], int] = lambda: 0) -> dict:
    """A whole (non-streaming) OpenAI response as an Anthropic message."""
    try:
        return _translate_response(object_at(resp, "the answer"), model, names, estimate_input)
    except UNREADABLE as e:
        raise unreadable(e) from None


def _translate_response(resp: dict, model: str, names: ToolNames, estimate_input: Callable[[], int]) -> dict:
    if resp.get("error"):
        raise from_stream_error(resp)
    choices = array_at(resp.get("choices"), "choices")
    if not choices:
        raise ProxyError(502, "the provider answered without any choices", retry=False)
    choice = object_at(choices[0], "a choice")
    message = object_at(choice.get("message"), "choices.0.message")
    content: list[dict] = []
    if reasoning := reasoning_text(message):
        content.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    refusal = text_at(message.get("refusal"), "message.refusal")
    if text := content_text(message.get("content")) or refusal:
        content.append({"type": "text", "text": text})
    calls = [object_at(call, "a tool call") for call in array_at(message.get("tool_calls"), "message.tool_calls")]
    for call in calls:
        function = object_at(call.get("function"), "a tool call's function")
        name = text_at(function.get("name"), "a tool call's name") or ""
        content.append({"type": "tool_use", "id": new_tool_id(thought_signature(call)), "name": names.restore(name),
                        "input": parse_arguments(function.get("arguments"))})
    finish = text_at(choice.get("finish_reason"), "finish_reason")
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


class StreamTranslator(StreamTranslation):
    """Feed it OpenAI chunks (parsed JSON); it returns Anthropic SSE bytes. `finish()` closes the message.

    Raises ProxyError for an error inside the stream; the caller decides whether that is still an
    HTTP error (nothing sent yet: `started` is False) or an `error` event.
    """

    usage_of = staticmethod(usage_of)

    def __init__(self, model: str, names: ToolNames, estimate_input: Callable[[], int] = lambda: 0):
        super().__init__(model, estimate_input)
        self.model = model
        self.names = names
        self.calls: list[_Call] = []
        self.by_index: dict[int, _Call] = {}
        self.current: _Call | None = None  # the call whose block is open
        self.done = False  # Chat Completions says it is done with `[DONE]`, which the SSE parser reads

    def feed(self, chunk: dict) -> bytes:
        try:
            return self._feed(chunk)
        except UNREADABLE as e:
            raise unreadable(e) from None

    def _feed(self, chunk) -> bytes:
        chunk = object_at(chunk, "a stream chunk")
        if chunk.get("error"):
            raise from_stream_error(chunk)
        out: list[bytes] = []
        self.writer.start(out)
        if usage := chunk.get("usage") or object_at(chunk.get("x_groq"), "x_groq").get("usage"):  # Groq's own place
            self.usage = usage
        for choice in array_at(chunk.get("choices"), "choices"):
            choice = object_at(choice, "a choice")
            if choice.get("index", 0) != 0:
                continue
            delta = object_at(choice.get("delta"), "a choice's delta")
            if reasoning := reasoning_text(delta):
                self._reasoning(reasoning, out)
            if text := content_text(delta.get("content")):
                self._text(text, out)
            if isinstance(delta.get("refusal"), str) and delta["refusal"]:  # OpenAI streams refusals apart
                self._text(delta["refusal"], out)
                self.finish_reason = "content_filter"
            for fragment in array_at(delta.get("tool_calls"), "delta.tool_calls"):
                self._tool_fragment(object_at(fragment, "a tool call"), out)
            finish = text_at(choice.get("finish_reason"), "finish_reason")
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

    @property
    def started(self) -> bool:
        return self.writer.started

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
        function = object_at(fragment.get("function"), "a tool call's function")
        name = text_at(function.get("name"), "a tool call's name")
        index = fragment.get("index")
        if not (index is None or isinstance(index, int)):
            raise odd_shape("a tool call's index", index, "an integer")
        upstream_id = fragment.get("id")
        call = self._call_for(index, str(upstream_id) if upstream_id not in (None, "") else None, name)
        if name and not call.name:
            call.name = self.names.restore(name)
        if call.block is None and thought_signature(fragment):
            call.id = new_tool_id(thought_signature(fragment))
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
