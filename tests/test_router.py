"""One proxy, several providers: routing by `profile,model`, tier and `claude-*` names; Anthropic-API
providers passed through byte for byte; fallback before the first byte, never after; cool-downs;
thinking signed by one provider kept from another. Real sockets, two or three fake providers."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from pathlib import Path

import httpx2
import pytest

from ccswitch import profiles
from ccswitch.errors import CcsError
from ccswitch.proxy import lifecycle
from ccswitch.proxy.router import Router
from fakes import FakeServer, Reply, anthropic_sse, anthropic_text_stream, block, json_reply, message_end, message_start, sse
from proxy_harness import chunk

KEYS = {"GLM_KEY": "sk-glm-secret-1111", "GPT_KEY": "sk-gpt-secret-2222", "DS_KEY": "sk-ds-secret-3333"}


def chat_stream(text: str) -> Reply:
    return Reply(200, {"Content-Type": "text/event-stream"},
                 sse([chunk({"role": "assistant", "content": text}), chunk(finish="stop",
                                                                         usage={"prompt_tokens": 7, "completion_tokens": 2})]))


def thinking_stream(signature: str, model: str) -> Reply:
    return anthropic_sse([message_start(model, 3, "msg_t"),
                          *block(0, {"type": "thinking", "thinking": "", "signature": ""},
                                 {"type": "thinking_delta", "thinking": "hmm"},
                                 {"type": "signature_delta", "signature": signature}),
                          *message_end("end_turn", 4)])


class Providers:
    """Three fake providers (two Anthropic-API, one OpenAI-API), profiles for them and a router
    profile `mix`, and the proxy serving `mix`."""

    def __init__(self, monkeypatch, glm=None, gpt=None, ds=None, mix: str = "", glm_extra: str = "",
                 gpt_extra: str = "", mix_models: str = ""):
        for var, value in KEYS.items():
            monkeypatch.setenv(var, value)
        self.glm = FakeServer(glm or (lambda seen: anthropic_text_stream("from glm", seen.body["model"])))
        self.gpt = FakeServer(gpt or (lambda seen: chat_stream("from gpt")))
        self.ds = FakeServer(ds or (lambda seen: anthropic_text_stream("from ds", seen.body["model"])))
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))
        self.closed_port = closed.getsockname()[1]
        closed.close()
        text = f"""
[profiles.glm]
base_url = "{self.glm.url}/api/anthropic"
key_env = "GLM_KEY"
model = "glm-4.6"
{glm_extra}

[profiles.gpt]
api = "openai"
base_url = "{self.gpt.url}/v1"
key_env = "GPT_KEY"
model = "gpt-5"
{gpt_extra}

[profiles.ds]
base_url = "{self.ds.url}"
auth = "api-key"
key_env = "DS_KEY"
model = "deepseek-chat"

[profiles.down]
base_url = "http://127.0.0.1:{self.closed_port}"
auth = "none"

[profiles.solo]
base_url = "{self.ds.url}"
auth = "none"

[profiles.max]
preset = "claude"

