"""Budgets that hold: a profile's `budget = { day = 5.0, month = 50.0 }` in US dollars against what the usage
log recorded for it (the requests it served, and those it answered for a router), priced as `ccs usage`
prices them, so every session and proxy on this machine shares one budget.

The proxy keeps the spend of the profiles it may reach in memory (`Watch`), refreshed by the usage log's
writer after each batch it writes and every REFRESH seconds (another session's spend); a request checks it
without touching the disk. From WARN_AT of a budget the proxy log warns once and the status line shows it;
at 100% a request through that profile is refused, or sent to its fallback (`over_budget = "fallback"`).
"""

from __future__ import annotations

import time
from typing import NamedTuple

PERIODS = ("day", "month")
OVER = ("refuse", "fallback")  # what a request through a profile past its budget gets
WARN_AT = 0.8
REFRESH = 30.0  # seconds between two reads of the spend when nothing is written (other sessions' requests)
WORDS = {"day": "today", "month": "this month"}


class Over(NamedTuple):
    """A budget spent: which profile, which period, its limit and what was spent."""

    profile: str
    period: str
    limit: float
    spent: float
    fallback: bool  # over_budget = "fallback": the request goes to the profile's fallback routes

    def message(self) -> str:
        return (f"profile '{self.profile}' has spent ${self.spent:.2f} of its ${self.limit:.2f} budget "
                f"{WORDS[self.period]}: raise it with `ccs set {self.profile} budget.{self.period}=AMOUNT` (or "
                f"remove it), or use another profile")


class Unpriced(NamedTuple):
    """A budgeted request for a model nothing prices (the profile's `prices`, the price table): counted at nothing
    the budget would never stop it, so after the first such request the next are refused until it has a price."""

    profile: str
    target: str  # "profile,model"
    fallback: bool

    def message(self) -> str:
        owner, _, model = self.target.partition(",")
        return (f"profile '{self.profile}' has a budget, and model '{model}' of profile '{owner}' has no price to "
                f"count it at: add prices = {{ \"{model}\" = {{ input = ..., output = ... }} }} (US dollars per "
                f"million tokens) to profile '{owner}', or use a model with a price")


def period_starts(now: float) -> dict[str, float]:
    """Where today and this month began, in local time."""
    local = time.localtime(now)
    day = time.mktime((local.tm_year, local.tm_mon, local.tm_mday, 0, 0, 0, 0, 0, -1))
    month = time.mktime((local.tm_year, local.tm_mon, 1, 0, 0, 0, 0, 0, -1))
    return {"day": day, "month": month}


def spent(db, profile: str, now: float | None = None) -> dict[str, float]:
    """What the log recorded for `profile` today and this month (its own requests and those it answered for
    a router; `ccs test`'s left out)."""
    starts = period_starts(time.time() if now is None else now)
    return {period: db.execute("SELECT COALESCE(sum(cost), 0) FROM requests WHERE time >= ? AND test = 0 AND "
                               "(profile = ? OR target = ?)", (start, profile, profile)).fetchone()[0]
            for period, start in starts.items()}


def unpriced(db, profiles, now: float | None = None) -> frozenset[str]:
    """"profile,model" of this month's requests through the budgeted `profiles` that had tokens and no price."""
    marks = ", ".join("?" * len(profiles))
    rows = db.execute(f"SELECT DISTINCT COALESCE(target, profile), model FROM requests WHERE time >= ? AND test = 0 "
                      f"AND cost IS NULL AND input_tokens + output_tokens > 0 AND (profile IN ({marks}) OR target IN "
                      f"({marks}))", (period_starts(time.time() if now is None else now)["month"], *profiles,
                                      *profiles))
    return frozenset(f"{target},{model}" for target, model in rows)


def over(profile: str, budget, spend: dict[str, float], fallback: bool) -> Over | None:
    for period in PERIODS:
        if (limit := budget.get(period)) is not None and spend.get(period, 0.0) >= limit:
            return Over(profile, period, limit, spend[period], fallback)
    return None


def near(budget, spend: dict[str, float]) -> tuple[str, str] | None:
    """(the period, `$4.10/$5.00 today`) for the first period past WARN_AT of its budget, else None."""
    for period in PERIODS:
        if (limit := budget.get(period)) is not None and spend.get(period, 0.0) >= WARN_AT * limit:
            return period, f"${spend[period]:.2f}/${limit:.2f} {WORDS[period]}"
    return None


class Watch:
    """The spend of the budgeted profiles a proxy may reach. `refresh(db)` runs on the usage log's writer
    thread; `check` on the event loop reads what it last published (one dict, replaced whole) and warns."""

    def __init__(self, budgets: dict[str, tuple[dict, bool]]):
        self.budgets = budgets  # profile -> (its budget, whether over_budget = "fallback")
        self.spend: dict[str, dict[str, float]] = {}
        self.warned: set[tuple[str, str]] = set()  # (profile, period) said once per proxy
        self.unpriced: frozenset[str] = frozenset()  # "profile,model" a budget cannot count (see `Unpriced`)

    def __bool__(self) -> bool:
        return bool(self.budgets)

    @classmethod
    def for_profiles(cls, profiles) -> Watch:
        return cls({p.name: (dict(p.budget), p.over_budget == "fallback") for p in profiles if p.budget})

    def refresh(self, db) -> None:
        now = time.time()
        self.spend = {name: spent(db, name, now) for name in self.budgets}
        self.unpriced = unpriced(db, list(self.budgets), now) if self.budgets else frozenset()

    def check(self, profile: str, target: str = "") -> Over | Unpriced | None:
        """Whether a request through `profile` (to `target`, "profile,model") would go past its budget, or
        cannot be counted against it; the first through a profile nearing it says so in the proxy log, once per
        period."""
        if profile not in self.budgets:
            return None
        budget, fallback = self.budgets[profile]
        spend = self.spend.get(profile, {})
        if (nearing := near(budget, spend)) and (profile, nearing[0]) not in self.warned:
            import logging

            self.warned.add((profile, nearing[0]))
            logging.getLogger("ccswitch.proxy").warning("ccs proxy: profile '%s' has spent %s of its budget",
                                                        profile, nearing[1])
        if target in self.unpriced:
            return Unpriced(profile, target, fallback)
        return over(profile, budget, spend, fallback)
