"""OpenAI answers -> Anthropic messages: whole responses and every streaming case we know of."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccswitch.proxy.errors import ProxyError
from ccswitch.proxy.from_openai import StreamTranslator, translate_response, usage_of
from ccswitch.proxy.to_openai import translate_request
from ccswitch.proxy.tool_ids import ToolNames
from ccswitch.proxy.upstream import SSEParser, Upstream
from conftest import options_for
from fakes import sse
from streams import (assert_chunking_changes_nothing, assert_errors_never_crashes, assert_grammar, blocks_of,
                     run_stream)
from strategies import any_json


def chunk(delta: dict | None = None, finish: str | None = None, usage: dict | None = None, choices: bool = True):
    data: dict = {"id": "c", "object": "chat.completion.chunk"}
    data["choices"] = [{"index": 0, "delta": delta or {}, "finish_reason": finish}] if choices else []
    if usage:
        data["usage"] = usage
    return data


def call(index, id=None, name=None, args=None) -> dict:
    fragment = {"index": index, "function": {}}
    if id:
        fragment["id"] = id
    if name:
        fragment["function"]["name"] = name
    if args is not None:
        fragment["function"]["arguments"] = args
    return {"tool_calls": [fragment]}


def stream(*chunks, done=True) -> list[tuple[str, dict]]:
    events = run_stream(sse(list(chunks), done=done))
    assert_grammar(events)
    return events


USAGE = {"prompt_tokens": 100, "completion_tokens": 7, "prompt_tokens_details": {"cached_tokens": 40}}


def test_rule8_non_streaming_response():
    names = ToolNames()
    long = "x" * 80
    short = names.shorten(long)
    resp = {"id": "chatcmpl-1", "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": "Let me look.", "reasoning_content": "thinking...",
        "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": short, "arguments": '{"a": 1}'}},
                       {"id": "call_2", "type": "function", "function": {"name": "Bash", "arguments": "not json"}}]}}],
        "usage": USAGE}
    msg = translate_response(resp, "claude-opus-5-5", names)
    assert msg["id"].startswith("msg_") and msg["model"] == "claude-opus-5-5" and msg["type"] == "message"
    assert [b["type"] for b in msg["content"]] == ["thinking", "text", "tool_use", "tool_use"]
    first, second = msg["content"][2:]
    assert first["id"].startswith("toolu_") and first["name"] == long and first["input"] == {"a": 1}
    assert second["input"] == {"_raw_arguments": "not json"}
    assert msg["stop_reason"] == "tool_use"
    assert msg["usage"] == {"input_tokens": 60, "output_tokens": 7, "cache_read_input_tokens": 40,
                            "cache_creation_input_tokens": 0}


GEMINI = Upstream(api="openai", name="g", base_url="https://generativelanguage.googleapis.com/v1beta/openai", model="gemini-3-pro")
SIGNATURE = "CiQB0e2Kb+/signature==" * 40  # opaque base64, often kilobytes


def signed(index, id, name, args) -> dict:
    fragment = call(index, id, name, args)
    fragment["tool_calls"][0]["extra_content"] = {"google": {"thought_signature": SIGNATURE}}
    return fragment


def history_after(tool_uses: list[dict]) -> dict:
    """Claude Code's next request: the assistant turn as it was answered, then the results."""
    return {"max_tokens": 100, "messages": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": tool_uses},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use["id"], "content": "ok"}
                                     for use in tool_uses]}]}


@pytest.mark.parametrize("streamed", [False, True])
def test_gemini_thought_signatures_come_back_on_the_next_request(streamed):
    """Gemini 3 answers 400 to a tool call history without its signature; the signature rides in the
    tool_use id, which Claude Code sends back verbatim, and the provider only ever sees its own id."""
    if streamed:
        events = stream(chunk(signed(0, "c1", "Read", '{"p": 1}')), chunk(call(1, "c2", "Grep", '{"q": 2}')),
                        chunk(finish="tool_calls"))
        uses = blocks_of(events)
    else:
        resp = {"choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"tool_calls": [
            signed(0, "c1", "Read", '{"p": 1}')["tool_calls"][0], call(1, "c2", "Grep", '{"q": 2}')["tool_calls"][0]]}}]}
        uses = translate_response(resp, "m", ToolNames())["content"]
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", use["id"]) for use in uses)  # the id grammar Anthropic allows
    history = history_after(uses)
    body = translate_request(history, options_for(GEMINI, history))[0]
    assistant, *results = body["messages"][1:]
    first, second = assistant["tool_calls"]
    assert first["extra_content"] == {"google": {"thought_signature": SIGNATURE}}
    assert "extra_content" not in second  # parallel calls: only the first carries one
    assert SIGNATURE not in first["id"] and [r["tool_call_id"] for r in results] == [first["id"], second["id"]]
    unsigned = [{**use, "id": use["id"].partition("_sig_")[0]} for use in uses]
    other = Upstream(api="openai", name="o", base_url="https://api.openai.com/v1")
    history = history_after(unsigned)
    assert "extra_content" not in json.dumps(translate_request(history, options_for(other, history))[0])


