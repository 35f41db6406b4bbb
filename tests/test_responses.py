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
from conftest import FIXTURES, ccs, logged_rows, options_for, write_config
from fakes import (FakeServer, Reply, json_reply, r_call, r_message, r_reasoning, response_object, responses_events,
                   responses_sse)
from proxy_harness import SIMPLE, Harness, completion
from strategies import any_json, text, tool_name, user_block
from streams import (assert_chunking_changes_nothing, assert_errors_never_crashes, assert_grammar, blocks_of,
                     parse_anthropic_sse, run_stream)

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


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, len(STREAM) - 1), max_size=40, unique=True))
def test_property_any_chunking_gives_the_same_events(cuts):
    assert [b["type"] for b in blocks_of(EXPECTED)] == ["thinking", "text", "tool_use", "tool_use"]
    assert_chunking_changes_nothing(STREAM, cuts, EXPECTED, TRANSLATOR())


# ---- property: whatever a provider sends, the answer is a stream or an Anthropic error, never a crash

ANY_JSON = any_json(["type", "item", "output_index", "item_id", "delta", "arguments", "name", "call_id", "id",
                     "response", "status", "output", "usage", "input_tokens", "input_tokens_details", "error",
                     "encrypted_content", "summary", "text", "content", "refusal", "summary_index",
                     "incomplete_details", "reason", "code", "message"],
                    ["response.output_text.delta", "response.output_item.added", "response.output_item.done",
                     "response.function_call_arguments.delta", "response.function_call_arguments.done",
                     "response.reasoning_summary_text.delta", "response.completed", "response.incomplete",
                     "response.failed", "error", "reasoning", "message", "function_call", "output_text", "incomplete",
                     "failed", "max_output_tokens"])


@settings(max_examples=1000, deadline=None)
@given(st.lists(ANY_JSON, max_size=5), ANY_JSON)
def test_property_odd_provider_answers_are_errors_never_crashes(events, whole):
    assert_errors_never_crashes(StreamTranslator("m", ToolNames(), signer=SIGNER), events,
                                lambda: translate_response(whole, "m", ToolNames()))


# ---------------------------------------------------------------- through the proxy, the SDK as the client

WEATHER = {"name": "get_weather", "description": "The weather in a city.",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
ASK = {**SIMPLE, "max_tokens": 2000, "tools": [WEATHER], "thinking": {"type": "adaptive"},
       "messages": [{"role": "user", "content": "What is the weather in Paris?"}]}


def responses_harness(script, **upstream) -> Harness:
    return Harness(script, **{"api": "openai-responses", "model": "gpt-5.4", **upstream})


def weather_provider(seen):
    """A reasoning model: a tool call first, then the answer once the call's output came back."""
    if seen.method != "POST" or seen.path != "/v1/responses":
        return Reply(404, {"Content-Length": "0"})
    if any(item["type"] == "function_call_output" for item in seen.body["input"]):
        items = (r_reasoning("Done.", encrypted="gAAAAABsecond=="), r_message("It is 18C in Paris."))
    else:
        items = (r_reasoning("**Checking the weather**", "Need the tool.", encrypted=ENCRYPTED),
                 r_message("Let me look."), r_call("get_weather", '{"city": "Paris"}', call_id="call_Qx1"))
    if seen.body.get("stream"):
        return responses_sse(responses_events(*items))
    return json_reply(response_object(*items))


@pytest.mark.parametrize("stream", [True, False])
def test_a_tool_round_trip_and_a_second_turn_that_sends_the_encrypted_reasoning_back(stream):
    with responses_harness(weather_provider) as h:
        if stream:
            with h.sdk.messages.stream(**ASK) as answer:
                message = answer.get_final_message()
        else:
            message = h.sdk.messages.create(**ASK)
        assert [b.type for b in message.content] == ["thinking", "text", "tool_use"]
        assert message.content[0].thinking == "**Checking the weather**\n\nNeed the tool."
        assert message.stop_reason == "tool_use" and message.content[2].input == {"city": "Paris"}
        assert message.usage.input_tokens == 176 and message.usage.cache_read_input_tokens == 1024
        use = message.content[2]
        second = {**ASK, "messages": [*ASK["messages"],
                                      {"role": "assistant", "content": [b.model_dump(exclude_none=True)
                                                                        for b in message.content]},
                                      {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id,
                                                                    "content": "18C, sunny"}]}]}
        final = h.sdk.messages.create(**second)
        assert final.content[-1].text == "It is 18C in Paris." and final.stop_reason == "end_turn"
        first, then = h.requests
    assert first.path == "/v1/responses" and first.headers["authorization"] == "Bearer sk-upstream-key"
    assert first.body["reasoning"] == {"effort": "medium", "summary": "auto"} and first.body["store"] is False
    assert first.body["tools"][0] == {"type": "function", "name": "get_weather", "description": "The weather in a city.",
                                      "parameters": WEATHER["input_schema"], "strict": False}
    assert [i["type"] for i in then.body["input"]] == ["message", "reasoning", "message", "function_call",
                                                       "function_call_output"]
    reasoning, call, output = then.body["input"][1], then.body["input"][3], then.body["input"][4]
    assert reasoning == {"type": "reasoning", "encrypted_content": ENCRYPTED,
                         "summary": [{"type": "summary_text", "text": "**Checking the weather**\n\nNeed the tool."}]}
    assert call["call_id"] == output["call_id"] and output["output"] == "18C, sunny"
    assert json.loads(call["arguments"]) == {"city": "Paris"}


