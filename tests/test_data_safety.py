"""The user's files survive whatever happens to a `ccs` that edits them: concurrent runs, SIGKILL at any
moment, a read-only directory. Nothing is lost, duplicated or left half-written; comments stay."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from ccswitch import profiles
from conftest import COMMENTED, ccs, write_config

COMMENTS = [line.split("#", 1)[1] for line in COMMENTED.splitlines() if "#" in line]


def ccs_process(*args: str, key: str = "") -> subprocess.Popen:
    """`ccs ARGS` started now, its standard input (a key, for the commands that read one) already written."""
    process = subprocess.Popen([sys.executable, "-m", "ccswitch", *args], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    process.stdin.write(key)
    process.stdin.close()
    return process


def finish_all(processes: list[subprocess.Popen]) -> list[tuple[int, str]]:
    return [(process.wait(timeout=60), process.stderr.read()) for process in processes]


def test_ten_concurrent_adds_sets_and_removes_lose_and_duplicate_nothing(no_keyring):
    path = write_config(COMMENTED)
    names = [f"p{i}" for i in range(10)]
    adds = [ccs_process("add", name, "--preset", "zai", "--key-stdin", key=f"sk-key-of-{name}-0000") for name in names]
    assert [code for code, _ in finish_all(adds)] == [0] * 10
    sets = [ccs_process("set", name, f"model=model-{name}") for name in names]
    assert [code for code, _ in finish_all(sets)] == [0] * 10
    mixed = [ccs_process("rm", name, "--yes") if i % 2 else ccs_process("set", name, f"env.N={i}")
             for i, name in enumerate(names)]
    assert [code for code, _ in finish_all(mixed)] == [0] * 10
    text = path.read_text()
    config = profiles.load(path)
    kept = [name for i, name in enumerate(names) if not i % 2]
    assert sorted(config.profiles) == sorted(["glm", "other", *kept])
    for i, name in enumerate(names):
        assert text.count(f"[profiles.{name}]") == (0 if i % 2 else 1)
    for name in kept:
        profile = config.get(name)
        assert profile.model == f"model-{name}" and profile.env["N"] == str(names.index(name))
        assert ccs("key", "print", name).stdout.strip() == f"sk-key-of-{name}-0000"
    assert all(comment in text for comment in COMMENTS)


def test_two_adds_of_one_name_keep_one_profile(no_keyring):
    path = write_config(COMMENTED)
    outcomes = finish_all([ccs_process("add", "twin", "--preset", "zai", "--key-stdin", key="sk-twin-key-0000")
                           for _ in range(4)])
    assert sorted(code for code, _ in outcomes) == [0, 2, 2, 2]
    assert all("exists" in err for code, err in outcomes if code)
    assert path.read_text().count("[profiles.twin]") == 1


def test_sigkill_at_any_moment_leaves_the_old_file_or_the_new_one(no_keyring):
    path = write_config(COMMENTED)
    start = time.monotonic()
    assert ccs("set", "glm", "description=measured").returncode == 0
    duration = time.monotonic() - start
    seen = {"measured"}
    rng = random.Random(7)
    reach = 1.2  # kills land within this many measured durations; grows while none came after the write
    for attempt in range(80):
        if attempt >= 40 and len(seen) > 2:
            break
        before = profiles.load(path).get("glm").description
        process = ccs_process("set", "glm", f"description=attempt-{attempt}")
        time.sleep(rng.uniform(0, duration * reach))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        text = path.read_text()
        description = tomllib.loads(text)["profiles"]["glm"].get("description")
        assert description in (before, f"attempt-{attempt}"), text
        assert all(comment in text for comment in COMMENTS)
        seen.add(description)
        if description == before:  # a loaded machine is slower than the measured run
            reach = min(reach * 1.15, 5.0)
    assert len(seen) > 2  # some kills came after the write, some before
    assert ccs("set", "glm", "description=final").returncode == 0
    assert sorted(p.name for p in path.parent.iterdir() if p.name.startswith(".profiles.toml.")) == []


def test_every_edit_command_keeps_the_users_comments(no_keyring, tmp_path, monkeypatch):
    path = write_config(COMMENTED)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "https://gw.example/anthropic")
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", "sk-imported-key-0000")
    steps = [("add", "new", "--preset", "kimi", "--key-stdin"), ("set", "glm", "model=glm-5", "aliases=[\"cc-w\"]"),
             ("set", "glm", "--unset", "model"), ("rename", "new", "renamed"), ("rm", "renamed", "--yes"),
             ("import", "--from-env", "imported", "--yes"), ("key", "set", "other", "--stdin")]
    for step in steps:
        result = ccs(*step, input="sk-some-key-12345\n")
        assert result.returncode == 0, (step, result.stderr)
        assert all(comment in path.read_text() for comment in COMMENTS), step


# ---------------------------------------------------------------- a read-only directory


def _read_only_prefix(directory: Path) -> list[str] | None:
    """A command prefix that runs its command with `directory` mounted read-only (a private mount
    namespace as root, so the real file system is untouched); None where this machine cannot."""
    if os.geteuid() != 0:
        directory.chmod(0o555)  # enough for a user that is not root
        return []
    prefix = ["unshare", "-m", "sh", "-c", 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"',
              str(directory)]
    probe = subprocess.run([*prefix, "touch", str(directory / "probe")], capture_output=True)
    return prefix if probe.returncode != 0 and not (directory / "probe").exists() else None


@pytest.fixture
def read_only_config(tmp_path, monkeypatch, no_keyring):
    """Profiles in their own directory, and a runner of `ccs` that sees that directory read-only."""
    directory = tmp_path / "conf"
    directory.mkdir()
    path = directory / "profiles.toml"
    monkeypatch.setenv("CCS_CONFIG", str(path))
    path.write_text(COMMENTED)
    assert ccs("key", "set", "glm", "--stdin", input="sk-glm-key-0000").returncode == 0
    prefix = _read_only_prefix(directory)
    if prefix is None:
        pytest.skip("no way to mount a read-only directory here")

    def run(*args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([*prefix, sys.executable, "-m", "ccswitch", *args], input="sk-new-key-0000\n",
                              capture_output=True, text=True, env={**os.environ, **env}, timeout=60)

    yield path, run
    directory.chmod(0o755)


EDITOR = """#!{python}
import sys
path = sys.argv[1]
text = open(path).read()
open(path, "w").write(text.replace('model = "glm-4.6"', 'model = "glm-5"'))
"""


@pytest.mark.parametrize("args", [("set", "glm", "model=glm-5"), ("add", "x", "--preset", "zai", "--key-stdin"),
                                  ("rm", "glm", "--yes"), ("rename", "glm", "zai"), ("edit",)],
                         ids=["set", "add", "rm", "rename", "edit"])
def test_a_read_only_config_dir_is_one_clear_line_and_nothing_is_lost(read_only_config, tmp_path, args):
    path, run = read_only_config
    editor = tmp_path / "editor"
    editor.write_text(EDITOR.format(python=sys.executable))
    editor.chmod(0o755)
    result = run(*args, EDITOR=str(editor))
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"ccs: error: cannot write {path.parent}/") and "nothing was changed" in line
    assert path.read_text() == COMMENTED
    assert ccs("key", "print", "glm").stdout.strip() == "sk-glm-key-0000"  # the key stayed, too
    if args == ("edit",):
        kept = Path(line.rsplit("your edit is kept in ", 1)[1])
        assert 'model = "glm-5"' in kept.read_text()


def test_a_read_only_secret_store_is_one_clear_line(read_only_config, tmp_path, monkeypatch):
    path, _ = read_only_config
    data = Path(os.environ["CCS_HOME"]) / "data"
    prefix = _read_only_prefix(data)
    if prefix is None:
        pytest.skip("no way to mount a read-only directory here")
    result = subprocess.run([*prefix, sys.executable, "-m", "ccswitch", "key", "set", "glm", "--stdin"],
                            input="sk-replaced-0000\n", capture_output=True, text=True, timeout=60)
    data.chmod(0o755)
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
    assert "cannot write" in result.stderr and "Traceback" not in result.stderr
    assert ccs("key", "print", "glm").stdout.strip() == "sk-glm-key-0000"