def test_gemini_gets_the_documented_stand_in_when_a_signature_was_lost():
    uses = [{"type": "tool_use", "id": "toolu_01FromAnotherModel", "name": "Read", "input": {}},
            {"type": "tool_use", "id": "toolu_02FromAnotherModel", "name": "Read", "input": {}}]
    history = history_after(uses)
    first, second = translate_request(history, options_for(GEMINI, history))[0]["messages"][1]["tool_calls"]
    assert first["extra_content"] == {"google": {"thought_signature": "skip_thought_signature_validator"}}
    assert "extra_content" not in second


@pytest.mark.parametrize("finish, reason", [("stop", "end_turn"), ("length", "max_tokens"),
                                            ("content_filter", "refusal"), (None, "end_turn")])
def test_rule8_stop_reasons(finish, reason):
    resp = {"choices": [{"index": 0, "finish_reason": finish, "message": {"content": "hi"}}]}
    assert translate_response(resp, "m", ToolNames())["stop_reason"] == reason
    assert blocks_of(stream(chunk({"content": "hi"}), chunk(finish=finish)))[0]["text"] == "hi"
    assert stream(chunk({"content": "hi"}), chunk(finish=finish))[-2][1]["delta"]["stop_reason"] == reason


def test_rule9_text_stream_grammar_and_usage_at_the_end():
    events = stream(chunk({"role": "assistant", "content": ""}), chunk({"content": "Hel"}), chunk({"content": "lo"}),
                    chunk(finish="stop"), chunk(usage=USAGE, choices=False))
    assert events[0][1]["message"]["usage"]["input_tokens"] == 0
    assert blocks_of(events) == [{"type": "text", "text": "Hello"}]
    assert events[-2][1]["usage"]["input_tokens"] == 60 and events[-2][1]["usage"]["cache_read_input_tokens"] == 40


def test_rule9_reasoning_becomes_a_thinking_block_before_the_text():
    events = stream(chunk({"reasoning_content": "hmm "}), chunk({"reasoning": "ok"}), chunk({"content": "Answer"}),
                    chunk({"reasoning_content": "late, dropped"}), chunk(finish="stop"))
    assert blocks_of(events) == [{"type": "thinking", "thinking": "hmm ok", "signature": ""},
                                 {"type": "text", "text": "Answer"}]


def test_rule9_openrouters_reasoning_details_become_thinking_once():
    """OpenRouter streams `reasoning_details` (text from Claude-like models, summaries from OpenAI's, encrypted
    entries with no words) and the same words again as `reasoning`: each word reaches claude once."""
    detail = {"type": "reasoning.text", "text": "Let me ", "signature": None, "format": "anthropic-claude-v1", "index": 0}
    events = stream(chunk({"reasoning": "Let me ", "reasoning_details": [detail]}),
                    chunk({"reasoning": "check.", "reasoning_details": [{**detail, "text": "check."}]}),
                    chunk({"reasoning_details": [{"type": "reasoning.summary", "summary": " Summary.",
                                                  "format": "openai-responses-v1", "index": 1}]}),
                    chunk({"reasoning_details": [{"type": "reasoning.encrypted", "data": "gAAAA", "index": 2}]}),
                    chunk({"content": "Done."}), chunk(finish="stop"))
    assert blocks_of(events) == [{"type": "thinking", "thinking": "Let me check. Summary.", "signature": ""},
                                 {"type": "text", "text": "Done."}]
    whole = {"choices": [{"index": 0, "finish_reason": "stop", "message": {
        "content": "Done.", "reasoning": "Let me check.",
        "reasoning_details": [{"type": "reasoning.text", "text": "Let me check."},
                              {"type": "reasoning.encrypted", "data": "gAAAA"}]}}]}
    assert translate_response(whole, "m", ToolNames())["content"][0] == {
        "type": "thinking", "thinking": "Let me check.", "signature": ""}


def test_rule9_tool_arguments_stream_as_they_arrive():
    events = stream(chunk({"content": "Running it."}), chunk(call(0, "call_a", "Bash", "")),
                    chunk(call(0, args='{"comm')), chunk(call(0, args='and": "ls"}')), chunk(finish="tool_calls"))
    deltas = [d["delta"]["partial_json"] for k, d in events if k == "content_block_delta"
              and d["delta"]["type"] == "input_json_delta"]
    assert deltas == ['{"comm', 'and": "ls"}']  # not buffered until parsable
    blocks = blocks_of(events)
    assert blocks[1]["name"] == "Bash" and blocks[1]["input"] == {"command": "ls"}
    assert blocks[1]["id"].startswith("toolu_") and blocks[1]["id"] != "call_a"
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_rule10_parallel_calls_in_order():
    events = stream(chunk(call(0, "a", "Read", '{"p": 1}')), chunk(call(1, "b", "Grep", '{"q": 2}')),
                    chunk(finish="tool_calls"))
    assert [(b["name"], b["input"]) for b in blocks_of(events)] == [("Read", {"p": 1}), ("Grep", {"q": 2})]


