"""A provider key stays where it belongs: the 0600 store (or the keyring) and the ccs process. It is in no
process's command line, no child's environment behind the proxy, no log, no traceback, no output
without --reveal, no other file."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from conftest import ccs, write_config
from fakes import FakeServer, json_reply
from proxy_harness import SIMPLE, Harness, completion

KEY = "sk-provider-secret-5f3a9c1e7d"

CHILD = """
import json, os, urllib.error, urllib.request
def ask(content):
    body = json.dumps({"model": "claude-haiku-4-5", "max_tokens": 5,
                       "messages": [{"role": "user", "content": content}]}).encode()
    request = urllib.request.Request(os.environ["ANTHROPIC_BASE_URL"] + "/v1/messages", data=body, method="POST",
        headers={"authorization": "Bearer " + os.environ["ANTHROPIC_AUTH_TOKEN"], "content-type": "application/json"})
    try:
        return urllib.request.urlopen(request).read().decode()
    except urllib.error.HTTPError as e:
        return e.read().decode()
command_lines = []
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        command_lines.append(open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace"))
    except OSError:
        pass
print(json.dumps({"env": dict(os.environ), "command_lines": command_lines,
                  "answers": [ask("fine"), ask("echo the key"), ask("break")]}))
"""


def provider(seen):
    """Answers, or rejects the key by quoting it back (some providers do), or fails inside the proxy."""
    content = seen.body["messages"][-1]["content"]
    if content == "echo the key":
        return json_reply({"error": {"message": f"Incorrect API key provided: {KEY}"}}, 401)
    if content == "break":
        return json_reply({"choices": [{"message": {"role": "assistant", "content": "x"}, "finish_reason": 7}]})
    return json_reply(completion("fine"))


def everything_written(*roots: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for root in roots if root.exists() for path in root.rglob("*") if path.is_file()}


def test_the_key_stays_in_ccs_behind_the_proxy(no_keyring, tmp_path):
    fake = FakeServer(provider)
    try:
        write_config(f'version = 1\n[profiles.gpt]\npreset = "openai-chat"\nbase_url = "{fake.url}/v1"\n')
        assert ccs("key", "set", "gpt", "--stdin", input=KEY).returncode == 0
        result = ccs("run", "gpt", "--", sys.executable, "-c", CHILD)
    finally:
        fake.close()
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert KEY not in json.dumps(seen["env"])  # the child holds only the session token
    assert seen["env"]["ANTHROPIC_AUTH_TOKEN"].startswith("ccs-")
    assert not [line for line in seen["command_lines"] if KEY in line]
    fine, echoed, broken = (json.loads(answer) for answer in seen["answers"])
    assert fine["content"][0]["text"] == "fine"
    assert echoed["error"]["type"] == "authentication_error" and "sk-…1e7d" in echoed["error"]["message"]
    assert broken["type"] == "error"
    assert KEY not in result.stdout + result.stderr
    assert all(request.headers["authorization"] == f"Bearer {KEY}" for request in fake.requests)

    files = everything_written(Path(os.environ["CCS_HOME"]), Path.home(), tmp_path / "bin")
    holding = [path for path, content in files.items() if KEY.encode() in content]
    assert [path.name for path in holding] == ["secrets.json"]
    assert stat.S_IMODE(holding[0].stat().st_mode) == 0o600
    log = Path(os.environ["CCS_HOME"]) / "state" / "proxy.log"
    assert "answered 401" in log.read_text()  # the log has the errors, without the key


def test_no_output_shows_the_key_without_reveal(no_keyring):
    write_config('version = 1\n[profiles.glm]\npreset = "zai"\n[profiles.gpt]\npreset = "openai"\n')
    for name in ("glm", "gpt"):
        assert ccs("key", "set", name, "--stdin", input=KEY).returncode == 0
    for args in (("list",), ("list", "--json"), ("show", "glm"), ("show", "gpt", "--json"), ("env", "glm"),
                 ("env", "glm", "--shell", "json"), ("doctor",), ("current",)):
        result = ccs(*args)
        assert KEY not in result.stdout + result.stderr, args
    assert KEY in ccs("env", "glm", "--reveal").stdout
    assert ccs("key", "print", "glm").stdout.strip() == KEY  # the one command meant to print it


BREAK_AFTER_THE_KEY_IS_READ = """
import sys
from ccswitch import launch, cli, keys
real_require = keys.require
def require_then_break(*args):
    secret = real_require(*args)
    raise RuntimeError("an internal bug, with the key in a local variable")
keys.require = require_then_break
from ccswitch.__main__ import main
main(sys.argv[1:])
"""


def test_a_traceback_never_shows_the_key(no_keyring):
    """Internal errors may print a traceback; neither Typer's (locals off) nor Python's shows values."""
    write_config('version = 1\n[profiles.glm]\npreset = "zai"\n')
    assert ccs("key", "set", "glm", "--stdin", input=KEY).returncode == 0
    for args in (["run", "glm", "--", "true"], ["key", "print", "glm"], ["env", "glm"]):
        result = subprocess.run([sys.executable, "-c", BREAK_AFTER_THE_KEY_IS_READ, *args], capture_output=True,
                                text=True, env=os.environ, timeout=60)
        assert result.returncode != 0 and "an internal bug" in result.stderr, (args, result.stderr)
        assert KEY not in result.stdout + result.stderr, args


def test_the_proxy_log_of_its_own_bug_holds_no_key(monkeypatch):
    from ccswitch.proxy import chat

    def broken(*args):
        raise RuntimeError("boom")

    monkeypatch.setattr(chat, "translate_response", broken)
    with Harness(lambda seen: json_reply(completion())) as h:
        assert h.post(body=SIMPLE).status_code == 500
        assert h.bugs and h.upstream.key not in "\n".join(h.bugs)
        import logging

        text = "\n".join(logging.Formatter().format(record) for record in h.log.records)
        assert "Traceback" in text and h.upstream.key not in text


def test_a_routers_targets_keep_no_key_variable_in_claudes_environment(no_keyring, claude_stub):
    """Found in review: only the served profile's key_env variable was removed; a router's targets' stayed."""
    write_config("""
        version = 1
        [profiles.glm]
        preset = "zai"
        key_env = "GLM_KEY"
        [profiles.gpt]
        preset = "openai-chat"
        key_env = "GPT_KEY"
        [profiles.mix]
        models = { opus = "gpt,gpt-5" }
        fallback = ["glm,glm-4.6"]
    """)
    keys = {"GLM_KEY": "sk-glm-target-key-1", "GPT_KEY": "sk-gpt-target-key-2", "UNRELATED_KEY": "mine"}
    assert ccs("run", "mix", "--", "claude", env=keys).returncode == 0
    env = claude_stub()["env"]
    assert "GLM_KEY" not in env and "GPT_KEY" not in env and env["UNRELATED_KEY"] == "mine"
    assert not [var for var, value in env.items() if "target-key" in value]
