"""Anthropic request -> OpenAI request: one test per translation rule, on real Claude Code bodies."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccswitch.proxy.anthropic import InvalidRequest
from ccswitch.proxy.request_parts import reasoning_effort
from ccswitch.proxy.to_openai import translate_request
from ccswitch.proxy.tool_ids import ToolNames
from ccswitch.proxy.upstream import Upstream
from conftest import FIXTURES, options_for
from strategies import text, tool_name, user_block

UP = Upstream(api="openai", name="gpt", base_url="https://api.openai.example/v1", key="sk-up", model="gpt-main",
              models={"opus": "gpt-big", "sonnet": "gpt-main", "haiku": "gpt-small"})
ALL_FIXTURES = sorted(p for p in FIXTURES.rglob("*.json") if p.name != "index.json")


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def translate(req: dict, upstream: Upstream = UP) -> dict:
    return translate_request(req, options_for(upstream, req))[0]


@pytest.mark.parametrize("path", ALL_FIXTURES, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_every_real_request_translates_to_a_valid_openai_body(path):
    req = json.loads(path.read_text())
    body = translate(req)
    allowed = {"model", "messages", "tools", "tool_choice", "parallel_tool_calls", "max_tokens",
               "max_completion_tokens", "reasoning_effort", "temperature", "top_p", "stop", "user", "stream",
               "stream_options"}
    assert set(body) <= allowed
    text = json.dumps(body)
    for anthropic_only in ("cache_control", "context_management", "output_config", "defer_loading", "safeguards",
                           "x-anthropic-billing-header", "$schema", "tool_use_id", '"tool_result"'):
        assert anthropic_only not in text, anthropic_only
    _assert_tool_calls_are_answered(body["messages"])


def _assert_tool_calls_are_answered(messages: list[dict]) -> None:
    """OpenAI's rule: an assistant's tool_calls are followed at once by exactly one tool message each."""
    for i, message in enumerate(messages):
        if message.get("tool_calls"):
            ids = [call["id"] for call in message["tool_calls"]]
            assert all(re.fullmatch(r"[A-Za-z0-9]{9}", call_id) for call_id in ids)  # Mistral's rule, OK for all
            following = messages[i + 1:i + 1 + len(ids)]
            assert [m["role"] for m in following] == ["tool"] * len(ids)
            assert sorted(m["tool_call_id"] for m in following) == sorted(ids)


def test_rule1_system_blocks_joined_without_the_billing_header():
    req = fixture("main-streaming-request.json")
    body = translate(req)
    system = body["messages"][0]
    assert system["role"] == "system"
    assert "x-anthropic-billing-header" not in system["content"]
    assert req["system"][1]["text"] in system["content"] and req["system"][2]["text"] in system["content"]


def test_rule1_system_message_inside_messages_is_kept_in_place():
    body = translate(fixture("continue-second-turn.json"))
    assert [m["role"] for m in body["messages"]] == ["system", "user", "system", "assistant", "user"]
    assert isinstance(body["messages"][2]["content"], str)


def test_rule1_system_message_never_sits_between_a_call_and_its_result():
    req = {"model": "m", "max_tokens": 5, "messages": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "Bash", "input": {}}]},
        {"role": "system", "content": "a reminder"},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}]}]}
    roles = [m["role"] for m in translate(req)["messages"]]
    assert roles == ["user", "assistant", "tool", "system"]


def test_rule2_body_is_a_whitelist_and_user_id_is_hashed():
    req = fixture("interactive-request.json")
    req["metadata"] = {"user_id": "person@example.com_session"}
    openai = Upstream(api="openai", name="o", base_url="https://api.openai.com/v1", model="gpt-5")
    body = translate(req, openai)
    assert len(body["user"]) == 64 and "person" not in body["user"]
    assert "metadata" not in body and "safeguards" not in body and "thinking" not in body
    assert "user" not in translate(req)  # strict servers reject the optional field: only where documented


def test_rule3_tools_keep_their_schema_minus_dollar_schema():
    req = fixture("toolsearch-tool-reference-followup.json")
    body = translate(req)
    by_name = {t["function"]["name"]: t["function"] for t in body["tools"]}
    source = {t["name"]: t for t in req["tools"]}
    for name, function in by_name.items():
        expected = {k: v for k, v in source[name]["input_schema"].items() if k != "$schema"}
        assert function["parameters"] == expected
        assert function.get("description") == source[name].get("description")


GEMINI_OK = {"type", "format", "title", "description", "nullable", "enum", "items", "properties", "required",
             "minItems", "maxItems", "minProperties", "maxProperties", "minLength", "maxLength", "pattern",
             "minimum", "maximum", "anyOf", "default", "example", "propertyOrdering"}


def _schema_keys(schema) -> set[str]:
    if isinstance(schema, list):
        return set().union(*(_schema_keys(s) for s in schema)) if schema else set()
    if not isinstance(schema, dict):
        return set()
    keys = set(schema)
    for key, value in schema.items():
        if key == "properties":
            keys |= _schema_keys(list(value.values()))
        elif key in ("items", "anyOf"):
            keys |= _schema_keys(value)
    return keys


def test_rule3_gemini_gets_only_the_openapi_schema_subset_it_accepts():
    gemini = Upstream(api="openai", name="g", base_url="https://generativelanguage.googleapis.com/v1beta/openai", model="gemini-2.5-pro")
    req = fixture("interactive-request.json")
    plain = translate(req)
    assert "additionalProperties" in json.dumps(plain["tools"])  # what Claude Code really sends
    body = translate(req, gemini)
    for tool in body["tools"]:
        assert _schema_keys(tool["function"]["parameters"]) <= GEMINI_OK, tool["function"]["name"]
    via_router = Upstream(api="openai", name="or", base_url="https://openrouter.ai/api/v1", model="google/gemini-3.8-flash")
    for tool in translate(req, via_router)["tools"]:  # the model's family, wherever it is served
        assert _schema_keys(tool["function"]["parameters"]) <= GEMINI_OK, tool["function"]["name"]
    from ccswitch.proxy.request_parts import openapi_schema

    assert openapi_schema({"type": ["string", "null"], "const": "x", "format": "uri", "propertyNames": {}}) == {
        "type": "string", "nullable": True, "enum": ["x"]}
    assert openapi_schema({"type": "object", "properties": {"a": {"oneOf": [{"type": "integer", "exclusiveMinimum": 0}]}},
                           "additionalProperties": False}) == {
        "type": "object", "properties": {"a": {"anyOf": [{"type": "integer"}]}}}


def test_rule3_long_tool_names_are_shortened_and_restored():
    long = "mcp__a_very_long_server_name_for_testing__and_an_even_longer_tool_name_than_allowed"
    req = {"model": "m", "max_tokens": 5, "tools": [{"name": long, "input_schema": {"type": "object"}}],
           "tool_choice": {"type": "tool", "name": long},
           "messages": [{"role": "user", "content": "x"},
                        {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": long, "input": {}}]},
                        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "r"}]}]}
    body, names = translate_request(req, options_for(UP, req))
    short = body["tools"][0]["function"]["name"]
    assert len(short) == 64 and short != long
    assert body["tool_choice"] == {"type": "function", "function": {"name": short}}
    assert body["messages"][1]["tool_calls"][0]["function"]["name"] == short
    assert names.restore(short) == long and names.restore("Bash") == "Bash"
    assert ToolNames().shorten(long) == short  # stable across requests


@pytest.mark.parametrize("choice, expected", [
    ({"type": "auto"}, {"tool_choice": "auto"}),
    ({"type": "any"}, {"tool_choice": "required"}),
    ({"type": "none"}, {"tool_choice": "none"}),
    ({"type": "tool", "name": "Bash"}, {"tool_choice": {"type": "function", "function": {"name": "Bash"}}}),
    ({"type": "auto", "disable_parallel_tool_use": True}, {"tool_choice": "auto", "parallel_tool_calls": False}),
])
def test_rule3_tool_choice(choice, expected):
    req = {"model": "m", "max_tokens": 5, "tool_choice": choice, "messages": [{"role": "user", "content": "x"}],
           "tools": [{"name": "Bash", "input_schema": {"type": "object"}}]}
    body = translate(req)
    assert {k: body[k] for k in expected} == expected


def test_rule4_assistant_tool_use_becomes_tool_calls_with_all_text():
    body = translate(fixture("tool-result-parallel-followup.json"))
    assistant = next(m for m in body["messages"] if m.get("tool_calls"))
    assert len(assistant["tool_calls"]) == 2
    assert all(json.loads(c["function"]["arguments"]) for c in assistant["tool_calls"])
    req = {"model": "m", "max_tokens": 5, "messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": [{"type": "text", "text": "before "},
                                          {"type": "tool_use", "id": "t", "name": "Bash", "input": {"c": 1}},
                                          {"type": "text", "text": "after"}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "r"}]}]}
    assert translate(req)["messages"][1]["content"] == "before after"


def test_rule4_tool_call_ids_are_stable_and_in_the_shape_every_provider_takes():
    req = fixture("tool-result-parallel-followup.json")
    first, again = translate(req), translate(req)
    ids = [c["id"] for m in first["messages"] for c in m.get("tool_calls", [])]
    assert ids == [c["id"] for m in again["messages"] for c in m.get("tool_calls", [])]  # prefix caches hold
    assert len(set(ids)) == len(ids) == 2
    from ccswitch.proxy.tool_ids import call_id, with_signature

    assert call_id(with_signature("toolu_abc", "sig")) == call_id("toolu_abc") != call_id("toolu_abd")


def test_rule4_tool_results_first_then_the_users_text_and_images():
    body = translate(fixture("toolsearch-tool-reference-followup.json"))
    roles = [m["role"] for m in body["messages"]]
    tool_at = roles.index("tool")
    assert roles[tool_at + 1] == "user"
    assert "Tool loaded:" in body["messages"][tool_at]["content"]


def test_rule4_is_error_keeps_its_meaning():
    body = translate(fixture("tool-result-error-followup.json"))
    tool = next(m for m in body["messages"] if m["role"] == "tool")
    assert tool["content"] == "Error: Exit code 3\nfailing"


def test_rule4_text_block_results_and_missing_results():
    body = translate(fixture("subagent-result-followup.json"))
    tool = next(m for m in body["messages"] if m["role"] == "tool")
    assert isinstance(tool["content"], str) and tool["content"]
    interrupted = {"model": "m", "max_tokens": 5, "messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "A", "input": {}},
                                          {"type": "tool_use", "id": "t2", "name": "B", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t2", "content": "two"},
                                     {"type": "tool_result", "tool_use_id": "zz", "content": "orphan"},
                                     {"type": "text", "text": "go on"}]}]}
    messages = translate(interrupted)["messages"]
    _assert_tool_calls_are_answered(messages)
    assert [m["content"] for m in messages if m["role"] == "tool"] == [
        "two", "Error: the tool call returned no result"]
    assert messages[-1] == {"role": "user", "content": "Tool result: orphan\n\ngo on"}


def test_no_empty_messages_reach_strict_providers():
    req = {"model": "m", "max_tokens": 5, "messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "hmm", "signature": "s"}]},
        {"role": "user", "content": "go on"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "Bash", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": ""}]}]}
    messages = translate(req)["messages"]
    assert [m["role"] for m in messages] == ["user", "user", "assistant", "tool"]
    assert messages[-1]["content"] == "(no output)"


def test_rule5_images_in_tool_results_follow_as_a_user_message():
    req = fixture("tool-result-image-followup.json")
    body = translate(req)
    roles = [m["role"] for m in body["messages"]]
    tool_at = roles.index("tool")
    assert body["messages"][tool_at]["content"].startswith("(the result is an image")
    image_message = body["messages"][tool_at + 1]
    assert image_message["role"] == "user"
    part = image_message["content"][0]
    assert part["type"] == "image_url" and part["image_url"]["url"].startswith("data:image/png;base64,iVBOR")


def test_rule5_url_images_pass_through_and_documents():
    req = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
        {"type": "document", "title": "notes", "source": {"type": "text", "media_type": "text/plain", "data": "hello"}},
        {"type": "text", "text": "look"}]}]}
    content = translate(req)["messages"][0]["content"]
    assert content[0] == {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
    assert content[1] == {"type": "text", "text": "notes\n\nhello"}
    pdf = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBER"}}]}]}
    with pytest.raises(InvalidRequest, match="only text documents"):
        translate(pdf)


@pytest.mark.parametrize("thinking, output_config, configured, expected", [
    ({"type": "enabled", "budget_tokens": 2000}, None, None, "low"),
    ({"type": "enabled", "budget_tokens": 16384}, None, None, "medium"),
    ({"type": "enabled", "budget_tokens": 30000}, None, None, "high"),
    ({"type": "adaptive"}, {"effort": "low"}, None, "low"),
    ({"type": "adaptive"}, {"effort": "max"}, None, "high"),
    ({"type": "adaptive"}, None, None, "medium"),
    ({"type": "adaptive"}, {"effort": "low"}, "high", "high"),
    ({"type": "adaptive"}, {"effort": "low"}, "off", None),
    ({"type": "disabled"}, None, None, None),
    (None, {"effort": "high"}, None, None),
])
def test_rule6_thinking_to_reasoning_effort(thinking, output_config, configured, expected):
    req = {"thinking": thinking, "output_config": output_config}
    assert reasoning_effort(req, configured) == expected


def test_rule6_thinking_history_dropped_or_kept_for_deepseek():
    req = fixture("thinking-block-followup.json")
    body = translate(req)
    assert "mock-signature-abc" not in json.dumps(body) and "reasoning_content" not in json.dumps(body)
    deepseek = Upstream(api="openai", name="ds", base_url="https://api.deepseek.com/v1", key="k", model="deepseek-reasoner")
    kept = translate(req, deepseek)
    assistant = next(m for m in kept["messages"] if m["role"] == "assistant")
    assert assistant["reasoning_content"]


def test_rule7_max_tokens_clamped_and_named_per_model():
    req = fixture("main-streaming-request.json")
    clamped = Upstream(api="openai", name="g", base_url="https://x/v1", model="gpt-4.1", max_output_tokens=16000)
    assert translate(req, clamped)["max_tokens"] == 16000
    assert translate(req, Upstream(api="openai", name="g", base_url="https://x/v1", model="gpt-5"))["max_completion_tokens"] == 128000
    assert "max_tokens" not in translate(req, Upstream(api="openai", name="g", base_url="https://x/v1", model="o4-mini"))
    azure = Upstream(api="openai", name="az", base_url="https://r.openai.azure.com/openai/v1", model="gpt-5.6-sol")
    assert "max_completion_tokens" in translate(req, azure)  # by the model's family, on any host


def test_rule7_sampling_stop_and_stream_options():
    req = {"model": "m", "max_tokens": 5, "temperature": 0.2, "top_p": 0.9, "top_k": 5, "stop_sequences": ["END"],
           "stream": True, "messages": [{"role": "user", "content": "x"}]}
    body = translate(req)
    assert (body["temperature"], body["top_p"], body["stop"]) == (0.2, 0.9, ["END"])
    assert "top_k" not in body
    assert body["stream_options"] == {"include_usage": True}
    for url in ("http://localhost:8000/v1", "http://[::1]:8000/v1", "http://127.0.0.2:8080/v1", "https://openrouter.ai/api/v1"):
        assert translate(req, Upstream(api="openai", name="l", base_url=url, model="m"))["top_k"] == 5, url
    for url in ("https://localhost.example.com/v1", "https://api.example.com/localhost/v1", "https://api.openai.com/v1"):
        assert "top_k" not in translate(req, Upstream(api="openai", name="l", base_url=url, model="m")), url  # by host, not substring


def test_model_mapping_by_tier_word_and_real_names_pass():
    for requested, expected in [("claude-opus-5-5", "gpt-big"), ("claude-haiku-4-5", "gpt-small"),
                                ("claude-sonnet-4-5", "gpt-main"), ("claude-x", "gpt-main"), ("gpt-other", "gpt-other"),
                                ("", "gpt-main")]:
        assert translate({"model": requested, "max_tokens": 1, "messages": [{"role": "user", "content": "x"}]})[
            "model"] == expected


@pytest.mark.parametrize("bad", [{}, {"messages": "x"}, {"messages": [{"role": "robot", "content": "x"}]},
                                 {"messages": [], "max_tokens": "many"}, {"messages": [{"role": "user", "content": 5}]},
                                 {"messages": [1]}, {"messages": [{"role": "user", "content": [{"text": "no type"}]}]}])
def test_malformed_requests_are_invalid_requests(bad):
    with pytest.raises(InvalidRequest):
        translate(bad)


# ---- property: any valid Anthropic request translates, and every call is answered



@st.composite
def conversations(draw):
    messages = [{"role": "user", "content": draw(st.one_of(text, st.lists(user_block, min_size=1, max_size=3)))}]
    for turn in range(draw(st.integers(0, 4))):
        names = draw(st.lists(tool_name, max_size=3))
        ids = [f"toolu_{turn}_{i}" for i in range(len(names))]
        blocks = [{"type": "text", "text": draw(text)}] if draw(st.booleans()) or not names else []
        if draw(st.booleans()):
            blocks.insert(0, {"type": "thinking", "thinking": draw(text), "signature": "s"})
        blocks += [{"type": "tool_use", "id": i, "name": n, "input": {"q": draw(text)}} for i, n in zip(ids, names)]
        messages.append({"role": "assistant", "content": blocks})
        if draw(st.booleans()):
            messages.append({"role": "system", "content": draw(text)})
        results = [{"type": "tool_result", "tool_use_id": i, "is_error": draw(st.booleans()),
                    "content": draw(st.one_of(text, st.lists(user_block, min_size=1, max_size=2)))}
                   for i in draw(st.permutations(ids))]
        messages.append({"role": "user", "content": results + draw(st.lists(user_block, max_size=2)) or "next"})
    return {"model": draw(st.sampled_from(["claude-opus-5-5", "claude-haiku-4-5", "custom"])),
            "max_tokens": draw(st.integers(1, 200000)), "system": draw(text), "messages": messages,
            "tools": [{"name": n, "input_schema": {"type": "object"}} for n in draw(st.lists(tool_name, max_size=3))]}


@settings(max_examples=150, deadline=None)
@given(conversations())
def test_property_random_valid_requests_always_translate(req):
    body, names = translate_request(req, options_for(UP, req))
    _assert_tool_calls_are_answered(body["messages"])
    assert all(len(t["function"]["name"]) <= 64 for t in body.get("tools", []))
    for message in body["messages"]:
        for call in message.get("tool_calls", []):
            assert len(call["function"]["name"]) <= 64
            assert names.restore(call["function"]["name"]) in {
                b["name"] for m in req["messages"] if m["role"] == "assistant" for b in m["content"]
                if b["type"] == "tool_use"}
    json.dumps(body)


OPENROUTER = Upstream(api="openai", name="or", base_url="https://openrouter.ai/api/v1", key="k", model="openai/gpt-5.6-sol")
THINKING = {"model": "m", "max_tokens": 500, "thinking": {"type": "adaptive"}, "output_config": {"effort": "high"},
            "messages": [{"role": "user", "content": "x"}]}


@pytest.mark.parametrize(("reasoning", "configured", "expected"), [
    ({}, None, {"effort": "high"}),  # the effort claude asked for, in OpenRouter's object
    ({"exclude": True}, None, {"effort": "high", "exclude": True}),
    ({"effort": "xhigh"}, None, {"effort": "xhigh"}),  # the profile's effort wins
    ({}, "low", {"effort": "low"}),  # as reasoning_effort does
    ({"max_tokens": 2000}, None, {"max_tokens": 2000}),  # a budget instead of an effort, never both
    ({"max_tokens": 2000, "exclude": True}, "medium", {"max_tokens": 2000, "exclude": True}),
])
def test_rule6_openrouter_gets_a_reasoning_object_instead_of_reasoning_effort(reasoning, configured, expected):
    upstream = Upstream(**{**OPENROUTER.__dict__, "reasoning": reasoning, "reasoning_effort": configured})
    body = translate(THINKING, upstream)
    assert body["reasoning"] == expected and "reasoning_effort" not in body


def test_rule6_the_reasoning_table_elsewhere_is_its_effort_and_never_without_thinking():
    plain = Upstream(api="openai", name="g", base_url="https://api.openai.com/v1", model="gpt-5.6-sol",
                     reasoning={"effort": "low", "exclude": True})
    body = translate(THINKING, plain)
    assert body["reasoning_effort"] == "low" and "reasoning" not in body  # no object for a provider without one
    quiet = {k: v for k, v in THINKING.items() if k != "thinking"}
    assert "reasoning" not in translate(quiet, Upstream(**{**OPENROUTER.__dict__, "reasoning": {"exclude": True}}))
    off = Upstream(**{**OPENROUTER.__dict__, "reasoning_effort": "off", "reasoning": {"effort": "high"}})
    assert "reasoning" not in translate(THINKING, off)
