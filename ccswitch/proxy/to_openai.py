"""Anthropic Messages request -> OpenAI Chat Completions request. Pure functions, dict in, dict out.

The upstream body is built from a whitelist: nothing Anthropic-only (cache_control,
context_management, output_config, metadata, safeguards, defer_loading, ...) is forwarded.
"""

from __future__ import annotations

import hashlib
import json

from .anthropic import InvalidRequest, check_request
from .dialect import Options
from .request_parts import (NO_OUTPUT, NO_RESULT, block_text, blocks_text, output_cap, reasoning_effort,
                            system_text, tool_choice, tool_schema)
from .tool_ids import SIGNATURE_STANDIN, ToolNames, call_id, split_signature


def translate_request(req: dict, options: Options) -> tuple[dict, ToolNames]:
    """The Chat Completions body for an Anthropic request, and the tool-name map for its answer."""
    check_request(req)
    names = ToolNames()
    dialect = options.dialect
    body: dict = {"model": options.model, "messages": translate_messages(req, names, options)}
    if req.get("tools"):
        body["tools"] = [translate_tool(tool, names, options) for tool in req["tools"] if "input_schema" in tool]
        if not body["tools"]:
            del body["tools"]
    if (choice := req.get("tool_choice")) and "tools" in body:
        body.update(tool_choice(choice, lambda name: {"type": "function", "function": {"name": names.shorten(name)}}))
    if (max_tokens := output_cap(req, options)) is not None:
        body["max_completion_tokens" if dialect.completion_tokens else "max_tokens"] = max_tokens
    if effort := reasoning_effort(req, options.reasoning_effort):
        body.update(reasoning_fields(effort, options))
    if options.verbosity:
        body["verbosity"] = options.verbosity
    for key in ("temperature", "top_p"):
        if req.get(key) is not None:
            body[key] = req[key]
    if req.get("top_k") is not None and dialect.takes_top_k:
        body["top_k"] = req["top_k"]
    if req.get("stop_sequences"):
        body["stop"] = req["stop_sequences"]
    if (user_id := (req.get("metadata") or {}).get("user_id")) and dialect.takes_user:
        body["user"] = hashlib.sha256(str(user_id).encode()).hexdigest()  # 64 chars, nothing personal
    if req.get("stream"):
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body, names


def reasoning_fields(effort: str, options: Options) -> dict:
    """How the provider hears the effort claude asked for: a `reasoning` object where the dialect takes one
    (OpenRouter's: the profile's `reasoning` table, with the effort unless it names a token budget), else
    `reasoning_effort` (the table's effort, if it names one)."""
    wanted = dict(options.reasoning or {})
    if options.dialect.reasoning_object:
        if "max_tokens" not in wanted:
            wanted.setdefault("effort", effort)
        return {"reasoning": wanted}
    return {"reasoning_effort": wanted.get("effort", effort)}


def translate_tool(tool: dict, names: ToolNames, options: Options) -> dict:
    function = {"name": names.shorten(tool["name"]), "parameters": tool_schema(tool, options)}
    if tool.get("description"):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


# ---------------------------------------------------------------- messages


def translate_messages(req: dict, names: ToolNames, options: Options) -> list[dict]:
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
            assistant = assistant_message(content, names, options)
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


def image_part(block: dict) -> dict:
    source = block.get("source") or {}
    if source.get("type") == "base64":
        url = f"data:{source.get('media_type') or 'image/png'};base64,{source['data']}"
    elif source.get("type") == "url":
        url = source["url"]  # passed on as is; the proxy never fetches anything
    else:
        raise InvalidRequest(f"image source type {source.get('type')!r} is not supported")
    return {"type": "image_url", "image_url": {"url": url}}


def assistant_message(content, names: ToolNames, options: Options) -> dict:
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
            if signature or (options.dialect.thought_signatures and not calls):  # whoever sent one wants it back
                call["extra_content"] = {"google": {"thought_signature": signature or SIGNATURE_STANDIN}}
            calls.append(call)
        elif kind == "thinking" and options.dialect.keeps_reasoning:
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
            parts.append({"type": "text", "text": block_text(block)})
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
            elif (item_text := block_text(item)) is not None:
                texts.append(item_text)
        text = "\n\n".join(texts)
        if images and not text:
            text = f"(the result is {'an image' if len(images) == 1 else f'{len(images)} images'}, attached below)"
    if block.get("is_error"):
        text = f"Error: {text}"
    return text or NO_OUTPUT, images  # strict providers (Gemini) reject empty text
