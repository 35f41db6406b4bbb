"""`ccs run`: the exact environment, the settings overlay, exit codes, signals, errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ccswitch import launch
from ccswitch.__main__ import split_run_args
from ccswitch.profiles import resolve
from ccswitch.proxy.lifecycle import Endpoint
from conftest import assert_sigterm_reaches_claude, ccs, imported_modules, write_config

CONFIG = """
version = 1
[profiles.glm]
preset = "zai"
claude_args = ["--verbose"]
env = { EXTRA = "yes", DISABLE_AUTOUPDATER = "" }
[profiles.anth]
preset = "anthropic"
[profiles.sub]
preset = "claude"
config_dir = "~/.claude-sub"
[profiles.local]
preset = "ollama"
"""


@pytest.fixture
def configured(no_keyring):
    write_config(CONFIG)
    for name in ("glm", "anth"):
        assert ccs("key", "set", name, "--stdin", input=f"sk-{name}-secret-0001").returncode == 0


LEAKY = {"ANTHROPIC_API_KEY": "leak", "ANTHROPIC_MODEL": "leak", "ANTHROPIC_SMALL_FAST_MODEL": "leak",
         "CLAUDE_CODE_USE_BEDROCK": "1", "CLAUDECODE": "1", "ANTHROPIC_CUSTOM_HEADERS": "X: y",
         "DISABLE_AUTOUPDATER": "1", "UNRELATED": "kept"}


def test_bearer_profile_gets_exactly_its_environment(configured, claude_stub):
    result = ccs("run", "glm", "--", "claude", "--print", "hi", env=LEAKY)
    assert result.returncode == 0, result.stderr
    seen = claude_stub()
    env = seen["env"]
    assert seen["argv"] == ["--verbose", "--print", "hi"]
    assert env["ANTHROPIC_BASE_URL"] == "https://api.z.ai/api/anthropic"
    assert env["ANTHROPIC_AUTH_TOKEN"] == "sk-glm-secret-0001"
    assert env["ANTHROPIC_API_KEY"] == ""
    assert env["ANTHROPIC_MODEL"] == "glm-4.6"
    assert env["ANTHROPIC_DEFAULT_HAIKU_MODEL"] == "glm-4.5-air"
    assert env["CLAUDE_CODE_SUBAGENT_MODEL"] == "glm-4.6"
    assert env["API_TIMEOUT_MS"] == "3000000" and env["EXTRA"] == "yes"
    assert env["CLAUDE_CODE_MAX_CONTEXT_TOKENS"] == "200000"  # the preset's window, not claude's 1M guess
    assert env["DISABLE_AUTOUPDATER"] == ""  # "" neutralises the inherited value
    assert env["UNRELATED"] == "kept" and env["CCS_RUN"] == "glm"
    for gone in ("ANTHROPIC_SMALL_FAST_MODEL", "CLAUDE_CODE_USE_BEDROCK", "CLAUDECODE", "ANTHROPIC_CUSTOM_HEADERS"):
        assert gone not in env


def test_a_key_env_key_reaches_claude_once_as_the_token_never_as_its_variable(configured, claude_stub):
    write_config(CONFIG + '[profiles.envkey]\npreset = "zai"\nkey_env = "ZAI_API_KEY"\n')
    assert ccs("run", "envkey", env={"ZAI_API_KEY": "sk-zai-from-the-shell-42"}).returncode == 0
    env = claude_stub()["env"]
    assert env["ANTHROPIC_AUTH_TOKEN"] == "sk-zai-from-the-shell-42" and "ZAI_API_KEY" not in env
    assert [var for var, value in env.items() if "sk-zai-from-the-shell-42" in value] == ["ANTHROPIC_AUTH_TOKEN"]
    shown = ccs("env", "envkey", env={"ZAI_API_KEY": "sk-zai-from-the-shell-42"})
    assert "unset ZAI_API_KEY" in shown.stdout and "# ZAI_API_KEY is unset" in shown.stdout
    assert "sk-zai-from-the-shell-42" not in shown.stdout


def test_api_key_profile_sets_the_reverse(configured, claude_stub):
    assert ccs("run", "anth", env=LEAKY).returncode == 0  # command defaults to claude
    env = claude_stub()["env"]
    assert env["ANTHROPIC_API_KEY"] == "sk-anth-secret-0001" and env["ANTHROPIC_AUTH_TOKEN"] == ""
    assert "ANTHROPIC_MODEL" not in env


def test_login_profile_removes_every_provider_variable(configured, claude_stub):
    assert ccs("run", "sub", "--", "claude", env=LEAKY).returncode == 0
    env = claude_stub()["env"]
    assert not {"ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL", "ANTHROPIC_MODEL"} & set(env)
    assert env["CLAUDE_CONFIG_DIR"] == str(Path.home() / ".claude-sub")


def test_keyless_profile_gets_its_fixed_token(configured, claude_stub):
    assert ccs("run", "local", "--", "claude").returncode == 0
    env = claude_stub()["env"]
    assert env["ANTHROPIC_BASE_URL"] == "http://localhost:11434"
    assert env["ANTHROPIC_AUTH_TOKEN"] == "ollama" and env["ANTHROPIC_API_KEY"] == ""


def test_user_settings_env_is_overridden_inline_when_no_secret_is_involved(configured, claude_stub):
    settings = Path.home() / ".claude" / "settings.json"
    settings.parent.mkdir()
    settings.write_text(json.dumps({"env": {"ANTHROPIC_BASE_URL": "https://stale.example", "ANTHROPIC_MODEL": "old",
                                            "OTHER": "untouched"}, "permissions": {}}))
    result = ccs("run", "anth", "--", "claude", "-p", "x")
    assert result.returncode == 0
    assert "settings.json sets provider settings" in result.stderr
    argv = claude_stub()["argv"]
    assert argv[0] == "--settings" and argv[2:] == ["-p", "x"]
    assert json.loads(argv[1]) == {"env": {"ANTHROPIC_BASE_URL": "https://api.anthropic.com", "ANTHROPIC_MODEL": ""}}


def test_an_api_key_helper_in_settings_is_neutralised(configured, claude_stub):
    """Seen with claude 2.1.329: a settings apiKeyHelper's key is sent as x-api-key beside the profile's token."""
    settings = Path.home() / ".claude" / "settings.json"
    settings.parent.mkdir()
    settings.write_text(json.dumps({"apiKeyHelper": "ccs key print other"}))
    assert ccs("run", "glm", "--", "claude").returncode == 0
    assert json.loads(claude_stub()["argv"][1]) == {"apiKeyHelper": ""}
    own = Path.home() / ".claude-sub" / "settings.json"  # where the login profile's claude reads settings
    own.parent.mkdir()
    own.write_text(json.dumps({"apiKeyHelper": "my-own-helper"}))
    assert ccs("run", "sub", "--", "claude").returncode == 0  # claude's own login: its helper is its own
    assert "--settings" not in claude_stub()["argv"]


def test_settings_are_read_from_the_profiles_own_config_dir(configured, claude_stub):
    settings = Path.home() / ".claude" / "settings.json"
    settings.parent.mkdir()
    settings.write_text(json.dumps({"env": {"ANTHROPIC_MODEL": "old"}}))
    own = Path.home() / ".claude-sub" / "settings.json"
    assert ccs("run", "sub", "--", "claude").stderr == ""  # ~/.claude is not the one claude will read
    own.parent.mkdir()
    own.write_text(json.dumps({"env": {"ANTHROPIC_BASE_URL": "https://stale.example"}}))
    assert ccs("run", "sub", "--", "claude").returncode == 0
    assert json.loads(claude_stub()["argv"][1]) == {"env": {"ANTHROPIC_BASE_URL": ""}}


def test_a_secret_in_the_overlay_lives_in_a_0600_file_removed_afterwards(configured, claude_stub, tmp_path):
    project = tmp_path / "project"
    (project / ".claude").mkdir(parents=True)
    (project / ".claude" / "settings.local.json").write_text(
        json.dumps({"env": {"ANTHROPIC_AUTH_TOKEN": "stale", "API_TIMEOUT_MS": "1"}}))
    result = ccs("run", "glm", "--", "claude", cwd=project)
    assert result.returncode == 0, result.stderr
    seen = claude_stub()
    overlay = seen["settings_file"]
    assert seen["argv"][0] == "--settings" and seen["argv"][1] == overlay["path"]
    assert overlay["mode"] == "0o600"
    assert overlay["content"] == {"env": {"ANTHROPIC_AUTH_TOKEN": "sk-glm-secret-0001", "API_TIMEOUT_MS": "3000000"}}
    assert not Path(overlay["path"]).exists()
    assert "sk-glm-secret-0001" not in " ".join(seen["argv"])


def test_the_resume_hint_names_a_command_that_works(configured, claude_stub):
    """claude's exit hint repeats its --settings file, which ccs deletes (it held the key): ccs prints one that works."""
    settings = Path.home() / ".claude" / "settings.json"
    settings.parent.mkdir()
    settings.write_text(json.dumps({"env": {"ANTHROPIC_AUTH_TOKEN": "stale"}}))
    old = Path.home() / ".claude" / "projects" / "-old" / "11111111-old.jsonl"
    old.parent.mkdir(parents=True)
    old.touch()
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    result = ccs("run", "glm", env={"STUB_SESSION": "403830b8-5f1f-4127-8702-dd2d57b028b6"})
    assert result.returncode == 0
    assert "settings_file" in claude_stub()  # the overlay with the key was a file
    assert ("ccs: resume this session with: ccs run glm -- claude --resume 403830b8-5f1f-4127-8702-dd2d57b028b6"
            in result.stderr)
    printed = ccs("run", "glm", "--", "claude", "-p", "hi", env={"STUB_SESSION": "22222222"})
    assert "resume this session" not in printed.stderr  # claude prints no hint for --print either


