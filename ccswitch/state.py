"""Which profile applies here, and why: the shell's `CCS_PROFILE`, else a `.ccs-profile` file in this
directory or one above (like `.nvmrc`), else the persisted default."""

from __future__ import annotations

import os
from pathlib import Path

from . import files
from .errors import CcsError

SHELL_VAR = "CCS_PROFILE"
HERE_FILE = ".ccs-profile"  # holds a profile name only, never a secret: it may be committed
HERE_BYTES = 4096  # a profile name and a comment or two


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


def here(directory: Path) -> tuple[str, Path] | None:
    """(profile name, the file that names it) from the nearest `.ccs-profile` at or above `directory`."""
    for folder in (directory, *directory.parents):
        path = folder / HERE_FILE
        try:
            text = files.read_small(path, HERE_BYTES, owned=True)
        except files.Unreadable:
            continue  # a FIFO, /dev/zero, another user's (`/tmp/.ccs-profile`): not the user's choice
        if text is None:
            continue
        names = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        if names:
            return names[0], path
    return None


def set_here(directory: Path, name: str | None) -> Path:
    """Write (or with None remove) `directory/.ccs-profile`."""
    path = directory / HERE_FILE
    if name is None:
        with files.refused(path):
            path.unlink(missing_ok=True)
    else:
        files.write_atomic(path, name + "\n", mode=0o644)
    return path


def current(directory: Path | None = None) -> tuple[str | None, str]:
    """(profile name or None, where that choice comes from)."""
    if name := os.environ.get(SHELL_VAR):
        return name, f"this shell (${SHELL_VAR})"
    if (directory := directory or _working_directory()) and (found := here(directory)):
        return found[0], f"this directory ({found[1]})"
    if name := default():
        return name, f"the default (`ccs use`, {default_file()})"
    return None, "none: `claude` runs untouched"


def _working_directory() -> Path | None:
    try:
        return Path.cwd()
    except FileNotFoundError:  # removed under us: no directory to take a profile from
        return None


def say_once(topic: str, message: str) -> None:
    """Print `message` on stderr the first time only (a note about the user's setup, not an error)."""
    import sys

    marker = files.state_dir() / f"said-{topic}"
    if marker.exists():
        return
    print(message, file=sys.stderr)
    try:
        files.own_dir(marker.parent)
        marker.touch()
    except (OSError, CcsError):
        pass
