"""OpenAI Responses answers -> Anthropic messages: one function for whole responses, and the reader of a
Responses stream (typed events: `response.output_text.delta`, ..., `response.completed`), which says what to
write through `anthropic.EventWriter`.

Each output item becomes a content block: a `reasoning` item a thinking block (its summary the text, its
encrypted content the signature, so that claude sends it back next turn), a `message` a text block, a
`function_call` a tool_use block. Items arrive one after another, each from `response.output_item.added` to
`.done`; text and arguments that come only whole, in `.done`, are taken from there.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from .anthropic import new_message_id
from .answer_shapes import (UNREADABLE, StreamTranslation, array_at, count, estimated_usage, object_at, odd_shape,
                            parse_arguments, text_at, unreadable)
from .errors import ProxyError, from_response_error
from .tool_ids import ToolNames, new_tool_id, reasoning_signature

INCOMPLETE = {"max_output_tokens": "max_tokens", "content_filter": "refusal"}  # incomplete_details.reason


def usage_of(usage) -> dict:
    """Responses usage -> Anthropic usage: cached (and cache-written) input apart from the rest; the output
    counts the reasoning, as it is billed."""
    usage = usage if isinstance(usage, dict) else {}
    details = usage.get("input_tokens_details")
    details = details if isinstance(details, dict) else {}
    total = count(usage.get("input_tokens"))
    cached = min(total, count(details.get("cached_tokens")))
    written = min(total - cached, count(details.get("cache_write_tokens")))
    return {"input_tokens": total - cached - written, "output_tokens": count(usage.get("output_tokens")),
            "cache_read_input_tokens": cached, "cache_creation_input_tokens": written}


def stop_reason_of(response: dict, calls: bool, refused: bool) -> str:
    if response.get("status") == "incomplete":
        details = object_at(response.get("incomplete_details"), "incomplete_details")
        return INCOMPLETE.get(text_at(details.get("reason"), "incomplete_details.reason") or "", "end_turn")
    return "refusal" if refused else "tool_use" if calls else "end_turn"


def failure(response: dict) -> ProxyError:
    """A failed response's error."""
    return from_response_error(object_at(response.get("error"), "the response's error"),
                               "the provider's response failed")


def summary_text(item: dict) -> str:
    """A reasoning item's summary parts joined (or its raw reasoning text, from servers that send that)."""
    parts = array_at(item.get("summary"), "a reasoning summary") or array_at(item.get("content"), "reasoning content")
    return "\n\n".join(text for part in parts if (text := text_at(object_at(part, "a summary part").get("text"),
                                                                   "a summary's text")))


def signature_of(item: dict, signer: str) -> str:
    encrypted = text_at(item.get("encrypted_content"), "encrypted_content")
    return reasoning_signature(encrypted, signer) if encrypted else ""


def message_text(item: dict) -> tuple[str, bool]:
    """(a message item's text, whether it is a refusal)."""
    texts, refused = [], False
    for part in array_at(item.get("content"), "a message's content"):
        part = object_at(part, "a message part")
        if isinstance(text := part.get("refusal"), str):
            refused = True
        else:
            text = text_at(part.get("text"), "a message part's text")
        texts.append(text or "")
    return "".join(texts), refused


def translate_response(resp, model: str, names: ToolNames, estimate_input: Callable[[], int] = lambda: 0,
                       signer: str = "") -> dict:
    """A whole (non-streaming) Responses answer as an Anthropic message."""
    try:
        return _translate_response(object_at(resp, "the answer"), model, names, estimate_input, signer)
    except UNREADABLE as e:
        raise unreadable(e) from None


def _translate_response(resp: dict, model: str, names: ToolNames, estimate_input, signer: str) -> dict:
    if resp.get("status") == "failed" or resp.get("error"):
        raise failure(resp)
    if "output" not in resp:
        raise ProxyError(502, "the provider's answer is not a response (no `output`)", retry=False)
    content: list[dict] = []
    calls = refused = False
    for item in array_at(resp.get("output"), "output"):
        item = object_at(item, "an output item")
        kind = item.get("type")
        if kind == "reasoning" and ((thinking := summary_text(item)) or item.get("encrypted_content")):
            content.append({"type": "thinking", "thinking": thinking, "signature": signature_of(item, signer)})
        elif kind == "message":
            text, refusal = message_text(item)
            refused = refused or refusal
            if text:
                content.append({"type": "text", "text": text})
        elif kind == "function_call":
            calls = True
            content.append({"type": "tool_use", "id": new_tool_id(),
                            "name": names.restore(text_at(item.get("name"), "a function call's name") or ""),
                            "input": parse_arguments(item.get("arguments"))})
    if resp.get("usage"):
        usage = usage_of(resp["usage"])
    else:
        usage = estimated_usage(estimate_input(), len(json.dumps(content, ensure_ascii=False)))
    return {"id": new_message_id(), "type": "message", "role": "assistant", "model": model, "content": content,
            "stop_reason": stop_reason_of(resp, calls, refused), "stop_sequence": None, "usage": usage}


