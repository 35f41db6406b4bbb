"""The rough edges a newcomer met, trying ccs from the README alone: each the way they met it (a terminal
where they had one), each failing on the release they tried."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import pexpect
import pytest

from ccswitch import keys, profiles
from conftest import ccs, write_config
from fakes import FakeServer, Reply, json_reply


def terminal(*args: str, timeout: float = 30) -> pexpect.spawn:
    return pexpect.spawn(sys.executable, ["-m", "ccswitch", *args], env=dict(os.environ), encoding="utf-8",
                         timeout=timeout, dimensions=(60, 200))


def everything_said(child: pexpect.spawn) -> str:
    child.expect(pexpect.EOF)
    child.close()
    return child.before


@pytest.mark.parametrize("args", [(), ("key",)])
def test_help_is_shown_once(no_keyring, args):
    write_config('version = 1\n[profiles.glm]\npreset = "zai"\n')
    said = re.sub(r"\x1b\[[0-9;]*m", "", everything_said(terminal(*args)))
    assert said.count("Usage: ccs") == 1


def vllm_like(*served: tuple[str, int | None]):
    """A local model server listing its models as vLLM does (with the length it runs them at)."""
    data = [{"id": name, "object": "model", **({"max_model_len": window} if window else {})} for name, window in served]
    return FakeServer(lambda seen: json_reply({"object": "list", "data": data}) if "/models" in seen.path
                      else Reply(404, {"Content-Length": "0"}))


def test_a_local_servers_model_is_taken_from_what_it_serves(no_keyring):
    """`ccs add local --preset vllm` asked for no model, and claude's own default went to vLLM, which refused it."""
    one, two = vllm_like(("Qwen/Qwen3-Coder-30B", 65536)), vllm_like(("a-model", None), ("b-model", None))
    try:
        added = ccs("add", "local", "--preset", "vllm", "--base-url", one.url)
        assert added.returncode == 0, added.stderr
        local = profiles.load().get("local")
        assert (local.model, local.context_window) == ("Qwen/Qwen3-Coder-30B", 65536)
        unsure = ccs("add", "two", "--preset", "vllm", "--base-url", two.url)
        assert unsure.returncode == 2 and "serves a-model, b-model: add --model NAME" in unsure.stderr
        child = terminal("add", "picked", "--preset", "vllm", "--base-url", two.url)
        child.expect("Model")
        child.sendline("b-model")
        child.expect("Context window of b-model")
        child.sendline("32768")
        everything_said(child)
        picked = profiles.load().get("picked")
        assert (picked.model, picked.context_window) == ("b-model", 32768)
    finally:
        one.close()
        two.close()


def test_a_keyless_local_server_without_a_preset_is_added_without_a_key(no_keyring):
    server = vllm_like(("m1", 8192))
    try:
        child = terminal("add", "mine", "--base-url", server.url, "--api", "openai")
        child.expect("empty: it takes none")
        child.sendline("")
        said = everything_said(child)
        assert child.exitstatus == 0, said
        assert profiles.load().get("mine").auth == "none" and "takes none" in said
        scripted = ccs("add", "mine2", "--base-url", server.url + "/v1", "--api", "openai", "--model", "m1")
        assert scripted.returncode == 0 and profiles.load().get("mine2").auth == "none"
    finally:
        server.close()


ROUTED = """\
version = 1

# my providers
[profiles.glm]   # the cheap one
preset = "zai"

[profiles.mix]
models = { opus = "glm,glm-4.6", sonnet = "GLM,glm-4.5" }  # both to glm
fallback = ["glm,glm-4.5-air"]

[profiles.last]
preset = "kimi"
"""


