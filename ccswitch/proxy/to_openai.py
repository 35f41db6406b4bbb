"""Anthropic Messages request -> OpenAI Chat Completions request. Pure functions, dict in, dict out.

The upstream body is built from a whitelist: nothing Anthropic-only (cache_control,
context_management, output_config, metadata, safeguards, defer_loading, ...) is forwarded.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import re
import string

from .anthropic import InvalidRequest, check_request
from .upstream import Upstream

BILLING_HEADER = "x-anthropic-billing-header"
MAX_TOOL_NAME = 64
NO_RESULT = "Error: the tool call returned no result"
NO_OUTPUT = "(no output)"
_COMPLETION_TOKENS_MODELS = re.compile(r"^(?:.*/)?(o\d|gpt-5)")


# Gemini 3 wants each step's thought signature back on its first function call, or answers 400; this
# documented value stands in for one that is lost (a history from another model or an older session).
SIGNATURE_STANDIN = "skip_thought_signature_validator"
_SIGNATURE_MARK = "_sig_"


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


def with_signature(tool_id: str, signature: str | None) -> str:
    """A tool_use id carrying the provider's thought signature: Claude Code sends ids back verbatim,
    so the signature survives resumed sessions and restarts without any state in the proxy."""
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


_ID_ALPHABET = string.digits + string.ascii_letters


@functools.lru_cache(maxsize=8192)
def call_id(tool_use_id: str) -> str:
    """The id the provider sees for a tool call: 9 letters and digits derived from claude's id (its
    thought signature aside), the one shape every provider takes; Mistral's API and templates insist on it."""
    number = int.from_bytes(hashlib.sha256(split_signature(tool_use_id)[0].encode()).digest()[:8], "big")
    digits = []
    for _ in range(9):
        number, digit = divmod(number, len(_ID_ALPHABET))
        digits.append(_ID_ALPHABET[digit])
    return "".join(digits)


def translate_request(req: dict, upstream: Upstream, model: str | None = None) -> tuple[dict, ToolNames]:
    """The OpenAI body for an Anthropic request (to `model`, else the one the upstream maps the request's
    to), and the tool-name map for its response."""
    check_request(req)
    names = ToolNames()
    model = model or upstream.model_for(req.get("model") or "")
    body: dict = {"model": model, "messages": translate_messages(req, names, upstream)}
    if req.get("tools"):
        body["tools"] = [translate_tool(tool, names, openapi=upstream.dialect.gemini)
                         for tool in req["tools"] if "input_schema" in tool]
        if not body["tools"]:
            del body["tools"]
    if (choice := req.get("tool_choice")) and "tools" in body:
        body.update(translate_tool_choice(choice, names))
    max_tokens = req.get("max_tokens")
    if upstream.max_output_tokens and (max_tokens is None or max_tokens > upstream.max_output_tokens):
        max_tokens = upstream.max_output_tokens
    if max_tokens is not None:
        body["max_completion_tokens" if _COMPLETION_TOKENS_MODELS.match(model) else "max_tokens"] = max_tokens
    if effort := reasoning_effort(req, upstream.reasoning_effort):
        body["reasoning_effort"] = effort
    for key in ("temperature", "top_p"):
        if req.get(key) is not None:
            body[key] = req[key]
    if req.get("top_k") is not None and upstream.dialect.takes_top_k:
        body["top_k"] = req["top_k"]
    if req.get("stop_sequences"):
        body["stop"] = req["stop_sequences"]
    if (user_id := (req.get("metadata") or {}).get("user_id")) and upstream.dialect.takes_user:
        body["user"] = hashlib.sha256(str(user_id).encode()).hexdigest()  # 64 chars, nothing personal
    if req.get("stream"):
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body, names


def reasoning_effort(req: dict, configured: str | None) -> str | None:
    """The profile's setting wins; else derived from `thinking` (and `output_config.effort` when adaptive)."""
    if configured == "off":
        return None
    thinking = req.get("thinking") or {}
    kind = thinking.get("type")
    if kind not in ("enabled", "adaptive"):
        return None
    if configured:
        return configured
    if kind == "enabled":
        budget = thinking.get("budget_tokens") or 0
        return "low" if budget <= 4096 else "medium" if budget <= 16384 else "high"
    effort = (req.get("output_config") or {}).get("effort") or "medium"
    return effort if effort in ("low", "medium", "high") else "high" if effort in ("max", "xhigh") else "medium"


def translate_tool(tool: dict, names: ToolNames, *, openapi: bool = False) -> dict:
    schema = {k: v for k, v in (tool.get("input_schema") or {}).items() if k != "$schema"}
    schema.setdefault("type", "object")
    if openapi:
        schema = openapi_schema(schema)
    function = {"name": names.shorten(tool["name"]), "parameters": schema}
    if tool.get("description"):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