def test_claudes_session_is_the_prompt_cache_key():
    with responses_harness(weather_provider) as h:
        assert h.post(body=ASK, headers={"x-claude-code-session-id": "5f0c8a52-sess"}).status_code == 200
    assert h.requests[0].body["prompt_cache_key"] == "5f0c8a52-sess"


def test_real_claude_code_requests_go_through():
    with responses_harness(lambda seen: responses_sse(responses_events(r_message("ok")))) as h:
        for name in ("main-streaming-request.json", "tool-result-parallel-followup.json",
                     "tool-result-image-followup.json", "thinking-block-followup.json",
                     "toolsearch-tool-reference-followup.json", "v2.1.197/tool-result-followup.json"):
            response = h.post("/v1/messages?beta=true", fixture(name))
            assert response.status_code == 200, response.text
            assert_grammar(parse_anthropic_sse(response.content))
        assert h.bugs == []


def stream_of(*events) -> Reply:
    return responses_sse(list(events))


CREATED = responses_events()[:2]


@pytest.mark.parametrize("error, status, kind", [
    ({"type": "error", "error": {"type": "tokens", "code": "rate_limit_exceeded", "message": "Rate limit reached"}},
     429, "rate_limit_error"),
    ({"type": "error", "error": {"type": "invalid_request_error", "code": "context_length_exceeded",
                                 "message": "Your input exceeds the context window of this model."}},
     400, "invalid_request_error"),
    ({"type": "response.failed", "response": response_object(status="failed", error={
        "code": "server_error", "message": "The model failed"})}, 500, "api_error"),
])
def test_an_error_before_any_content_is_an_http_error(error, status, kind):
    with responses_harness(lambda seen: stream_of(*CREATED, error)) as h:
        response = h.post(body={**SIMPLE, "stream": True})
    assert response.status_code == status and response.json()["error"]["type"] == kind
    if status == 400:
        assert response.json()["error"]["message"].startswith("prompt is too long")


@pytest.mark.parametrize("error", [
    {"type": "error", "error": {"type": "server_error", "code": "server_error", "message": "boom"}},
    {"type": "response.failed", "response": response_object(status="failed", error={"code": "server_error",
                                                                                      "message": "boom"})}])
def test_an_error_after_content_is_an_error_event_never_a_clean_stop(error):
    events = responses_events(r_message("partial answer"))[:-1] + [0.05, error]
    with responses_harness(lambda seen: stream_of(*events)) as h:
        response = h.post(body={**SIMPLE, "stream": True})
        assert response.status_code == 200
        events = parse_anthropic_sse(response.content)
        assert events[-1][0] == "error" and "boom" in events[-1][1]["error"]["message"]
        assert "message_stop" not in [kind for kind, _ in events]
        with pytest.raises(Exception):
            with h.sdk.messages.stream(**SIMPLE) as stream:
                stream.get_final_message()


