"""`ccs test`, `ccs models` and doctor's router checks, against fake providers on real sockets."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import socket
import time

import pytest

from ccswitch import keys, profiles, trial
from conftest import ccs, write_config
from fakes import FakeServer, Reply, anthropic_sse, block, json_reply, message_end, message_start, sse
from proxy_harness import chunk

ANTHROPIC_KEY = "sk-ant-fake-key-4242"
OPENAI_KEY = "sk-openai-fake-key-5353"


@pytest.fixture(autouse=True)
def nothing_leaves_this_machine(no_keyring, monkeypatch):
    """Keys in the file store (which `ccs` subprocesses read too); a request that would go anywhere but
    127.0.0.1 meets a dead proxy on this machine instead of the network."""
    for var in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)


def anthropic_tool_stream(model: str) -> Reply:
    """An Anthropic Messages stream that calls get_weather, an event per write, thinking 0.2 s first."""
    return anthropic_sse([message_start(model, 30, "msg_1"),
                          *block(0, {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}, 0.2,
                                 {"type": "input_json_delta", "partial_json": '{"city": '},
                                 {"type": "input_json_delta", "partial_json": '"Paris"}'}),
                          *message_end("tool_use", 12)])


def openai_tool_stream() -> Reply:
    return Reply(200, {"Content-Type": "text/event-stream"}, sse([
        chunk({"role": "assistant", "content": ""}),
        chunk({"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "get_weather", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": "Paris"}'}}]}),
        chunk(finish="tool_calls"),
        {"choices": [], "usage": {"prompt_tokens": 40, "completion_tokens": 8}},
    ]))


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


@pytest.fixture
def openai_fake():
    """An OpenAI-API provider: Chat Completions streaming a tool call, and /models."""
    def answer(seen):
        if seen.headers.get("authorization") != f"Bearer {OPENAI_KEY}":
            return json_reply({"error": {"message": "Incorrect API key provided"}}, 401)
        if seen.method == "GET" and seen.path == "/v1/models":
            return json_reply({"object": "list", "data": [{"id": "gpt-main", "object": "model"},
                                                          {"id": "gpt-mini", "object": "model"}]})
        return openai_tool_stream()

    server = FakeServer(answer)
    yield server
    server.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_working_anthropic_api_profile(anthropic_fake):
    write_config(f"""
        version = 1
        [profiles.anth]
        base_url = "{anthropic_fake.url}"
        auth = "api-key"
        models = {{ sonnet = "a-big" }}
    """)
    keys.store_key("anth", ANTHROPIC_KEY)
    result = ccs("test", "anth", "--json")
    assert result.returncode == 0, result.stderr
    trial = json.loads(result.stdout)
    assert trial["result"] == "ok" and trial["status"] == 200 and trial["via"] == "proxy"  # as claude reaches it
    assert trial["model"] == "a-big" and trial["answered_by"] == "a-big" and trial["tool_use"] is True
    assert 200 <= trial["first_token_ms"] <= trial["total_ms"] and trial["diagnosis"] is None
    (seen,) = anthropic_fake.requests
    assert seen.path == "/v1/messages" and seen.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in seen.headers  # an api-key profile sends x-api-key only, as claude does
    assert seen.body["stream"] is True and seen.body["max_tokens"] <= 1024
    assert [tool["name"] for tool in seen.body["tools"]] == ["get_weather"]
    human = ccs("test", "anth", "--model", "a-small")
    assert human.returncode == 0 and "a-small" in human.stdout and "yes" in human.stdout
    assert ANTHROPIC_KEY not in result.stdout + human.stdout + human.stderr


@pytest.mark.parametrize("status, says", [
    (401, "the key was rejected: `ccs key set bad`"),
    (403, "the key was rejected: `ccs key set bad`"),
    (404, "wrong base_url or model: `ccs models bad`"),
    (429, "rate limited or out of credit"),
    (503, "the provider failed or could not be reached"),
])
def test_a_failing_provider_is_diagnosed(status, says):
    def answer(seen):  # quoting the key back, as some providers do
        return json_reply({"type": "error", "error": {"message": f"nope {status}: {seen.headers['authorization']}"}},
                          status)

    server = FakeServer(answer)
    try:
        write_config(f"""
            version = 1
            [profiles.bad]
            base_url = "{server.url}"
        """)
        keys.store_key("bad", "sk-bad-key-0000")
        result = ccs("test", "bad", "--json")
    finally:
        server.close()
    assert result.returncode == 1
    trial = json.loads(result.stdout)
    assert trial["result"] == "failed" and trial["status"] == status
    assert says in trial["diagnosis"] and f"nope {status}: Bearer sk-…0000" in trial["diagnosis"]
    assert server.requests[0].headers["authorization"] == "Bearer sk-bad-key-0000"
    assert "sk-bad-key-0000" not in result.stdout + result.stderr


def test_nothing_listening_says_so():
    write_config(f"""
        version = 1
        [profiles.local]
        base_url = "http://127.0.0.1:{closed_port()}"
        auth = "none"
    """)
    result = ccs("test", "local")
    assert result.returncode == 1
    assert "!!  local: cannot connect" in result.stdout and "is the server running?" in result.stdout


def test_an_openai_api_profile_is_tested_through_its_proxy(openai_fake):
    write_config(f"""
        version = 1
        [profiles.gpt]
        preset = "openai-chat"
        base_url = "{openai_fake.url}/v1"
        model = "gpt-main"
    """)
    keys.store_key("gpt", OPENAI_KEY)
    result = ccs("test", "gpt", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    trial = json.loads(result.stdout)
    assert trial["via"] == "proxy" and trial["url"].startswith("http://127.0.0.1:")
    assert trial["result"] == "ok" and trial["tool_use"] is True and trial["answered_by"] == "gpt-main"
    assert trial["first_token_ms"] is not None and trial["log"].endswith("proxy.log")
    (seen,) = openai_fake.requests
    assert seen.path == "/v1/chat/completions" and seen.body["model"] == "gpt-main"
    assert seen.body["tools"][0]["function"]["name"] == "get_weather"


def write_router(anthropic_fake, openai_fake, mix: str, gpt_key: str) -> None:
    """Profiles `anth` (Anthropic API) and `gpt` (OpenAI API) with their keys, and a router `mix` whose haiku
    goes to anth, with `mix` lines of its own."""
    write_config(f"""
        version = 1
        [profiles.anth]
        base_url = "{anthropic_fake.url}"
        auth = "api-key"
        [profiles.gpt]
        preset = "openai-chat"
        base_url = "{openai_fake.url}/v1"
        [profiles.mix]
        models = {{ haiku = "anth,a-small" }}
    """ + mix)
    keys.store_key("anth", ANTHROPIC_KEY)
    keys.store_key("gpt", gpt_key)


def test_a_router_is_tested_through_its_proxy_to_the_target(anthropic_fake, openai_fake):
    write_router(anthropic_fake, openai_fake, 'model = "gpt,gpt-mini"', gpt_key=OPENAI_KEY)
    default = json.loads(ccs("test", "mix", "--json").stdout)
    assert default["result"] == "ok" and default["model"] == "gpt,gpt-mini" and default["via"] == "proxy"
    assert openai_fake.requests[-1].body["model"] == "gpt-mini"
    other = json.loads(ccs("test", "mix", "--model", "anth,a-small", "--json").stdout)
    assert other["result"] == "ok" and other["answered_by"] == "a-small"


def test_all_profiles_at_once(anthropic_fake):
    write_config(f"""
        version = 1
        [profiles.good]
        base_url = "{anthropic_fake.url}"
        auth = "api-key"
        model = "a-big"
        [profiles.wrongkey]
        base_url = "{anthropic_fake.url}"
        auth = "api-key"
        [profiles.sub]
        preset = "claude"
        [profiles.router]
        model = "nosuch,x"
    """)
    keys.store_key("good", ANTHROPIC_KEY)
    keys.store_key("wrongkey", "sk-ant-wrong-0001")
    result = ccs("test", "--all", "--json")
    assert result.returncode == 1
    trials = {trial["profile"]: trial for trial in json.loads(result.stdout)}
    assert trials["good"]["result"] == "ok"
    assert trials["wrongkey"]["result"] == "failed" and "ccs key set wrongkey" in trials["wrongkey"]["diagnosis"]
    assert trials["sub"]["result"] == "skipped" and "claude's own login" in trials["sub"]["diagnosis"]
    assert trials["router"]["result"] == "failed" and "no profile named 'nosuch'" in trials["router"]["diagnosis"]
    table = ccs("test", "--all")
    assert table.returncode == 1
    assert "!!  wrongkey: the key was rejected" in table.stdout and "-   sub: " in table.stdout


def test_all_good_exits_zero_and_skipped_ones_do_not_count(anthropic_fake):
    write_config(f"""
        version = 1
        [profiles.good]
        base_url = "{anthropic_fake.url}"
        auth = "api-key"
        [profiles.sub]
        preset = "claude"
    """)
    keys.store_key("good", ANTHROPIC_KEY)
    assert ccs("test", "--all").returncode == 0


def test_a_provider_that_never_answers_costs_the_time_limit_only():
    server = FakeServer(lambda seen: Reply(200, {"Content-Type": "text/event-stream"}, [30.0]))
    silent = FakeServer(lambda seen: Reply(wait=30.0))
    try:
        config = profiles.load(write_config(f"""
            version = 1
            [profiles.stalls]
            base_url = "{server.url}"
            auth = "none"
            direct = true
            [profiles.silent]
            base_url = "{silent.url}"
            auth = "none"
            direct = true
        """))
        started = time.monotonic()
        trials = trial.try_profiles(config, list(config.profiles.values()), timeout=1.0)
        assert time.monotonic() - started < 5
    finally:
        server.close()
        silent.close()
    assert [(trial.result, trial.status) for trial in trials] == [("failed", 200), ("failed", None)]
    assert trials[0].diagnosis == "no complete answer within 1 s"
    assert "no complete answer within 1 s: is the server up?" in trials[1].diagnosis


def test_user_errors_are_one_line():
    write_config("""
        version = 1
        [profiles.sub]
        preset = "claude"
    """)
    login = ccs("test", "sub")
    assert login.returncode == 2 and "claude's own login" in login.stderr and "ccs run sub" in login.stderr
    unknown = ccs("test", "nosuch")
    assert unknown.returncode == 2 and "no profile named 'nosuch'" in unknown.stderr
    neither = ccs("test")
    assert neither.returncode == 2 and "give a profile name or --all" in neither.stderr
    assert ccs("models", "sub").returncode == 2


def test_models_of_both_apis_mark_what_the_profile_uses(anthropic_fake, openai_fake):
    write_config(f"""
        version = 1
        [profiles.anth]
        base_url = "{anthropic_fake.url}"
        auth = "api-key"
        model = "a-big"
        models = {{ opus = "a-big", haiku = "a-typo" }}
        [profiles.gpt]
        preset = "openai-chat"
        base_url = "{openai_fake.url}/v1"
        model = "gpt-main"
        models = {{ haiku = "gpt-mini" }}
    """)
    keys.store_key("anth", ANTHROPIC_KEY)
    keys.store_key("gpt", OPENAI_KEY)
    anth = ccs("models", "anth", "--json")
    assert anth.returncode == 0, anth.stderr
    (listing,) = json.loads(anth.stdout)
    assert listing["url"] == f"{anthropic_fake.url}/v1/models" and listing["problem"] is None
    assert listing["models"] == [{"id": "a-big", "used_as": ["model", "opus"], "listed": True, "context": None},
                                 {"id": "a-small", "used_as": [], "listed": True, "context": None},
                                 {"id": "a-typo", "used_as": ["haiku"], "listed": False, "context": None}]
    assert anthropic_fake.requests[-1].path == "/v1/models?limit=1000"
    gpt = ccs("models", "gpt")
    assert gpt.returncode == 0, gpt.stderr
    assert f"gpt: {openai_fake.url}/v1/models (2 models)" in gpt.stdout
    assert re.search(r"^\*  gpt-main\s+model\s*$", gpt.stdout, re.M) and re.search(r"^\*  gpt-mini\s+haiku\s*$", gpt.stdout, re.M)
    assert re.search(r"^!  gpt-5.6-sol\s+opus, sonnet, subagent \(not listed\)", gpt.stdout, re.M)  # the preset's
    assert openai_fake.requests[-1].path == "/v1/models"
    human = ccs("models", "anth")
    assert "a-typo" in human.stdout and "haiku (not listed)" in human.stdout


def test_models_of_a_router_are_its_targets_in_turn(anthropic_fake, openai_fake):
    write_router(anthropic_fake, openai_fake, 'model = "GPT,gpt-main"\nfallback = ["gone,x"]', gpt_key="sk-wrong-0002")
    result = ccs("models", "mix", "--json")
    assert result.returncode == 1  # one target could not be asked
    lists = {listing["profile"]: listing for listing in json.loads(result.stdout)}
    assert list(lists) == ["gpt", "anth", "gone"]
    assert "ccs key set gpt" in lists["gpt"]["problem"] and "Incorrect API key" in lists["gpt"]["problem"]
    assert {m["id"]: m["used_as"] for m in lists["anth"]["models"]} == {"a-big": [], "a-small": ["haiku"]}
    assert lists["gone"]["problem"] == "no profile named 'gone'"


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
    keys.store_key("anth", ANTHROPIC_KEY)
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
    assert [f["detail"] for f in by_check["anth"]] == ["the key works (2 models)"]  # the target, probed as itself
    (saved,) = by_check[str(config_dir / "settings.json")]
    assert saved["level"] == "warn" and '"model": "anth,a-big"' in saved["detail"]
    assert 'remove "model" from this file' in saved["detail"]
    assert [seen.path for seen in anthropic_fake.requests] == ["/v1/models?limit=1000"]  # no router probed as a provider
    offline = json.loads(ccs("doctor", "--offline", "--json", env={"CLAUDE_CONFIG_DIR": str(config_dir)}).stdout)
    assert {"mix", "fine", str(config_dir / "settings.json")} <= {f["check"] for f in offline}


def test_an_odd_stream_is_a_diagnosis_not_a_traceback():
    odd = anthropic_sse([{"type": "message_start", "message": "weird"}, {"type": "content_block_start",
                                                                          "content_block": 3},
                         {"type": "message_delta", "delta": None}, {"type": "message_stop"}])
    server = FakeServer(lambda seen: odd)
    try:
        write_config(f"""
            version = 1
            [profiles.odd]
            base_url = "{server.url}"
            auth = "none"
        """)
        result = ccs("test", "odd", "--json")
    finally:
        server.close()
    assert "Traceback" not in result.stderr
    trial = json.loads(result.stdout)
    assert trial["result"] == "ok" and trial["tool_use"] is False and "without calling the tool" in trial["diagnosis"]


def test_doctor_names_a_claude_newer_than_the_tested_release_and_the_agent_sdks_own(tmp_path, monkeypatch):
    from ccswitch.claude import TESTED_RELEASE

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "claude"
    fake.write_text("#!/bin/sh\necho '2.9.0 (Claude Code)'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    write_config("version = 1\n")
    findings = json.loads(ccs("doctor", "--offline", "--json").stdout)
    (newer,) = [f for f in findings if f["check"] == "claude"]
    assert newer["level"] == "warn" and "2.9.0" in newer["detail"] and TESTED_RELEASE in newer["detail"]
    if importlib.util.find_spec("claude_agent_sdk"):  # the test extra installs it; its claude needs no PATH
        (bundled,) = [f for f in findings if f["check"] == "claude (Agent SDK)"]
        assert "_bundled/claude" in bundled["detail"] and re.search(r"\d+\.\d+\.\d+", bundled["detail"])


CLOUD_VARIABLES = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                   "AWS_BEARER_TOKEN_BEDROCK", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE",
                   "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                   "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "GOOGLE_APPLICATION_CREDENTIALS", "CLOUDSDK_CONFIG",
                   "ANTHROPIC_FOUNDRY_API_KEY", "ANTHROPIC_FOUNDRY_AUTH_TOKEN", "AZURE_CONFIG_DIR", "AZURE_CLIENT_ID")
CLOUDS = """
    version = 1
    [profiles.aws]
    preset = "bedrock"
    aws_profile = "work"
    [profiles.aws-default]
    preset = "mantle"
    [profiles.gcp]
    preset = "vertex"
    project = "my-project"
    [profiles.az]
    preset = "foundry"
    resource = "team-claude"