# What Gemini's function declarations accept (an OpenAPI 3.0 Schema subset); anything else is a 400.
_OPENAPI_KEYS = {"type", "format", "title", "description", "nullable", "enum", "items", "properties", "required",
                 "minItems", "maxItems", "minProperties", "maxProperties", "minLength", "maxLength", "pattern",
                 "minimum", "maximum", "anyOf", "default", "example", "propertyOrdering"}
_OPENAPI_FORMATS = {"enum", "date-time", "int32", "int64", "float", "double"}


def openapi_schema(schema):
    """JSON Schema -> the subset Gemini accepts: unknown keywords dropped, `const` as a one-value enum,
    `type: [T, "null"]` as `nullable`, formats it does not know removed. Recursive."""
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: openapi_schema(sub) for name, sub in value.items()}
        elif key == "items":
            out[key] = openapi_schema(value)
        elif key in ("anyOf", "oneOf") and isinstance(value, list):
            out["anyOf"] = [openapi_schema(sub) for sub in value]
        elif key == "const":
            out["enum"] = [value]
        elif key == "type" and isinstance(value, list):
            kinds = [kind for kind in value if kind != "null"]
            out["type"] = kinds[0] if kinds else "string"
            if "null" in value:
                out["nullable"] = True
        elif key == "format" and value not in _OPENAPI_FORMATS:
            continue
        elif key in _OPENAPI_KEYS:
            out[key] = value
    if "enum" in out and out.get("type") in (None, "string"):
        out["type"] = "string"
        out["enum"] = [str(v) for v in out["enum"]]
    return out


def translate_tool_choice(choice: dict, names: ToolNames) -> dict:
    kind = choice.get("type")
    result: dict = {}
    if kind == "auto":
        result["tool_choice"] = "auto"
    elif kind == "any":
        result["tool_choice"] = "required"
    elif kind == "none":
        result["tool_choice"] = "none"
    elif kind == "tool" and choice.get("name"):
        result["tool_choice"] = {"type": "function", "function": {"name": names.shorten(choice["name"])}}
    else:
        raise InvalidRequest(f"tool_choice: unknown type {kind!r}, or a `tool` choice without its name")
    if choice.get("disable_parallel_tool_use"):
        result["parallel_tool_calls"] = False
    return result


# ---------------------------------------------------------------- messages


def translate_messages(req: dict, names: ToolNames, upstream: Upstream) -> list[dict]:
    """System first, then each message in order; tool results right after the call that asked for them."""
    out: list[dict] = []
    if system := system_text(req.get("system")):
        out.append({"role": "system", "content": system})
    unanswered: list[str] = []  # tool_call ids of the last assistant message still waiting for a result
    held_system: list[dict] = []  # system messages that arrived between a tool call and its results
    for message in req["messages"]:
        role = message["role"]
        content = message["content"]
        if role == "system":
            translated = {"role": "system", "content": blocks_text(content)}
            (held_system if unanswered else out).append(translated)
        elif role == "assistant":
            _answer_missing(out, unanswered)
            out.extend(held_system)
            held_system.clear()
            assistant = assistant_message(content, names, upstream)
            if assistant["content"] or assistant.get("tool_calls"):  # a turn of dropped thinking says nothing
                out.append(assistant)
            unanswered = [call["id"] for call in assistant.get("tool_calls", [])]
        elif role == "user":
            tool_messages, user = user_messages(content)
            for tool_message in tool_messages:
                if tool_message["tool_call_id"] in unanswered:
                    unanswered.remove(tool_message["tool_call_id"])
                    out.append(tool_message)
                else:  # a result for a call OpenAI never saw: keep its text, as the user's words
                    user.setdefault("orphans", []).append(tool_message["content"])
            _answer_missing(out, unanswered)
            out.extend(held_system)
            held_system.clear()
            if orphans := user.pop("orphans", None):
                _prepend_text(user, "\n\n".join(f"Tool result: {text}" for text in orphans))
            if user["content"]:
                out.append(user)
    out.extend(held_system)
    return out


def _answer_missing(out: list[dict], unanswered: list[str]) -> None:
    """OpenAI requires a tool message for every call; an interrupted call gets an explicit error."""
    out.extend({"role": "tool", "tool_call_id": call_id, "content": NO_RESULT} for call_id in unanswered)
    unanswered.clear()


