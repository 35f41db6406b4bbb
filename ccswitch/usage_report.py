"""`ccs usage`: the usage log as a Rich table with totals and cost, as JSON or CSV, and a live view that
follows requests as the proxy writes them (from another terminal)."""

from __future__ import annotations

import csv
import io
import json
import re
import time
from datetime import datetime

from rich.console import Console, Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from . import launches, usage
from .errors import CcsError

SPANS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
SPAN_RE = re.compile(r"(\d+(?:\.\d+)?)([mhdw])\Z")
LIVE_ROWS = 20  # requests the live view shows
POLL = 0.5  # seconds between the live view's looks at the log


def since_time(text: str, now: float) -> float | None:
    """`--since`: `30m`, `12h`, `7d`, `2w`, a date (`2026-11-30`, local midnight) or `all` (None)."""
    if text == "all":
        return None
    if match := SPAN_RE.match(text):
        return now - float(match[1]) * SPANS[match[2]]
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise CcsError(f"--since {text!r}: say 30m, 12h, 7d, 2w, a date such as 2026-11-30, or all") from None


def money(cost: float | None) -> str:
    if cost is None:
        return "-"
    return f"${cost:,.4f}" if cost < 1000 else f"${cost:,.2f}"  # one request may cost a hundredth of a cent


def count(n: int) -> str:
    return f"{n:,}"


def when(timestamp: float | None) -> str:
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M") if timestamp else "-"


class Report:
    """What `ccs usage` shows for one period: the groups, the totals, and what the figures leave out."""

    def __init__(self, db, since: float | None, by: str):
        self.since, self.by = since, by
        self.groups, self.total = usage.summary(db, since, by)
        self.sources = usage.price_sources(db, since)
        self.unpriced = usage.unpriced_models(db, since)
        recorded = usage.recorded_profiles(db, since)
        self.not_recorded = {name: n for name, n in launches.counts(since).items() if name not in recorded}

    def notes(self) -> list[str]:
        """What a reader of the figures must know: where the prices come from, what has no price, what the
        log does not hold."""
        notes = []
        if self.sources:
            notes.append("Prices: " + ", ".join("the profiles' own `prices`" if s == "profile" else
                                                f"{s} (list prices when each request was made)" for s in self.sources))
        for target in self.unpriced:
            profile, _, model = target.partition(",")
            notes.append(f"No price known for {target}: its cost is left out; add "
                         f"prices = {{ \"{model}\" = {{ input = ..., output = ... }} }} to profile '{profile}' "
                         "(US dollars per million tokens)")
        for name, times in sorted(self.not_recorded.items()):
            notes.append(f"Not recorded: profile '{name}' was started {times} time{'s' if times > 1 else ''} in this "
                         f"period without the proxy; `ccs run --observe {name}` (or `observe = true` in the profile) "
                         "records it")
        return notes

    def as_dict(self) -> dict:
        return {"since": self.since and datetime.fromtimestamp(self.since).astimezone().isoformat(),
                "by": self.by, "groups": self.groups, "total": self.total, "notes": self.notes()}

    def as_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        names = [*tuple(usage.GROUPS[self.by]), *usage.FIGURES]
        writer.writerow(names)
        for group in self.groups:
            writer.writerow(["" if group[name] is None else group[name] for name in names])
        return out.getvalue()

    def table(self) -> Table:
        keys = tuple(usage.GROUPS[self.by])
        table = Table(box=None, pad_edge=False, show_footer=bool(self.groups))
        for key in keys:
            table.add_column(key, footer="total" if key == keys[0] else "")
        total = self.total
        for name, footer in (("requests", count(total["requests"])), ("errors", count(total["errors"])),
                             ("input", count(total["input_tokens"])), ("output", count(total["output_tokens"])),
                             ("cache read", count(total["cache_read_tokens"])),
                             ("cache write", count(total["cache_write_tokens"])), ("cost", money(total["cost"]))):
            table.add_column(name, footer=footer, justify="right")
        if self.by == "session":
            table.add_column("from", footer="")
        for group in self.groups:
            cells = [escape(str(group[key] or "-")) for key in keys]
            cells += [count(group["requests"]), count(group["errors"]), count(group["input_tokens"]),
                      count(group["output_tokens"]), count(group["cache_read_tokens"]),
                      count(group["cache_write_tokens"]), money(group["cost"]) + ("*" if group["unpriced"] else "")]
            if self.by == "session":
                cells.append(f"{when(group['first'])} - {when(group['last'])[11:]}")
            table.add_row(*cells)
        return table


def show(since: float | None, by: str, form: str, console: Console) -> None:
    path = usage.log_file()
    if not path.exists() and form == "table":
        console.print("No usage recorded yet: requests through the ccs proxy (OpenAI-API, router and observed "
                      "profiles) are logged here as they happen.")
        return
    db = usage.connect(path)
    try:
        report = Report(db, since, by)
    finally:
        db.close()
    if form == "json":
        print(json.dumps(report.as_dict(), indent=2))
    elif form == "csv":
        print(report.as_csv(), end="")
    else:
        period = "all time" if since is None else f"since {when(since)}"
        console.print(f"[bold]Usage by {by}[/], {period}: {path}")
        console.print(report.table() if report.groups else "no requests in this period")
        for note in report.notes():
            console.print(f"[dim]{escape(note)}[/]")
        if any(group["unpriced"] for group in report.groups):
            console.print("[dim]* some requests of this row have no price[/]")


# ---------------------------------------------------------------- the live view


def live(since: float | None, console: Console) -> None:
    """Follow the log until Ctrl-C: the latest requests, and the period's totals."""
    from rich.live import Live

    db = usage.connect()
    last_id, recent = 0, []
    try:
        with Live(console=console, refresh_per_second=4, transient=False) as view:
            while True:
                fresh = usage.after(db, last_id, LIVE_ROWS)
                if fresh or not recent:
                    last_id = fresh[-1]["id"] if fresh else last_id
                    recent = (recent + fresh)[-LIVE_ROWS:]
                    _, total = usage.summary(db, since, "profile")
                    view.update(live_view(recent, total, since))
                time.sleep(POLL)
    except KeyboardInterrupt:
        pass
    finally:
        db.close()


def live_view(recent: list[dict], total: dict, since: float | None) -> Group:
    period = "all time" if since is None else f"since {when(since)}"
    head = Text.from_markup(f"[bold]ccs usage --live[/] ({period}): {count(total['requests'])} requests, "
                            f"{count(total['input_tokens'] + total['cache_read_tokens'] + total['cache_write_tokens'])}"
                            f" tokens in, {count(total['output_tokens'])} out, {money(total['cost'])}. Ctrl-C stops.")
    table = Table(box=None, pad_edge=False)
    for name, justify in (("time", "left"), ("profile", "left"), ("model", "left"), ("status", "right"),
                          ("in", "right"), ("out", "right"), ("cost", "right"), ("ms", "right"), ("", "left")):
        table.add_column(name, justify=justify)
    for r in recent:
        served = r["profile"] if r["target"] in (None, r["profile"]) else f"{r['profile']}>{r['target']}"
        status = str(r["status"]) if r["status"] < 400 else f"[red]{r['status']}[/]"
        table.add_row(datetime.fromtimestamp(r["time"]).strftime("%H:%M:%S"), escape(served), escape(r["model"] or "-"),
                      status, count(r["input_tokens"] + r["cache_read_tokens"] + r["cache_write_tokens"]),
                      count(r["output_tokens"]), money(r["cost"]), f"{r['duration_ms']:.0f}",
                      escape(f"after {r['failed']}" if r["failed"] else r["error"] or ""))
    return Group(head, table)