def test_a_cut_stream_is_an_error():
    partial = responses_sse(responses_events(r_message("partial answer"))[:-2])
    with responses_harness(lambda seen: Reply(200, partial.headers, partial.chunks + [0.05], close_early=True)) as h:
        events = parse_anthropic_sse(h.post(body={**SIMPLE, "stream": True}).content)
        assert events[-1][0] == "error" and "message_stop" not in [kind for kind, _ in events]
    created_only = responses_sse(CREATED)
    with responses_harness(lambda seen: Reply(200, created_only.headers, created_only.chunks, close_early=True)) as h:
        response = h.post(body={**SIMPLE, "stream": True})
        assert response.status_code == 502  # nothing sent yet: retryable, and a fallback may answer
    ended = responses_sse(responses_events(r_message("no final event"))[:-1] + [0.05])  # no response.completed
    with responses_harness(lambda seen: ended) as h:
        events = parse_anthropic_sse(h.post(body={**SIMPLE, "stream": True}).content)
        assert events[-1][0] == "error" and "ended before the answer did" in events[-1][1]["error"]["message"]


def test_an_incomplete_answer_stops_at_max_tokens():
    events = responses_events(r_message("Cut sh"), final="response.incomplete", status="incomplete",
                              reason="max_output_tokens")
    with responses_harness(lambda seen: stream_of(*events)) as h:
        with h.sdk.messages.stream(**SIMPLE) as stream:
            message = stream.get_final_message()
    assert message.stop_reason == "max_tokens" and message.content[0].text == "Cut sh"


@pytest.mark.parametrize("status", [429, 500, 503])
def test_a_failing_provider_falls_back_to_the_next_target(status):
    backup_server = FakeServer(lambda seen: json_reply(response_object(r_message("from the backup"))))
    backup = Upstream(api="openai-responses", name="backup", base_url=backup_server.url + "/v1", key="sk-b",
                      model="gpt-b")
    failing = json_reply({"error": {"message": "busy", "type": "server_error", "code": None}}, status)
    router = lambda up: Router(up, {}, up.model, ["backup,gpt-b"], find=lambda name: backup)  # noqa: E731
    try:
        with responses_harness(lambda seen: failing, router=router) as h:
            message = h.sdk.messages.create(**SIMPLE)
            assert message.content[0].text == "from the backup"
            assert len(h.requests) == 1 and backup_server.requests[0].body["model"] == "gpt-b"
    finally:
        backup_server.close()


def test_a_400_is_not_a_reason_to_fall_back_and_a_full_context_says_so():
    full = json_reply({"error": {"message": "Your input exceeds the context window of this model. Please adjust your "
                                            "input and try again.", "type": "invalid_request_error", "param": "input",
                                 "code": "context_length_exceeded"}}, 400)
    with responses_harness(lambda seen: full) as h:
        response = h.post(body=SIMPLE)
    assert response.status_code == 400 and len(h.requests) == 1
    assert response.json()["error"]["message"].startswith("prompt is too long: Your input exceeds the context window")


def test_a_model_that_refuses_to_stream_gets_a_whole_request_and_claude_a_stream():
    def no_stream(seen):
        if seen.body.get("stream"):
            return json_reply({"error": {"message": "Your organization must be verified to stream this model.",
                                         "type": "invalid_request_error", "param": "stream",
                                         "code": "unsupported_value"}}, 400)
        return json_reply(response_object(r_reasoning("Plan."), r_message("Whole, then streamed.")))

    with responses_harness(no_stream) as h:
        for _ in range(2):
            with h.sdk.messages.stream(**ASK) as stream:
                message = stream.get_final_message()
            assert [b.type for b in message.content] == ["thinking", "text"]
            assert message.content[0].signature == reasoning_signature("gAAAAABencrypted-reasoning==", SIGNER)
            assert message.content[1].text == "Whole, then streamed."
    assert [r.body.get("stream") for r in h.requests] == [True, None, None]  # learnt once, for the session


