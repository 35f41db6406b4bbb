"""Keys: keyring through its own API, the 0600 file fallback, key_env and key_cmd."""

from __future__ import annotations

import json
import os
import stat
import sys
import time
import tomllib
from pathlib import Path

import pexpect
import pytest

from ccswitch import files, keys
from ccswitch.errors import CcsError
from ccswitch.profiles import resolve
from conftest import REPO, MemoryKeyring, ccs, write_config

GLM = resolve("glm", {"preset": "zai"})


def test_keyring_round_trip(memory_keyring):
    assert keys.store_key("glm", "sk-secret-1234", "auto") == "keyring"
    assert memory_keyring.store[("ccswitch", "glm")] == "sk-secret-1234"
    assert keys.get(GLM) == "sk-secret-1234"
    assert keys.status(GLM) == ("keyring", True)
    assert not (files.data_dir() / "secrets.json").exists()
    assert keys.delete_key("glm") is True
    assert keys.get(GLM) is None


def test_no_keyring_falls_back_to_a_0600_file_with_one_notice(no_keyring, capsys):
    where = keys.store_key("glm", "sk-secret-1234")
    path = files.data_dir() / "secrets.json"
    assert where == str(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["secrets"] == {"glm": "sk-secret-1234"}
    assert "no usable OS keyring" in capsys.readouterr().err
    keys.store_key("other", "sk-other")
    assert capsys.readouterr().err == ""  # said once only
    assert keys.get(GLM) == "sk-secret-1234"
    assert keys.status(GLM) == ("file", True)


class BrokenKeyring(MemoryKeyring):
    """A backend keyring selects, that then fails on use (no Secret Service daemon, a locked keyring)."""

    def set_password(self, service, username, password):
        from keyring.errors import PasswordSetError

        raise PasswordSetError("no Secret Service daemon")


def test_a_keyring_that_fails_on_use_falls_back_to_the_file_in_auto_mode(capsys):
    import keyring

    keyring.set_keyring(BrokenKeyring())
    assert keys.store_key("glm", "sk-secret-1234") == str(files.data_dir() / "secrets.json")
    assert "the keyring said: no Secret Service daemon" in capsys.readouterr().err
    assert keys.get(GLM) == "sk-secret-1234"
    with pytest.raises(CcsError, match="the keyring refused to store the key: no Secret Service daemon"):
        keys.store_key("glm", "sk-other", "keyring")


def test_required_keyring_missing_is_a_clear_error(no_keyring):
    with pytest.raises(CcsError, match='no usable keyring backend.*secret_store = "file"'):
        keys.store_key("glm", "sk", "keyring")
    with pytest.raises(CcsError, match="no usable keyring"):
        keys.get(GLM, "keyring")


def test_storing_in_the_keyring_removes_a_stale_file_copy(no_keyring, memory_keyring):
    import keyring

    keys.store_key("glm", "old-key-000000")
    keyring.set_keyring(memory_keyring)
    keys.store_key("glm", "new-key-111111")
    assert keys.get(GLM) == "new-key-111111"


def test_key_env(monkeypatch):
    profile = resolve("k", {"preset": "kimi", "key_env": "MY_KIMI"})
    with pytest.raises(CcsError, match=r"\$MY_KIMI, which is not set"):
        keys.get(profile)
    monkeypatch.setenv("MY_KIMI", "sk-from-env")
    assert keys.get(profile) == "sk-from-env"
    assert keys.status(profile) == ("$MY_KIMI", True)


def test_key_cmd_success_failure_and_silence(monkeypatch):
    ok = resolve("d", {"preset": "deepseek", "key_cmd": "echo ' sk-from-cmd '"})
    assert keys.get(ok) == "sk-from-cmd"
    failing = resolve("d", {"preset": "deepseek", "key_cmd": "echo nope >&2; exit 3"})
    with pytest.raises(CcsError, match="exit code 3: nope"):
        keys.get(failing)
    silent = resolve("d", {"preset": "deepseek", "key_cmd": "true"})
    with pytest.raises(CcsError, match="printed nothing"):
        keys.get(silent)
    monkeypatch.setattr(keys, "KEY_CMD_TIMEOUT", 0.2)
    slow = resolve("d", {"preset": "deepseek", "key_cmd": "sleep 5"})
    with pytest.raises(CcsError, match="did not finish"):
        keys.get(slow)


def test_missing_key_names_the_command_that_stores_it():
    with pytest.raises(CcsError, match="run `ccs key set glm`"):
        keys.require(GLM)


@pytest.mark.parametrize("secret, masked", [("sk-ant-api03-abcdefgh1234", "sk-…1234"), ("abcdefghijklmnop", "ab…mnop"),
                                            ("short", "…rt"), (None, "(none)")])
def test_mask(secret, masked):
    assert keys.mask(secret) == masked


def test_a_keyring_backend_picked_through_the_environment_across_processes(file_keyring):
    """keyring's own PYTHON_KEYRING_BACKEND picks the backend, in every ccs process alike."""
    write_config('version = 1\n[profiles.glm]\npreset = "zai"\n')
    stored = ccs("key", "set", "glm", "--stdin", input="sk-alt-secret-9876\n")
    assert stored.returncode == 0, stored.stderr
    assert "keyring" in stored.stdout and "sk-alt-secret-9876" not in stored.stdout
    assert not (files.data_dir() / "secrets.json").exists()
    assert "sk-alt-secret-9876" in file_keyring.read_text()
    shown = ccs("show", "glm", "--json")
    assert json.loads(shown.stdout)["key"] == {"source": "keyring", "present": True, "masked": "sk-…9876"}
    assert ccs("key", "rm", "glm", "--yes").returncode == 0
    assert json.loads(ccs("show", "glm", "--json").stdout)["key"]["present"] is False


def test_file_store_is_written_atomically_and_survives_concurrency(no_keyring):
    for i in range(20):
        keys.store_key(f"user{i}", f"secret-{i}")
    stored = json.loads((files.data_dir() / "secrets.json").read_text())["secrets"]
    assert len(stored) == 20
    assert not [p for p in os.listdir(files.data_dir()) if p.startswith(".secrets.json.")]


def test_the_test_extra_installs_no_keyring_backend():
    """`pip install -e '.[test]'` must not change where a user's keys go: keyrings.alt, once in the
    extra, became the backend and kept keys base64-encoded in a file. Tests bring their own backends."""
    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
    assert not [requirement for requirement in extra if requirement.lower().startswith("keyring")]


def test_a_hanging_key_cmd_says_what_it_waits_for_and_is_stopped_with_its_children(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(keys, "KEY_CMD_NOTICE", 0.2)
    monkeypatch.setattr(keys, "KEY_CMD_TIMEOUT", 1.0)
    pidfile = tmp_path / "child.pid"
    hanging = resolve("d", {"preset": "deepseek", "key_cmd": f"sleep 60 & echo $! > {pidfile}; wait"})
    with pytest.raises(CcsError, match="did not finish in 1.0 s"):
        keys.get(hanging)
    assert "waiting for the key_cmd of 'd' (sleep 60 &" in capsys.readouterr().err
    child = int(pidfile.read_text())
    for _ in range(50):
        if not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the key_cmd's child was left running")


def test_a_key_cmd_can_still_ask_in_the_terminal(no_keyring, claude_stub):
    """A password manager that unlocks with a prompt on /dev/tty: its own process group gets the terminal."""
    write_config('version = 1\n[profiles.d]\npreset = "deepseek"\ndirect = true\n'
                 'key_cmd = "printf \'unlock: \' > /dev/tty; read -r k < /dev/tty; echo \\"sk-$k\\""\n')
    child = pexpect.spawn(sys.executable, ["-m", "ccswitch", "run", "d", "--", "claude"], env=dict(os.environ),
                          encoding="utf-8", timeout=30)
    child.expect("unlock: ")
    child.sendline("typed-in-the-terminal")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert claude_stub()["env"]["ANTHROPIC_AUTH_TOKEN"] == "sk-typed-in-the-terminal"
