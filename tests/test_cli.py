"""The commands as a user meets them: output, exit codes, files, and keys that never leak."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ccswitch import profiles
from ccswitch.cli import app
from conftest import ccs

SECRET = "sk-zai-very-secret-7788"


def invoke(*args: str, input: str | None = None):
    return CliRunner().invoke(app, list(args), input=input)


@pytest.fixture
def glm(memory_keyring):
    result = invoke("add", "glm", "--preset", "zai", "--key-stdin", input=SECRET + "\n")
    assert result.exit_code == 0, result.output
    return memory_keyring


def test_add_stores_the_key_in_the_keyring_never_in_the_toml(glm):
    assert glm.store[("ccswitch", "glm")] == SECRET
    text = Path(os.environ["CCS_CONFIG"]).read_text()
    assert SECRET not in text and '[profiles.glm]\npreset = "zai"' in text
    assert stat.S_IMODE(Path(os.environ["CCS_CONFIG"]).stat().st_mode) == 0o600


def test_add_refuses_to_overwrite_and_validates_before_writing(glm):
    again = invoke("add", "glm", "--preset", "zai")
    assert again.exit_code == 2 and "exists" in again.output
    bad = invoke("add", "x", "--preset", "nope")
    assert bad.exit_code == 2 and "unknown preset 'nope'" in bad.output
    assert "[profiles.x]" not in Path(os.environ["CCS_CONFIG"]).read_text()
    neither = invoke("add", "y")
    assert neither.exit_code == 2 and "--preset" in neither.output


def test_add_without_key_in_a_script_says_how_to_store_it(memory_keyring):
    result = invoke("add", "ds", "--preset", "deepseek", "--model", "deepseek-reasoner", "--haiku", "deepseek-chat")
    assert result.exit_code == 0 and "ccs key set ds" in result.output
    profile = profiles.load().get("ds")
    assert profile.model == "deepseek-reasoner" and profile.models["haiku"] == "deepseek-chat"


def test_add_with_key_env_and_custom_url(memory_keyring):
    result = invoke("add", "gw", "--base-url", "https://gw.example/anthropic", "--auth", "api-key", "--key-env", "GW_KEY")
    assert result.exit_code == 0, result.output
    assert profiles.load().get("gw").key_env == "GW_KEY"


def test_list_and_show_mask_the_key(glm):
    listed = invoke("list", "--json")
    assert json.loads(listed.output) == [{"name": "glm", "active": False, "provider": "zai", "api": "anthropic",
                                          "model": "glm-5.4", "key_source": "keyring", "key_present": True,
                                          "aliases": [], "description": ""}]
    table = invoke("list")
    assert "glm" in table.output and "keyring yes" in table.output
    shown = invoke("show", "glm")
    assert "sk-…7788" in shown.output and "https://api.z.ai/api/anthropic" in shown.output
    for output in (listed.output, table.output, shown.output, invoke("show", "glm", "--json").output):
        assert SECRET not in output


def test_show_reads_the_keyring_once(glm, monkeypatch):
    """A desktop keyring may ask to be unlocked on every read."""
    reads = []
    original = glm.get_password
    monkeypatch.setattr(glm, "get_password", lambda service, user: reads.append(user) or original(service, user))
    assert "sk-…7788" in invoke("show", "glm").output
    assert reads == ["glm"]


def test_set_and_unset_keep_the_file_valid(glm):
    assert invoke("set", "glm", "model=glm-5", "models.haiku=glm-4.5-air", "env.API_TIMEOUT_MS=10",
                  "aliases=[\"cc-glm\"]", "context_window=200000").exit_code == 0
    profile = profiles.load().get("glm")
    assert (profile.model, profile.env["API_TIMEOUT_MS"], profile.aliases, profile.context_window) == (
        "glm-5", "10", ["cc-glm"], 200000)
    assert invoke("set", "glm", "--unset", "model", "--unset", "env.API_TIMEOUT_MS").exit_code == 0
    profile = profiles.load().get("glm")
    assert profile.model == "glm-5.4" and profile.env["API_TIMEOUT_MS"] == "3000000"  # back to the preset's
    bad = invoke("set", "glm", "auth=magic")
    assert bad.exit_code == 2 and "auth must be one of" in bad.output
    assert invoke("set", "nope", "model=x").exit_code == 2
    assert invoke("set", "glm", "novalue").exit_code == 2


def test_alias_changes_hint_at_reload(glm):
    assert "ccs reload" in invoke("set", "glm", 'aliases=["cc-glm"]').output
    assert "ccs reload" not in invoke("set", "glm", "model=glm-5").output
    assert "ccs reload" in invoke("rename", "glm", "zai").output
    assert "ccs reload" in invoke("rm", "zai", "--yes").output


def test_rm_asks_and_deletes_the_key(glm):
    refused = invoke("rm", "glm")
    assert refused.exit_code == 2 and "--yes" in refused.output
    assert invoke("rm", "glm", "--yes").exit_code == 0
    assert "glm" not in profiles.load().profiles
    assert ("ccswitch", "glm") not in glm.store


def test_rename_moves_the_key_and_the_default(glm):
    assert invoke("use", "glm").exit_code == 0
    assert invoke("rename", "glm", "z").exit_code == 0
    assert glm.store.get(("ccswitch", "z")) == SECRET and ("ccswitch", "glm") not in glm.store
    assert set(profiles.load().profiles) == {"z"}
    assert "z  (the default" in invoke("current").output


def test_use_off_and_current(glm, monkeypatch):
    assert "none" in invoke("current").output
    assert invoke("use", "nope").exit_code == 2
    assert invoke("use", "glm").exit_code == 0
    assert invoke("current").output.startswith("glm  (the default")
    monkeypatch.setenv("CCS_PROFILE", "other")
    assert invoke("current").output.startswith("other  (this shell")
    monkeypatch.delenv("CCS_PROFILE")
    assert invoke("use", "--off").exit_code == 0
    assert invoke("current").output.startswith("-  (none")


def test_key_set_rm(glm):
    assert invoke("key", "set", "glm", "--stdin", input="sk-new-key-0000\n").exit_code == 0
    assert glm.store[("ccswitch", "glm")] == "sk-new-key-0000"
    assert invoke("key", "rm", "glm", "--yes").exit_code == 0
    assert invoke("key", "rm", "glm", "--yes").exit_code == 2
    empty = invoke("key", "set", "glm", "--stdin", input="")
    assert empty.exit_code == 2


@pytest.mark.parametrize("shell, expected", [
    ("bash", "# export ANTHROPIC_AUTH_TOKEN='sk-…7788'  (masked: --reveal prints the key)"),
    ("zsh", "unset ANTHROPIC_SMALL_FAST_MODEL"),
    ("fish", "set -gx ANTHROPIC_BASE_URL 'https://api.z.ai/api/anthropic'"),
    ("powershell", "$Env:ANTHROPIC_API_KEY = ''"),
])
def test_env_masks_unless_revealed(glm, shell, expected):
    result = invoke("env", "glm", "--shell", shell)
    assert result.exit_code == 0 and expected in result.output and SECRET not in result.output


def test_env_without_reveal_is_code_that_sets_no_wrong_key(glm):
    """Found in review: `eval "$(ccs env A --reveal)"; eval "$(ccs env B)"` left A's key for B's provider."""
    code = invoke("env", "glm").output
    result = subprocess.run(["bash", "-c", code + 'echo "token=${ANTHROPIC_AUTH_TOKEN-unset}"'],
                            capture_output=True, text=True, env={**os.environ, "ANTHROPIC_AUTH_TOKEN": "sk-of-a"})
    assert result.stdout.strip().endswith("token=unset") and json.loads(
        invoke("env", "glm", "--shell", "json").output)["masked"] == ["ANTHROPIC_AUTH_TOKEN"]


def test_powershell_strings_end_at_no_quote_of_the_value():
    """PowerShell ends a single-quoted string at ' and at U+2018-U+201B alike; two in a row stand for one."""
    from ccswitch.shell import env_code

    quotes = "'\u2018\u2019\u201a\u201b"
    value = "a'b\u2018c\u2019d\u201ae\u201bf''"
    code = env_code({"X": value}, [], "powershell").strip()
    assert code.startswith("$Env:X = '")
    literal, read, at = code[len("$Env:X = "):], [], 1
    while literal[at] not in quotes or literal[at + 1:at + 2] in tuple(quotes):  # PowerShell's verbatim string
        read.append(literal[at])
        at += 2 if literal[at] in quotes else 1
    assert "".join(read) == value and literal[at + 1:] == ""


