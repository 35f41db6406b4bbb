"""`ccs import` and `ccs use --claude-settings`: existing setups become profiles; settings.json round trips."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from ccswitch import migrate, profiles
from ccswitch.errors import CcsError
from conftest import ccs, write_config

SHELL_FILE = """\
# my old setup
export EDITOR=vim
set_model() {
  case "$1" in
    cheap)
      export ANTHROPIC_BASE_URL=https://api.deepseek.com/anthropic
      export ANTHROPIC_AUTH_TOKEN="sk-deep-123456789"
      export ANTHROPIC_MODEL=deepseek-reasoner
      ;;
    glm) export ANTHROPIC_BASE_URL="https://api.z.ai/api/anthropic"; export ANTHROPIC_AUTH_TOKEN=$ZAI_KEY ;;
  esac
}
alias cc-kimi='ANTHROPIC_BASE_URL=https://api.moonshot.ai/anthropic ANTHROPIC_AUTH_TOKEN=sk-kimi-9999999 claude'
work() {
  export ANTHROPIC_BASE_URL=https://gw.example.com
  export ANTHROPIC_API_KEY='sk-work-55555555'
  export API_TIMEOUT_MS=600000
}
"""


def test_from_shell_finds_case_branches_functions_and_aliases(tmp_path):
    path = tmp_path / "rc.sh"
    path.write_text(SHELL_FILE)
    found = {f.name: f for f in migrate.from_shell(path, "imported")}
    assert set(found) == {"cheap", "glm", "kimi", "work"}
    assert found["cheap"].fields == {"preset": "deepseek", "model": "deepseek-reasoner"}
    assert found["cheap"].key == "sk-deep-123456789"
    assert found["glm"].fields == {"preset": "zai", "key_env": "ZAI_KEY"} and found["glm"].key is None
    assert found["kimi"].fields == {"preset": "kimi", "aliases": ["cc-kimi"]}
    assert found["work"].fields == {"base_url": "https://gw.example.com", "api": "anthropic", "auth": "api-key",
                                    "env": {"API_TIMEOUT_MS": "600000"}}
    for item in found.values():
        profiles.resolve(item.name, item.fields)


def test_import_from_shell_moves_keys_out_of_the_toml(no_keyring, tmp_path):
    path = tmp_path / "rc.sh"
    path.write_text(SHELL_FILE)
    refused = ccs("import", "--from-shell", str(path))
    assert refused.returncode == 2 and "--yes" in refused.stderr
    result = ccs("import", "--from-shell", str(path), "--yes")
    assert result.returncode == 0, result.stderr
    assert "sk-deep-123456789" not in result.stdout
    text = Path(os.environ["CCS_CONFIG"]).read_text()
    assert "sk-" not in text and "[profiles.kimi]" in text
    shown = json.loads(ccs("show", "cheap", "--json").stdout)
    assert shown["key"]["present"] and shown["key"]["masked"] == "sk-…6789"


def test_import_from_env_and_settings(memory_keyring, tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "https://api.z.ai/api/anthropic")
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", "sk-env-token-0001")
    monkeypatch.setenv("ANTHROPIC_DEFAULT_HAIKU_MODEL", "glm-4.5-flash")
    monkeypatch.setenv("CLAUDE_CODE_MAX_OUTPUT_TOKENS", "16000")
    item = migrate.from_variables("g", dict(os.environ), "env")
    assert item.fields == {"preset": "zai", "models": {"haiku": "glm-4.5-flash"}, "max_output_tokens": 16000}
    assert item.key == "sk-env-token-0001"
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"env": {"ANTHROPIC_BASE_URL": "https://openrouter.ai/api",
                                            "ANTHROPIC_AUTH_TOKEN": "sk-or-v1-abcdef", "ANTHROPIC_API_KEY": ""},
                                    "permissions": {"allow": []}}))
    from typer.testing import CliRunner

    from ccswitch.cli import app

    result = CliRunner().invoke(app, ["import", "--from-settings", str(settings), "--name", "or", "--yes"])
    assert result.exit_code == 0, result.output
    assert profiles.load().get("or").preset == "openrouter"
    assert memory_keyring.store[("ccswitch", "or")] == "sk-or-v1-abcdef"
    for nothing in ({"PATH": "/bin"}, {"DISABLE_AUTOUPDATER": "1", "CLAUDE_CODE_ENTRYPOINT": "cli"}):
        with pytest.raises(CcsError, match="nothing to import from env: no ANTHROPIC_BASE_URL, key or model"):
            migrate.from_variables("x", nothing, "env")


def test_export_then_import_from_file_carries_profiles_but_never_keys(file_keyring, tmp_path):
    write_config("""
        version = 1
        [profiles.glm]   # the work account
        preset = "zai"
        models = { haiku = "glm-4.5-air" }
        [profiles.kimi]
        preset = "kimi"
        key_env = "MOONSHOT_API_KEY"
    """)
    assert ccs("key", "set", "glm", "--stdin", input="sk-glm-exported-1234").returncode == 0
    exported = tmp_path / "team.toml"
    result = ccs("export", "-o", str(exported))
    assert result.returncode == 0, result.stderr
    text = exported.read_text()
    assert "sk-glm-exported-1234" not in text and 'key_env = "MOONSHOT_API_KEY"' in text and "# the work account" in text
    assert ccs("export", "nope").returncode == 2
    only = ccs("export", "kimi")
    assert "[profiles.kimi]" in only.stdout and "[profiles.glm]" not in only.stdout

    write_config('version = 1\n[profiles.kimi]\npreset = "kimi"\nmodel = "mine"\n')  # another machine:
    file_keyring.unlink()  # its own profiles, its own (empty) keyring
    imported = ccs("import", "--from-file", str(exported), "--yes")
    assert imported.returncode == 0, imported.stderr
    assert "No key stored for glm yet: `ccs key set glm`" in imported.stdout
    config = profiles.load()
    assert config.get("glm").models["haiku"] == "glm-4.5-air" and config.get("kimi").model == "mine"  # skipped
    forced = ccs("import", "--from-file", str(exported), "--yes", "--force")
    assert forced.returncode == 0 and profiles.load().get("kimi").key_env == "MOONSHOT_API_KEY"
    again = ccs("import", "--from-file", str(exported), "--yes")
    assert again.returncode == 2 and "exists already" in again.stderr


SETTINGS = {"env": {"ANTHROPIC_BASE_URL": "https://old.example", "ANTHROPIC_MODEL": "old", "KEEP": "me"},
            "hooks": {"PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "true"}]}]},
            "permissions": {"allow": ["Bash(ls:*)"]}, "statusLine": {"type": "command", "command": "x"},
            "enabledPlugins": {"p@m": True}}


def test_claude_settings_round_trip_keeps_every_other_key(no_keyring):
    write_config('version = 1\n[profiles.glm]\npreset = "zai"\n[profiles.gpt]\npreset = "openai"\n')
    assert ccs("key", "set", "glm", "--stdin", input="sk-glm-settings-77").returncode == 0
    path = Path.home() / ".claude" / "settings.json"
    path.parent.mkdir()
    original = json.dumps(SETTINGS, indent=2) + "\n"
    path.write_text(original)
    result = ccs("use", "glm", "--claude-settings")
    assert result.returncode == 0, result.stderr
    written = json.loads(path.read_text())
    assert {k: written[k] for k in ("hooks", "permissions", "statusLine", "enabledPlugins")} == {
        k: SETTINGS[k] for k in ("hooks", "permissions", "statusLine", "enabledPlugins")}
    assert written["env"]["ANTHROPIC_BASE_URL"] == "https://api.z.ai/api/anthropic"
    assert written["env"]["KEEP"] == "me" and "ANTHROPIC_AUTH_TOKEN" not in written["env"]
    assert written["apiKeyHelper"] == shlex.join([sys.executable, "-E", "-P", "-m", "ccswitch", "key", "print", "glm"])
    from_an_ide = subprocess.run(written["apiKeyHelper"], shell=True, capture_output=True, text=True,
                                 env={**os.environ, "PATH": "/usr/bin:/bin"})  # no venv on this PATH
    assert from_an_ide.stdout.strip() == "sk-glm-settings-77"
    assert "sk-glm-settings-77" not in path.read_text()
    printed = ccs("key", "print", "glm")
    assert printed.stdout.strip() == "sk-glm-settings-77"
    proxied = ccs("use", "gpt", "--claude-settings")
    assert proxied.returncode == 2 and "needs the ccs proxy" in proxied.stderr
    assert ccs("use", "--off", "--claude-settings").returncode == 0
    assert json.loads(path.read_text()) == SETTINGS
    assert (path.parent / "settings.json.ccs-backup").read_text() == original


def test_claude_settings_restore_removes_a_file_section_it_created(memory_keyring):
    write_config('version = 1\n[profiles.local]\npreset = "ollama"\n')
    path = Path.home() / ".claude" / "settings.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"model": "x"}))
    assert ccs("use", "local", "--claude-settings").returncode == 0
    assert json.loads(path.read_text())["env"]["ANTHROPIC_AUTH_TOKEN"] == "ollama"
    assert ccs("use", "--off", "--claude-settings").returncode == 0
    assert json.loads(path.read_text()) == {"model": "x"}
    assert "Nothing to restore" in ccs("use", "--off", "--claude-settings").stdout


GUIDE_STYLE = r'''
# ~/.zshrc: switch Claude Code between providers (the way the popular guides do it)
export ZAI_API_KEY="sk-zai-from-rc-0001"

set_model() {
  unset ANTHROPIC_BASE_URL ANTHROPIC_AUTH_TOKEN ANTHROPIC_API_KEY ANTHROPIC_MODEL ANTHROPIC_DEFAULT_MODEL
  case "$1" in
    glm)
      export ANTHROPIC_BASE_URL="https://api.z.ai/api/anthropic"
      export ANTHROPIC_AUTH_TOKEN="$ZAI_API_KEY"
      export ANTHROPIC_DEFAULT_MODEL="glm-4.6"
      export ANTHROPIC_DEFAULT_OPUS_MODEL="glm-4.6"
      export ANTHROPIC_DEFAULT_SONNET_MODEL="glm-4.6"
      export ANTHROPIC_DEFAULT_HAIKU_MODEL="glm-4.5-air"
      export ANTHROPIC_DEFAULT_OPUS_MODEL_NAME="GLM 4.6"
      ;;
    gpt)
      # OpenRouter's OpenAI-compatible API, through a local translator
      export ANTHROPIC_BASE_URL="https://openrouter.ai/api/v1"
      export ANTHROPIC_API_KEY="sk-or-v1-guide-0002"
      export ANTHROPIC_DEFAULT_MODEL="openai/gpt-5"
      ;;
    kimi)
      export ANTHROPIC_BASE_URL="https://api.moonshot.ai/anthropic"
      export ANTHROPIC_AUTH_TOKEN="sk-kimi-guide-0003"
      export ANTHROPIC_MODEL="kimi-k2.5"
      export API_TIMEOUT_MS=600000
      ;;
    claude)
      ;;
  esac
}

cc() {
  set_model "$1" && shift && claude "$@"
}
alias cc-glm="cc glm"
alias cc-gpt='cc gpt'
alias cc-kimi="set_model kimi && claude"
'''


def test_a_guide_style_set_model_function_imports_to_the_same_models_and_auth(tmp_path):
    """What most users come from: each profile runs the model the function chose, sends its key the way the
    provider takes it, and keeps its `cc-x` command."""
    path = tmp_path / ".zshrc"
    path.write_text(GUIDE_STYLE)
    found = {f.name: f for f in migrate.from_shell(path, "imported")}
    assert set(found) == {"glm", "gpt", "kimi"}
    glm, gpt, kimi = found["glm"], found["gpt"], found["kimi"]
    assert glm.fields == {"preset": "zai", "key_env": "ZAI_API_KEY", "model": "glm-4.6",
                          "models": {"opus": "glm-4.6", "sonnet": "glm-4.6", "haiku": "glm-4.5-air"},
                          "aliases": ["cc-glm"]}
    assert gpt.fields == {"preset": "openrouter-openai", "model": "openai/gpt-5", "aliases": ["cc-gpt"]}
    assert gpt.key == "sk-or-v1-guide-0002"
    assert kimi.fields == {"preset": "kimi", "model": "kimi-k2.5", "env": {"API_TIMEOUT_MS": "600000"},
                           "aliases": ["cc-kimi"]}
    for item in found.values():
        profile = profiles.resolve(item.name, item.fields)
        assert profile.auth == "bearer"  # OpenRouter and both Anthropic-API providers take a bearer token
