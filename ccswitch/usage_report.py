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
from rich.table import Table
from rich.text import Text

from . import budgets, launches, profiles, usage
from .errors import CcsError, printable
from .prices import HIGHEST

SPANS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
SPAN_RE = re.compile(r"(\d+(?:\.\d+)?)([mhdw])\Z")
SOURCES = {"profile": "the profiles' own `prices`",
           HIGHEST: "a budgeted profile's highest price, for a model its `prices` do not list"}
LIVE_ROWS = 20  # requests the live view shows
POLL = 0.5  # seconds between the live view's looks at the log


def since_time(text: str, now: float) -> float | None:
    """`--since`: `30m`, `12h`, `7d`, `2w`, a date (`2026-11-30`, local midnight) or `all` (None)."""
    if text == "all":
        return None
    if match := SPAN_RE.match(text):
        start = now - float(match[1]) * SPANS[match[2]]
        return start if start > 0 else None  # before 1970: everything there is
    try:
        return datetime.fromisoformat(text).timestamp()
    except (ValueError, OverflowError, OSError):
        raise CcsError(f"--since {text!r}: say 30m, 12h, 7d, 2w, a date such as 2026-11-30, or all") from None


def money(cost: float | None) -> str:
    if cost is None:
        return "-"
    return f"${cost:,.4f}" if cost < 1000 else f"${cost:,.2f}"  # one request may cost a hundredth of a cent


def cell(value) -> object:
    """A CSV cell: text a spreadsheet would take for a formula (a client names its models) quoted as text."""
    if value is None:
        return ""
    return "'" + value if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def count(n: int) -> str:
    return f"{n:,}"


def when(timestamp: float | None) -> str:
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M") if timestamp else "-"


class Report:
    """What `ccs usage` shows for one period: the groups, the totals, and what the figures leave out."""

    def __init__(self, db, period: usage.Period, by: str, budgeted=()):
        self.since, self.by = period.since, by
        self.budgets = []  # each budgeted profile's spend against its budget, today and this month
        if db is None:  # no log yet: nothing recorded
            self.groups, self.total = [], usage.empty_total()
            self.sources, self.unpriced, recorded, self.tests = [], [], set(), 0
        else:
            with usage.snapshot(db):  # every figure from the same rows
                self.groups, self.total = usage.summary(db, period, by)
                self.sources = usage.price_sources(db, period)
                self.unpriced = usage.unpriced_models(db, period)
                recorded = usage.recorded_profiles(db, period)
                self.tests = 0 if period.tests else usage.tests_left_out(db, period)
                for profile in budgeted:
                    spent = budgets.spent(db, profile.name)
                    self.budgets += [{"profile": profile.name, "period": span, "budget": limit,
                                      "spent": round(spent[span], 6)} for span, limit in profile.budget.items()]
        self.not_recorded = {name: n for name, n in launches.counts(period.since).items() if name not in recorded}

    def notes(self) -> list[str]:
        """What a reader of the figures must know: where the prices come from, what has no price, what the
        log does not hold."""
        notes = []
        if self.sources:
            notes.append("Prices: " + ", ".join(SOURCES.get(s, f"{s} (list prices when each request was made)")
                                                for s in self.sources))
        for target in self.unpriced:
            profile, _, model = target.partition(",")
            notes.append(f"No price known for {target}: its cost is left out; add "
                         f"prices = {{ \"{model}\" = {{ input = ..., output = ... }} }} to profile '{profile}' "
                         "(US dollars per million tokens)")
        if self.tests:
            notes.append(f"Left out: {self.tests} request{'s' if self.tests > 1 else ''} of `ccs test` "
                         "(`ccs usage --tests` counts them)")
        for entry in self.budgets:
            notes.append(f"Budget: profile '{entry['profile']}' has spent ${entry['spent']:,.2f} of "
                         f"${entry['budget']:,.2f} {budgets.WORDS[entry['period']]}")
        for name, times in sorted(self.not_recorded.items()):
            notes.append(f"Not recorded: profile '{name}' was started {times} time{'s' if times > 1 else ''} in this "
                         f"period without the proxy (direct = true, or claude's own login): `ccs set {name} --unset "
                         "direct` puts an API-key profile behind it")
        return notes

    def as_dict(self) -> dict:
        return {"since": self.since and datetime.fromtimestamp(self.since).astimezone().isoformat(),
                "by": self.by, "groups": self.groups, "total": self.total, "budgets": self.budgets,
                "notes": self.notes()}

    def as_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        names = [*tuple(usage.GROUPS[self.by]), *usage.FIGURES]
        writer.writerow(names)
        for group in self.groups:
            writer.writerow([cell(group[name]) for name in names])
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
            cells = [printable(group[key] or "-") for key in keys]
            cells += [count(group["requests"]), count(group["errors"]), count(group["input_tokens"]),
                      count(group["output_tokens"]), count(group["cache_read_tokens"]),
                      count(group["cache_write_tokens"]), money(group["cost"]) + ("*" if group["unpriced"] else "")]
            if self.by == "session":
                cells.append(f"{when(group['first'])} - {when(group['last'])[11:]}")
            table.add_row(*cells)
        return table