def test_other_commands_get_no_settings_overlay(configured, claude_stub):
    settings = Path.home() / ".claude" / "settings.json"
    settings.parent.mkdir()
    settings.write_text(json.dumps({"env": {"ANTHROPIC_MODEL": "old"}}))
    result = ccs("run", "glm", "--", sys.executable, "-c", "import os; print(os.environ['ANTHROPIC_MODEL'])")
    assert result.stdout.strip() == "glm-4.6" and result.stderr == ""


def test_exit_code_passes_through(configured, claude_stub):
    assert ccs("run", "glm", "--", "claude", env={"STUB_EXIT": "7"}).returncode == 7


def test_sigterm_is_forwarded_and_the_signal_becomes_128_plus_n(configured, claude_stub, tmp_path):
    settings = Path.home() / ".claude" / "settings.json"  # a secret in the overlay: ccs must spawn and wait
    settings.parent.mkdir()
    settings.write_text(json.dumps({"env": {"ANTHROPIC_AUTH_TOKEN": "stale"}}))
    assert_sigterm_reaches_claude("glm")
    assert not list((Path(os.environ["CCS_HOME"]) / "state" / "run").iterdir())  # overlay cleaned up


def test_a_signal_caught_by_another_thread_is_still_forwarded(tmp_path):
    """The proxy runs threads in ccs: the kernel may hand SIGTERM to one of them, never waking a waitpid."""
    import threading

    ready = tmp_path / "ready"
    child = ("import pathlib, signal, sys, time\n"
             "signal.signal(signal.SIGTERM, lambda *_: sys.exit(42))\n"
             f"pathlib.Path({str(ready)!r}).touch()\n"
             "time.sleep(20)\n")

    def terminate_from_this_thread():
        deadline = time.monotonic() + 20
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        signal.pthread_kill(threading.get_ident(), signal.SIGTERM)

    helper = threading.Thread(target=terminate_from_this_thread)
    before = signal.getsignal(signal.SIGTERM)
    helper.start()
    assert launch.spawn([sys.executable, "-c", child], dict(os.environ)) == 42  # forwarded, not outslept
    helper.join()
    assert signal.getsignal(signal.SIGTERM) is before  # ccs's handlers are gone again