[profiles.mix]
models = {{ opus = "glm,glm-4.6", sonnet = "gpt,gpt-5", haiku = "ds,deepseek-chat", subagent = "ds,deepseek-chat"{mix_models} }}
{mix}
"""
        self.config = profiles.parse(text, Path("profiles.toml"))
        mix_profile = self.config.get("mix")
        try:
            keys = lifecycle.keys_for(self.config, mix_profile)
        except CcsError:
            self._close_fakes()
            raise
        self._running = lifecycle.running(Router.for_profile(self.config, mix_profile, keys, os.environ))

    def __enter__(self):
        self.endpoint = self._running.__enter__()
        return self

    def __exit__(self, *exc):
        self._running.__exit__(*exc)
        self._close_fakes()

    def _close_fakes(self):
        for fake in (self.glm, self.gpt, self.ds):
            fake.close()

    def post(self, model: str, stream: bool = True, messages=None, headers=None, **extra) -> httpx2.Response:
        body = {"model": model, "max_tokens": 50, "stream": stream,
                "messages": messages or [{"role": "user", "content": "hi"}], **extra}
        return httpx2.post(self.endpoint.url + "/v1/messages", json=body, timeout=20,
                           headers={"authorization": f"Bearer {self.endpoint.token}", **(headers or {})})


def answered_by(response: httpx2.Response) -> str:
    """The text of an Anthropic SSE answer."""
    texts = []
    for line in response.text.splitlines():
        if line.startswith("data:"):
            data = json.loads(line[5:])
            delta = data.get("delta")
            if data.get("type") == "content_block_delta" and isinstance(delta, dict) and delta.get("type") == "text_delta":
                texts.append(delta["text"])
    return "".join(texts)


def test_routes_by_profile_and_model_by_tier_and_by_claude_names(monkeypatch):
    with Providers(monkeypatch) as p:
        assert answered_by(p.post("glm,glm-4.6")) == "from glm"
        assert answered_by(p.post("GLM, glm-4.5-air")) == "from glm"  # profile names in any case
        assert [r.body["model"] for r in p.glm.requests] == ["glm-4.6", "glm-4.5-air"]
        assert answered_by(p.post("claude-sonnet-4-6")) == "from gpt"  # translated for its kind
        assert p.gpt.requests[-1].path == "/v1/chat/completions" and p.gpt.requests[-1].body["model"] == "gpt-5"
        assert answered_by(p.post("claude-haiku-4-5-20251001")) == "from ds"
        assert answered_by(p.post("claude-opus-4-5")) == "from glm"
        assert answered_by(p.post("claude-fable-5-2")) == "from glm"  # no fable tier: opus's target, not Z.ai's 404
        assert answered_by(p.post("opus")) == "from glm"
        assert p.glm.requests[-1].body["model"] == "glm-4.6"
        assert answered_by(p.post("ds,deepseek-reasoner")) == "from ds"
        assert p.ds.requests[-1].body["model"] == "deepseek-reasoner"
        # a profile the router does not name is out of reach (a repository's agent file can name a model)
        refused = p.post("solo,local-model")
        assert refused.status_code == 403 and refused.json()["error"]["type"] == "permission_error"
        assert "add reach = [\"solo\"] to [profiles.mix]" in refused.json()["error"]["message"]
        assert len(p.ds.requests) == 2


def test_reach_names_the_other_profiles_a_session_may_switch_to(monkeypatch):
    with Providers(monkeypatch, mix='reach = ["solo"]') as p:
        assert answered_by(p.post("solo,local-model")) == "from ds"
        assert p.ds.requests[-1].body["model"] == "local-model" and "x-api-key" not in p.ds.requests[-1].headers
        assert p.post("down,m").status_code == 403
    with Providers(monkeypatch, mix='reach = ["*"]') as p:
        assert answered_by(p.post("solo,local-model")) == "from ds"


def test_what_claude_says_a_request_is_for_routes_it_over_the_model_it_names(monkeypatch, capfd):
    """With CLAUDE_CODE_GATEWAY_HINT_HEADERS=1 claude names each request's class, and a subagent's type: the
    agent type wins, then the class, then the route or tier in the model name (which ccs run always sets)."""
    purposes = ', compaction = "ds,deepseek-reasoner", "agent:Explore" = "glm,glm-4.5-air", auxiliary = "glm,glm-4.6"'
    with Providers(monkeypatch, mix_models=purposes) as p:
        explore = {"x-claude-code-request-class": "subagent", "x-claude-code-agent-type": "Explore"}
        assert answered_by(p.post("gpt,gpt-5", headers=explore)) == "from glm"
        assert p.glm.requests[-1].body["model"] == "glm-4.5-air"
        other_agent = {"x-claude-code-request-class": "subagent", "x-claude-code-agent-type": "Plan"}
        assert answered_by(p.post("gpt,gpt-5", headers=other_agent)) == "from ds"  # the subagent class's route
        assert answered_by(p.post("claude-sonnet-4-6", headers={"x-claude-code-request-class": "compaction",
                                                                "x-claude-code-compaction": "manual"})) == "from ds"
        assert p.ds.requests[-1].body["model"] == "deepseek-reasoner"
        assert answered_by(p.post("claude-sonnet-4-6", headers={"x-claude-code-request-class": "main"})) == "from gpt"
        assert answered_by(p.post("claude-sonnet-4-6", headers={"x-claude-code-request-class": "AUXILIARY"})) \
            == "from glm"
        assert answered_by(p.post("claude-sonnet-4-6")) == "from gpt"  # no hint: the tier
    log = capfd.readouterr().err
    assert "gpt,gpt-5 [subagent Explore] -> glm,glm-4.5-air stream 200" in log
    assert "claude-sonnet-4-6 [compaction] -> ds,deepseek-reasoner stream 200" in log


def test_unroutable_models_are_clear_4xx_errors(monkeypatch):
    with Providers(monkeypatch, mix='reach = ["*"]') as p:
        missing = p.post("nobody,x")
        assert missing.status_code == 404 and "no profile named 'nobody'" in missing.json()["error"]["message"]
        login = p.post("max,claude-opus-4-5")
        assert login.status_code == 404 and "own login" in login.json()["error"]["message"]
        assert missing.headers["x-should-retry"] == "false"
        plain = p.post("some-model")  # a router with no provider of its own: only "profile,model"
        assert plain.status_code == 404 and "profile,model" in plain.json()["error"]["message"]


def test_pass_through_relays_the_stream_byte_for_byte_with_only_the_model_rewritten(monkeypatch):
    with Providers(monkeypatch) as p:
        direct = httpx2.post(p.glm.url + "/api/anthropic/v1/messages", json={"model": "glm-4.6"}, timeout=10)
        sent = {"model": "glm,glm-4.6", "max_tokens": 50, "stream": True, "metadata": {"user_id": "u"},
                "messages": [{"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {
                    "type": "ephemeral"}}]}], "thinking": {"type": "adaptive"}, "context_management": {"edits": []}}
        with httpx2.stream("POST", p.endpoint.url + "/v1/messages", json=sent, timeout=10, headers={
                "x-api-key": p.endpoint.token, "anthropic-beta": "fine-grained-tool-streaming-2025-05-14",
                "anthropic-version": "2023-06-01", "x-claude-code-session-id": "s-1"}) as relayed:
            body = relayed.read()
        assert body == direct.content  # the provider's bytes exactly (its model name included)
        seen = p.glm.requests[-1]
        assert seen.path == "/api/anthropic/v1/messages"
        assert seen.body == {**sent, "model": "glm-4.6"}
        assert seen.headers["authorization"] == f"Bearer {KEYS['GLM_KEY']}"
        assert seen.headers["anthropic-beta"] == "fine-grained-tool-streaming-2025-05-14"
        assert seen.headers["x-claude-code-session-id"] == "s-1"
        assert "x-api-key" not in seen.headers and p.endpoint.token not in json.dumps(seen.headers)
        p.post("haiku")
        assert p.ds.requests[-1].headers["x-api-key"] == KEYS["DS_KEY"]  # auth = "api-key": as claude would send it
        assert "authorization" not in p.ds.requests[-1].headers


def test_pass_through_errors_and_whole_answers(monkeypatch):
    def glm(seen):
        if seen.body.get("stream"):
            return json_reply({"type": "error", "error": {"type": "invalid_request_error",
                                                          "message": f"bad key {KEYS['GLM_KEY']}"}}, status=401)
        return json_reply({"id": "m", "type": "message", "role": "assistant", "model": "glm-4.6", "content": [
            {"type": "text", "text": "whole"}], "stop_reason": "end_turn", "usage": {"input_tokens": 2, "output_tokens": 1}})

    with Providers(monkeypatch, glm=glm) as p:
        whole = p.post("glm,glm-4.6", stream=False)
        assert whole.status_code == 200 and whole.json()["content"][0]["text"] == "whole"
        rejected = p.post("glm,glm-4.6")
        assert rejected.status_code == 401
        message = rejected.json()["error"]["message"]
        assert "ccs key set glm" in message and KEYS["GLM_KEY"] not in message  # masked, with the fix


@pytest.mark.parametrize("fault", ["429", "503", "529", "refused", "timeout"])
def test_falls_back_before_the_first_byte(monkeypatch, fault):
    replies = {"429": json_reply({"error": {"message": "slow down"}}, 429, {"retry-after": "1"}),
               "503": json_reply({"error": {"message": "overloaded"}}, 503),
               "529": json_reply({"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}, 529),
               "timeout": Reply(wait=3.0)}
    primary = "down,m" if fault == "refused" else "glm,glm-4.6"
    glm_extra = "timeout = 0.5" if fault == "timeout" else ""
    mix = f'model = "{primary}"\nfallback = ["gpt,gpt-5-mini", "ds,deepseek-chat"]'
    with Providers(monkeypatch, glm=lambda seen: replies[fault], mix=mix, glm_extra=glm_extra) as p:
        started = time.monotonic()
        response = p.post(primary)
        assert response.status_code == 200 and answered_by(response) == "from gpt"
        assert p.gpt.requests[-1].body["model"] == "gpt-5-mini" and not p.ds.requests
        assert time.monotonic() - started < 8


def test_no_fallback_after_the_first_byte(monkeypatch):
    cut = anthropic_text_stream("part", "glm-4.6")
    cut.chunks = cut.chunks[:3] + [0.05]
    cut.close_early = True
    with Providers(monkeypatch, glm=lambda seen: cut, mix='fallback = ["gpt,gpt-5"]') as p:
        response = p.post("glm,glm-4.6")
        assert response.status_code == 200 and answered_by(response) == "part"  # what was sent stays sent
        assert "message_stop" not in response.text  # claude sees a broken stream and retries it
        assert not p.gpt.requests


def test_a_failing_target_cools_down_then_is_tried_again(monkeypatch, capfd):
    answers = iter([json_reply({"error": {"message": "rate limited"}}, 429)] * 2)

    def glm(seen):
        return next(answers, None) or anthropic_text_stream("from glm", "glm-4.6")

    with Providers(monkeypatch, glm=glm, mix='fallback = ["gpt,gpt-5"]\ncooldown = 2') as p:
        assert answered_by(p.post("glm,glm-4.6")) == "from gpt"
        assert answered_by(p.post("glm,glm-4.6")) == "from gpt"  # straight to the healthy one
        assert len(p.glm.requests) == 1
        err, deadline = "", time.monotonic() + 5
        while "cooling down" not in err and time.monotonic() < deadline:  # logged just after the answer went
            time.sleep(0.01)
            err += capfd.readouterr().err
        lines = [line for line in err.splitlines() if " -> " in line]
        assert any("after glm,glm-4.6 (429) failed" in line for line in lines)
        assert any("glm,glm-4.6 cooling down" in line for line in lines)
        time.sleep(2.1)
        assert answered_by(p.post("glm,glm-4.6")) == "from gpt"  # tried again: still 429 (the second)
        assert answered_by(p.post("glm,glm-4.6")) == "from gpt"
        time.sleep(2.1)
        assert answered_by(p.post("glm,glm-4.6")) == "from glm"  # healthy again
        assert len(p.glm.requests) == 3


def test_every_target_failing_answers_the_last_error(monkeypatch):
    busy = json_reply({"error": {"message": "busy"}}, 503)
    with Providers(monkeypatch, glm=lambda seen: busy, gpt=lambda seen: busy, mix='fallback = ["gpt,gpt-5"]') as p:
        response = p.post("glm,glm-4.6")
        assert response.status_code == 503 and "busy" in response.json()["error"]["message"]


def test_thinking_signed_by_one_provider_is_not_sent_to_another(monkeypatch):
    with Providers(monkeypatch, glm=lambda seen: thinking_stream("sig-from-glm", "glm-4.6")) as p:
        p.post("glm,glm-4.6")
        tool_turn = [
            {"role": "user", "content": "list files"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig-from-glm"},
                {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "a b"}]},
        ]
        p.post("ds,deepseek-chat", messages=tool_turn, thinking={"type": "adaptive"})
        sent = p.ds.requests[-1].body
        assert [b["type"] for b in sent["messages"][1]["content"]] == ["tool_use"]
        assert "thinking" not in sent  # its tool turn lost its thinking: think afresh rather than be refused
        p.post("glm,glm-4.6", messages=tool_turn, thinking={"type": "adaptive"})
        back = p.glm.requests[-1].body
        assert back["messages"] == tool_turn and back["thinking"] == {"type": "adaptive"}  # its own: kept
        unknown = [tool_turn[0], {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "x", "signature": "sig-from-an-earlier-session"},
            {"type": "text", "text": "ok"}]}, {"role": "user", "content": "go on"}]
        p.post("ds,deepseek-chat", messages=unknown)
        assert p.ds.requests[-1].body["messages"] == unknown  # not known to be foreign: kept


def test_a_router_that_names_a_login_or_missing_profile_is_refused_at_start(monkeypatch):
    with pytest.raises(CcsError, match="own login"):
        Providers(monkeypatch, mix='fallback = ["max,claude-opus-4-5"]')
    with pytest.raises(CcsError, match="no profile named 'ghost'"):
        Providers(monkeypatch, mix='fallback = ["ghost,m"]')


def test_a_key_echoed_by_a_failing_provider_is_masked_in_the_fallback_log(monkeypatch, capfd):
    echo = json_reply({"error": {"message": f"bad header Bearer {KEYS['GLM_KEY']}"}}, 503)
    with Providers(monkeypatch, glm=lambda seen: echo, mix='fallback = ["gpt,gpt-5"]') as p:
        assert answered_by(p.post("glm,glm-4.6")) == "from gpt"
    err = capfd.readouterr().err
    assert "glm,glm-4.6 failed (503" in err and KEYS["GLM_KEY"] not in err


def test_without_its_thinking_a_tool_turn_goes_without_what_needs_thinking(monkeypatch):
    with Providers(monkeypatch, glm=lambda seen: thinking_stream("sig-from-glm", "glm-4.6")) as p:
        p.post("glm,glm-4.6")
        turn = [{"role": "user", "content": "go"},
                {"role": "assistant", "content": [{"type": "thinking", "thinking": "a", "signature": "sig-from-glm"}]},
                {"role": "user", "content": "and?"},
                {"role": "assistant", "content": [{"type": "thinking", "thinking": "b", "signature": "sig-from-glm"},
                                                  {"type": "tool_use", "id": "toolu_2", "name": "Bash", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_2", "content": "ok"}]}]
        p.post("ds,deepseek-chat", messages=turn, thinking={"type": "adaptive"}, context_management={
            "edits": [{"type": "clear_thinking_20251015", "keep": "all"}]})
        sent = p.ds.requests[-1].body
        assert [m["role"] for m in sent["messages"]] == ["user", "user", "assistant", "user"]  # no empty message
        assert "thinking" not in sent and "context_management" not in sent  # Anthropic refuses the edit alone


def test_thinking_of_unknown_origin_is_retried_without_once_refused(monkeypatch):
    def ds(seen):
        if any(b.get("type") == "thinking" for m in seen.body["messages"] if isinstance(m["content"], list)
               for b in m["content"]):
            return json_reply({"type": "error", "error": {"type": "invalid_request_error",
                                                          "message": "Invalid `signature` in `thinking` block"}}, 400)
        return anthropic_text_stream("from ds", seen.body["model"])

    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "x", "signature": "from-a-session-before"}, {"type": "text", "text": "hello"}]},
        {"role": "user", "content": "go on"}]
    with Providers(monkeypatch, ds=ds) as p:
        response = p.post("ds,deepseek-chat", messages=history)
        assert response.status_code == 200 and answered_by(response) == "from ds"
        assert len(p.ds.requests) == 2


def test_an_odd_stream_event_never_breaks_the_relay(monkeypatch):
    odd = anthropic_text_stream("still here", "glm-4.6")
    odd.chunks.insert(1, b'event: message_start\ndata: {"type": "message_start", "message": "weird"}\n\n')
    odd.chunks.insert(2, b'event: content_block_delta\ndata: {"type": "content_block_delta", "delta": 7}\n\n')
    with Providers(monkeypatch, glm=lambda seen: odd) as p:
        response = p.post("glm,glm-4.6")
        assert response.status_code == 200 and answered_by(response) == "still here" and "message_stop" in response.text


def test_targets_are_one_per_profile_and_model_whatever_case_or_default(monkeypatch):
    busy = json_reply({"error": {"message": "busy"}}, 503)
    with Providers(monkeypatch, glm=lambda seen: busy, mix='model = "glm,"\nfallback = ["GLM,glm-4.6", "gpt,gpt-5"]') as p:
        assert answered_by(p.post("glm,")) == "from gpt"
        assert len(p.glm.requests) == 1  # "glm," is glm's default, glm-4.6: tried once, not twice


def test_a_tier_the_router_does_not_name_follows_the_same_rule_as_ccs_run():
    from ccswitch import launch

    mix = profiles.resolve("mix", {"models": {"opus": "glm,glm-4.6"}})
    assert launch.model_env(mix)["ANTHROPIC_DEFAULT_HAIKU_MODEL"] == "glm,glm-4.6"
    router = Router(None, dict(mix.models), mix.model)
    assert router._target("claude-haiku-4-5") == ("glm", "glm-4.6") == router._target("claude-sonnet-4-5")


def test_a_profile_is_loaded_once_however_many_first_requests_ask(monkeypatch, tmp_path):
    counter = tmp_path / "lookups"
    extra = f'\n[profiles.kc]\nbase_url = "{{url}}"\nkey_cmd = "echo x >> {counter}; echo sk-kc-key"\n'
    with Providers(monkeypatch, mix='reach = ["kc"]') as p:
        p.config.profiles["kc"] = profiles.parse(extra.format(url=p.ds.url), Path("x")).get("kc")

        async def four():
            async with httpx2.AsyncClient(timeout=20) as client:
                return await asyncio.gather(*(client.post(
                    p.endpoint.url + "/v1/messages", headers={"x-api-key": p.endpoint.token},
                    json={"model": "kc,m", "max_tokens": 5, "stream": True,
                          "messages": [{"role": "user", "content": "hi"}]}) for _ in range(4)))

        assert [r.status_code for r in asyncio.run(four())] == [200] * 4
        assert counter.read_text().count("x") == 1
        assert p.ds.requests[-1].headers["authorization"] == "Bearer sk-kc-key"


def test_a_router_with_claudes_own_login_is_refused(monkeypatch):
    with pytest.raises(CcsError, match="own login"):
        Providers(monkeypatch, mix='auth = "login"')


def test_a_profiles_custom_headers_go_to_its_own_provider_only(monkeypatch):
    from ccswitch import launch
    from ccswitch.proxy.lifecycle import Endpoint

    with Providers(monkeypatch, glm_extra='env = { ANTHROPIC_CUSTOM_HEADERS = "X-Gateway-Team: core\\nX-Other: 1" }') as p:
        p.post("glm,glm-4.6")
        p.post("ds,deepseek-chat")
        assert p.glm.requests[-1].headers["x-gateway-team"] == "core" and p.glm.requests[-1].headers["x-other"] == "1"
        assert "x-gateway-team" not in p.ds.requests[-1].headers
        behind = launch.profile_env(p.config.get("glm"), None, Endpoint("http://127.0.0.1:9", "t"))
        assert "ANTHROPIC_CUSTOM_HEADERS" not in behind  # claude does not send them to the proxy at all


EXTRAS = ('headers = { X-Team = "core", anthropic-beta = "from-the-profile" }\n'
          'extra_body = { provider = { order = ["azure"], allow_fallbacks = false }, metadata = { team = "core" } }')


def test_a_profiles_headers_and_extra_body_reach_its_provider_whatever_its_api(monkeypatch):
    """Passed through (Anthropic's API) or translated (OpenAI's): the same headers beside the profile's key, the
    same fields merged into what the provider receives; never another profile's."""
    with Providers(monkeypatch, glm_extra=EXTRAS, gpt_extra=EXTRAS) as p:
        p.post("glm,glm-4.6", headers={"Anthropic-Beta": "from-claude"}, metadata={"user_id": "u1"})
        glm = p.glm.requests[-1]
        assert glm.headers["x-team"] == "core" and glm.headers["anthropic-beta"] == "from-the-profile"  # once
        assert glm.headers["authorization"] == "Bearer sk-glm-secret-1111"
        assert glm.body["provider"] == {"order": ["azure"], "allow_fallbacks": False}
        assert glm.body["metadata"] == {"user_id": "u1", "team": "core"}  # tables merge key by key
        assert glm.body["model"] == "glm-4.6" and glm.body["stream"] is True
        assert answered_by(p.post("gpt,gpt-5")) == "from gpt"
        gpt = p.gpt.requests[-1]
        assert gpt.headers["x-team"] == "core" and gpt.headers["authorization"] == "Bearer sk-gpt-secret-2222"
        assert gpt.body["provider"] == {"order": ["azure"], "allow_fallbacks": False}
        assert gpt.body["model"] == "gpt-5" and gpt.body["stream"] is True and gpt.body["messages"]
        p.post("ds,deepseek-chat")
        assert "x-team" not in p.ds.requests[-1].headers and "provider" not in p.ds.requests[-1].body


def test_a_header_that_carries_a_key_never_goes_from_custom_headers():
    """ANTHROPIC_CUSTOM_HEADERS in a profile's env is not validated like `headers`: an Authorization line there
    must not replace (or go beside) the profile's own key."""
    from ccswitch.proxy.upstream import Upstream

    glm = profiles.resolve("glm", {"preset": "zai", "headers": {"X-Team": "core"},
                                   "env": {"ANTHROPIC_CUSTOM_HEADERS": "authorization: Bearer other\nX-Api-Key: k2"}})
    sent = Upstream.from_profile(glm, "sk-glm", {}).headers()
    assert sent == {"X-Team": "core", "Authorization": "Bearer sk-glm"}