def test_refused_parameters_are_dropped_one_by_one_and_remembered():
    """gpt-4.1 reasons not: it refuses `reasoning.effort`, then `reasoning.summary` (an unverified organization
    refuses the summary alone), `temperature` on reasoning models."""
    def strict(seen):
        reasoning = seen.body.get("reasoning") or {}
        for name, present in (("reasoning.effort", "effort" in reasoning), ("reasoning.summary", "summary" in reasoning)):
            if present:
                return json_reply({"error": {"message": f"Unsupported parameter: '{name}' is not supported with this "
                                             "model.", "type": "invalid_request_error", "param": name,
                                             "code": "unsupported_parameter"}}, 400)
        return json_reply(response_object(r_message("fine")))

    with responses_harness(strict, model="gpt-4.1") as h:
        for _ in range(2):
            assert h.sdk.messages.create(**ASK).content[0].text == "fine"
    assert [r.body.get("reasoning") for r in h.requests] == [{"effort": "medium", "summary": "auto"},
                                                             {"summary": "auto"}, None, None]


def reasoning_provider(seen):
    """A reasoning model that needs 300 output tokens to think before a word: fewer, and the Responses API ends
    incomplete with reasoning alone (under 16 it refuses the request), Chat Completions refuses outright."""
    if seen.path.endswith("/chat/completions"):
        cap = seen.body.get("max_completion_tokens") or seen.body.get("max_tokens")
        if cap < 300:
            return json_reply({"error": {"message": "Could not finish the message because max_tokens or model output "
                                                    "limit was reached. Please try again with higher max_tokens.",
                                         "type": "invalid_request_error", "param": None, "code": None}}, 400)
        return json_reply(completion("Hi"))
    cap = seen.body["max_output_tokens"]
    if cap < 16:
        return json_reply({"error": {"message": f"Invalid 'max_output_tokens': integer below minimum value. Expected "
                                                f"a value >= 16, but got {cap} instead.", "type": "invalid_request_error",
                                     "param": "max_output_tokens", "code": "integer_below_min_value"}}, 400)
    if cap < 300:
        return json_reply(response_object(r_reasoning(encrypted="gAAAAAB=="), status="incomplete",
                                          reason="max_output_tokens"))
    return json_reply(response_object(r_reasoning(encrypted="gAAAAAB=="), r_message("Hi")))


PROBES = [{"model": "claude-opus-5-5", "max_tokens": 1, "messages": [{"role": "user", "content": "quota"}]},
          {"model": "gpt-5.4", "max_tokens": 1, "temperature": 1, "messages": [{"role": "user", "content": "test"}]},
          {"model": "claude-sonnet-4-5", "max_tokens": 1, "messages": [
              {"role": "user", "content": [{"type": "text", "text": "Hi", "cache_control": {"type": "ephemeral"}}]}]}]


@pytest.mark.parametrize("api", ["openai-responses", "openai"])
def test_claudes_one_token_probes_get_an_answer_from_reasoning_models(api):
    with Harness(reasoning_provider, api=api, model="gpt-5.4", models={}, reasoning_effort="high") as h:
        for probe in PROBES:
            response = h.post(body=probe)
            assert response.status_code == 200, response.text
            message = response.json()
            assert message["type"] == "message" and message["content"][-1]["text"] == "Hi"
    for seen in h.requests:
        assert (seen.body.get("max_output_tokens") or seen.body.get("max_completion_tokens")) == 1024
        assert "reasoning" not in seen.body and "reasoning_effort" not in seen.body  # the model's default answers soonest


def test_a_probe_that_still_ends_at_the_cap_is_a_valid_message():
    """A model the proxy does not know to reason gets the API's least cap: an incomplete answer is still one."""
    with responses_harness(reasoning_provider, model="o-custom-reasoner") as h:
        message = h.sdk.messages.create(**PROBES[0])
    assert message.stop_reason == "max_tokens" and message.type == "message"
    assert h.requests[0].body["max_output_tokens"] == 16