def test_rule10_interleaved_fragments_are_held_and_emitted_in_order():
    events = stream(chunk(call(0, "a", "Read", '{"p":')), chunk(call(1, "b", "Grep", '{"q":')),
                    chunk(call(0, args=' 1}')), chunk(call(1, args=' 2}')), chunk(finish="tool_calls"))
    assert [(b["name"], b["input"]) for b in blocks_of(events)] == [("Read", {"p": 1}), ("Grep", {"q": 2})]


def test_rule10_new_id_on_the_same_index_is_a_new_call():
    events = stream(chunk(call(0, "a", "Read", '{"p": 1}')), chunk(call(0, "b", "Read", '{"p": 2}')),
                    chunk(finish="tool_calls"))
    assert [b["input"] for b in blocks_of(events)] == [{"p": 1}, {"p": 2}]


def test_rule10_missing_or_null_index_and_id():
    no_index = {"tool_calls": [{"index": None, "id": None, "function": {"name": "Bash", "arguments": '{"x"'}}]}
    more = {"tool_calls": [{"function": {"arguments": ": 1}"}}]}
    blocks = blocks_of(stream(chunk(no_index), chunk(more), chunk(finish="tool_calls")))
    assert blocks == [{"type": "tool_use", "id": blocks[0]["id"], "name": "Bash", "input": {"x": 1}}]
    assert blocks[0]["id"].startswith("toolu_")


def test_rule10_complete_calls_without_index_or_id_stay_separate():
    first = {"tool_calls": [{"id": "", "function": {"name": "Read", "arguments": '{"p": 1}'}}]}
    second = {"tool_calls": [{"id": "", "function": {"name": "Grep", "arguments": '{"q": 2}'}}]}
    blocks = blocks_of(stream(chunk(first), chunk(second), chunk(finish="tool_calls")))
    assert [(b["name"], b["input"]) for b in blocks] == [("Read", {"p": 1}), ("Grep", {"q": 2})]


def test_content_as_a_list_of_parts_and_arguments_as_an_object():
    events = stream(chunk({"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}),
                    chunk(finish="stop"))
    assert blocks_of(events) == [{"type": "text", "text": "ab"}]
    resp = {"choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "content": [{"type": "text", "text": "x"}],
        "tool_calls": [{"id": "c", "function": {"name": "Bash", "arguments": {"command": "ls"}}}]}}]}
    message = translate_response(resp, "m", ToolNames())
    assert message["content"][0] == {"type": "text", "text": "x"}
    assert message["content"][1]["input"] == {"command": "ls"}


def test_rule10_cumulative_arguments_only_emit_the_new_suffix():
    events = stream(chunk(call(0, "a", "Bash", '{"c')), chunk(call(0, "a", None, '{"command": ')),
                    chunk(call(0, "a", None, '{"command": "ls"}')), chunk(finish="tool_calls"))
    assert blocks_of(events)[0]["input"] == {"command": "ls"}


def test_rule10_empty_deltas_content_with_finish_and_usage_on_every_chunk():
    events = stream(chunk({}), chunk({"content": None}), chunk({"content": "a"}, usage=USAGE),
                    chunk({"content": "b"}, finish="stop", usage={**USAGE, "completion_tokens": 9}))
    assert blocks_of(events) == [{"type": "text", "text": "ab"}]
    assert events[-2][1]["usage"]["output_tokens"] == 9


def test_groq_usage_and_openai_refusals():
    groq_last = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                 "x_groq": {"usage": {"prompt_tokens": 70, "completion_tokens": 4}}}
    events = stream(chunk({"content": "hi"}), groq_last)
    assert events[-2][1]["usage"]["input_tokens"] == 70 and events[-2][1]["usage"]["output_tokens"] == 4
    refused = stream(chunk({"refusal": "I can't help with that."}), chunk(finish="stop"))
    assert blocks_of(refused) == [{"type": "text", "text": "I can't help with that."}]
    assert refused[-2][1]["delta"]["stop_reason"] == "refusal"
    resp = {"choices": [{"index": 0, "finish_reason": "stop", "message": {"content": None, "refusal": "No."}}]}
    message = translate_response(resp, "m", ToolNames())
    assert message["content"] == [{"type": "text", "text": "No."}] and message["stop_reason"] == "refusal"