def test_errors_are_one_line_and_exit_2(configured, tmp_path):
    no_claude = ccs("run", "glm", "--", "claude", env={"PATH": str(tmp_path)})
    assert no_claude.returncode == 2
    assert no_claude.stderr.strip() == ("ccs: error: `claude` is not on PATH: install it with "
                                        "`npm install -g @anthropic-ai/claude-code`")
    missing = ccs("run", "glm", "--", "no-such-command-xyz")
    assert (missing.returncode, missing.stderr.strip()) == (2, "ccs: error: command not found: no-such-command-xyz")
    write_config(CONFIG + '[profiles.nokey]\npreset = "deepseek"\n')
    nokey = ccs("run", "nokey", "--", "true")
    assert nokey.returncode == 2 and "run `ccs key set nokey`" in nokey.stderr
    unknown = ccs("run", "glmm", "--", "true")
    assert unknown.returncode == 2 and "did you mean 'glm'" in unknown.stderr
    none_active = ccs("run", "--", "true")
    assert none_active.returncode == 2 and "ccs use NAME" in none_active.stderr


def test_active_profile_from_the_shell_variable_then_the_default(configured, claude_stub):
    assert ccs("use", "anth").returncode == 0
    assert ccs("run").returncode == 0
    assert claude_stub()["env"]["CCS_RUN"] == "anth"
    assert ccs("run", env={"CCS_PROFILE": "glm"}).returncode == 0
    assert claude_stub()["env"]["CCS_RUN"] == "glm"