def show(period: usage.Period, by: str, form: str, console: Console) -> None:
    path = usage.log_file()
    budgeted = [p for p in profiles.load().profiles.values() if p.budget]
    db = usage.reading(path)
    try:
        with usage.damaged(path):
            report = Report(db, period, by, budgeted)
    finally:
        if db is not None:
            db.close()
    if form == "json":
        print(json.dumps(report.as_dict(), indent=2))
    elif form == "csv":
        print(report.as_csv(), end="")
    elif db is None:
        console.print("No usage recorded yet: every request through the ccs proxy is logged here as it happens.")
    else:
        span = "all time" if period.since is None else f"since {when(period.since)}"
        console.print(Text.assemble((f"Usage by {by}", "bold"), f", {span}: {printable(path)}"))
        console.print(report.table() if report.groups else "no requests in this period")
        for note in report.notes():
            console.print(Text(printable(note), "dim"))
        if any(group["unpriced"] for group in report.groups):
            console.print(Text("* some requests of this row have no price", "dim"))


# ---------------------------------------------------------------- the live view


def live(period: usage.Period, console: Console) -> None:
    """Follow the log until Ctrl-C: the latest requests, and the period's totals (waiting for a log to begin)."""
    from rich.live import Live

    path = usage.log_file()
    db, last_id, recent = None, 0, []
    try:
        with Live(console=console, refresh_per_second=4, transient=False) as view:
            view.update(Text("waiting for the first request through the ccs proxy... Ctrl-C stops."))
            while True:
                db = db or usage.reading(path)
                if db is not None:
                    with usage.damaged(path):
                        fresh = usage.after(db, last_id, LIVE_ROWS)
                        if fresh or not recent:
                            last_id = fresh[-1]["id"] if fresh else last_id
                            recent = (recent + fresh)[-LIVE_ROWS:]
                            _, total = usage.summary(db, period, "profile")
                            view.update(live_view(recent, total, period.since))
                time.sleep(POLL)
    except KeyboardInterrupt:
        pass
    finally:
        if db is not None:
            db.close()


def live_view(recent: list[dict], total: dict, since: float | None) -> Group:
    span = "all time" if since is None else f"since {when(since)}"
    head = Text.assemble(("ccs usage --live", "bold"), f" ({span}): {count(total['requests'])} requests, "
                         f"{count(total['input_tokens'] + total['cache_read_tokens'] + total['cache_write_tokens'])}"
                         f" tokens in, {count(total['output_tokens'])} out, {money(total['cost'])}. Ctrl-C stops.")
    table = Table(box=None, pad_edge=False)
    for name, justify in (("time", "left"), ("profile", "left"), ("model", "left"), ("status", "right"),
                          ("in", "right"), ("out", "right"), ("cost", "right"), ("ms", "right"), ("", "left")):
        table.add_column(name, justify=justify)
    for r in recent:
        served = r["profile"] if r["target"] in (None, r["profile"]) else f"{r['profile']}>{r['target']}"
        status = Text(str(r["status"]), "red" if r["status"] >= 400 else "")
        table.add_row(datetime.fromtimestamp(r["time"]).strftime("%H:%M:%S"), printable(served),
                      printable(r["model"] or "-"), status,
                      count(r["input_tokens"] + r["cache_read_tokens"] + r["cache_write_tokens"]),
                      count(r["output_tokens"]), money(r["cost"]), f"{r['duration_ms']:.0f}",
                      printable(f"after {r['failed']}" if r["failed"] else r["error"] or (
                          "an image described" if r["requested"] == usage.DESCRIBED else "")))
    return Group(head, table)