"""


def cloud_findings(**env) -> dict[str, tuple[str, str]]:
    result = ccs("doctor", "--json", env=env)
    return {f["check"]: (f["level"], f["detail"]) for f in json.loads(result.stdout)
            if f["check"] in ("aws", "aws-default", "gcp", "az")}


def test_doctor_finds_the_credentials_claude_signs_a_clouds_requests_with(monkeypatch, tmp_path):
    """Where each cloud's SDK looks, under a HOME of the test's own, without asking the network (the profiles
    are never probed: claude signs their requests, ccs has nothing to ask with)."""
    from pathlib import Path

    for var in CLOUD_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    write_config(CLOUDS)
    home = Path.home()
    found = cloud_findings()
    assert found["aws"][0] == "fail" and "AWS profile 'work' is in neither" in found["aws"][1]
    assert "aws configure --profile work" in found["aws"][1]
    assert found["aws-default"][0] == "warn" and "no AWS credentials here" in found["aws-default"][1]
    assert found["gcp"][0] == "warn" and "gcloud auth application-default login" in found["gcp"][1]
    assert found["az"][0] == "warn" and "az login" in found["az"][1]

    (home / ".aws").mkdir()
    (home / ".aws" / "config").write_text("[default]\nregion = us-east-1\n\n[profile work]\nsso_session = corp\n")
    (home / ".config" / "gcloud").mkdir(parents=True)
    (home / ".config" / "gcloud" / "application_default_credentials.json").write_text("{}")
    (home / ".azure").mkdir()
    (home / ".azure" / "msal_token_cache.json").write_text("{}")
    found = cloud_findings()
    assert found["aws"] == ("ok", f"Amazon Bedrock: AWS profile 'work' ({home}/.aws/credentials or "
                                  f"{home}/.aws/config)")
    assert found["aws-default"][0] == "ok" and "'default'" in found["aws-default"][1]
    assert found["gcp"][0] == "ok" and "application_default_credentials.json" in found["gcp"][1]
    assert found["az"][0] == "ok" and "Azure CLI" in found["az"][1]

    missing = tmp_path / "gone.json"
    found = cloud_findings(GOOGLE_APPLICATION_CREDENTIALS=str(missing), AWS_BEARER_TOKEN_BEDROCK="bedrock-key",
                           ANTHROPIC_FOUNDRY_API_KEY="foundry-key")
    assert found["gcp"] == ("fail", f"Google Vertex AI: $GOOGLE_APPLICATION_CREDENTIALS names {missing}, which is "
                                    "not a file")
    assert found["aws"][0] == "ok" and "AWS_BEARER_TOKEN_BEDROCK" in found["aws"][1]
    assert found["az"] == ("ok", "Microsoft Foundry: $ANTHROPIC_FOUNDRY_API_KEY")
    assert "foundry-key" not in ccs("doctor", "--json", env={"ANTHROPIC_FOUNDRY_API_KEY": "foundry-key"}).stdout


def test_show_says_what_a_cloud_profile_is_and_test_skips_it(monkeypatch):
    write_config(CLOUDS)
    shown = ccs("show", "aws")
    assert shown.returncode == 0
    text = " ".join(shown.stdout.split())
    assert "claude talks to Amazon Bedrock itself, signed with your AWS credentials" in text
    assert "CLAUDE_CODE_USE_BEDROCK=1 AWS_REGION=us-east-1 AWS_PROFILE=work" in text
    assert json.loads(ccs("show", "gcp", "--json").stdout)["project"] == "my-project"
    tried = ccs("test", "gcp")
    assert tried.returncode == 2 and "signed in by claude itself, with your Google Cloud credentials" in tried.stderr