def test_run_without_a_name_takes_the_directory_profile(configured, claude_stub, tmp_path):
    project = tmp_path / "repo"
    (project / "sub").mkdir(parents=True)
    (project / ".ccs-profile").write_text("# chosen for this repository\nanth\n")
    assert ccs("use", "glm").returncode == 0
    assert ccs("run", cwd=project / "sub").returncode == 0
    assert claude_stub()["env"]["CCS_RUN"] == "anth"
    assert ccs("run", env={"CCS_PROFILE": "glm"}, cwd=project).returncode == 0  # the shell's choice wins
    assert claude_stub()["env"]["CCS_RUN"] == "glm"
    (project / ".ccs-profile").write_text("gone\n")
    missing = ccs("run", cwd=project / "sub")
    assert missing.returncode == 2
    assert f"this directory ({project}/.ccs-profile) names profile 'gone', which does not exist" in missing.stderr


def test_what_follows_the_profile_is_claudes_unless_it_is_a_command(configured, claude_stub, tmp_path):
    assert ccs("run", "glm", "--print", "hi").returncode == 0  # `command not found: --print` before
    assert claude_stub()["argv"] == ["--verbose", "--print", "hi"]
    assert ccs("run", "glm", "claude", "--print", "x").returncode == 0
    assert claude_stub()["argv"] == ["--verbose", "--print", "x"]
    assert ccs("run", "glm", "fix the failing test").returncode == 0  # a prompt, not a program
    assert claude_stub()["argv"] == ["--verbose", "fix the failing test"]
    marker = tmp_path / "ran"
    assert ccs("run", "glm", sys.executable, "-c", f"open({str(marker)!r}, 'w')").returncode == 0  # a command
    assert marker.exists()
    assert ccs("run", "glm", "--", "--print", "y").returncode == 0  # after --, an option is still claude's
    assert claude_stub()["argv"] == ["--verbose", "--print", "y"]
    assert ccs("run", "glm", "--", "no-such-command-xyz").returncode == 2  # after --, a word is the command
    assert ccs("use", "glm").returncode == 0
    assert ccs("run", "--print", "z").returncode == 0  # no profile named: the one that applies, claude's words
    assert claude_stub()["argv"] == ["--verbose", "--print", "z"]


def test_a_profile_name_alone_is_ccs_run(configured, claude_stub):
    assert ccs("glm", "--print", "hi").returncode == 0
    seen = claude_stub()
    assert seen["argv"] == ["--verbose", "--print", "hi"] and seen["env"]["CCS_RUN"] == "glm"
    unknown = ccs("glmm")
    assert unknown.returncode == 2 and "No such command 'glmm'" in unknown.stderr


