"""The one error type a user can cause, and the one way it is said: one line, exit code 2, no traceback."""

from __future__ import annotations

import re
import sys


class CcsError(Exception):
    """Something the user can fix; the message says what is wrong and what to do."""

    exit_code = 2


# Control characters (ESC starts a terminal's own codes: `\x1b[8m` hides what follows), and the invisible or
# direction-changing ones that make text read other than it is.
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def printable(text) -> str:
    """Text as a terminal may show it: every character that could hide or rewrite what follows as `\\uXXXX`."""
    return UNSAFE.sub(lambda found: f"\\u{ord(found[0]):04x}", str(text))


def fail(message) -> None:
    """`ccs: error: ...` on stderr: how every command, with Typer or without, says it could not do what was asked."""
    print(f"ccs: error: {printable(message)}", file=sys.stderr)