def test_rename_keeps_the_profile_in_place_and_its_routes_follow(no_keyring):
    path = write_config(ROUTED)
    assert ccs("key", "set", "glm", "--stdin", input="sk-glm-0001").returncode == 0
    renamed = ccs("rename", "glm", "zai")
    assert renamed.returncode == 0 and "routes to it renamed in mix" in renamed.stdout
    assert path.read_text() == ROUTED.replace("[profiles.glm]", "[profiles.zai]").replace(
        '"glm,glm-4.6", sonnet = "GLM,glm-4.5"', '"zai,glm-4.6", sonnet = "zai,glm-4.5"').replace(
        '["glm,glm-4.5-air"]', '["zai,glm-4.5-air"]')
    assert ccs("show", "mix").returncode == 0
    assert keys.get(profiles.load().get("zai")) == "sk-glm-0001"


def test_rm_of_a_profile_routers_need_names_them(no_keyring):
    write_config(ROUTED)
    refused = ccs("rm", "glm", "--yes")
    assert refused.returncode == 2 and "routed to by mix (glm,glm-4.6, GLM,glm-4.5, glm,glm-4.5-air)" in refused.stderr
    assert "glm" in profiles.load().profiles
    assert ccs("rm", "glm", "--yes", "--force").returncode == 0


def test_export_of_a_router_carries_its_targets(no_keyring, tmp_path):
    write_config(ROUTED)
    out = tmp_path / "mix.toml"
    exported = ccs("export", "mix", "-o", str(out))
    assert exported.returncode == 0 and "Also exported, as routes go there: glm (from mix)" in exported.stderr
    assert set(profiles.parse(out.read_text(), out).profiles) == {"mix", "glm"}


def test_a_router_is_added_from_the_command_line_and_described_as_one(no_keyring):
    write_config('version = 1\n[profiles.glm]\npreset = "zai"\n[profiles.gpt]\npreset = "openai"\n')
    added = ccs("add", "mix", "--router", "--opus", "glm,glm-4.6", "--sonnet", "gpt,gpt-5", "--fallback",
                "glm,glm-4.5-air", "--alias", "cc-mix")
    assert added.returncode == 0, added.stderr
    mix = profiles.load().get("mix")
    assert mix.is_router and mix.models == {"opus": "glm,glm-4.6", "sonnet": "gpt,gpt-5"}
    assert mix.fallback == ["glm,glm-4.5-air"] and mix.aliases == ["cc-mix"]
    assert "ccs reload" in added.stdout
    row = next(r for r in json.loads(ccs("list", "--json").stdout) if r["name"] == "mix")
    assert (row["api"], row["provider"], row["key_source"]) == ("routes", "router", "routes' profiles")
    shown = ccs("show", "mix").stdout
    assert "routes to" in shown and "glm, gpt" in shown and "claude login" not in shown and "auth" not in shown
    missing = ccs("add", "bad", "--router", "--opus", "nope,x")
    assert missing.returncode == 2 and "no profile named 'nope'" in missing.stderr


def test_set_takes_list_fields_as_words_and_says_what_was_typed(no_keyring):
    write_config('version = 1\n[profiles.local]\npreset = "ollama"\n')
    assert ccs("set", "local", "aliases=cc-cheap,cc-local").returncode == 0
    assert profiles.load().get("local").aliases == ["cc-cheap", "cc-local"]
    assert ccs("set", "local", "fallback=local,m1 local,m2").returncode == 0  # a route holds a comma
    assert profiles.load().get("local").fallback == ["local,m1", "local,m2"]
    wrong = ccs("set", "local", "context_window=lots")
    assert wrong.returncode == 2 and "`ccs set local context_window=lots`" in wrong.stderr
    assert "for example `ccs set local context_window=200000`" in wrong.stderr and "profiles.toml:" not in wrong.stderr


def test_a_word_that_is_neither_command_nor_profile_gets_a_suggestion(no_keyring):
    write_config('version = 1\n[profiles.tools]\npreset = "zai"\n')
    result = ccs("tool", "--print", "hi")
    assert result.returncode == 2 and "(did you mean 'tools'?)" in result.stderr