def test_run_verbose_says_which_profile_and_why(configured, claude_stub):
    assert ccs("use", "anth").returncode == 0
    result = ccs("run", "-v", "--", "claude")
    assert result.returncode == 0
    assert "ccs: profile 'anth' (the default" in result.stderr and "https://api.anthropic.com directly" in result.stderr


def test_hot_path_imports_nothing_it_does_not_need(configured):
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "ccswitch", "run", "glm", "--", "true"],
                            capture_output=True, text=True, env=os.environ)
    assert result.returncode == 0, result.stderr
    heavy = {"typer", "rich", "click", "httpx", "httpx2", "uvicorn", "keyring", "tomlkit"}
    assert not heavy & imported_modules(result.stderr)


@pytest.mark.parametrize("words, parsed", [
    (["gpt"], ("gpt", 0, False, False)),
    (["gpt", "--port", "8082", "--json"], ("gpt", 8082, True, False)),
    (["--json", "gpt", "--port=9", "-q"], ("gpt", 9, True, True)),
    (["gpt", "--port"], None),
    (["gpt", "--help"], None),
    ([], None),
    (["a", "b"], None),
])
def test_split_proxy_args(words, parsed):
    from ccswitch.__main__ import split_proxy_args

    assert split_proxy_args(words) == parsed


@pytest.mark.parametrize("words, parsed", [
    (["glm", "--", "claude", "-p", "x"], ("glm", ["claude", "-p", "x"], True, False)),
    (["--", "claude"], (None, ["claude"], True, False)),
    ([], (None, [], False, False)),
    (["glm"], ("glm", [], False, False)),
    (["glm", "--", "--", "x"], ("glm", ["--", "x"], True, False)),
    (["-v", "glm", "--print"], ("glm", ["--print"], False, True)),
    (["--print", "hi"], (None, ["--print", "hi"], False, False)),
    (["glm", "-v"], ("glm", ["-v"], False, False)),  # after the profile: claude's -v
    (["--help"], None),
    (["-v", "-h"], None),
])
def test_split_run_args(words, parsed):
    assert split_run_args(words) == parsed


def test_statusline_names_the_profile_provider_and_model(configured):
    session = json.dumps({"session_id": "s1", "model": {"id": "glm-4.6", "display_name": "glm-4.6"}})
    line = ccs("statusline", input=session, env={"CCS_RUN": "glm"})
    assert (line.returncode, line.stdout) == (0, "glm · zai · glm-4.6\n")
    plain = subprocess.run([sys.executable, "-m", "ccswitch", "statusline"], input=session, capture_output=True,
                           text=True, env={k: v for k, v in os.environ.items() if k != "CCS_RUN"})
    assert plain.stdout == "claude · no ccs profile · glm-4.6\n"
    assert ccs("statusline", input="not json", env={"CCS_RUN": "glm"}).stdout == "glm · zai · ?\n"
    timed = subprocess.run([sys.executable, "-X", "importtime", "-m", "ccswitch", "statusline"], input=session,
                           capture_output=True, text=True, env={**os.environ, "CCS_RUN": "glm"})
    assert not {"typer", "rich", "click", "httpx2", "uvicorn", "keyring", "tomlkit"} & imported_modules(timed.stderr)


def test_profile_env_is_pure_and_complete():
    profile = resolve("p", {"preset": "zai", "context_window": 100, "max_output_tokens": 50})
    env = launch.profile_env(profile, "sk-x")
    assert env["CLAUDE_CODE_MAX_CONTEXT_TOKENS"] == "100" and env["CLAUDE_CODE_MAX_OUTPUT_TOKENS"] == "50"
    proxied = launch.profile_env(resolve("g", {"preset": "openai"}), None, Endpoint("http://127.0.0.1:9", "tok"))
    assert proxied["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:9" and proxied["ANTHROPIC_AUTH_TOKEN"] == "tok"
    assert proxied["ANTHROPIC_DEFAULT_HAIKU_MODEL"] == "gpt-5-mini"
