"""Helpers to run upstream bytes through the parser and translator and read back Anthropic events."""

from __future__ import annotations

import json

from ccswitch.proxy.from_openai import StreamTranslator
from ccswitch.proxy.tool_ids import ToolNames
from ccswitch.proxy.upstream import SSEParser


def parse_anthropic_sse(raw: bytes) -> list[tuple[str, dict]]:
    events = []
    for block in raw.decode().split("\n\n"):
        if not block.strip():
            continue
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def run_stream(pieces: list[bytes], names: ToolNames | None = None, translator=None) -> list[tuple[str, dict]]:
    """Feed raw upstream reads through SSEParser + a stream translator (Chat's unless given), as the server does."""
    parser = SSEParser()
    translator = translator or StreamTranslator("claude-test", names or ToolNames())
    out = b""
    for piece in pieces:
        for payload in parser.feed(piece):
            out += translator.feed(payload)
        if parser.done or translator.done:
            break
    if not parser.done:
        for payload in parser.close():
            out += translator.feed(payload)
    out += translator.finish()
    return parse_anthropic_sse(out)


def normalized(events: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    """Events with the random ids replaced, so two runs compare equal."""
    text = json.dumps(events)
    ids = {}
    import re

    for match in re.findall(r'"((?:msg|toolu)_[0-9a-f]{24})"', text):
        ids.setdefault(match, f"ID{len(ids)}")
    for real, fake in ids.items():
        text = text.replace(real, fake)
    return json.loads(text)


def assert_grammar(events: list[tuple[str, dict]]) -> None:
    """Anthropic's grammar: message_start, blocks one at a time with matching indices, delta, stop."""
    kinds = [kind for kind, _ in events if kind != "ping"]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    open_index = None
    next_index = 0
    for kind, data in events[1:-2]:
        if kind == "content_block_start":
            assert open_index is None and data["index"] == next_index
            open_index = data["index"]
            block_type = data["content_block"]["type"]
        elif kind == "content_block_delta":
            assert data["index"] == open_index
            delta_type = data["delta"]["type"]
            assert delta_type in {"text": ["text_delta"], "thinking": ["thinking_delta", "signature_delta"],
                                  "tool_use": ["input_json_delta"], "server_tool_use": ["input_json_delta"],
                                  "web_search_tool_result": []}[block_type]  # a tool's result starts whole
        elif kind == "content_block_stop":
            assert data["index"] == open_index
            open_index = None
            next_index += 1
        else:
            assert kind == "ping", kind
    assert open_index is None


def blocks_of(events: list[tuple[str, dict]]) -> list[dict]:
    """Accumulate the content blocks the way a client does."""
    blocks: list[dict] = []
    for kind, data in events:
        if kind == "content_block_start":
            blocks.append(dict(data["content_block"], _json=""))
        elif kind == "content_block_delta":
            delta = data["delta"]
            block = blocks[data["index"]]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif delta["type"] == "signature_delta":
                block["signature"] += delta["signature"]
            else:
                block["_json"] += delta["partial_json"]
    for block in blocks:
        raw = block.pop("_json")
        if block["type"] in ("tool_use", "server_tool_use"):
            block["input"] = json.loads(raw) if raw else {}
    return blocks


def assert_errors_never_crashes(translator, chunks: list, translate_whole) -> None:
    """Whatever a provider sends, the answer is a stream or an Anthropic error: an odd shape is the provider's
    fault, said as such, and none may pass only because a bug of ours (an AttributeError, a TypeError, ...) was
    caught and turned into a 502. `translate_whole()` reads a whole answer."""
    from ccswitch.proxy.errors import ProxyError

    try:
        out = b"".join(translator.feed(payload) for payload in chunks) + translator.finish()
    except ProxyError as e:
        assert e.hidden is None, e.hidden
    else:
        assert_grammar(parse_anthropic_sse(out))
    try:
        translate_whole()
    except ProxyError as e:
        assert e.status >= 400 and e.hidden is None, e.hidden


def assert_chunking_changes_nothing(stream: bytes, cuts: list[int], expected: list[tuple[str, dict]],
                                    translator=None) -> None:
    """`stream` cut into reads at `cuts` gives `expected`: coalescing differs per read, the accumulated content
    and the final message do not."""
    cuts = sorted(cuts)
    events = run_stream([stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)])], translator=translator)
    assert_grammar(events)
    assert normalized(blocks_of(events)) == normalized(blocks_of(expected))
    assert events[-2] == expected[-2]
