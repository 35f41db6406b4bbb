"""The profiles `ccs run` started without the proxy, whose requests are therefore not in the usage log:
`ccs usage` names them. One line appended per launch, on claude's start path, so nothing is imported
for it."""

from __future__ import annotations

import os
import time
from pathlib import Path

from . import files

LAUNCHES_BYTES = 512 * 1024  # the list starts over past this size


def launches_file() -> Path:
    return files.state_dir() / "launches"


def note(profile: str) -> None:
    """`ccs run` started `profile` without the proxy. Never an error: the launch matters, not the note."""
    path = launches_file()
    try:
        files.own_dir(path.parent)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    except (OSError, files.CcsError):
        return
    try:
        if os.fstat(fd).st_size > LAUNCHES_BYTES:
            os.ftruncate(fd, 0)
        os.write(fd, f"{time.time():.0f}\t{profile}\n".encode())
    except OSError:
        pass
    finally:
        os.close(fd)


def counts(since: float | None) -> dict[str, int]:
    """profile -> how many times `ccs run` started it without the proxy since `since`."""
    seen: dict[str, int] = {}
    try:
        lines = launches_file().read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return seen
    for line in lines:
        when, _, profile = line.partition("\t")
        try:
            if profile and (since is None or float(when) >= since):
                seen[profile] = seen.get(profile, 0) + 1
        except ValueError:
            continue
    return seen