def _prepend_text(user: dict, text: str) -> None:
    if isinstance(user["content"], list):
        user["content"].insert(0, {"type": "text", "text": text})
    else:
        user["content"] = f"{text}\n\n{user['content']}" if user["content"] else text


def system_text(system) -> str:
    """System blocks joined; the billing header is dropped (it changes every request, defeating caches)."""
    if system is None:
        return ""
    if isinstance(system, str):
        return system
    return "\n\n".join(block["text"] for block in system
                       if block.get("type") == "text" and not block.get("text", "").startswith(BILLING_HEADER))


def blocks_text(content) -> str:
    if isinstance(content, str):
        return content
    return "\n\n".join(text for block in content if (text := _block_text(block)) is not None)


def _block_text(block: dict) -> str | None:
    kind = block.get("type")
    if kind == "text":
        return block["text"]
    if kind == "tool_reference":
        return f"Tool loaded: {block.get('tool_name')}"
    if kind == "document":
        return document_text(block)
    if kind == "search_result":
        return "\n".join([block.get("title") or "", block.get("source") or "", blocks_text(block.get("content") or [])])
    return None


def document_text(block: dict) -> str:
    source = block.get("source") or {}
    kind = source.get("type")
    if kind == "text":
        text = source["data"]
    elif kind == "content":
        text = blocks_text(source["content"])
    else:
        raise InvalidRequest(f"document blocks with a {kind!r} source cannot be sent to an OpenAI-API provider; "
                             "only text documents can")
    title = block.get("title")
    return f"{title}\n\n{text}" if title else text


def image_part(block: dict) -> dict:
    source = block.get("source") or {}
    if source.get("type") == "base64":
        url = f"data:{source.get('media_type') or 'image/png'};base64,{source['data']}"
    elif source.get("type") == "url":
        url = source["url"]  # passed on as is; the proxy never fetches anything
    else:
        raise InvalidRequest(f"image source type {source.get('type')!r} is not supported")
    return {"type": "image_url", "image_url": {"url": url}}


def assistant_message(content, names: ToolNames, upstream: Upstream) -> dict:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[dict] = []
    for block in content or []:
        kind = block.get("type")
        if kind == "text":
            texts.append(block["text"])
        elif kind == "tool_use":
            signature = split_signature(block["id"])[1]
            call = {"id": call_id(block["id"]), "type": "function",
                    "function": {"name": names.shorten(block["name"]),
                                 "arguments": json.dumps(block.get("input") or {}, ensure_ascii=False)}}
            if signature or (upstream.dialect.gemini and not calls):  # whoever sent one wants it back
                call["extra_content"] = {"google": {"thought_signature": signature or SIGNATURE_STANDIN}}
            calls.append(call)
        elif kind == "thinking" and upstream.dialect.keeps_reasoning:
            reasoning.append(block.get("thinking") or "")
        # redacted_thinking, and thinking for providers that do not want it back: dropped
    message: dict = {"role": "assistant", "content": "".join(texts) or (None if calls else "")}
    if calls:
        message["tool_calls"] = calls
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    return message


def user_messages(content) -> tuple[list[dict], dict]:
    """(one tool message per tool_result, the user message with the remaining text and images)."""
    if isinstance(content, str):
        return [], {"role": "user", "content": content}
    tools: list[dict] = []
    parts: list[dict] = []
    for block in content:
        kind = block["type"]
        if kind == "tool_result":
            text, images = tool_result_content(block)
            tools.append({"role": "tool", "tool_call_id": call_id(block["tool_use_id"]), "content": text})
            parts.extend(images)
        elif kind == "image":
            parts.append(image_part(block))
        elif kind in ("text", "tool_reference", "document", "search_result"):
            parts.append({"type": "text", "text": _block_text(block)})
        # other block types carry nothing a chat model can read: dropped
    if all(part["type"] == "text" for part in parts):
        return tools, {"role": "user", "content": "\n\n".join(part["text"] for part in parts)}
    return tools, {"role": "user", "content": parts}


def tool_result_content(block: dict) -> tuple[str, list[dict]]:
    """The text of a tool result, and any images it holds (sent in a following user message)."""
    content = block.get("content") or ""
    images: list[dict] = []
    if isinstance(content, str):
        text = content
    else:
        texts = []
        for item in content:
            if item.get("type") == "image":
                images.append(image_part(item))
            elif (item_text := _block_text(item)) is not None:
                texts.append(item_text)
        text = "\n\n".join(texts)
        if images and not text:
            text = f"(the result is {'an image' if len(images) == 1 else f'{len(images)} images'}, attached below)"
    if block.get("is_error"):
        text = f"Error: {text}"
    return text or NO_OUTPUT, images  # strict providers (Gemini) reject empty text
