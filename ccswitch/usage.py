"""The local usage log: a row per request the ccs proxy answered or failed, in SQLite in the data dir, and
the summaries `ccs usage` and `ccs statusline` show. Counts, names, times and costs only: never prompt or
answer text, never a key.

Written by a thread of its own (the event loop only queues a `Request`), in WAL mode so that several `ccs
run` sessions write while `ccs usage` reads; the schema moves forward by numbered migrations, its number
kept in SQLite's `user_version`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from . import files
from .budgets import REFRESH
from .errors import CcsError
from .prices import UNPRICED, Priced, Tokens

BUSY_SECONDS = 30.0  # how long a writer waits for another's transaction before giving up on a batch
BATCH = 500  # rows written in one transaction at most
LINGER = 0.05  # seconds the writer waits after a row for more: one transaction for a burst, not one each
CLOSE_SECONDS = BUSY_SECONDS + 5  # how long closing waits for the writer: another writer's transaction, then ours

log = logging.getLogger("ccswitch.usage")

# Each migration moves the schema one version on, in one transaction; never edit one that has shipped.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 1: a row per request
        """CREATE TABLE requests (
            id INTEGER PRIMARY KEY,
            time REAL NOT NULL,              -- Unix time the request arrived
            session TEXT,                    -- claude's session id (its x-claude-code-session-id header)
            profile TEXT NOT NULL,           -- the profile the proxy serves (what `ccs run` was given)
            target TEXT,                     -- the profile that answered, or the last one tried
            model TEXT,                      -- the model it was asked for
            requested TEXT,                  -- the model claude asked for
            stream INTEGER NOT NULL,
            status INTEGER NOT NULL,         -- the HTTP status claude got; 499: claude left first
            input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            cache_read_tokens INTEGER NOT NULL DEFAULT 0,
            cache_write_tokens INTEGER NOT NULL DEFAULT 0,
            ttfb_ms REAL,                    -- until the first byte of the answer went to claude
            duration_ms REAL NOT NULL,
            error TEXT,                      -- the Anthropic error type claude got
            hops INTEGER NOT NULL DEFAULT 0, -- targets that failed before this one answered
            failed TEXT                      -- which, with their status: "glm,glm-4.6 (429)"
        )""",
        "CREATE INDEX requests_by_time ON requests (time)",
    ),
    (  # 2: what each request cost, priced as it is written; a session's total in one indexed lookup
        "ALTER TABLE requests ADD COLUMN cost REAL",
        "ALTER TABLE requests ADD COLUMN price_source TEXT",
        "CREATE INDEX requests_by_session ON requests (session)",
    ),
    (  # 3: `ccs test`'s own requests, left out of the totals unless asked for; what each request was for (claude's
       # request class: main, subagent, compaction, ...); which of a profile's keys served it (masked); spend by
       # target and time, for budgets
        "ALTER TABLE requests ADD COLUMN test INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE requests ADD COLUMN request_class TEXT",
        "ALTER TABLE requests ADD COLUMN key TEXT",
        "CREATE INDEX requests_by_target ON requests (target, time)",
    ),
)
SCHEMA = len(MIGRATIONS)


def log_file() -> Path:
    return files.data_dir() / "usage.sqlite3"


def reading(path: Path | None = None):
    """The log for a reader, opened read-only (nothing is created for it); None when there is no log yet.
    A log of an older schema is migrated first, as a writer would."""
    import sqlite3

    path = path or log_file()
    if not path.exists():
        return None
    with damaged(path):
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=BUSY_SECONDS, isolation_level=None,
                             check_same_thread=False)
        version = _refuse_newer(db, path)
    if version < SCHEMA:
        db.close()
        connect(path).close()
        return reading(path)
    return db


@contextlib.contextmanager
def damaged(path: Path):
    """SQLite's word that the log is not a usable database, as one clear line."""
    import sqlite3

    try:
        yield
    except sqlite3.DatabaseError as e:
        raise CcsError(f"the usage log {path} cannot be read ({e}): move it away and ccs starts a new one") from None