# ---------------------------------------------------------------- ccs test, ccs models, ccs doctor

OPENAI_KEY = "sk-openai-fake-key-7171"


@pytest.fixture
def responses_fake(no_keyring, monkeypatch):
    """An OpenAI Responses provider: a stream with a tool call for the right key, 401 for another, and /models.
    A request that would go anywhere but 127.0.0.1 meets a dead proxy on this machine instead."""
    for var in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")

    def answer(seen):
        if seen.headers.get("authorization") != f"Bearer {OPENAI_KEY}":
            return json_reply({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error",
                                         "code": "invalid_api_key"}}, 401)
        if seen.method == "GET" and seen.path == "/v1/models":
            return json_reply({"object": "list", "data": [{"id": "gpt-5.4", "object": "model"},
                                                          {"id": "gpt-5.4-mini", "object": "model"}]})
        return responses_sse(responses_events(r_reasoning("Weather: call the tool."),
                                              r_call("get_weather", '{"city": "Paris"}')))

    server = FakeServer(answer)
    write_config(f"""
        version = 1
        [profiles.gpt]
        preset = "openai"
        base_url = "{server.url}/v1"
        model = "gpt-5.4"
        models = {{ haiku = "gpt-5.4-nano" }}
        reasoning_summary = "concise"
        verbosity = "low"
    """)
    keys.store_key("gpt", OPENAI_KEY)
    yield server
    server.close()


def test_ccs_test_goes_through_the_proxy_to_the_responses_api(responses_fake):
    result = ccs("test", "gpt", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    trial = json.loads(result.stdout)
    assert trial["via"] == "proxy" and trial["result"] == "ok" and trial["tool_use"] is True
    (seen,) = responses_fake.requests
    assert seen.path == "/v1/responses" and seen.body["model"] == "gpt-5.4" and seen.body["text"] == {"verbosity": "low"}
    assert seen.body["tools"][0]["name"] == "get_weather" and seen.body["stream"] is True
    (row,) = logged_rows()  # the usage log, as for every kind: the provider's usage, cached input apart
    assert (row["profile"], row["model"], row["status"], row["test"]) == ("gpt", "gpt-5.4", 200, 1)
    assert (row["input_tokens"], row["cache_read_tokens"], row["output_tokens"]) == (176, 1024, 310)
    keys.store_key("gpt", "sk-wrong-0000")
    wrong = json.loads(ccs("test", "gpt", "--json").stdout)
    assert wrong["result"] == "failed" and "ccs key set gpt" in wrong["diagnosis"]


def test_ccs_models_and_doctor_ask_the_responses_providers_list(responses_fake):
    result = ccs("models", "gpt", "--json")
    assert result.returncode == 0, result.stderr
    (listing,) = json.loads(result.stdout)
    assert listing["url"] == f"{responses_fake.url}/v1/models" and listing["problem"] is None
    assert {m["id"]: m["used_as"] for m in listing["models"]} == {
        "gpt-5.4": ["model"], "gpt-5.4-mini": [], "gpt-5.6-sol": ["opus", "sonnet", "subagent"],
        "gpt-5.4-nano": ["haiku"]}  # the preset's tiers, and the profile's own
    doctor = ccs("doctor")
    assert re.search(r"gpt: .*/v1/models.*the key works \(2 models\)", doctor.stdout), doctor.stdout


def test_the_profile_settings_are_validated():
    from ccswitch import profiles

    for key, bad in (("reasoning_summary", "verbose"), ("verbosity", "loud")):
        with pytest.raises(profiles.ConfigError, match=f"{key} must be one of"):
            profiles.resolve("g", {"preset": "openai", key: bad})
    gpt = profiles.resolve("g", {"preset": "openai", "reasoning_summary": "off", "verbosity": "high"})
    assert gpt.api == "openai-responses" and gpt.needs_proxy
    assert profiles.resolve("c", {"preset": "openai-chat"}).api == "openai"