def test_test_and_models_take_the_profile_that_applies_here(no_keyring, tmp_path):
    server = vllm_like(("m1", None))
    try:
        write_config(f'version = 1\n[profiles.local]\npreset = "vllm"\nbase_url = "{server.url}"\nmodel = "m1"\n')
        (tmp_path / "project").mkdir()
        (tmp_path / "project" / ".ccs-profile").write_text("local\n")
        listed = ccs("models", "--json", cwd=tmp_path / "project")
        assert listed.returncode == 0 and json.loads(listed.stdout)[0]["profile"] == "local"
    finally:
        server.close()


def test_doctor_says_how_to_set_a_missing_key_variable(no_keyring):
    write_config('version = 1\n[profiles.ds]\npreset = "deepseek"\nkey_env = "DEEPSEEK_API_KEY"\n')
    finding = next(f for f in json.loads(ccs("doctor", "--offline", "--json").stdout) if f["check"] == "ds")
    assert "`export DEEPSEEK_API_KEY=...`" in finding["detail"] and "ccs key set" not in finding["detail"]


def test_doctor_shows_each_check_as_it_finishes(no_keyring):
    """It printed nothing for ~10 s, then everything."""
    slow = FakeServer(lambda seen: Reply(200, {"Content-Type": "application/json", "Content-Length": "11"},
                                         [b'{"data": []}'[:11]], wait=4.0))
    try:
        write_config(f'version = 1\n[profiles.slow]\nbase_url = "{slow.url}"\nauth = "none"\n')
        child = terminal("doctor")
        started = time.monotonic()
        child.expect("profiles")
        assert time.monotonic() - started < 3.5  # before the slow provider answered
        child.expect("slow: ")
        everything_said(child)
    finally:
        slow.close()


def test_a_keyring_that_keeps_nothing_is_not_reported_as_holding_the_key(monkeypatch, tmp_path):
    """keyring's null backend takes every key and keeps none: `ccs add` said it stored the key."""
    import keyring
    from keyring.backends import null

    keyring.set_keyring(null.Keyring())
    write_config("version = 1\n")
    assert keys.store_key("glm", "sk-kept-0001") != "keyring"
    assert keys.get(profiles.resolve("glm", {"preset": "zai"})) == "sk-kept-0001"


def test_show_says_a_keyless_profile_needs_none(no_keyring):
    write_config('version = 1\n[profiles.local]\npreset = "ollama"\n')
    shown = ccs("show", "local").stdout
    assert "none needed" in shown and "missing" not in shown


def test_a_claude_model_gets_no_warning_about_a_1m_window(no_keyring):
    added = ccs("add", "anth", "--preset", "anthropic", "--model", "claude-sonnet-4-5", "--key-stdin", input="sk-a")
    assert added.returncode == 0 and "1M" not in added.stdout


def test_logs_shows_the_proxys_log(no_keyring):
    state = Path(os.environ["CCS_HOME"]) / "state"
    state.mkdir(parents=True)
    (state / "proxy.log").write_text("".join(f"line {n}\n" for n in range(100)))
    shown = ccs("logs", "-n", "3")
    assert shown.returncode == 0 and shown.stdout == "line 97\nline 98\nline 99\n"
    child = terminal("logs", "-f", "-n", "1")
    child.expect("line 99")
    with open(state / "proxy.log", "a") as log:
        log.write("line 100\n")
    child.expect("line 100")
    child.sendintr()
    everything_said(child)


def test_use_off_claude_settings_removes_a_file_it_created(no_keyring):
    write_config('version = 1\n[profiles.local]\npreset = "ollama"\n')
    path = Path.home() / ".claude" / "settings.json"
    assert ccs("use", "local", "--claude-settings").returncode == 0 and path.exists()
    assert ccs("use", "--off", "--claude-settings").returncode == 0
    assert not path.exists()