def connect(path: Path | None = None):
    """The log, created (0600) and migrated to this version's schema as needed."""
    import sqlite3

    path = path or log_file()
    with files.refused(path):
        files.own_dir(path.parent)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    try:
        db = sqlite3.connect(path, timeout=BUSY_SECONDS, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as e:
        raise CcsError(f"the usage log {path} cannot be opened: {e}") from None
    try:
        _refuse_newer(db, path)  # before WAL mode, which a newer ccs's file must not be switched to either
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # in WAL mode still safe from corruption; a power cut may lose the last rows
        migrate(db, path)
    except sqlite3.DatabaseError as e:
        db.close()
        raise CcsError(f"the usage log {path} cannot be used: {e}") from None
    except CcsError:
        db.close()
        raise
    return db


def migrate(db, path: Path) -> None:
    if _version(db) == SCHEMA:
        return
    db.execute("BEGIN IMMEDIATE")  # one migrator at a time; the others find the work done
    try:
        version = _refuse_newer(db, path)
        for number in range(version, SCHEMA):
            for statement in MIGRATIONS[number]:
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {number + 1}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _refuse_newer(db, path: Path) -> int:
    if (version := _version(db)) > SCHEMA:
        raise CcsError(f"the usage log {path} has schema {version}, from a newer ccs (this one knows {SCHEMA}); "
                       "upgrade ccs, the log stays as it is")
    return version


def _version(db) -> int:
    return db.execute("PRAGMA user_version").fetchone()[0]


# ---------------------------------------------------------------- writing


DESCRIBED = "(image description)"  # `requested` of a request the proxy made itself: an image described for a model


class Request(NamedTuple):
    """One request as the proxy saw it end, built on the event loop: plain values, nothing computed."""

    time: float
    session: str | None
    target: str | None
    model: str | None
    requested: str  # the model claude asked for, or DESCRIBED
    stream: bool
    status: int
    usage: dict | None  # the answer's Anthropic `usage`, as the provider sent it
    ttfb: float | None  # seconds
    duration: float
    error: str | None
    failed: tuple[str, ...]
    request_class: str | None = None  # what claude said the request was for
    key: str | None = None  # which of the target's keys served it, masked


COLUMNS = ("time", "session", "profile", "target", "model", "requested", "stream", "status", "input_tokens",
           "output_tokens", "cache_read_tokens", "cache_write_tokens", "ttfb_ms", "duration_ms", "error", "hops",
           "failed", "cost", "price_source", "test", "request_class", "key")
INSERT = f"INSERT INTO requests ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"


def tokens_of(usage: dict | None) -> Tokens:
    """Anthropic `usage` -> counts; whatever a provider put there that is not a count is 0."""
    if not isinstance(usage, dict):
        return Tokens()

    def count(key: str) -> int:
        value = usage.get(key)
        return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 2**62 \
            else 0

    return Tokens(count("input_tokens"), count("output_tokens"), count("cache_read_input_tokens"),
                  count("cache_creation_input_tokens"))


class Recorder:
    """The log's writer for one proxy: `record` (on the event loop) only queues; a thread of its own prices
    the requests and writes them, a transaction per batch. A log that cannot be written is one warning,
    never a failed request."""

    def __init__(self, profile: str, price: Callable[[str, str, Tokens, float], Priced], path: Path | None = None,
                 test: bool = False, watch=None):
        self.profile = profile
        self.price = price  # (target profile, model, tokens, time) -> Priced
        self.test = test  # `ccs test`'s proxy: its rows are marked, and left out of totals
        self.watch = watch  # budgets.Watch: told the spend at start, after each batch, and when idle a while
        self.path = path or log_file()
        self.queue: queue.SimpleQueue[Request | None] = queue.SimpleQueue()
        self.written = 0
        self.lost = 0
        self.thread = threading.Thread(target=self._run, name="ccs-usage", daemon=True)
        self.thread.start()

    def record(self, request: Request) -> None:
        self.queue.put(request)

    def close(self, timeout: float = CLOSE_SECONDS) -> None:
        """Write what is queued, then stop; waits up to `timeout` seconds for the writer to finish. From now on
        a price not known yet is not asked for (a slow price table must not cost rows at exit)."""
        if closing := getattr(self.price, "closing", None):  # a plain function (a test's) has nothing to stop
            closing()
        self.queue.put(None)
        self.thread.join(timeout)

    def _run(self) -> None:
        import sqlite3

        try:
            db = connect(self.path)
        except CcsError as e:
            log.warning("ccs: %s; requests are not recorded", e)
            db = None
        self._refresh(db)
        while True:
            try:
                batch = [self.queue.get(timeout=REFRESH if self.watch else None)]
            except queue.Empty:  # another session's spend, meanwhile
                self._refresh(db)
                continue
            if batch[-1] is not None:
                time.sleep(LINGER)
            while batch[-1] is not None and len(batch) < BATCH:
                try:
                    batch.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            requests = [r for r in batch if r is not None]
            if requests and db is None:
                self.lost += len(requests)
            elif requests:
                try:
                    rows = [self._row(r) for r in requests]
                    db.execute("BEGIN IMMEDIATE")
                    db.executemany(INSERT, rows)
                    db.execute("COMMIT")
                    self.written += len(rows)
                    self._refresh(db)
                except sqlite3.Error as e:
                    self.lost += len(requests)
                    log.warning("ccs: %d requests not recorded in the usage log %s: %s", len(requests), self.path, e)
                    if db.in_transaction:
                        db.execute("ROLLBACK")
            if batch[-1] is None:
                if db is not None:
                    db.close()
                return

    def _refresh(self, db) -> None:
        import sqlite3

        if self.watch and db is not None:
            try:
                self.watch.refresh(db)
            except sqlite3.Error as e:
                log.warning("ccs: the spend against budgets could not be read from %s: %s", self.path, e)

    def _row(self, r: Request) -> tuple:
        tokens = tokens_of(r.usage)
        priced = UNPRICED
        if r.target and r.model and any(tokens):
            try:
                priced = self.price(r.target, r.model, tokens, r.time)
            except Exception as e:  # a price table's bug must not lose the row
                log.warning("ccs: no price for %s,%s: %s: %s", r.target, r.model, type(e).__name__, e)
        return (r.time, r.session, self.profile, r.target, r.model, r.requested, int(r.stream), r.status, *tokens,
                None if r.ttfb is None else round(r.ttfb * 1000, 1), round(r.duration * 1000, 1), r.error,
                len(r.failed), ", ".join(r.failed) or None, priced.cost, priced.source, int(self.test), r.request_class,
                r.key)


# ---------------------------------------------------------------- reading


GROUPS = {  # --by: the name and the SQL of each column a summary groups on
    "profile": {"profile": "COALESCE(target, profile)"},
    # a model's image descriptions on a line of their own: what describing images costs
    "model": {"profile": "COALESCE(target, profile)",
              "model": f"CASE WHEN requested = '{DESCRIBED}' THEN model || ' {DESCRIBED}' ELSE model END"},
    "day": {"day": "date(time, 'unixepoch', 'localtime')"},
    "session": {"session": "session"},
    "class": {"class": "COALESCE(request_class, '-')"},
}
_FIGURES = {  # the name and the SQL of each figure of a group
    "requests": "count(*)",
    "errors": "sum(status >= 400 AND status != 499)",
    "input_tokens": "sum(input_tokens)",
    "output_tokens": "sum(output_tokens)",
    "cache_read_tokens": "sum(cache_read_tokens)",
    "cache_write_tokens": "sum(cache_write_tokens)",
    "cost": "sum(cost)",
    "unpriced": "sum(cost IS NULL AND input_tokens + output_tokens + cache_read_tokens + cache_write_tokens > 0)",
    "first": "min(time)",
    "last": "max(time)",
}
FIGURES = tuple(_FIGURES)
_MAYBE_NONE = ("cost", "first", "last")  # no price, no request: None rather than 0
_FIGURES_SQL = ", ".join(_FIGURES.values())


class Period(NamedTuple):
    """Which rows a report reads: since when (None: all), and whether `ccs test`'s own count."""

    since: float | None = None
    tests: bool = False

    def where(self, *more: str) -> tuple[str, tuple]:
        """A WHERE clause for these rows (and `more` conditions), with its arguments."""
        conditions = [*more, *(["time >= ?"] if self.since is not None else []), *([] if self.tests else ["test = 0"])]
        return ("WHERE " + " AND ".join(conditions) if conditions else ""), (() if self.since is None else (self.since,))


def summary(db, period: Period, by: str) -> tuple[list[dict], dict]:
    """(a dict per group, costliest first (by day and by session: oldest first), the totals) of the period."""
    keys = GROUPS[by]
    where, args = period.where()
    order = {"day": "1", "session": "min(time)"}.get(by, "sum(cost) IS NULL, sum(cost) DESC, count(*) DESC")
    columns = ", ".join(keys.values())
    rows = db.execute(f"SELECT {columns}, {_FIGURES_SQL} FROM requests {where} GROUP BY {columns} ORDER BY {order}",
                      args).fetchall()
    groups = [_figures(dict(zip(keys, row[:len(keys)])), row[len(keys):]) for row in rows]
    total = _figures({}, db.execute(f"SELECT {_FIGURES_SQL} FROM requests {where}", args).fetchone())
    return groups, total


def empty_total() -> dict:
    """The totals of no request at all."""
    return _figures({}, [None] * len(FIGURES))


@contextlib.contextmanager
def snapshot(db):
    """One read transaction: every query inside it reads the same rows, however many writers write meanwhile."""
    db.execute("BEGIN")
    try:
        yield db
    finally:
        db.execute("COMMIT")


def _figures(group: dict, values) -> dict:
    figures = {name: value if value is not None or name in _MAYBE_NONE else 0 for name, value in zip(FIGURES, values)}
    return {**group, **figures}


def price_sources(db, period: Period) -> list[str]:
    where, args = period.where("price_source IS NOT NULL")
    return [row[0] for row in db.execute(f"SELECT DISTINCT price_source FROM requests {where} ORDER BY 1", args)]


def unpriced_models(db, period: Period) -> list[str]:
    """"profile,model" of the requests with tokens and no price."""
    where, args = period.where("cost IS NULL", "input_tokens + output_tokens + cache_read_tokens + cache_write_tokens > 0")
    return [f"{row[0]},{row[1]}" for row in db.execute(
        f"SELECT DISTINCT COALESCE(target, profile), model FROM requests {where} ORDER BY 1, 2", args)]


def recorded_profiles(db, period: Period) -> set[str]:
    where, args = period.where()
    return {row[0] for row in db.execute(f"SELECT DISTINCT profile FROM requests {where}", args)}


def tests_left_out(db, period: Period) -> int:
    """How many of `ccs test`'s own requests the period holds (a report without them says so)."""
    where, args = Period(period.since, tests=True).where("test = 1")
    return db.execute(f"SELECT count(*) FROM requests {where}", args).fetchone()[0]


def after(db, last_id: int, limit: int = 100) -> list[dict]:
    """The requests written after row `last_id` (the live view), oldest first."""
    cursor = db.execute(f"SELECT id, {', '.join(COLUMNS)} FROM requests WHERE id > ? ORDER BY id DESC LIMIT ?",
                        (last_id, limit))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in reversed(cursor.fetchall())]


def session_figures(path: Path, session: str) -> tuple[int, int, int, float | None] | None:
    """(requests, input tokens with the cache's, output tokens, cost) of one claude session, by its index;
    None when there is no log or no request of it. For `ccs statusline`: no migration, no log created."""
    import sqlite3

    if not path.exists():
        return None
    try:
        db = sqlite3.connect(path, timeout=1.0)
        try:
            row = db.execute("SELECT count(*), sum(input_tokens + cache_read_tokens + cache_write_tokens), "
                             "sum(output_tokens), sum(cost) FROM requests WHERE session = ?", (session,)).fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return None
    return None if not row or not row[0] else (row[0], row[1] or 0, row[2] or 0, row[3])
