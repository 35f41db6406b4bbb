"""The end of a log file, and the lines written to it from then on (through its rotation)."""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path

POLL = 0.25  # seconds between looks at a file that is being followed


def last_lines(path: Path, count: int) -> list[str]:
    """The last `count` lines of `path` (none when there is no file)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return [text.rstrip("\n") for text in deque(f, maxlen=max(count, 0))]
    except FileNotFoundError:
        return []


def follow_lines(path: Path) -> Iterator[str]:
    """Lines appended to `path` from now on, forever; a file rotated away (a new one in its place, or one
    cut short) is followed from its start, and one that does not exist yet from when it does."""
    handle = _opened(path, at_end=True)
    while True:
        data = handle.readline() if handle else b""
        if data.endswith(b"\n"):
            yield data.decode("utf-8", "replace").rstrip("\n")
            continue
        if data:  # half a line: the rest is on its way
            handle.seek(-len(data), os.SEEK_CUR)
        time.sleep(POLL)
        try:
            now = os.stat(path)
        except FileNotFoundError:
            continue
        if handle is None or now.st_ino != os.fstat(handle.fileno()).st_ino or now.st_size < handle.tell():
            if handle:
                handle.close()
            handle = _opened(path, at_end=False)


def _opened(path: Path, *, at_end: bool):
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        return None
    if at_end:
        handle.seek(0, os.SEEK_END)
    return handle