# ---------------------------------------------------------------- streaming


class _Item:
    """One output item as its events arrive."""

    __slots__ = ("kind", "tool_id", "name", "sent", "streamed", "part")

    def __init__(self, kind: str):
        self.kind = kind
        self.tool_id = ""
        self.name = ""
        self.sent = ""  # a call's arguments sent to claude so far
        self.streamed = False  # its block has had a delta
        self.part = None  # the summary (or content) part its last reasoning delta belonged to


class StreamTranslator(StreamTranslation):
    """Feed it Responses stream events (parsed JSON); it returns Anthropic SSE bytes. `finish()` closes the message.

    Nothing is written before the first content, so an error the provider reports right after
    `response.created` (a full context, a rate limit) is still an HTTP error, which claude and fallback act on.
    Raises ProxyError for an `error` event or a failed response.
    """

    usage_of = staticmethod(usage_of)

    def __init__(self, model: str, names: ToolNames, estimate_input: Callable[[], int] = lambda: 0,
                 signer: str = ""):
        super().__init__(model, estimate_input)
        self.names = names
        self.signer = signer  # the tag of the profile whose provider encrypts the reasoning
        self.items: dict[object, _Item] = {}  # by output_index, and by item id
        self.current: _Item | None = None  # the item whose block is open
        self.calls = self.refused = False
        self.seen = False  # a Responses event came
        self.done = False  # a final event came (`response.completed`, `.incomplete`)
        self.handlers = {
            "response.output_text.delta": self._text, "response.refusal.delta": self._refusal,
            "response.reasoning_summary_text.delta": self._reasoning, "response.reasoning_text.delta": self._reasoning,
            "response.function_call_arguments.delta": self._arguments,
            "response.function_call_arguments.done": self._arguments_done,
            "response.output_item.added": self._added, "response.output_item.done": self._item_done,
            "response.completed": self._completed, "response.incomplete": self._completed,
            "response.done": self._completed,  # ChatGPT's Codex backend
            "response.failed": self._failed, "error": self._error,
        }

    def feed(self, payload: dict) -> bytes:
        try:
            payload = object_at(payload, "a stream event")
            kind = payload.get("type")
            if not isinstance(kind, str):  # not an event of the Responses API (a chat completion chunk?)
                return b""
            self.seen = True
            handler = self.handlers.get(kind)
            if handler is None:  # created, in_progress, content parts, keepalive, built-in tools' events
                return b""
            out: list[bytes] = []
            handler(payload, out)
            return b"".join(out)
        except UNREADABLE as e:
            raise unreadable(e) from None

    def finish(self) -> bytes:
        """Close the open block, then message_delta and message_stop."""
        out: list[bytes] = []
        self.writer.start(out)
        self._close(out)
        self.finished = True
        self.writer.end(self.finish_reason or "end_turn", self.usage_so_far(), out)
        return b"".join(out)

    @property
    def started(self) -> bool:
        return self.seen

    # -- items and blocks

    def _item(self, payload: dict, kind: str) -> _Item:
        """The item an event is about, by its output_index or item_id (one never announced is made up)."""
        index, item_id = _keys(payload)
        return self.items.get(index) or self.items.get(item_id) or self._new(payload, kind)

    def _new(self, payload: dict, kind: str) -> _Item:
        item = _Item(kind)
        for key in _keys(payload):
            if key is not None:
                self.items[key] = item
        return item

    def _open(self, item: _Item, kind: str, block: dict, out: list[bytes]) -> None:
        self.writer.start(out)
        self._close(out)
        self.writer.open_block(kind, block, out)
        self.current = item

    def _close(self, out: list[bytes]) -> None:
        self.writer.close_block(out)
        self.current = None

    def _delta(self, item: _Item, delta: dict, size: int, out: list[bytes]) -> None:
        item.streamed = True
        self.generated += size
        self.writer.delta(delta, out)

    # -- events

    def _text(self, payload: dict, out: list[bytes]) -> None:
        item = self._item(payload, "message")
        if text := text_at(payload.get("delta"), "a text delta"):
            if self.current is not item:
                self._open(item, "text", {"type": "text", "text": ""}, out)
            self._delta(item, {"type": "text_delta", "text": text}, len(text), out)

    def _refusal(self, payload: dict, out: list[bytes]) -> None:
        self.refused = True
        self._text(payload, out)

    def _reasoning(self, payload: dict, out: list[bytes]) -> None:
        item = self._item(payload, "reasoning")
        text = text_at(payload.get("delta"), "a reasoning delta")
        if not text:
            return
        part = payload.get("summary_index", payload.get("content_index"))
        if item.streamed and part != item.part:
            text = "\n\n" + text  # the next part of the summary
        item.part = part
        if self.current is not item:
            self._open(item, "thinking", {"type": "thinking", "thinking": "", "signature": ""}, out)
        self._delta(item, {"type": "thinking_delta", "thinking": text}, len(text), out)

    def _added(self, payload: dict, out: list[bytes]) -> None:
        announced = object_at(payload.get("item"), "an output item")
        kind = text_at(announced.get("type"), "an output item's type") or ""
        item = self._new({**payload, "item_id": announced.get("id")}, kind)
        if kind == "function_call":
            self._open_call(item, text_at(announced.get("name"), "a function call's name"), out)
            self._arguments({"delta": announced.get("arguments")}, out, item)

    def _open_call(self, item: _Item, name: str | None, out: list[bytes]) -> None:
        self.calls = True
        item.kind, item.tool_id, item.name = "function_call", new_tool_id(), self.names.restore(name or "")
        self._open(item, "tool", {"type": "tool_use", "id": item.tool_id, "name": item.name or "unknown",
                                  "input": {}}, out)

    def _arguments(self, payload: dict, out: list[bytes], item: _Item | None = None) -> None:
        item = item or self._item(payload, "function_call")
        if not (arguments := text_at(payload.get("delta"), "an arguments delta")):
            return
        if not item.tool_id:  # its output_item.added never came
            self._open_call(item, None, out)
        if self.current is item:
            item.sent += arguments
            self._delta(item, {"type": "input_json_delta", "partial_json": arguments}, len(arguments), out)

    def _arguments_done(self, payload: dict, out: list[bytes], item: _Item | None = None) -> None:
        """The whole arguments: what no delta brought is sent now, and the call's block closed."""
        item = item or self._item(payload, "function_call")
        if not item.tool_id:
            self._open_call(item, text_at(payload.get("name"), "a function call's name"), out)
        arguments = payload.get("arguments")
        if not isinstance(arguments, str):  # a server that sends the object itself
            arguments = "" if arguments is None else json.dumps(arguments)
        if self.current is item and arguments.startswith(item.sent) and len(arguments) > len(item.sent):
            self._arguments({"delta": arguments[len(item.sent):]}, out, item)
        if self.current is item:
            self._close(out)

    def _item_done(self, payload: dict, out: list[bytes]) -> None:
        done = object_at(payload.get("item"), "an output item")
        kind = text_at(done.get("type"), "an output item's type")
        item = self._item({**payload, "item_id": done.get("id")}, kind or "")
        if kind == "function_call":
            self._arguments_done(done, out, item)
        elif kind == "reasoning":
            self._reasoning_done(item, done, out)
        elif kind == "message":
            text, refused = message_text(done)
            self.refused = self.refused or refused
            if text and not item.streamed:  # it came whole
                self._open(item, "text", {"type": "text", "text": ""}, out)
                self._delta(item, {"type": "text_delta", "text": text}, len(text), out)
            if self.current is item:
                self._close(out)

    def _reasoning_done(self, item: _Item, done: dict, out: list[bytes]) -> None:
        """The reasoning's signature (its encrypted content, final only now) ends its thinking block."""
        signature = signature_of(done, self.signer)
        if not item.streamed:  # a summary that came whole, or none: the signature alone
            text = summary_text(done)
            if not (text or signature):
                return
            self._open(item, "thinking", {"type": "thinking", "thinking": "", "signature": ""}, out)
            if text:
                self._delta(item, {"type": "thinking_delta", "thinking": text}, len(text), out)
        if self.current is item:
            if signature:
                self.writer.delta({"type": "signature_delta", "signature": signature}, out)
            self._close(out)

    def _completed(self, payload: dict, out: list[bytes]) -> None:
        response = object_at(payload.get("response"), "the response")
        if response.get("status") == "failed":
            raise failure(response)
        self.usage = response.get("usage") or self.usage
        self.finish_reason = stop_reason_of(response, self.calls, self.refused)
        self.done = True

    def _failed(self, payload: dict, out: list[bytes]) -> None:
        raise failure(object_at(payload.get("response"), "the response"))

    def _error(self, payload: dict, out: list[bytes]) -> None:
        error = payload.get("error")
        raise from_response_error(error if isinstance(error, dict) else payload)


def _keys(payload: dict) -> tuple[int | None, str | None]:
    """What an event names its item by: (output_index, item_id)."""
    index = payload.get("output_index")
    if not (index is None or isinstance(index, int)):
        raise odd_shape("output_index", index, "an integer")
    return index, text_at(payload.get("item_id"), "item_id")
