"""The proxy as users start it: `ccs run` for an OpenAI profile, and `ccs proxy` in the foreground."""

from __future__ import annotations

import json
import logging
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import anthropic
import httpx2
import pytest

from conftest import assert_sigterm_reaches_claude, ccs, imported_modules, write_config
from fakes import FakeServer, json_reply

UPSTREAM_KEY = "sk-upstream-secret-31337"
ANSWER = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "hi from upstream"},
                       "finish_reason": "stop"}], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}

CHILD = """
import json, os, urllib.request
request = urllib.request.Request(os.environ["ANTHROPIC_BASE_URL"] + "/v1/messages", method="POST",
    data=json.dumps({"model": "claude-haiku-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}).encode(),
    headers={"authorization": "Bearer " + os.environ["ANTHROPIC_AUTH_TOKEN"], "content-type": "application/json"})
answer = json.load(urllib.request.urlopen(request))
print(json.dumps({"env": dict(os.environ), "answer": answer}))
"""


@pytest.fixture
def provider(no_keyring):
    """A fake OpenAI provider on a real socket, and profile `gpt` pointing at it with its key stored."""
    server = FakeServer(lambda seen: json_reply(ANSWER))
    write_config(f"""
        version = 1
        [profiles.gpt]
        preset = "openai-chat"
        base_url = "{server.url}/v1"
        models = {{ haiku = "gpt-mini" }}
    """)
    assert ccs("key", "set", "gpt", "--stdin", input=UPSTREAM_KEY).returncode == 0
    yield server
    server.close()


