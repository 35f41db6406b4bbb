"""Every test gets its own config, state, data and HOME; no test touches the real keyring."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "claude-code-requests"  # a copy of shared/, so a clone passes alone


class MemoryKeyring(KeyringBackend):
    """A real keyring backend class, registered through keyring's own API."""

    priority = 1

    def __init__(self):
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service, username):
        return self.store.get((service, username))

    def set_password(self, service, username, password):
        self.store[(service, username)] = password

    def delete_password(self, service, username):
        from keyring.errors import PasswordDeleteError

        if self.store.pop((service, username), None) is None:
            raise PasswordDeleteError(username)


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("CCS_HOME", str(tmp_path / "ccs"))
    monkeypatch.setenv("CCS_CONFIG", str(tmp_path / "ccs" / "profiles.toml"))
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.delenv("CCS_PROFILE", raising=False)
    # subprocesses: no keyring unless a test picks one
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    for var in ("ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_API_KEY", "ANTHROPIC_MODEL", "CLAUDECODE"):
        monkeypatch.delenv(var, raising=False)
    previous = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())
    yield tmp_path
    keyring.set_keyring(previous)


@pytest.fixture
def memory_keyring() -> MemoryKeyring:
    return keyring.get_keyring()


@pytest.fixture
def file_keyring(tmp_path, monkeypatch) -> Path:
    """A keyring that `ccs` subprocesses use too (tests/file_keyring.py); returns the file holding it."""
    path = tmp_path / "test-keyring.json"
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "file_keyring.FileKeyring")
    monkeypatch.setenv("CCS_TEST_KEYRING", str(path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO / "tests"), os.environ.get("PYTHONPATH")])))
    return path


@pytest.fixture
def no_keyring():
    from keyring.backends import fail

    keyring.set_keyring(fail.Keyring())


# A hand-written profiles file with comments everywhere: edits must keep every one of them.
COMMENTED = """\
# my providers, carefully arranged
version = 1

# ---- work ----
[profiles.glm]   # work account
preset = "zai"
# the fast one
model = "glm-4.6"

[profiles.other]
preset = "deepseek"   # keep me
# trailing note
"""


def write_config(text: str) -> Path:
    path = Path(os.environ["CCS_CONFIG"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def ccs(*args: str, input: str | None = None, env: dict | None = None, cwd=None, timeout=60):
    """`ccs` as a real subprocess (the installed package, same interpreter)."""
    return subprocess.run([sys.executable, "-m", "ccswitch", *args], input=input, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd, timeout=timeout)


def logged_rows() -> list[dict]:
    """Every row of the usage log, oldest first, as dicts."""
    import sqlite3

    from ccswitch import usage

    db = usage.connect()
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute("SELECT * FROM requests ORDER BY id")]
    finally:
        db.close()


def imported_modules(importtime_output: str) -> set[str]:
    """Top-level package names from `python -X importtime` output (its stderr)."""
    return {line.split("|")[-1].strip().split(".")[0] for line in importtime_output.splitlines() if "|" in line}


STUB = """#!{python}
import json, os, sys, stat
argv = sys.argv[1:]
out = {{"env": {{**os.environ, "STUB_PID": str(os.getpid())}}, "overlay": None}}
if argv[:1] == ["--settings"]:  # what ccs passes ahead of claude's own arguments
    path = argv[1]
    out["settings_file"] = {{"path": path, "mode": oct(stat.S_IMODE(os.stat(path).st_mode)),
                            "dir_mode": oct(stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode))}}
    out["overlay"] = json.load(open(path))
    argv = argv[2:]
out["argv"] = argv
out["raw_argv"] = sys.argv[1:]
with open(os.environ["STUB_OUT"], "w") as f:
    json.dump(out, f)
if os.environ.get("STUB_SESSION"):  # a conversation, where claude keeps them
    config = os.environ.get("CLAUDE_CONFIG_DIR") or os.path.join(os.environ["HOME"], ".claude")
    os.makedirs(os.path.join(config, "projects", "-project"), exist_ok=True)
    open(os.path.join(config, "projects", "-project", os.environ["STUB_SESSION"] + ".jsonl"), "w").close()
if os.environ.get("STUB_SLEEP"):
    import signal, time
    def on_term(signum, frame):
        open(os.environ["STUB_OUT"] + ".sig", "w").write("TERM")
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)  # die of the signal, as a real program would
    signal.signal(signal.SIGTERM, on_term)
    print("ready", flush=True)
    time.sleep(float(os.environ["STUB_SLEEP"]))
sys.exit(int(os.environ.get("STUB_EXIT", "0")))
"""


def assert_sigterm_reaches_claude(profile: str) -> None:
    """`ccs run PROFILE -- claude` with the stub waiting: a SIGTERM to ccs reaches claude, ccs exits 128+15."""
    launched = subprocess.Popen([sys.executable, "-m", "ccswitch", "run", profile, "--", "claude"],
                                env={**os.environ, "STUB_SLEEP": "30"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert launched.stdout.readline().strip() == b"ready"
    launched.send_signal(signal.SIGTERM)
    assert launched.wait(timeout=20) == 128 + signal.SIGTERM
    assert Path(os.environ["STUB_OUT"] + ".sig").read_text() == "TERM"


@pytest.fixture
def claude_stub(tmp_path, monkeypatch):
    """A `claude` on PATH that records its argv and environment; returns a reader of that record."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "claude"
    stub.write_text(STUB.format(python=sys.executable))
    stub.chmod(0o755)
    out = tmp_path / "stub.json"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("STUB_OUT", str(out))

    def read() -> dict:
        return json.loads(out.read_text())

    return read


def options_for(upstream, req: dict):
    """The translator options the proxy would use for `req` on `upstream` (its model mapped as the router does)."""
    model = req.get("model") if isinstance(req, dict) else None
    return upstream.options(upstream.model_for(model if isinstance(model, str) else ""))
