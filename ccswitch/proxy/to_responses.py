"""Anthropic Messages request -> OpenAI Responses request. Pure functions, dict in, dict out.

Stateless (`store: false`): the whole conversation goes as `input` items every time, and the model's reasoning
comes back encrypted inside the signature of the thinking blocks claude keeps (`tool_ids.reasoning_signature`).
As for Chat Completions the body is built from a whitelist: nothing Anthropic-only is forwarded.
"""

from __future__ import annotations

import json

from .anthropic import InvalidRequest, check_request
from .dialect import Options
from .request_parts import (NO_OUTPUT, NO_RESULT, block_text, blocks_text, output_cap, reasoning_effort,
                            system_text, tool_choice, tool_schema)
from .tool_ids import ToolNames, call_id, signed_reasoning

LEAST_OUTPUT = 16  # the API refuses a smaller max_output_tokens
MAX_CACHE_KEY = 64  # prompt_cache_key's longest


def translate_request(req: dict, options: Options, signer: str = "", session: str = "") -> tuple[dict, ToolNames]:
    """The Responses body for an Anthropic request, and the tool-name map for its answer. `signer`: the tag of
    the profile whose encrypted reasoning may go back (tool_ids.signer_tag); `session`: claude's session id."""
    check_request(req)
    names = ToolNames()
    instructions, items = translate_input(req, names, signer)
    body: dict = {"model": options.model}
    if instructions:
        body["instructions"] = instructions
    body["input"] = items
    tools = [translate_tool(tool, names, options) for tool in req.get("tools") or () if "input_schema" in tool]
    if tools:
        body["tools"] = tools
        if choice := req.get("tool_choice"):
            body.update(tool_choice(choice, lambda name: {"type": "function", "name": names.shorten(name)}))
    if (cap := output_cap(req, options, LEAST_OUTPUT)) is not None:
        body["max_output_tokens"] = cap
    if effort := reasoning_effort(req, options.reasoning_effort):
        body["reasoning"] = {"effort": effort}
        if (summary := options.reasoning_summary or "auto") != "off":
            body["reasoning"]["summary"] = summary
    body["include"] = ["reasoning.encrypted_content"]  # the reasoning, to send back next turn
    if options.verbosity:
        body["text"] = {"verbosity": options.verbosity}
    if not options.dialect.reasons:  # reasoning models take only their default sampling
        body.update({key: req[key] for key in ("temperature", "top_p") if req.get(key) is not None})
    if session:
        body["prompt_cache_key"] = session[:MAX_CACHE_KEY]  # one conversation's requests to one cache
    body["store"] = False
    if req.get("stream"):
        body["stream"] = True
    return body, names


def translate_tool(tool: dict, names: ToolNames, options: Options) -> dict:
    """A flat function tool, not strict (else the API makes every property required and closes the schema)."""
    function = {"type": "function", "name": names.shorten(tool["name"])}
    if tool.get("description"):
        function["description"] = tool["description"]
    function["parameters"] = tool_schema(tool, options)
    function["strict"] = False
    return function


# ---------------------------------------------------------------- input items


def translate_input(req: dict, names: ToolNames, signer: str) -> tuple[str, list[dict]]:
    """(the instructions: system text, claude's system messages joined to it in order; the input items).

    Every function_call gets its function_call_output right after the turn that made it: an unanswered call
    an explicit error, a result for a call the provider never saw the user's words (the API refuses both)."""
    system = [system_text(req.get("system"))]
    items: list[dict] = []
    waiting: list[str] = []  # call ids of the last assistant turn without an output yet
    for message in req["messages"]:
        role, content = message["role"], message["content"]
        if role == "system":  # never a `system` item: ChatGPT-backed endpoints refuse them
            system.append(blocks_text(content))
        elif role == "assistant":
            _answer_missing(items, waiting)
            turn = assistant_items(content, names, signer)
            items.extend(turn)
            waiting = [item["call_id"] for item in turn if item["type"] == "function_call"]
        else:
            outputs, parts = user_parts(content)
            orphans = []
            for output in outputs:
                if output["call_id"] in waiting:
                    waiting.remove(output["call_id"])
                    items.append(output)
                else:
                    orphans.append({"type": "input_text", "text": f"Tool result: {_output_text(output)}"})
            _answer_missing(items, waiting)
            if orphans or parts:
                items.append({"type": "message", "role": "user", "content": orphans + parts})
    _answer_missing(items, waiting)
    return "\n\n".join(text for text in system if text), items


