"""`ccs` in a real terminal (a pty), the way a person types at it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pexpect
import pytest

from conftest import ccs


def test_interactive_add_prompts_for_preset_and_hidden_key(no_keyring):
    child = pexpect.spawn(sys.executable, ["-m", "ccswitch", "add", "glm"], env=dict(os.environ), encoding="utf-8",
                          timeout=30, dimensions=(40, 160))
    child.expect("Preset")
    child.sendline("zai")
    child.expect("Key for glm \\(hidden")
    child.sendline("sk-typed-secret-2468")
    child.expect("Added profile .*glm")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "sk-typed-secret-2468" not in child.before  # not echoed back
    shown = json.loads(ccs("show", "glm", "--json").stdout)
    assert shown["preset"] == "zai" and shown["key"]["masked"] == "sk-…2468"


def test_interactive_rm_asks_first(no_keyring):
    assert ccs("add", "x", "--preset", "ollama").returncode == 0
    child = pexpect.spawn(sys.executable, ["-m", "ccswitch", "rm", "x"], env=dict(os.environ), encoding="utf-8",
                          timeout=30)
    child.expect("Remove profile 'x'")
    child.sendline("n")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus != 0
    assert "x" in json.dumps(json.loads(ccs("list", "--json").stdout))


def test_shell_init_detects_the_shell_it_runs_in():
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(["bash", "--norc", "-c", "ccs shell-init"], capture_output=True, text=True, env=env)
    assert result.returncode == 0 and "(bash)" in result.stdout.splitlines()[0]


@pytest.mark.parametrize("columns", [80, 120, 200])
def test_presets_never_cut_a_url_whatever_the_terminal_width(columns):
    from ccswitch.presets import PRESETS

    child = pexpect.spawn(sys.executable, ["-m", "ccswitch", "presets"], env={**os.environ, "COLUMNS": str(columns)},
                          encoding="utf-8", timeout=30, dimensions=(60, columns))
    child.expect(pexpect.EOF)
    shown = re.sub(r"\x1b\[[0-9;]*m", "", child.before)
    assert "…" not in shown  # nothing cropped
    for preset in PRESETS.values():
        assert preset.fields.get("base_url", preset.name) in shown


def test_interactive_add_with_no_arguments_offers_presets_then_a_name(no_keyring):
    child = pexpect.spawn(sys.executable, ["-m", "ccswitch", "add"], env=dict(os.environ), encoding="utf-8",
                          timeout=30, dimensions=(60, 200))
    child.expect("Preset")
    child.sendline("deepseek")
    child.expect("Profile name .*deepseek")
    child.sendline("")  # the preset's name
    child.expect("Key for deepseek")
    child.sendline("sk-typed-0000")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert json.loads(ccs("show", "deepseek", "--json").stdout)["preset"] == "deepseek"


def test_interactive_add_of_a_custom_provider_asks_for_models_and_window(no_keyring):
    child = pexpect.spawn(sys.executable, ["-m", "ccswitch", "add", "mine", "--base-url", "https://llm.example/v1",
                                           "--api", "openai", "--auth", "none"], env=dict(os.environ),
                          encoding="utf-8", timeout=30, dimensions=(60, 200))
    child.expect("Main model")
    child.sendline("qwen3-coder")
    for tier in ("opus", "sonnet"):
        child.expect(f"Model for the {tier} tier")
        child.sendline("")  # the main model
    child.expect("Model for the haiku tier")
    child.sendline("qwen3-small")
    child.expect("Context window of qwen3-coder")
    child.sendline("131072")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    shown = json.loads(ccs("show", "mine", "--json").stdout)
    assert shown["models"] == {"opus": "qwen3-coder", "sonnet": "qwen3-coder", "haiku": "qwen3-small"}
    assert shown["context_window"] == 131072


def test_ctrl_c_at_a_prompt_ends_the_line_for_the_shell(no_keyring):
    child = pexpect.spawn(sys.executable, ["-m", "ccswitch", "add", "glm"], env=dict(os.environ), encoding="utf-8",
                          timeout=30, dimensions=(60, 200))
    child.expect("Preset")
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130
    assert child.before.endswith("\r\n")  # the shell's prompt starts on a line of its own


SESSION = """
import json, os, sys, urllib.request
print("ready", flush=True)
for line in sys.stdin:
    request = urllib.request.Request(os.environ["ANTHROPIC_BASE_URL"] + "/v1/messages", method="POST",
        data=json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": line}]}).encode(),
        headers={"authorization": "Bearer " + os.environ["ANTHROPIC_AUTH_TOKEN"], "content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=20) as answer:
        print("answer:", json.load(answer)["content"][0]["text"], flush=True)
"""


def test_ctrl_z_then_fg_in_a_terminal_and_the_proxy_serves_on(no_keyring, tmp_path):
    """Job control: ccs, its child and its proxy stop together on Ctrl-Z and carry on after `fg`."""
    from conftest import write_config
    from fakes import FakeServer, json_reply

    def answer(seen):
        return json_reply({"id": "msg_1", "type": "message", "role": "assistant", "model": seen.body["model"],
                           "content": [{"type": "text", "text": f"pong {len(provider.requests)}"}],
                           "stop_reason": "end_turn", "usage": {"input_tokens": 3, "output_tokens": 2}})

    provider = FakeServer(answer)
    try:
        write_config(f'version = 1\n[profiles.fake]\nbase_url = "{provider.url}"\nmodel = "m"\n')
        assert ccs("key", "set", "fake", "--stdin", input="sk-fake-key").returncode == 0
        (tmp_path / "session.py").write_text(SESSION)
        env = {**os.environ, "PS1": "$ ", "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"}
        shell = pexpect.spawn("bash", ["--norc", "--noprofile", "-i"], env=env, encoding="utf-8", timeout=30,
                              cwd=str(tmp_path))
        shell.sendline(f"ccs run fake -- {sys.executable} session.py")
        shell.expect("ready")
        shell.sendline("one")
        shell.expect("answer: pong 1")
        shell.sendcontrol("z")
        shell.expect("Stopped")
        shell.sendline("fg")
        shell.sendline("two")
        shell.expect("answer: pong 2")
        shell.sendcontrol("d")  # the session's stdin ends: it exits, and ccs with it
        shell.expect(r"\$ ")
        shell.sendline("echo status=$?")
        shell.expect("status=0")
        shell.sendline("exit")
        shell.expect(pexpect.EOF)
    finally:
        provider.close()
