"""Claude's side of the proxy: the request checked against the shape the translators read, and the
local token estimate (count_tokens, and the usage of providers that report none).

`check_request` makes a bad request a precise 400 (`messages.2.content.0.text: must be a string`),
so anything that still goes wrong while translating is a bug of ours, not the client's fault.
"""

from __future__ import annotations

import math


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
    if req.get("max_tokens") is not None and req["max_tokens"] < 1:
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