def test_rule10_sse_comments_event_id_lines_crlf_and_no_done():
    raw = (b": keep-alive\r\n\r\nevent: message\r\nid: 1\r\ndata: " + json.dumps(chunk({"content": "ok"})).encode()
           + b"\r\n\r\ndata: " + json.dumps(chunk(finish="stop")).encode())  # no blank line, no [DONE]
    events = run_stream([raw])
    assert_grammar(events)
    assert blocks_of(events) == [{"type": "text", "text": "ok"}]


def test_rule10_openrouter_processing_comments_in_reads_of_their_own_are_nothing():
    keepalive = b": OPENROUTER PROCESSING\n\n"
    pieces = [keepalive, keepalive, *sse([chunk({"content": "o"})], done=False), keepalive, b": OPENROUTER",
              b" PROCESSING\n", b"\n", *sse([chunk({"content": "k"}), chunk(finish="stop")])]
    events = run_stream(pieces)
    assert_grammar(events)
    assert blocks_of(events) == [{"type": "text", "text": "ok"}]


def test_rule10_utf8_split_across_reads():
    raw = b"".join(sse([chunk({"content": "h\u00e9llo \U0001F600 \u4e16\u754c"}), chunk(finish="stop")]))
    pieces = [raw[i:i + 1] for i in range(len(raw))]  # one byte a read: every character split
    assert blocks_of(run_stream(pieces)) == [{"type": "text", "text": "h\u00e9llo \U0001F600 \u4e16\u754c"}]


def test_rule11_error_in_stream_before_anything_is_an_exception():
    parser = SSEParser()
    translator = StreamTranslator("m", ToolNames())
    (payload,) = parser.feed(b'data: {"error": {"message": "quota", "code": 429}}\n\n')
    with pytest.raises(ProxyError) as err:
        translator.feed(payload)
    assert err.value.status == 429 and not translator.started
    with pytest.raises(ProxyError):
        StreamTranslator("m", ToolNames()).feed(chunk({"content": "x"}, finish="error"))
    openrouter = {**chunk({"content": ""}, finish="error"), "provider": "openai",
                  "error": {"code": "server_error", "message": "Provider disconnected unexpectedly"}}
    with pytest.raises(ProxyError, match="Provider disconnected unexpectedly") as err:
        StreamTranslator("m", ToolNames()).feed(openrouter)
    assert err.value.status >= 500 and err.value.retry  # the provider's trouble: claude may ask again


# ---- property: the way a stream is cut into reads never changes the events

STREAM = b"".join(sse([
    chunk({"role": "assistant", "reasoning_content": "Let me think \u2014 carefully."}),
    chunk({"content": "I'll run two tools \U0001F680."}),
    chunk(call(0, "a", "Bash", '{"command": "echo \u00e9t\u00e9"')), chunk(call(1, "b", "Read", '{"file_path"')),
    chunk(call(0, args="}")), chunk(call(1, args=': "/tmp/x"}')),
    chunk(finish="tool_calls"), chunk(usage=USAGE, choices=False)]))
EXPECTED = run_stream([STREAM])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, len(STREAM) - 1), max_size=40, unique=True))
def test_property_any_chunking_gives_the_same_events(cuts):
    assert_chunking_changes_nothing(STREAM, cuts, EXPECTED)


def test_cached_tokens_wherever_the_provider_reports_them():
    openai = {"prompt_tokens": 100, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 60}}
    deepseek = {"prompt_tokens": 100, "completion_tokens": 5, "prompt_cache_hit_tokens": 60,
                "prompt_cache_miss_tokens": 40}
    kimi = {"prompt_tokens": 100, "completion_tokens": 5, "cached_tokens": 60}
    for usage in (openai, deepseek, kimi):
        assert usage_of(usage) == {"input_tokens": 40, "output_tokens": 5, "cache_read_input_tokens": 60,
                                   "cache_creation_input_tokens": 0}
    assert usage_of({"prompt_tokens": "12", "completion_tokens": 3.0}) == {
        "input_tokens": 0, "output_tokens": 3, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}


# ---- property: whatever a provider sends, the answer is a stream or an Anthropic error, never a crash

ANY_JSON = any_json(["choices", "delta", "message", "index", "tool_calls", "function", "arguments", "name", "id",
                     "content", "reasoning_content", "refusal", "finish_reason", "usage", "prompt_tokens",
                     "prompt_tokens_details", "cached_tokens", "error", "extra_content", "google", "text"],
                    ["stop", "tool_calls", "length", "error", "{", "}"])


@settings(max_examples=1000, deadline=None)
@given(st.lists(ANY_JSON, max_size=4), ANY_JSON)
def test_property_odd_provider_answers_are_errors_never_crashes(chunks, whole):
    assert_errors_never_crashes(StreamTranslator("m", ToolNames()), chunks,
                                lambda: translate_response(whole, "m", ToolNames()))