def test_set_says_when_nothing_changed_and_refuses_an_alias_that_hides_a_command(glm):
    unchanged = invoke("set", "glm", "--unset", "description")
    assert unchanged.exit_code == 0 and "Nothing changed in profile glm (description: not set)" in unchanged.output
    hiding = invoke("set", "glm", 'aliases=["ls"]')
    assert hiding.exit_code == 2 and "alias 'ls' would hide" in hiding.output and "--force" in hiding.output
    assert profiles.load().get("glm").aliases == []
    assert invoke("set", "glm", 'aliases=["ls"]', "--force").exit_code == 0
    assert invoke("set", "glm", 'aliases=["ls", "cc-glm-unique"]').exit_code == 0  # ls was there already


def test_key_rm_asks_first(glm):
    assert ccs("key", "rm", "glm").returncode == 2  # no terminal to ask in: --yes
    assert invoke("key", "rm", "glm", "--yes").exit_code == 0


def test_env_reveal_json_and_proxy_profiles(glm):
    data = json.loads(invoke("env", "glm", "--shell", "json", "--reveal").output)
    assert data["set"]["ANTHROPIC_AUTH_TOKEN"] == SECRET and "CLAUDECODE" in data["unset"]
    assert invoke("env", "glm", "--shell", "tcsh").exit_code == 2
    invoke("add", "gpt", "--preset", "openai", "--key-env", "OPENAI_API_KEY")
    proxied = invoke("env", "gpt")
    assert proxied.exit_code == 2 and "ccs proxy gpt" in proxied.output


