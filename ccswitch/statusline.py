"""`ccs statusline`: the line Claude Code shows under its prompt when its settings say
`"statusLine": {"type": "command", "command": "ccs statusline"}`.

claude runs it after every message with the session as JSON on stdin; the command inherits
`CCS_RUN` (the profile `ccs run` launched claude with). It prints the profile, its provider, the
model in use and, when the usage log has this session's requests, their cost at the providers' prices
and their tokens. It stays on the fast path: no Typer, no Rich, one read of the profiles file, one
indexed query.
"""

from __future__ import annotations

import json
import os
import sys

from .errors import CcsError
from .claude import MARKER


def line(session: dict, environ) -> str:
    """`glm · zai · glm-4.6`, or what claude runs on when no ccs profile launched it."""
    model = session.get("model") if isinstance(session.get("model"), dict) else {}
    model_id = model.get("id") or model.get("display_name") or "?"
    name = environ.get(MARKER)
    if not name:
        return f"claude · no ccs profile · {model_id}" + spent(session.get("session_id"))
    from . import profiles

    try:
        profile = profiles.load().profiles.get(name)
    except CcsError:
        profile = None
    where = f"{name} · {model_id}" if profile is None else f"{name} · {profile.provider} · {model_id}"
    return where + spent(session.get("session_id")) + (budget_left(profile) if profile and profile.budget else "")


def spent(session_id) -> str:
    """` · $0.042 · 45.2k in / 1.3k out` for this session's requests in the usage log, or nothing."""
    if not isinstance(session_id, str) or not session_id:
        return ""
    from . import usage

    figures = usage.session_figures(usage.log_file(), session_id)
    if figures is None:
        return ""
    _, tokens_in, tokens_out, cost = figures
    money = "" if cost is None else f" · {dollars(cost)}"
    return f"{money} · {count(tokens_in)} in / {count(tokens_out)} out"


def budget_left(profile) -> str:
    """` · $4.10/$5.00 today` once the profile has spent budgets.WARN_AT of a budget, or nothing."""
    import sqlite3

    from . import budgets, usage

    path = usage.log_file()
    if not path.exists():
        return ""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1.0)
        try:
            nearing = budgets.near(profile.budget, budgets.spent(db, profile.name))
        finally:
            db.close()
    except sqlite3.Error:  # an older log, a busy one: the line without it
        return ""
    return f" · {nearing[1]}" if nearing else ""


def dollars(cost: float) -> str:
    if 0 < cost < 0.0001:
        return "<$0.0001"  # not "$0.0000", which reads as free
    return f"${cost:.4f}" if cost < 0.01 else f"${cost:.2f}"


def count(n: int) -> str:
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.1f}k" if n >= 1e3 else str(n)


def print_statusline() -> int:
    session = {}
    if not sys.stdin.isatty():
        try:
            session = json.loads(sys.stdin.read() or "{}")
        except ValueError:
            session = {}
    print(line(session if isinstance(session, dict) else {}, os.environ))
    return 0
