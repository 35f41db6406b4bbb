"""Which profile applies here, and why: the shell's `CCS_PROFILE`, else the persisted default."""

from __future__ import annotations

import os
from pathlib import Path

from . import files

SHELL_VAR = "CCS_PROFILE"


def default_file() -> Path:
    """Holds the default profile's name; the shell wrapper only tests that it exists (no Python)."""
    return files.state_dir() / "active"


def default() -> str | None:
    try:
        return default_file().read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def set_default(name: str | None) -> None:
    path = default_file()
    if name is None:
        with files.refused(path):
            path.unlink(missing_ok=True)
    else:
        files.write_atomic(path, name + "\n", mode=0o644)


def current() -> tuple[str | None, str]:
    """(profile name or None, where that choice comes from)."""
    if name := os.environ.get(SHELL_VAR):
        return name, f"this shell (${SHELL_VAR})"
    if name := default():
        return name, f"the default (`ccs use`, {default_file()})"
    return None, "none: `claude` runs untouched"