def test_presets_json_lists_every_preset():
    data = json.loads(invoke("presets", "--json").output)
    assert data["zai"]["base_url"] == "https://api.z.ai/api/anthropic" and data["openai"]["api"] == "openai-responses"


EDITOR = """#!{python}
import sys
path = sys.argv[1]
text = open(path).read()
open(path, "w").write(text.replace('preset = "zai"', {replacement!r}))
"""


@pytest.mark.parametrize("replacement, code", [('preset = "deepseek"', 0), ('preset = "nope"', 2)])
def test_edit_validates_and_never_loses_the_users_text(glm, tmp_path, monkeypatch, replacement, code):
    editor = tmp_path / "editor"
    editor.write_text(EDITOR.format(python=sys.executable, replacement=replacement))
    editor.chmod(0o755)
    path = Path(os.environ["CCS_CONFIG"])
    before = path.read_text()
    result = ccs("edit", env={"EDITOR": str(editor)})
    assert result.returncode == code, result.stderr
    if code == 0:
        assert profiles.load().get("glm").preset == "deepseek"
    else:
        assert path.read_text() == before
        kept = result.stderr.rsplit("kept in ", 1)[1].strip()
        assert 'preset = "nope"' in Path(kept).read_text()


def test_version_and_help():
    assert invoke("--version").output.startswith("ccs ")
    help_text = ccs("run", "--help")
    assert help_text.returncode == 0 and "Run claude (or a command) with a profile" in help_text.stdout


@pytest.mark.parametrize("args", [("nosuch",), ("add", "x", "--bogus"), ("set",), ("rm",),
                                  ("key", "set")])
def test_usage_errors_are_one_line_and_exit_2(memory_keyring, args):
    result = ccs(*args)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("ccs: error: ") and "--help" in line


def test_add_without_a_terminal_says_what_it_needs(memory_keyring):
    assert ccs("add").stderr == ("ccs: error: give --preset P or --base-url URL (see `ccs presets`), or --router "
                                 "with routes\n")
    assert ccs("add", "--preset", "zai").stderr == "ccs: error: give the new profile's NAME: `ccs add NAME --preset P`\n"
    custom = ccs("add", "vl", "--base-url", "http://llm.example/v1", "--api", "openai", "--auth", "none",
                 "--model", "qwen3-coder", "--context-window", "131072")
    assert custom.returncode == 0 and profiles.load().get("vl").context_window == 131072
    bare = ccs("add", "vl2", "--base-url", "http://llm.example/v1", "--api", "openai", "--auth", "none",
               "--model", "qwen3-coder")
    assert "No context window for qwen3-coder: claude will assume 1M tokens" in bare.stdout


def test_a_missing_editor_is_one_line_and_keeps_the_file(glm):
    path = Path(os.environ["CCS_CONFIG"])
    before = path.read_text()
    result = ccs("edit", env={"EDITOR": "nonexistent-editor-xyz", "VISUAL": ""})
    assert result.returncode == 2
    assert result.stderr.strip() == ("ccs: error: cannot start the editor 'nonexistent-editor-xyz': No such file or "
                                     "directory; set $VISUAL or $EDITOR")
    assert path.read_text() == before


