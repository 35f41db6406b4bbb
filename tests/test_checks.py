"""Doctor's router checks, against fake providers on real sockets."""

from __future__ import annotations

import json

import pytest

from ccswitch import secrets
from conftest import ccs, write_config
from fakes import FakeServer, Reply, json_reply

ANTHROPIC_KEY = "sk-ant-fake-key-4242"


@pytest.fixture(autouse=True)
def nothing_leaves_this_machine(no_keyring, monkeypatch):
    """Keys in the file store (which `ccs` subprocesses read too); a request that would go anywhere but
    127.0.0.1 meets a dead proxy on this machine instead of the network."""
    for var in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)


def event(name: str, data: dict) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def anthropic_tool_stream(model: str) -> Reply:
    """An Anthropic Messages stream that calls get_weather, an event per write, thinking 0.2 s first."""
    return Reply(200, {"Content-Type": "text/event-stream"}, [
        event("message_start", {"type": "message_start", "message": {
            "id": "msg_1", "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "usage": {"input_tokens": 30, "output_tokens": 1}}}),
        event("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {
            "type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}}),
        0.2,
        event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                      "delta": {"type": "input_json_delta", "partial_json": '{"city": '}}),
        event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                      "delta": {"type": "input_json_delta", "partial_json": '"Paris"}'}}),
        event("content_block_stop", {"type": "content_block_stop", "index": 0}),
        event("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use"},
                                "usage": {"output_tokens": 12}}),
        event("message_stop", {"type": "message_stop"}),
    ])


@pytest.fixture
def anthropic_fake():
    """An Anthropic-API provider: a stream with a tool call for the right key, 401 for another, and a model list."""
    def answer(seen):
        if seen.headers.get("x-api-key") != ANTHROPIC_KEY:
            return json_reply({"type": "error", "error": {"type": "authentication_error",
                                                          "message": "invalid x-api-key"}}, 401)
        if seen.method == "GET" and seen.path.startswith("/v1/models"):
            return json_reply({"data": [{"type": "model", "id": "a-big"}, {"type": "model", "id": "a-small"}],
                               "has_more": False})
        return anthropic_tool_stream(seen.body["model"])

    server = FakeServer(answer)
    yield server
    server.close()


def test_doctor_checks_routers_and_a_saved_route_model(anthropic_fake, claude_stub, tmp_path):
    write_config(f"""
        version = 1
        [profiles.anth]
        base_url = "{anthropic_fake.url}"
        auth = "api-key"
        [profiles.mix]
        model = "anth,a-big"
        models = {{ haiku = "nosuch,x" }}
        [profiles.fine]
        models = {{ sonnet = "anth,a-big" }}
    """)
    secrets.store_key("anth", ANTHROPIC_KEY)
    config_dir = tmp_path / "claude-config"
    config_dir.mkdir()
    (config_dir / "settings.json").write_text(json.dumps({"model": "anth,a-big", "theme": "dark"}))
    result = ccs("doctor", "--json", env={"CLAUDE_CONFIG_DIR": str(config_dir)})
    assert result.returncode == 1
    findings = json.loads(result.stdout)
    by_check = {}
    for finding in findings:
        by_check.setdefault(finding["check"].split(":")[0], []).append(finding)
    assert [(f["level"], f["detail"]) for f in by_check["mix"]] == [("fail", "route 'nosuch,x': no profile named 'nosuch'")]
    assert [(f["level"], f["detail"]) for f in by_check["fine"]] == [("ok", "routes to anth")]
    assert [f["detail"] for f in by_check["anth"]] == ["the key works"]  # the target, probed as itself
    (saved,) = by_check[str(config_dir / "settings.json")]
    assert saved["level"] == "warn" and '"model": "anth,a-big"' in saved["detail"]
    assert 'remove "model" from this file' in saved["detail"]
    assert [seen.path for seen in anthropic_fake.requests] == ["/v1/models"]  # no router probed as a provider
    offline = json.loads(ccs("doctor", "--offline", "--json", env={"CLAUDE_CONFIG_DIR": str(config_dir)}).stdout)
    assert {"mix", "fine", str(config_dir / "settings.json")} <= {f["check"] for f in offline}
