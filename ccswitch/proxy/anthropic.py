"""Claude's side of the proxy, shared by every translator: the request checked against the shape the
translators read, the local token estimate (count_tokens, and the usage of providers that report
none), and the writer of Anthropic's stream events.

`check_request` makes a bad request a precise 400 (`messages.2.content.0.text: must be a string`),
so anything that still goes wrong while translating is a bug of ours, not the client's fault.
"""

from __future__ import annotations

import json
import math
import secrets

from . import jsonio


class InvalidRequest(ValueError):
    """The client's request cannot be translated; becomes a 400 invalid_request_error."""


NUMBER = (int, float)
# A field's expected type, by name; a name ending in "?" is optional, and null there counts as absent.
REQUEST = {"model?": str, "messages": list, "max_tokens?": int, "stream?": bool, "system?": (str, list),
           "tools?": list, "tool_choice?": dict, "thinking?": dict, "output_config?": dict, "metadata?": dict,
           "temperature?": NUMBER, "top_p?": NUMBER, "top_k?": int, "stop_sequences?": list}
COUNT_TOKENS = {"model?": str, "messages": list, "system?": (str, list), "tools?": list}
MESSAGE = {"role": str, "content": (str, list)}
ROLES = ("user", "assistant", "system")  # Claude Code puts `system` messages inside `messages`
# Content blocks the translators read; blocks of other types carry nothing a chat model can use and are dropped.
BLOCKS = {
    "text": {"text": str},
    "image": {"source": dict},
    "document": {"source": dict, "title?": str},
    "search_result": {"title?": str, "source?": str, "content?": list},
    "tool_reference": {"tool_name?": str},
    "tool_use": {"id": str, "name": str, "input?": dict},
    "tool_result": {"tool_use_id": str, "content?": (str, list), "is_error?": bool},
    "thinking": {"thinking?": str, "signature?": str},
    "redacted_thinking": {"data?": str},
}
SOURCES = {"base64": {"data": str, "media_type?": str}, "url": {"url": str}, "text": {"data": str},
           "content": {"content": (str, list)}}
TOOL = {"name": str, "description?": str, "input_schema?": dict}
TOOL_CHOICE = {"type": str, "name?": str, "disable_parallel_tool_use?": bool}
THINKING = {"type": str, "budget_tokens?": int}


def check_request(req: dict, *, counting: bool = False) -> None:
    """Raise InvalidRequest naming the first field that is missing or of the wrong type."""
    _fields(req, COUNT_TOKENS if counting else REQUEST, "")
    if not req["messages"]:
        raise InvalidRequest("messages: at least one message is required")
    if not counting and req.get("max_tokens") is not None and req["max_tokens"] < 1:
        raise InvalidRequest("max_tokens: must be at least 1")
    for index, message in enumerate(req["messages"]):
        at = f"messages.{index}"
        _fields(message, MESSAGE, at)
        if message["role"] not in ROLES:
            raise InvalidRequest(f"{at}.role: must be user, assistant or system")
        _content(message["content"], f"{at}.content")
    _content(req.get("system") or "", "system")
    for index, tool in enumerate(req.get("tools") or ()):
        if not isinstance(tool, dict):
            raise InvalidRequest(f"tools.{index}: must be an object")
        if "input_schema" in tool:  # a client tool; server tools (web search, ...) have a type instead
            _fields(tool, TOOL, f"tools.{index}")
    if req.get("tool_choice") is not None:
        _fields(req["tool_choice"], TOOL_CHOICE, "tool_choice")
    if req.get("thinking") is not None:
        _fields(req["thinking"], THINKING, "thinking")
    if not isinstance((req.get("output_config") or {}).get("effort") or "", str):
        raise InvalidRequest("output_config.effort: must be a string")
    if not all(isinstance(stop, str) for stop in req.get("stop_sequences") or ()):
        raise InvalidRequest("stop_sequences: must be a list of strings")


def _content(content, at: str) -> None:
    """A string, or a list of blocks each of the shape its type asks for (nested lists included)."""
    if isinstance(content, str):
        return
    for index, block in enumerate(content):
        where = f"{at}.{index}"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise InvalidRequest(f"{where}: must be a content block with a string `type`")
        shape = BLOCKS.get(block["type"])
        if shape is None:
            continue
        _fields(block, shape, where)
        if isinstance(source := block.get("source"), dict):
            if not isinstance(source.get("type"), str):
                raise InvalidRequest(f"{where}.source.type: must be a string")
            if kind := SOURCES.get(source["type"]):
                _fields(source, kind, f"{where}.source")
                if isinstance(source.get("content"), list):
                    _content(source["content"], f"{where}.source.content")
        if isinstance(block.get("content"), list):
            _content(block["content"], f"{where}.content")


def _fields(value, shape: dict, at: str) -> None:
    if not isinstance(value, dict):
        raise InvalidRequest(f"{at or 'the request body'}: must be an object")
    prefix = f"{at}." if at else ""
    for name, kind in shape.items():
        optional = name.endswith("?")
        name = name.rstrip("?")
        if value.get(name) is None:
            if optional:
                continue
            if name not in value:
                raise InvalidRequest(f"{prefix}{name}: field required")
        if not _is(value[name], kind):
            raise InvalidRequest(f"{prefix}{name}: must be {_type_words(kind)}")