def test_ccs_alone_says_how_to_start_when_there_are_no_profiles(memory_keyring):
    first = ccs()
    assert first.returncode == 0
    assert "ccs presets" in first.stdout and "ccs add NAME --preset P" in first.stdout and "ccs run NAME" in first.stdout
    invoke("add", "glm", "--preset", "zai", "--key-stdin", input=SECRET + "\n")
    assert "Usage" in ccs().stdout  # with profiles: the help


def test_the_fast_path_knows_every_command():
    from ccswitch.__main__ import COMMANDS
    from typer.main import get_command

    assert set(COMMANDS) == set(get_command(app).commands)


def test_doctor_finds_what_breaks_a_setup(no_keyring, claude_stub, tmp_path):
    from fakes import FakeServer, json_reply

    def provider(seen):
        if seen.headers.get("authorization") == "Bearer sk-good-key-0001" or seen.headers.get("x-api-key"):
            return json_reply({"data": []})
        return json_reply({"error": {"message": "invalid key"}}, 401)

    fake = FakeServer(provider)
    try:
        write = Path(os.environ["CCS_CONFIG"])
        write.parent.mkdir(parents=True, exist_ok=True)
        write.write_text(f"""version = 1
[profiles.good]
base_url = "{fake.url}/v1"
api = "openai"
[profiles.bad]
base_url = "{fake.url}"
[profiles.nokey]
preset = "deepseek"
""")
        for name, key in (("good", "sk-good-key-0001"), ("bad", "sk-bad-key-0002")):
            assert ccs("key", "set", name, "--stdin", input=key).returncode == 0
        settings = Path.home() / ".claude" / "settings.json"
        settings.parent.mkdir()
        settings.write_text(json.dumps({"env": {"ANTHROPIC_BASE_URL": "https://old.example", "KEEP": "x"},
                                        "apiKeyHelper": "echo sk-other"}))
        state_file = Path(os.environ["CCS_HOME"]) / "state" / "active"
        state_file.parent.mkdir(parents=True, exist_ok=True)
        state_file.write_text("removed-profile\n")
        result = ccs("doctor", "--json")
    finally:
        fake.close()
    assert result.returncode == 1
    findings = {f["check"].split(":")[0]: f for f in json.loads(result.stdout)}
    assert findings["good"]["level"] == "ok" and findings["good"]["detail"] == "the key works (0 models)"
    assert findings["bad"]["level"] == "fail" and "the key was rejected: `ccs key set bad` (401" in findings["bad"]["detail"]
    assert findings["nokey"]["level"] == "fail" and "ccs key set nokey" in findings["nokey"]["detail"]
    assert findings["active profile"]["level"] == "fail" and "removed-profile" in findings["active profile"]["detail"]
    assert "ANTHROPIC_BASE_URL, apiKeyHelper (echo sk-other)" in findings[str(settings)]["detail"]
    assert "file" in findings["keys"]["detail"] and findings["claude"]["level"] == "ok"
    offline = ccs("doctor", "--offline", "--json")
    assert {f["check"] for f in json.loads(offline.stdout)}.isdisjoint({f"good: {fake.url}/v1/models"})
    human = ccs("doctor", "--offline")
    assert "!!  nokey: no key" in human.stdout and "!   shell integration: not active" in human.stdout


def test_current_as_json(glm):
    assert json.loads(ccs("current", "--json").stdout) == {"profile": None, "why": "none: `claude` runs untouched",
                                                          "shell_integration": None}


@pytest.mark.parametrize("xdg", [{}, {"XDG_CONFIG_HOME": "/x/conf", "XDG_STATE_HOME": "/x/state", "XDG_DATA_HOME": "/x/data"},
                                 {"XDG_CONFIG_HOME": "  ", "XDG_DATA_HOME": ""}])
def test_ccs_finds_its_directories_where_platformdirs_would(monkeypatch, xdg):
    import platformdirs

    from ccswitch import files

    for var in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME"):
        monkeypatch.delenv(var, raising=False)
    for var, value in xdg.items():
        monkeypatch.setenv(var, value)
    for kind in ("config", "state", "data"):
        assert files.user_dir(kind) == Path(getattr(platformdirs, f"user_{kind}_dir")("ccswitch")), kind
