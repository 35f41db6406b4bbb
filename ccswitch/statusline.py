"""`ccs statusline`: the line Claude Code shows under its prompt when its settings say
`"statusLine": {"type": "command", "command": "ccs statusline"}`.

claude runs it after every message with the session as JSON on stdin; the command inherits
`CCS_RUN` (the profile `ccs run` launched claude with). It prints the profile, its provider and the
model in use, and stays on the fast path: no Typer, no Rich, one read of the profiles file.
"""

from __future__ import annotations

import json
import os
import sys

from .errors import CcsError
from .launch import MARKER


def line(session: dict, environ) -> str:
    """`glm · zai · glm-4.6`, or what claude runs on when no ccs profile launched it."""
    model = session.get("model") if isinstance(session.get("model"), dict) else {}
    model_id = model.get("id") or model.get("display_name") or "?"
    name = environ.get(MARKER)
    if not name:
        return f"claude · no ccs profile · {model_id}"
    from . import profiles

    try:
        profile = profiles.load().profiles.get(name)
    except CcsError:
        profile = None
    if profile is None:
        return f"{name} · {model_id}"
    return f"{name} · {profile.provider} · {model_id}"


def print_statusline() -> int:
    session = {}
    if not sys.stdin.isatty():
        try:
            session = json.loads(sys.stdin.read() or "{}")
        except ValueError:
            session = {}
    print(line(session if isinstance(session, dict) else {}, os.environ))
    return 0