def start_proxy(*python_flags: str) -> tuple[subprocess.Popen, dict]:
    """`ccs proxy gpt --json` as a process, and the {base_url, token} line it prints once serving."""
    proxy = subprocess.Popen([sys.executable, *python_flags, "-m", "ccswitch", "proxy", "gpt", "--json"],
                             env=os.environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proxy, json.loads(proxy.stdout.readline())


def test_run_gives_the_child_only_the_session_token(provider):
    result = ccs("run", "gpt", "--", sys.executable, "-c", CHILD,
                 env={"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": "corp"})
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    env = seen["env"]
    assert env["ANTHROPIC_BASE_URL"].startswith("http://127.0.0.1:")
    assert env["ANTHROPIC_AUTH_TOKEN"].startswith("ccs-") and env["ANTHROPIC_API_KEY"] == ""
    assert UPSTREAM_KEY not in json.dumps(env)
    assert env["ANTHROPIC_DEFAULT_HAIKU_MODEL"] == "gpt-mini"
    assert env["NO_PROXY"] == "corp,127.0.0.1,localhost" and env["no_proxy"] == "127.0.0.1,localhost"
    assert seen["answer"]["content"][0]["text"] == "hi from upstream"
    (request,) = provider.requests
    assert request.headers["authorization"] == f"Bearer {UPSTREAM_KEY}" and request.body["model"] == "gpt-mini"


def test_a_key_env_key_stays_in_ccs_behind_the_proxy(provider):
    write_config(f"""
        version = 1
        [profiles.gpt]
        preset = "openai-chat"
        base_url = "{provider.url}/v1"
        key_env = "OPENAI_API_KEY"
    """)
    result = ccs("run", "gpt", "--", sys.executable, "-c", CHILD, env={"OPENAI_API_KEY": UPSTREAM_KEY})
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert "OPENAI_API_KEY" not in seen["env"] and UPSTREAM_KEY not in json.dumps(seen["env"])
    assert seen["env"]["ANTHROPIC_AUTH_TOKEN"].startswith("ccs-")
    assert provider.requests[-1].headers["authorization"] == f"Bearer {UPSTREAM_KEY}"


def test_ccs_proxy_serves_in_the_foreground_and_exits_cleanly(provider):
    proxy, info = start_proxy()
    assert set(info) == {"base_url", "token"} and info["base_url"].startswith("http://127.0.0.1:")
    client = anthropic.Anthropic(base_url=info["base_url"], api_key=info["token"], max_retries=0)
    message = client.messages.create(model="gpt-4.1", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert message.content[0].text == "hi from upstream"
    assert provider.requests[0].body["model"] == "gpt-4.1"
    proxy.send_signal(signal.SIGTERM)
    assert proxy.wait(10) == 0
    assert UPSTREAM_KEY not in proxy.stdout.read() + proxy.stderr.read()


def test_ccs_proxy_prints_a_line_per_request_unless_quiet(provider):
    proxy, info = start_proxy()
    client = anthropic.Anthropic(base_url=info["base_url"], api_key=info["token"], max_retries=0)
    client.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    proxy.send_signal(signal.SIGTERM)
    assert proxy.wait(10) == 0
    lines = [line for line in proxy.stderr.read().splitlines() if "->" in line]
    assert len(lines) == 1 and "claude-haiku-4-5 -> gpt,gpt-mini whole 200 in 3 (+0 cached) out 2" in lines[0]
    quiet = subprocess.Popen([sys.executable, "-m", "ccswitch", "proxy", "gpt", "--json", "--quiet"], env=os.environ,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    info = json.loads(quiet.stdout.readline())
    anthropic.Anthropic(base_url=info["base_url"], api_key=info["token"], max_retries=0).messages.create(
        model="claude-haiku-4-5", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    quiet.send_signal(signal.SIGTERM)
    assert quiet.wait(10) == 0 and "->" not in quiet.stderr.read()


def test_ccs_run_writes_the_request_lines_to_the_proxy_log(provider):
    """Its lines may quote a provider's error, which may quote a prompt: for this user alone."""
    state = Path(os.environ["CCS_HOME"]) / "state"
    state.mkdir(parents=True, exist_ok=True)
    state.chmod(0o755)  # as an older ccs left it
    (state / "proxy.log").write_text("")
    (state / "proxy.log").chmod(0o644)
    assert ccs("run", "gpt", "--", sys.executable, "-c", CHILD).returncode == 0
    log = (state / "proxy.log").read_text()
    assert "claude-haiku-4-5 -> gpt,gpt-mini whole 200" in log
    assert stat.S_IMODE(state.stat().st_mode) == 0o700 and stat.S_IMODE((state / "proxy.log").stat().st_mode) == 0o600


def test_the_rotated_proxy_log_is_private_too(tmp_path):
    from ccswitch.proxy import proxy_log

    handler = proxy_log.handler(str(tmp_path / "proxy.log"), quiet=False)
    handler.maxBytes = 100
    try:
        for number in range(20):
            logging.getLogger("ccswitch.proxy").info("line %d of the log, long enough to rotate", number)
    finally:
        handler.close()
    logs = sorted(tmp_path.glob("proxy.log*"))
    assert [path.name for path in logs] == ["proxy.log", "proxy.log.1"]
    assert {stat.S_IMODE(path.stat().st_mode) for path in logs} == {0o600}


def test_ccs_proxy_is_a_lean_process(provider):
    """`ccs proxy` skips Typer and Rich: it is measured as a standalone server (memory, start-up)."""
    proxy, _ = start_proxy("-X", "importtime")
    proxy.send_signal(signal.SIGINT)  # Ctrl-C stops it as cleanly as SIGTERM
    assert proxy.wait(10) == 0
    imported = imported_modules(proxy.stderr.read())
    assert "aiohttp" in imported
    assert not {"typer", "rich", "pydantic", "tomlkit", "uvicorn", "httpx2", "httpx", "anyio"} & imported


def test_ccs_proxy_serves_a_native_profile_and_refuses_claudes_login(no_keyring):
    """Behind the proxy a native profile's key stays in ccs; claude's own login only claude can send."""
    write_config('version = 1\n[profiles.glm]\npreset = "zai"\n[profiles.max]\npreset = "claude"\n')
    assert "no key stored for profile 'glm'" in ccs("proxy", "glm").stderr  # served, once it has its key
    result = ccs("proxy", "max")
    assert result.returncode == 2 and "claude's own login" in result.stderr


def test_signals_reach_claude_while_the_proxy_threads_run(provider, claude_stub):
    """The proxy's threads share the process: a SIGTERM landing on one must still be forwarded."""
    assert_sigterm_reaches_claude("gpt")
    assert claude_stub()["env"]["ANTHROPIC_BASE_URL"].startswith("http://127.0.0.1:")


def test_a_proxy_whose_stderr_nobody_reads_keeps_serving(provider):
    """An IDE may start `ccs proxy` and never read its stderr: once that pipe is full (64 KB, some 600
    request lines), a log written from the event loop would stall every request."""
    proxy, info = start_proxy()  # stderr is a pipe that this test never reads
    try:
        with httpx2.Client(timeout=10) as client:
            for _ in range(1500):
                answer = client.post(info["base_url"] + "/v1/messages", headers={"x-api-key": info["token"]},
                                     json={"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]})
                assert answer.status_code == 200
    finally:
        proxy.send_signal(signal.SIGTERM)
        proxy.wait(10)
