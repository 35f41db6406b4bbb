"""OpenAI's Responses API (`api = "openai-responses"`): the request rules one test each, on real Claude Code
bodies; the stream translator against the grammar checker and any chunking; the real proxy with the official
anthropic SDK in front of a fake Responses provider; `ccs test` and `ccs models` against it."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccswitch import keys
from ccswitch.proxy.errors import ProxyError
from ccswitch.proxy.from_responses import StreamTranslator, translate_response, usage_of
from ccswitch.proxy.relay import Signatures
from ccswitch.proxy.router import Router
from ccswitch.proxy.to_openai import translate_request as chat_request
from ccswitch.proxy.to_responses import translate_request
from ccswitch.proxy.tool_ids import ToolNames, reasoning_signature, signer_tag
from ccswitch.proxy.upstream import Upstream
from conftest import FIXTURES, ccs, options_for, write_config
from fakes import (FakeServer, Reply, json_reply, r_call, r_message, r_reasoning, response_object, responses_events,
                   responses_sse)
from proxy_harness import SIMPLE, Harness, completion
from streams import assert_grammar, blocks_of, normalized, parse_anthropic_sse, run_stream

UP = Upstream(api="openai-responses", name="gpt", base_url="https://api.openai.com/v1", key="sk-up", model="gpt-5.4",
              models={"opus": "gpt-5.4-pro", "haiku": "gpt-5.4-mini"})
PLAIN = Upstream(api="openai-responses", name="local", base_url="http://localhost:8000/v1", model="qwen3")
SIGNER = signer_tag("gpt")
ALL_FIXTURES = sorted(p for p in FIXTURES.rglob("*.json") if p.name != "index.json")
ALLOWED = {"model", "instructions", "input", "tools", "tool_choice", "parallel_tool_calls", "max_output_tokens",
           "reasoning", "include", "text", "temperature", "top_p", "prompt_cache_key", "store", "stream"}
ENCRYPTED = "gAAAAABpEncryptedReasoningOfTheFirstTurn=="


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def translate(req: dict, upstream: Upstream = UP, session: str = "") -> dict:
    return translate_request(req, options_for(upstream, req), signer_tag(upstream.name), session)[0]


def assert_calls_paired(items: list[dict]) -> None:
    """The API's rule: every function_call has exactly one function_call_output after it, and no output
    lacks its call ("No tool output found...", "No tool call found..." never happen)."""
    calls = [i for i, item in enumerate(items) if item["type"] == "function_call"]
    outputs = [i for i, item in enumerate(items) if item["type"] == "function_call_output"]
    assert len(calls) == len(outputs)
    for at in calls:
        answers = [i for i in outputs if items[i]["call_id"] == items[at]["call_id"]]
        assert len(answers) == 1 and answers[0] > at
    assert all(item["type"] != "reasoning" or items[i + 1]["type"] in ("message", "function_call", "reasoning")
               for i, item in enumerate(items[:-1]))
    assert not items or items[-1]["type"] != "reasoning"


# ---------------------------------------------------------------- the request


@pytest.mark.parametrize("path", ALL_FIXTURES, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_every_real_request_translates_to_a_valid_responses_body(path):
    req = json.loads(path.read_text())
    if "messages" not in req or req.get("max_tokens") is None:
        pytest.skip("a count_tokens body")
    body = translate(req)
    assert set(body) <= ALLOWED
    text = json.dumps(body)
    for anthropic_only in ("cache_control", "context_management", "output_config", "defer_loading", "safeguards",
                           "x-anthropic-billing-header", "$schema", "tool_use_id", '"tool_result"', '"tool_use"',
                           "budget_tokens"):
        assert anthropic_only not in text, anthropic_only
    assert all(item.get("role") not in ("system", "developer") for item in body["input"])
    assert_calls_paired(body["input"])
    assert body["store"] is False and body["include"] == ["reasoning.encrypted_content"]


def test_system_blocks_and_claudes_system_messages_become_the_instructions():
    req = fixture("continue-second-turn.json")
    body = translate(req)
    assert req["system"][2]["text"] in body["instructions"] and "x-anthropic-billing-header" not in body["instructions"]
    assert body["instructions"].endswith(req["messages"][1]["content"])  # the inline one, after the system blocks
    assert [(i["type"], i["role"]) for i in body["input"]] == [("message", "user"), ("message", "assistant"),
                                                                 ("message", "user")]


def test_messages_become_input_items_with_their_part_types():
    req = fixture("tool-result-image-followup.json")
    items = translate(req)["input"]
    assert items[0]["content"][0]["type"] == "input_text"
    assistant = next(i for i in translate(fixture("tool-result-parallel-followup.json"))["input"]
                     if i.get("role") == "assistant")
    assert assistant["content"] == [{"type": "output_text", "text": "I will run a tool."}]
    output = next(i for i in items if i["type"] == "function_call_output")
    image = next(part for part in output["output"] if part["type"] == "input_image")  # images stay in the result
    assert image["image_url"].startswith("data:image/png;base64,iVBOR")
    url = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
        {"type": "document", "title": "spec.pdf", "source": {"type": "base64", "media_type": "application/pdf",
                                                              "data": "JVBER"}},
        {"type": "document", "title": "notes", "source": {"type": "text", "media_type": "text/plain", "data": "hi"}}]}]}
    assert translate(url)["input"][0]["content"] == [
        {"type": "input_image", "image_url": "https://example.com/a.png"},
        {"type": "input_file", "filename": "spec.pdf", "file_data": "data:application/pdf;base64,JVBER"},
        {"type": "input_text", "text": "notes\n\nhi"}]


def test_tool_calls_and_their_outputs_share_a_stable_call_id():
    req = fixture("tool-result-parallel-followup.json")
    items = translate(req)["input"]
    calls = [i for i in items if i["type"] == "function_call"]
    assert len(calls) == 2 and all(json.loads(c["arguments"]) for c in calls)
    assert [o["call_id"] for o in items if o["type"] == "function_call_output"] == [c["call_id"] for c in calls]
    assert [c["call_id"] for c in calls] == [c["call_id"] for c in translate(req)["input"]
                                            if c["type"] == "function_call"]  # the same every request: caches hold
    assert all("id" not in item for item in items)  # no fc_/msg_ ids: nothing refers to stored items


def test_a_call_without_result_gets_an_error_output_and_a_result_without_call_becomes_text():
    req = {"model": "m", "max_tokens": 50, "messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "A", "input": {}},
                                          {"type": "tool_use", "id": "t2", "name": "B", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t2", "content": "two"},
                                     {"type": "tool_result", "tool_use_id": "zz", "content": "orphan"},
                                     {"type": "text", "text": "go on"}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t3", "name": "C", "input": {}}]}]}
    items = translate(req)["input"]
    assert_calls_paired(items)
    assert [o["output"] for o in items if o["type"] == "function_call_output"] == [
        "two", "Error: the tool call returned no result", "Error: the tool call returned no result"]
    assert items[5] == {"type": "message", "role": "user", "content": [
        {"type": "input_text", "text": "Tool result: orphan"}, {"type": "input_text", "text": "go on"}]}


def test_errors_and_empty_results_keep_their_meaning():
    output = next(i for i in translate(fixture("tool-result-error-followup.json"))["input"]
                  if i["type"] == "function_call_output")
    assert output["output"] == "Error: Exit code 3\nfailing"
    req = {"model": "m", "max_tokens": 50, "messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "Bash", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": ""}]}]}
    assert translate(req)["input"][-1]["output"] == "(no output)"


def test_tools_are_flat_not_strict_and_their_schemas_cleaned():
    req = fixture("toolsearch-tool-reference-followup.json")
    body = translate(req)
    source = {t["name"]: t for t in req["tools"]}
    for tool in body["tools"]:
        assert tool["type"] == "function" and tool["strict"] is False and "function" not in tool
        expected = {k: v for k, v in source[tool["name"]]["input_schema"].items() if k != "$schema"}
        assert tool["parameters"] == expected and tool.get("description") == source[tool["name"]].get("description")
    long = "mcp__a_very_long_server_name_for_testing__and_an_even_longer_tool_name_than_allowed"
    req = {"model": "m", "max_tokens": 5, "tools": [{"name": long, "input_schema": {"type": "object"}}],
           "tool_choice": {"type": "tool", "name": long}, "messages": [{"role": "user", "content": "x"}]}
    body, names = translate_request(req, options_for(UP, req))
    short = body["tools"][0]["name"]
    assert len(short) == 64 and names.restore(short) == long
    assert body["tool_choice"] == {"type": "function", "name": short}


@pytest.mark.parametrize("choice, expected", [
    ({"type": "auto"}, {"tool_choice": "auto"}),
    ({"type": "any"}, {"tool_choice": "required"}),
    ({"type": "none"}, {"tool_choice": "none"}),
    ({"type": "tool", "name": "Bash"}, {"tool_choice": {"type": "function", "name": "Bash"}}),
    ({"type": "auto", "disable_parallel_tool_use": True}, {"tool_choice": "auto", "parallel_tool_calls": False}),
])
def test_tool_choice(choice, expected):
    req = {"model": "m", "max_tokens": 5, "tool_choice": choice, "messages": [{"role": "user", "content": "x"}],
           "tools": [{"name": "Bash", "input_schema": {"type": "object"}}]}
    body = translate(req)
    assert {k: body[k] for k in expected} == expected


def test_max_tokens_becomes_max_output_tokens_at_least_16():
    req = fixture("main-streaming-request.json")
    assert translate(req)["max_output_tokens"] == 128000
    clamped = Upstream(api="openai-responses", name="g", base_url="https://x/v1", model="gpt-5.4", max_output_tokens=16000)
    assert translate(req, clamped)["max_output_tokens"] == 16000
    tiny = {"model": "m", "max_tokens": 3, "messages": [{"role": "user", "content": "x"}]}
    assert translate(tiny, PLAIN)["max_output_tokens"] == 16  # the API refuses fewer


def test_stream_and_store():
    body = translate({**SIMPLE, "stream": True})
    assert body["stream"] is True and body["store"] is False
    assert "stream" not in translate(SIMPLE)


@pytest.mark.parametrize("thinking, output_config, summary, expected", [
    ({"type": "adaptive"}, {"effort": "high"}, None, {"effort": "high", "summary": "auto"}),
    ({"type": "enabled", "budget_tokens": 2000}, None, "detailed", {"effort": "low", "summary": "detailed"}),
    ({"type": "adaptive"}, None, "off", {"effort": "medium"}),
    (None, {"effort": "high"}, None, None),
])
def test_thinking_becomes_reasoning_with_a_summary(thinking, output_config, summary, expected):
    req = {**SIMPLE, "thinking": thinking, "output_config": output_config}
    upstream = Upstream(api="openai-responses", name="g", base_url="https://x/v1", model="gpt-5.4",
                        reasoning_summary=summary)
    body = translate(req, upstream)
    assert body.get("reasoning") == expected
    assert body["include"] == ["reasoning.encrypted_content"]


def test_the_profiles_effort_wins_and_off_sends_none():
    req = {**SIMPLE, "thinking": {"type": "adaptive"}, "output_config": {"effort": "low"}}
    forced = Upstream(api="openai-responses", name="g", base_url="https://x/v1", model="gpt-5.4", reasoning_effort="high")
    assert translate(req, forced)["reasoning"]["effort"] == "high"
    off = Upstream(api="openai-responses", name="g", base_url="https://x/v1", model="gpt-5.4", reasoning_effort="off")
    assert "reasoning" not in translate(req, off)


def test_prompt_cache_key_is_claudes_session():
    assert translate(SIMPLE, session="5f0c8a52-2a77-4c43-a6b3-1f0a4c3c2d11")["prompt_cache_key"] == \
        "5f0c8a52-2a77-4c43-a6b3-1f0a4c3c2d11"
    assert len(translate(SIMPLE, session="s" * 300)["prompt_cache_key"]) == 64
    assert "prompt_cache_key" not in translate(SIMPLE)


def test_sampling_only_for_models_that_take_it():
    req = {**SIMPLE, "temperature": 0.2, "top_p": 0.9, "top_k": 5, "stop_sequences": ["END"]}
    body = translate(req)
    assert not {"temperature", "top_p", "top_k", "stop", "stop_sequences"} & set(body)  # a reasoning model
    plain = translate(req, PLAIN)
    assert (plain["temperature"], plain["top_p"]) == (0.2, 0.9) and "top_k" not in plain


def test_verbosity_on_both_apis():
    req = SIMPLE
    responses = Upstream(api="openai-responses", name="g", base_url="https://x/v1", model="gpt-5.4", verbosity="low")
    assert translate(req, responses)["text"] == {"verbosity": "low"}
    assert "text" not in translate(req)
    chat = Upstream(api="openai", name="g", base_url="https://x/v1", model="gpt-5.4", verbosity="high")
    assert chat_request(req, options_for(chat, req))[0]["verbosity"] == "high"


def signed_turn(signature: str) -> dict:
    return {"model": "m", "max_tokens": 500, "messages": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "**Checking**\n\nNeed the tool.", "signature": signature},
            {"type": "text", "text": "Let me look."},
            {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "thinking", "thinking": "", "signature": signature}]},  # reasoning that led nowhere
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "content": "18C"}]}]}


def test_own_reasoning_goes_back_before_what_it_led_to_and_anyone_elses_is_dropped():
    items = translate(signed_turn(reasoning_signature(ENCRYPTED, SIGNER)))["input"]
    assert [i["type"] for i in items] == ["message", "reasoning", "message", "function_call", "function_call_output"]
    assert items[1] == {"type": "reasoning", "summary": [{"type": "summary_text", "text": "**Checking**\n\nNeed the tool."}],
                        "encrypted_content": ENCRYPTED}
    for foreign in ("EqQBCkgIARABGAIiQM-anthropic-signature==", reasoning_signature(ENCRYPTED, signer_tag("azure")), ""):
        items = translate(signed_turn(foreign))["input"]
        assert [i["type"] for i in items] == ["message", "message", "function_call", "function_call_output"]
    assert "reasoning" not in json.dumps(translate(fixture("thinking-block-followup.json"))["input"])


def test_an_anthropic_provider_never_gets_our_signatures():
    assert Signatures().foreign(reasoning_signature(ENCRYPTED, SIGNER), "anth")
    assert not Signatures().foreign("EqQBCkgIARABGAIiQM-anthropic-signature==", "anth")


# ---- property: any valid request translates, every call paired

text = st.text(min_size=1, max_size=20)
tool_name = st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,90}", fullmatch=True)
image = st.builds(lambda d: {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": d}},
                  st.text("abcdef", min_size=1, max_size=8))
user_block = st.one_of(st.builds(lambda t: {"type": "text", "text": t}, text), image)


@st.composite
def conversations(draw):
    messages = [{"role": "user", "content": draw(st.one_of(text, st.lists(user_block, min_size=1, max_size=3)))}]
    for turn in range(draw(st.integers(0, 4))):
        names = draw(st.lists(tool_name, max_size=3))
        ids = [f"toolu_{turn}_{i}" for i in range(len(names))]
        blocks = [{"type": "text", "text": draw(text)}] if draw(st.booleans()) or not names else []
        for at in draw(st.lists(st.integers(0, 3), max_size=2)):
            signature = draw(st.sampled_from([reasoning_signature(ENCRYPTED, SIGNER), "anthropic-sig", ""]))
            blocks.insert(min(at, len(blocks)), {"type": "thinking", "thinking": draw(text), "signature": signature})
        blocks += [{"type": "tool_use", "id": i, "name": n, "input": {"q": draw(text)}} for i, n in zip(ids, names)]
        messages.append({"role": "assistant", "content": blocks})
        if draw(st.booleans()):
            messages.append({"role": "system", "content": draw(text)})
        answered = draw(st.lists(st.sampled_from(ids), unique=True)) if ids else []
        results = [{"type": "tool_result", "tool_use_id": i, "is_error": draw(st.booleans()),
                    "content": draw(st.one_of(text, st.lists(user_block, min_size=1, max_size=2)))}
                   for i in answered + draw(st.lists(st.just("toolu_orphan"), max_size=1))]
        messages.append({"role": "user", "content": results + draw(st.lists(user_block, max_size=2)) or "next"})
    return {"model": "claude-opus-5-5", "max_tokens": draw(st.integers(1, 200000)), "system": draw(text),
            "messages": messages, "thinking": draw(st.sampled_from([None, {"type": "adaptive"}])),
            "tools": [{"name": n, "input_schema": {"type": "object"}} for n in draw(st.lists(tool_name, max_size=3))]}


@settings(max_examples=150, deadline=None)
@given(conversations())
def test_property_random_valid_requests_always_translate_with_every_call_paired(req):
    body = translate(req)
    assert_calls_paired(body["input"])
    assert body["max_output_tokens"] >= 16
    assert all(len(t["name"]) <= 64 for t in body.get("tools", []))
    assert all(item.get("role") != "system" for item in body["input"])
    json.dumps(body)


# ---------------------------------------------------------------- the answer


def feed(*items, **response) -> list[tuple[str, dict]]:
    return feed_events(responses_events(*items, **response))


def feed_events(events: list[dict], names: ToolNames | None = None) -> list[tuple[str, dict]]:
    out = run_stream(responses_sse(events).chunks, translator=StreamTranslator("claude-test", names or ToolNames(),
                                                                              signer=SIGNER))
    assert_grammar(out)
    return out


def test_text_streams_as_it_arrives_and_usage_comes_at_the_end():
    events = feed(r_message("Hello there, how are you today?"))
    assert blocks_of(events) == [{"type": "text", "text": "Hello there, how are you today?"}]
    assert len([e for k, e in events if k == "content_block_delta"]) == 3  # as they came
    assert events[-2][1]["delta"]["stop_reason"] == "end_turn"
    assert events[-2][1]["usage"] == {"input_tokens": 176, "output_tokens": 310, "cache_read_input_tokens": 1024,
                                      "cache_creation_input_tokens": 0}


def test_usage_with_cache_writes():
    assert usage_of({"input_tokens": 100, "input_tokens_details": {"cached_tokens": 50, "cache_write_tokens": 30},
                     "output_tokens": 9}) == {"input_tokens": 20, "output_tokens": 9, "cache_read_input_tokens": 50,
                                              "cache_creation_input_tokens": 30}


def test_reasoning_is_a_thinking_block_signed_with_its_encrypted_content():
    events = feed(r_reasoning("**Checking the weather**", "The user wants Paris."), r_message("Let me look."))
    thinking, answer = blocks_of(events)
    assert thinking == {"type": "thinking", "thinking": "**Checking the weather**\n\nThe user wants Paris.",
                        "signature": reasoning_signature("gAAAAABencrypted-reasoning==", SIGNER)}
    assert answer == {"type": "text", "text": "Let me look."}
    signature_at = next(i for i, (k, e) in enumerate(events) if e.get("delta", {}).get("type") == "signature_delta")
    assert events[signature_at + 1][0] == "content_block_stop"  # last in its block, as Anthropic sends it


def test_reasoning_without_summary_is_a_signature_only_thinking_block_and_none_without_either():
    assert blocks_of(feed(r_reasoning(), r_message("ok")))[0] == {
        "type": "thinking", "thinking": "", "signature": reasoning_signature("gAAAAABencrypted-reasoning==", SIGNER)}
    assert [b["type"] for b in blocks_of(feed(r_reasoning(encrypted=None), r_message("ok")))] == ["text"]


def test_a_tool_call_streams_its_arguments_and_parallel_calls_are_separate_blocks():
    events = feed(r_message("Checking both."), r_call("get_weather", '{"city": "Paris"}'),
                  r_call("get_time", '{"zone": "Europe/Paris"}', call_id="call_2", item_id="fc_2"))
    deltas = [e["delta"]["partial_json"] for k, e in events if e.get("delta", {}).get("type") == "input_json_delta"]
    assert len(deltas) > 2  # as they arrived, not held until whole
    text, first, second = blocks_of(events)
    assert (first["name"], first["input"]) == ("get_weather", {"city": "Paris"})
    assert (second["name"], second["input"]) == ("get_time", {"zone": "Europe/Paris"})
    assert first["id"].startswith("toolu_") and first["id"] != second["id"]
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_text_and_arguments_that_come_only_whole_are_taken_from_done():
    blocks = blocks_of(feed(r_message("All at once.", deltas=False), r_call("Bash", '{"command": "ls"}', deltas=False)))
    assert blocks[0] == {"type": "text", "text": "All at once."}
    assert (blocks[1]["name"], blocks[1]["input"]) == ("Bash", {"command": "ls"})


def test_long_tool_names_are_restored():
    names = ToolNames()
    long = "mcp__" + "x" * 80
    blocks = blocks_of(feed_events(responses_events(r_call(names.shorten(long), "{}")), names))
    assert blocks[0]["name"] == long


@pytest.mark.parametrize("reason, stop", [("max_output_tokens", "max_tokens"), ("content_filter", "refusal")])
def test_an_incomplete_response_says_why(reason, stop):
    events = feed(r_reasoning("thinking on"), final="response.incomplete", status="incomplete", reason=reason)
    assert events[-2][1]["delta"]["stop_reason"] == stop and events[-1][0] == "message_stop"


def test_a_refusal_is_text_with_the_refusal_stop_reason():
    final = {"id": "msg_r", "type": "message", "role": "assistant",
             "content": [{"type": "refusal", "refusal": "I can't help with that."}]}
    events = feed_events([{"type": "response.output_item.added", "output_index": 0, "item": {**final, "content": []}},
                          {"type": "response.refusal.delta", "output_index": 0, "item_id": "msg_r",
                           "content_index": 0, "delta": "I can't help with that."},
                          {"type": "response.output_item.done", "output_index": 0, "item": final},
                          {"type": "response.completed", "response": response_object((final, None))}])
    assert blocks_of(events) == [{"type": "text", "text": "I can't help with that."}]
    assert events[-2][1]["delta"]["stop_reason"] == "refusal"


def test_keepalive_unknown_events_and_a_done_sentinel_are_tolerated():
    events = responses_events(r_message("fine"))
    events.insert(3, {"type": "keepalive"})
    events.insert(4, {"type": "response.web_search_call.in_progress", "output_index": 9})
    pieces = responses_sse(events).chunks + [b"data: [DONE]\n\n"]
    out = run_stream(pieces, translator=StreamTranslator("m", ToolNames(), signer=SIGNER))
    assert_grammar(out)
    assert blocks_of(out) == [{"type": "text", "text": "fine"}]


ERRORS = [
    ({"type": "error", "error": {"type": "tokens", "code": "rate_limit_exceeded", "message": "Rate limit reached"}},
     429, "Rate limit reached"),
    ({"type": "error", "code": "server_error", "message": "flat, as the spec says", "param": None}, 500, "flat"),
    ({"type": "error", "error": {"type": "invalid_request_error", "code": "context_length_exceeded",
                                 "message": "Your input exceeds the context window of this model."}},
     400, "prompt is too long: Your input exceeds the context window of this model."),
    ({"type": "response.failed", "response": response_object(status="failed", error={
        "code": "server_error", "message": "The model failed"})}, 500, "The model failed"),
]


@pytest.mark.parametrize("error, status, says", ERRORS)
def test_errors_in_the_stream_are_proxy_errors(error, status, says):
    translator = StreamTranslator("m", ToolNames())
    translator.feed(responses_events()[0])  # response.created
    assert translator.feed(responses_events()[1]) == b""  # nothing written yet: still an HTTP error
    with pytest.raises(ProxyError) as raised:
        translator.feed(error)
    assert raised.value.status == status and says in raised.value.message and raised.value.hidden is None


def test_whole_responses():
    names = ToolNames()
    resp = response_object(r_reasoning("Plan."), r_message("Calling."), r_call("get_weather", '{"city": "Paris"}'))
    message = translate_response(resp, "claude-opus-5-5", names, signer=SIGNER)
    assert [b["type"] for b in message["content"]] == ["thinking", "text", "tool_use"]
    assert message["content"][0]["signature"] == reasoning_signature("gAAAAABencrypted-reasoning==", SIGNER)
    assert message["content"][2]["input"] == {"city": "Paris"} and message["stop_reason"] == "tool_use"
    assert message["usage"]["cache_read_input_tokens"] == 1024
    incomplete = translate_response(response_object(r_reasoning("..."), status="incomplete",
                                                     reason="max_output_tokens"), "m", names)
    assert incomplete["stop_reason"] == "max_tokens"
    with pytest.raises(ProxyError) as failed:
        translate_response(response_object(status="failed", error={"code": "rate_limit_exceeded", "message": "slow"}),
                           "m", names)
    assert failed.value.status == 429
    with pytest.raises(ProxyError):
        translate_response(completion(), "m", names)  # a chat completion is not a response


# ---- property: the way a stream is cut into reads never changes the events

STREAM = b"".join(responses_sse(responses_events(
    r_reasoning("Let me think \u2014 carefully.", "Two tools \U0001F680."), r_message("I'll run two tools \u00e9t\u00e9."),
    r_call("Bash", '{"command": "echo \u00e9t\u00e9"}'), r_call("Read", '{"file_path": "/tmp/x"}', "call_2", "fc_2"),
)).chunks)
TRANSLATOR = lambda: StreamTranslator("claude-test", ToolNames(), signer=SIGNER)  # noqa: E731
EXPECTED = run_stream([STREAM], translator=TRANSLATOR())
EXPECTED_BLOCKS = normalized(blocks_of(EXPECTED))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, len(STREAM) - 1), max_size=40, unique=True))
def test_property_any_chunking_gives_the_same_events(cuts):
    cuts = sorted(cuts)
    pieces = [STREAM[a:b] for a, b in zip([0, *cuts], [*cuts, len(STREAM)])]
    events = run_stream(pieces, translator=TRANSLATOR())
    assert_grammar(events)
    assert normalized(blocks_of(events)) == EXPECTED_BLOCKS
    assert events[-2] == EXPECTED[-2]
    assert [b["type"] for b in EXPECTED_BLOCKS] == ["thinking", "text", "tool_use", "tool_use"]


# ---- property: whatever a provider sends, the answer is a stream or an Anthropic error, never a crash

_KEYS = st.sampled_from(["type", "item", "output_index", "item_id", "delta", "arguments", "name", "call_id", "id",
                         "response", "status", "output", "usage", "input_tokens", "input_tokens_details", "error",
                         "encrypted_content", "summary", "text", "content", "refusal", "summary_index",
                         "incomplete_details", "reason", "code", "message"])
_TYPES = st.sampled_from(["response.output_text.delta", "response.output_item.added", "response.output_item.done",
                          "response.function_call_arguments.delta", "response.function_call_arguments.done",
                          "response.reasoning_summary_text.delta", "response.completed", "response.incomplete",
                          "response.failed", "error", "reasoning", "message", "function_call", "output_text",
                          "incomplete", "failed", "max_output_tokens"])
_SCALARS = st.none() | st.booleans() | st.integers(-2, 3) | st.text(max_size=4) | _TYPES
ANY_JSON = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=4),
                        max_leaves=20)


@settings(max_examples=1000, deadline=None)
@given(st.lists(ANY_JSON, max_size=5), ANY_JSON)
def test_property_odd_provider_answers_are_errors_never_crashes(events, whole):
    translator = StreamTranslator("m", ToolNames(), signer=SIGNER)
    try:
        out = b"".join(translator.feed(payload) for payload in events) + translator.finish()
    except ProxyError as e:
        assert e.hidden is None, e.hidden
    else:
        assert_grammar(parse_anthropic_sse(out))
    try:
        translate_response(whole, "m", ToolNames())
    except ProxyError as e:
        assert e.status >= 400 and e.hidden is None, e.hidden