def _answer_missing(items: list[dict], waiting: list[str]) -> None:
    items.extend({"type": "function_call_output", "call_id": call, "output": NO_RESULT} for call in waiting)
    waiting.clear()


def _output_text(output: dict) -> str:
    if isinstance(output["output"], str):
        return output["output"]
    return "\n\n".join(part["text"] for part in output["output"] if part["type"] == "input_text")


def assistant_items(content, names: ToolNames, signer: str) -> list[dict]:
    """An assistant turn in order: its text as messages, its tool calls, its own reasoning (thinking another
    provider signed, and redacted thinking, are dropped)."""
    if isinstance(content, str):
        return [_assistant_text(content)] if content else []
    items: list[dict] = []
    texts: list[str] = []
    for block in content:
        kind = block.get("type")
        if kind == "text":
            texts.append(block["text"])
            continue
        if texts and kind in ("tool_use", "thinking"):
            items.append(_assistant_text("".join(texts)))
            texts = []
        if kind == "tool_use":
            items.append({"type": "function_call", "call_id": call_id(block["id"]),
                          "name": names.shorten(block["name"]),
                          "arguments": json.dumps(block.get("input") or {}, ensure_ascii=False)})
        elif kind == "thinking" and (encrypted := signed_reasoning(block.get("signature") or "", signer)):
            summary = block.get("thinking")
            items.append({"type": "reasoning", "encrypted_content": encrypted,
                          "summary": [{"type": "summary_text", "text": summary}] if summary else []})
    if "".join(texts):
        items.append(_assistant_text("".join(texts)))
    while items and items[-1]["type"] == "reasoning":  # reasoning is refused without the item it led to
        items.pop()
    return items


def _assistant_text(text: str) -> dict:
    return {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text}]}


def user_parts(content) -> tuple[list[dict], list[dict]]:
    """(a function_call_output per tool_result, the message parts of the rest: text, images, files)."""
    if isinstance(content, str):
        return [], [{"type": "input_text", "text": content}] if content else []
    outputs: list[dict] = []
    parts: list[dict] = []
    for block in content:
        if block["type"] == "tool_result":
            outputs.append({"type": "function_call_output", "call_id": call_id(block["tool_use_id"]),
                            "output": tool_output(block)})
        elif (part := input_part(block)) is not None:
            parts.append(part)
    return outputs, parts


def tool_output(block: dict):
    """A tool result as its call's output: text, or parts when it holds images (the API takes them there)."""
    content = block.get("content") or ""
    if isinstance(content, str):
        parts = [{"type": "input_text", "text": content}] if content else []
    else:
        parts = [part for item in content if (part := input_part(item)) is not None]
    if all(part["type"] == "input_text" for part in parts):
        text = "\n\n".join(part["text"] for part in parts)
        return (f"Error: {text}" if block.get("is_error") else text) or NO_OUTPUT
    if block.get("is_error"):
        parts.insert(0, {"type": "input_text", "text": "Error:"})
    return parts


def input_part(block: dict) -> dict | None:
    """A user block as a message part; None for blocks that say nothing a model can read."""
    kind = block.get("type")
    if kind == "image":
        return {"type": "input_image", "image_url": _source_url(block, "image/png")}
    if kind == "document" and (block.get("source") or {}).get("type") in ("base64", "url"):
        source = block["source"]
        if source["type"] == "url":
            return {"type": "input_file", "file_url": source["url"]}
        return {"type": "input_file", "filename": block.get("title") or "document.pdf",
                "file_data": _source_url(block, "application/pdf")}
    text = block_text(block)
    return None if text is None else {"type": "input_text", "text": text}


def _source_url(block: dict, media_type: str) -> str:
    source = block.get("source") or {}
    if source.get("type") == "base64":
        return f"data:{source.get('media_type') or media_type};base64,{source['data']}"
    if source.get("type") == "url":
        return source["url"]  # passed on as is; the proxy never fetches anything
    raise InvalidRequest(f"{block['type']} source type {source.get('type')!r} is not supported")
