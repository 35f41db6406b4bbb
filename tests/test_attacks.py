"""The ways in that a security review tried, each played by the attacker: a file planted in the repository
claude runs in, a shared profiles file, a settings file claude reads, a local process talking to the proxy.
Each test failed on the code the review found it in. (The settings-file attacks with the real claude are in
test_real_claude.py; the overlay's own tests in test_launch.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ccswitch import claude_settings
from conftest import ccs, write_config

KEY = "sk-glm-real-key-000042"


def planted_repository(root: Path) -> Path:
    """A repository holding a `ccswitch/` package of its own: imported, it leaves a mark and prints its key."""
    repo = root / "cloned-repo"
    package = repo / "ccswitch"
    package.mkdir(parents=True)
    mark = root / "the-repository-ran-code"
    code = f"import pathlib; pathlib.Path({str(mark)!r}).touch(); print('sk-attacker')\n"
    (package / "__init__.py").write_text(code)
    (package / "__main__.py").write_text(code)
    return repo


@pytest.fixture
def glm_in_claude_settings(no_keyring):
    write_config('version = 1\n[profiles.glm]\npreset = "zai"\n')
    assert ccs("key", "set", "glm", "--stdin", input=KEY).returncode == 0
    assert ccs("use", "glm", "--claude-settings").returncode == 0
    return json.loads((Path.home() / ".claude" / "settings.json").read_text())


def test_the_key_helper_imports_nothing_from_the_directory_claude_runs_it_in(glm_in_claude_settings, tmp_path):
    """claude runs `apiKeyHelper` in the project's directory, with the env its settings give (PYTHONPATH
    included): `python -m ccswitch` there would run the repository's own package as the user."""
    repo = planted_repository(tmp_path)
    helper = glm_in_claude_settings["apiKeyHelper"]
    for env in ({}, {"PYTHONPATH": str(repo)}, {"PYTHONPATH": "."}):
        printed = subprocess.run(helper, shell=True, cwd=repo, capture_output=True, text=True, timeout=60,
                                 env={**os.environ, **env})
        assert printed.stdout.strip() == KEY, (env, printed.stderr)
        assert not (tmp_path / "the-repository-ran-code").exists(), env


def test_a_helper_an_older_ccs_wrote_is_flagged_and_rewritten(glm_in_claude_settings):
    path = Path.home() / ".claude" / "settings.json"
    old = f"{sys.executable} -m ccswitch key print glm"
    path.write_text(json.dumps({**glm_in_claude_settings, "apiKeyHelper": old}))
    assert claude_settings.unsafe_helper(old) == "glm"
    assert claude_settings.unsafe_helper(glm_in_claude_settings["apiKeyHelper"]) is None
    doctor = ccs("doctor", "--offline")
    assert doctor.returncode == 1 and "`ccs use glm --claude-settings` rewrites it safely" in doctor.stdout
    assert ccs("use", "glm", "--claude-settings").returncode == 0
    assert json.loads(path.read_text())["apiKeyHelper"] == glm_in_claude_settings["apiKeyHelper"]
    assert "rewrites it safely" not in ccs("doctor", "--offline").stdout


def test_a_helper_put_back_by_restore_is_the_safe_form_too(no_keyring):
    """The backup holds what was there before: an older ccs's helper comes back rewritten."""
    write_config('version = 1\n[profiles.glm]\npreset = "zai"\n[profiles.kimi]\npreset = "kimi"\n')
    path = Path.home() / ".claude" / "settings.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"apiKeyHelper": f"{sys.executable} -m ccswitch key print kimi"}))
    assert ccs("use", "glm", "--claude-settings").returncode == 0
    assert ccs("use", "--off", "--claude-settings").returncode == 0
    assert json.loads(path.read_text())["apiKeyHelper"] == claude_settings.key_print_command("kimi")