def _is(value, kind) -> bool:
    """isinstance, except that true/false are not numbers (Python counts bool as int)."""
    return isinstance(value, kind) and not (isinstance(value, bool) and kind is not bool)


def _type_words(kind) -> str:
    if kind == NUMBER:
        return "a number"
    words = {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "a list",
             dict: "an object"}
    return " or ".join(words[k] for k in kind) if isinstance(kind, tuple) else words[kind]


def estimate_tokens(req: dict) -> int:
    """count_tokens, answered locally over system, messages and tools: about 4 ASCII characters a
    token, a token for each other character (CJK text runs near one a character), 1,600 per image
    (Anthropic's figure for a ~1.2 megapixel image). An estimate, never exact.

    It walks the request with a list rather than recursion, so no nesting depth can make it fail."""
    ascii_chars = wide_chars = images = 0
    pending = [req.get(key) for key in ("system", "messages", "tools")]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            if value.get("type") == "image":
                images += 1
            else:
                pending.extend(v for k, v in value.items() if k not in ("cache_control", "type"))
        elif isinstance(value, list):
            pending.extend(value)
        elif value is not None:
            text = value if isinstance(value, str) else str(value)
            narrow = len(text.encode("ascii", "ignore"))
            ascii_chars += narrow + 1  # and a separator, as between joined words
            wide_chars += len(text) - narrow
    return max(1, math.ceil(ascii_chars / 4) + wide_chars + 1600 * images)


# ---------------------------------------------------------------- the stream Claude Code reads
# One `message_start`; then content blocks strictly one at a time (`content_block_start`, deltas,
# `content_block_stop`); then `message_delta` with the stop reason and usage, and `message_stop`.


def new_message_id() -> str:
    return "msg_" + secrets.token_hex(12)


def event(kind: str, data: dict) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + jsonio.dumps(data) + b"\n\n"


def message_as_events(message: dict) -> bytes:
    """A whole message as a stream, for providers that answer a streaming request with plain JSON."""
    out = [event("message_start", {"type": "message_start", "message": {
        **message, "content": [], "stop_reason": None, "usage": {**message["usage"], "output_tokens": 0}}})]
    for index, block in enumerate(message["content"]):
        empty, *deltas = start_and_deltas(block)
        out.append(event("content_block_start", {"type": "content_block_start", "index": index,
                                                 "content_block": empty}))
        out.extend(event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
                   for delta in deltas)
        out.append(event("content_block_stop", {"type": "content_block_stop", "index": index}))
    out.append(event("message_delta", {"type": "message_delta", "usage": message["usage"],
                                       "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None}}))
    out.append(event("message_stop", {"type": "message_stop"}))
    return b"".join(out)


def start_and_deltas(block: dict) -> tuple[dict, ...]:
    """A whole content block as its empty start and a delta carrying everything (and a thinking block's
    signature after it); a tool's result (web_search_tool_result) starts whole, with no delta."""
    if block["type"] not in ("text", "thinking", "tool_use", "server_tool_use"):
        return (block,)
    if block["type"] == "text":
        return {"type": "text", "text": ""}, {"type": "text_delta", "text": block["text"]}
    if block["type"] == "thinking":
        start = ({"type": "thinking", "thinking": "", "signature": ""},
                 {"type": "thinking_delta", "thinking": block["thinking"]})
        signature = block.get("signature")
        return (*start, {"type": "signature_delta", "signature": signature}) if signature else start
    return {**block, "input": {}}, {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}


PING = event("ping", {"type": "ping"})


class EventWriter:
    """Anthropic's stream grammar, kept by construction: a translator says what to open, add and end."""

    def __init__(self, model: str):
        self.model = model
        self.started = False
        self.blocks = 0  # content blocks opened so far
        self.open: str | None = None  # kind of the open block: "text", "thinking" or "tool"

    def start(self, out: list[bytes]) -> None:
        if not self.started:
            self.started = True
            out.append(event("message_start", {"type": "message_start", "message": {
                "id": new_message_id(), "type": "message", "role": "assistant", "model": self.model,
                "content": [], "stop_reason": None, "stop_sequence": None,
                "usage": {"input_tokens": 0, "output_tokens": 0}}}))  # the real numbers come in message_delta

    def open_block(self, kind: str, block: dict, out: list[bytes]) -> int:
        """Open a block (the caller closed the one before); its index."""
        index = self.blocks
        self.blocks += 1
        self.open = kind
        out.append(event("content_block_start", {"type": "content_block_start", "index": index,
                                                 "content_block": block}))
        return index

    def close_block(self, out: list[bytes]) -> None:
        if self.open is not None:
            out.append(event("content_block_stop", {"type": "content_block_stop", "index": self.blocks - 1}))
            self.open = None

    def delta(self, delta: dict, out: list[bytes]) -> None:
        out.append(event("content_block_delta", {"type": "content_block_delta", "index": self.blocks - 1,
                                                 "delta": delta}))

    def end(self, stop_reason: str, usage: dict, out: list[bytes]) -> None:
        out.append(event("message_delta", {"type": "message_delta",
                                           "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                                           "usage": usage}))
        out.append(event("message_stop", {"type": "message_stop"}))


