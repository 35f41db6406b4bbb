"""Shell integration driven through real bash, zsh and fish processes, with a `claude` stub on PATH."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ccswitch import shell
from conftest import REPO, ccs, imported_modules, write_config

SECRET = "sk-glm-shell-secret-4242"
CONFIG = """
version = 1
[profiles.glm]
preset = "zai"
[profiles.anth]
preset = "anthropic"
aliases = ["cc-anth"]
[profiles.cheap]
preset = "deepseek"
aliases = ["cc-cheap"]
key_env = "CHEAP_KEY"
"""
SHELLS = [s for s in ("bash", "zsh", "fish") if shutil.which(s)]
if os.environ.get("CI"):
    assert SHELLS == ["bash", "zsh", "fish"], "CI installs all three shells"


@pytest.fixture
def setup(no_keyring, claude_stub, monkeypatch):
    write_config(CONFIG)
    for name in ("glm", "anth"):
        assert ccs("key", "set", name, "--stdin", input=SECRET if name == "glm" else "sk-anth-0000").returncode == 0
    monkeypatch.setenv("CHEAP_KEY", "sk-cheap-1111")
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")  # `ccs` itself
    return claude_stub


def run_in(sh: str, script: str, **env) -> subprocess.CompletedProcess:
    """A fresh shell process that loads the integration, then runs `script`."""
    if sh == "fish":
        argv = ["fish", "--no-config", "-c", "ccs shell-init fish | source\n" + script]
    else:
        argv = [sh, "-f" if sh == "zsh" else "--norc", "-c", f'eval "$(ccs shell-init {sh})"\n' + script]
    return subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **env}, timeout=60)


@pytest.mark.parametrize("sh", SHELLS)
def test_default_profile_applies_to_plain_claude_and_exit_codes_pass(setup, sh):
    result = run_in(sh, "ccs use glm\nclaude --print x\n", STUB_EXIT="3")
    assert result.returncode == 3, result.stderr
    seen = setup()
    assert seen["argv"] == ["--print", "x"]
    assert seen["env"]["CCS_RUN"] == "glm" and seen["env"]["ANTHROPIC_AUTH_TOKEN"].startswith("ccs-")  # the proxy's
    assert SECRET not in json.dumps(seen)


@pytest.mark.parametrize("on, off", [("--shell anth", "--shell --off"), ("anth --shell", "--off --shell")],
                         ids=["option-first", "option-last"])
@pytest.mark.parametrize("sh", SHELLS)
def test_use_shell_changes_only_this_shell(setup, sh, on, off):
    assert ccs("use", "glm").returncode == 0
    result = run_in(sh, f"ccs use {on}\nclaude\n")
    assert result.returncode == 0, result.stderr
    assert setup()["env"]["CCS_RUN"] == "anth"
    assert run_in(sh, "claude\n").returncode == 0  # another shell: still the default
    assert setup()["env"]["CCS_RUN"] == "glm"
    undone = run_in(sh, f"ccs shell anth\nccs use {off}\nclaude\n")
    assert undone.returncode == 0, undone.stderr
    assert setup()["env"]["CCS_RUN"] == "glm"


@pytest.mark.parametrize("sh", SHELLS)
def test_a_directory_profile_applies_below_the_shell_scope_and_above_the_default(setup, sh, tmp_path):
    project = tmp_path / "project"
    (project / "src" / "deep").mkdir(parents=True)
    assert ccs("use", "glm").returncode == 0
    assert ccs("use", "--here", "anth", cwd=project).returncode == 0
    assert (project / ".ccs-profile").read_text() == "anth\n"
    deep = run_in(sh, f"cd {project}/src/deep\nclaude\n")
    assert deep.returncode == 0, deep.stderr
    assert setup()["env"]["CCS_RUN"] == "anth"
    assert run_in(sh, f"cd {tmp_path}\nclaude\n").returncode == 0  # outside: the default
    assert setup()["env"]["CCS_RUN"] == "glm"
    scoped = run_in(sh, f"cd {project}\nccs use --shell glm\nclaude\nccs current\n")
    assert setup()["env"]["CCS_RUN"] == "glm" and "this shell" in scoped.stdout
    assert ccs("use", "--off").returncode == 0
    assert run_in(sh, f"cd {project}/src\nclaude\n").returncode == 0  # no default, the directory still applies
    assert setup()["env"]["CCS_RUN"] == "anth"
    current = run_in(sh, f"cd {project}/src\nccs current\n")
    assert f"anth  (this directory ({project}/.ccs-profile))" in current.stdout


@pytest.mark.parametrize("sh", SHELLS)
def test_one_command_scope_with_the_variable(setup, sh):
    assert ccs("use", "glm").returncode == 0
    out = Path(os.environ["STUB_OUT"])
    result = run_in(sh, f"CCS_PROFILE=anth claude\ncp {out} {out}.first\nclaude\n")
    assert result.returncode == 0, result.stderr
    assert json.loads(Path(f"{out}.first").read_text())["env"]["CCS_RUN"] == "anth"
    assert setup()["env"]["CCS_RUN"] == "glm"


@pytest.mark.parametrize("sh", SHELLS)
def test_aliases_run_their_profile(setup, sh):
    result = run_in(sh, "cc-cheap --print hi\n")
    assert result.returncode == 0, result.stderr
    seen = setup()
    assert seen["argv"] == ["--print", "hi"] and seen["env"]["CCS_RUN"] == "cheap"
    assert seen["env"]["ANTHROPIC_AUTH_TOKEN"].startswith("ccs-") and "sk-cheap-1111" not in json.dumps(seen)


@pytest.mark.parametrize("sh", SHELLS)
def test_off_restores_the_untouched_claude(setup, sh):
    result = run_in(sh, "ccs use glm\nccs use --off\nclaude -p y\n", ANTHROPIC_MODEL="mine", ANTHROPIC_API_KEY="own")
    assert result.returncode == 0, result.stderr
    env = setup()["env"]
    assert "CCS_RUN" not in env and env["ANTHROPIC_MODEL"] == "mine" and env["ANTHROPIC_API_KEY"] == "own"


@pytest.mark.parametrize("sh", SHELLS)
def test_no_secret_ever_enters_the_shell(setup, sh):
    result = run_in(sh, "ccs use glm\nccs use --shell anth\ncc-anth\nenv\nset\n")
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout and "sk-anth-0000" not in result.stdout


@pytest.mark.parametrize("sh", SHELLS)
def test_reload_picks_up_new_and_removed_aliases(setup, sh):
    script = ("ccs set anth 'aliases=[\"cc-new\"]'\nccs reload\ncc-new\n"
              "if type cc-anth >/dev/null 2>&1; then echo STILL-THERE; fi\n")
    if sh == "fish":
        script = script.replace("if type cc-anth >/dev/null 2>&1; then echo STILL-THERE; fi",
                                "if functions -q cc-anth; echo STILL-THERE; end")
    result = run_in(sh, script)
    assert result.returncode == 0, result.stderr
    assert setup()["env"]["CCS_RUN"] == "anth" and "STILL-THERE" not in result.stdout


@pytest.mark.parametrize("sh", SHELLS)
def test_wrapper_never_recurses_when_claude_is_missing(setup, sh, tmp_path):
    path = f"{Path(sys.executable).parent}{os.pathsep}/usr/bin{os.pathsep}/bin"  # no stub, no real claude
    result = run_in(sh, "ccs use glm\nclaude\n", PATH=path)
    assert result.returncode == 2 and "`claude` is not on PATH" in result.stderr


@pytest.mark.parametrize("sh", SHELLS)
def test_current_reports_the_integration(setup, sh):
    result = run_in(sh, "ccs use --shell glm\nccs current\n")
    assert "glm  (this shell" in result.stdout and f"shell integration: active ({sh})" in result.stdout
    assert "not active" in ccs("current").stdout


def test_use_shell_without_the_integration_says_how():
    write_config(CONFIG)
    result = ccs("use", "--shell", "glm")
    assert result.returncode == 2 and "ccs shell-init" in result.stderr


def test_shell_init_survives_a_broken_profiles_file():
    write_config("version = 1\n[profiles.x\n")
    result = ccs("shell-init", "bash")
    assert result.returncode == 0 and "claude() {" in result.stdout
    assert "without aliases" in result.stderr


def test_shell_init_is_on_the_fast_path(setup):
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "ccswitch", "shell-init", "zsh"],
                            capture_output=True, text=True)
    assert not {"typer", "rich", "httpx", "httpx2", "keyring", "tomlkit"} & imported_modules(result.stderr)


@pytest.mark.parametrize("name, sh", [("ccs.bash", "bash"), ("_ccs", "zsh"), ("ccs.fish", "fish")])
def test_shipped_completion_scripts_are_current(name, sh):
    assert (REPO / "completions" / name).read_text() == shell.completion_script(sh), \
        f"regenerate: ccs completions {sh} > completions/{name}"


def test_completion_offers_profile_and_preset_names(setup):
    bash = subprocess.run(["bash", "--norc", "-c", f"source {REPO / 'completions' / 'ccs.bash'}\n"
                           "COMP_WORDS=(ccs use ''); COMP_CWORD=2; _ccs_completion ccs; echo \"${COMPREPLY[@]}\""],
                          capture_output=True, text=True, env=os.environ)
    assert set(bash.stdout.split()) == {"glm", "anth", "cheap"}, bash.stderr
    presets = subprocess.run(["bash", "--norc", "-c", f"source {REPO / 'completions' / 'ccs.bash'}\n"
                              "COMP_WORDS=(ccs add x --preset ki); COMP_CWORD=4; _ccs_completion ccs; "
                              "echo \"${COMPREPLY[@]}\""], capture_output=True, text=True, env=os.environ)
    assert set(presets.stdout.split()) == {"kimi", "kimi-code"}
    if "fish" in SHELLS:
        fish = subprocess.run(["fish", "--no-config", "-c", f"source {REPO / 'completions' / 'ccs.fish'}; "
                               "complete -C 'ccs run '"], capture_output=True, text=True, env=os.environ)
        assert {"glm", "anth", "cheap"} <= {line.split("\t")[0] for line in fish.stdout.splitlines()}


@pytest.mark.parametrize("case", [
    {"_CCS_COMPLETE": "complete_bash", "COMP_WORDS": "ccs run ", "COMP_CWORD": "2"},
    {"_CCS_COMPLETE": "complete_bash", "COMP_WORDS": "ccs key set ch", "COMP_CWORD": "3"},
    {"_CCS_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": "ccs use "},
    {"_CCS_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": "ccs show zz"},
    {"_CCS_COMPLETE": "complete_fish", "_TYPER_COMPLETE_ARGS": "ccs rm a", "_TYPER_COMPLETE_FISH_ACTION": "get-args"},
    {"_CCS_COMPLETE": "complete_fish", "_TYPER_COMPLETE_ARGS": "ccs rm a", "_TYPER_COMPLETE_FISH_ACTION": "is-args"},
    {"_CCS_COMPLETE": "complete_fish", "_TYPER_COMPLETE_ARGS": "ccs rm q", "_TYPER_COMPLETE_FISH_ACTION": "is-args"},
], ids=["bash-run", "bash-key-set", "zsh-use", "zsh-none", "fish-get", "fish-is", "fish-is-none"])
def test_profile_names_complete_without_typer_exactly_as_typer_would(setup, case):
    """A TAB after a command that takes a profile is answered from the profiles file (no Typer)."""
    quick = subprocess.run([sys.executable, "-X", "importtime", "-m", "ccswitch"], capture_output=True, text=True,
                           env={**os.environ, **case})
    assert "typer" not in imported_modules(quick.stderr)
    from ccswitch.cli import app
    from typer.testing import CliRunner

    typer_answer = CliRunner().invoke(app, [], env=case, prog_name="ccs")
    assert (quick.returncode, quick.stdout.strip()) == (typer_answer.exit_code, typer_answer.output.strip())


@pytest.mark.parametrize("sh", SHELLS)
@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="giving a file to another user needs root")
def test_another_users_ccs_profile_is_not_obeyed_by_the_shell(setup, sh, tmp_path):
    """`/tmp/.ccs-profile` planted by another user of the machine: plain `claude` below it stays untouched."""
    public = tmp_path / "public"
    (public / "work").mkdir(parents=True)
    planted = public / ".ccs-profile"
    planted.write_text("anth\n")
    os.chown(planted, 65534, 65534)
    result = run_in(sh, f"cd {public}/work\nclaude --print x\n")
    assert result.returncode == 0, result.stderr
    assert "CCS_RUN" not in setup()["env"]
