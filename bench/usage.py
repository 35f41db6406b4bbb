"""What the usage log adds to the proxy's per-request cost: the same proxy with and without a `Recorder`,
measured in the same run.

    python bench/usage.py [--quick] [--rounds N] [--pairs P] [--concurrent-rounds K] [--concurrent-seconds S]

Run it with a regular (non-editable) install of ccswitch (from the source tree, where
PYTHONDONTWRITEBYTECODE is set, every start recompiles it).

The fakes of `passthrough.py` (`fake_anthropic.py`, `fake_openai.py`: each SSE event its own write,
200-chunk streams) and four proxies, each its own process serving what `running(router)` serves (what
`ccs proxy` and `ccs run` serve), pinned to core 0; the client (bench/proxy.py's minimal keep-alive
client, so that its own cost stays small) and the fakes on core 1:

- translated: `Router.single` of the OpenAI fake's profile, with `recorder=None` and with a recorder;
- pass-through: `Router.single(Upstream(api="anthropic", auth="api-key"))` in front of the Anthropic fake,
  with `recorder=None` and with a recorder.

A recorder is `usage.Recorder("bench", price, TMP/usage.sqlite3)`, both recorded proxies writing the same
file (WAL), `price` the real pricing as under `ccs run`: genai-prices' rates for glm-4.6 at z.ai, asked of
a child process once (`prices.TablePrices`), then every row priced from them in the writer thread.

For each upstream:

1. one client, the ~21 KB Claude-Code-shaped streamed request of `proxy.py`, time to the last byte:
   N rounds of P requests to each proxy, alternately (A B, B A, A B, ...). After a request to the
   recorded proxy the client waits (at most 10 s) until the log, read from this process as `ccs usage`
   reads it, has its row (how long: "row written"); every request is followed by at least 3 ms idle,
   so that neither proxy's request overlaps the writer's work for the one before (claude's requests
   are seconds apart, the writer done long before the next);
2. 8 concurrent clients, K phases of S seconds to each proxy, alternately: there the writer works
   while other streams are under way.

Printed: per-request p50 and mean of each, the ratio recorded/unrecorded (with its median and min-max
over the rounds or phases), the median paired difference, the proxy process's CPU per request (the
writer thread's included), then the rows in the log against the requests sent and whether all are
priced (exit status 1 if not). The machine is shared and noisy: the figures are the ratios against the
baseline measured alongside, not the milliseconds. Every loop is bounded in count and time; all traffic
stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from proxy import Connection, Target, anthropic_request, cpu_seconds

KEY = "sk-bench-key"
SESSION = "bench-session-0001"
CONCURRENT = 8
CONCURRENT_MAX = 3000  # streams in one concurrent phase at most
WARM = 30  # requests to each proxy before timing (the recorded one: until its rows are written)
SETTLE_SECONDS = 10.0  # bound on waiting for the writer to catch up
GAP = 0.003  # seconds idle after each request at one client (claude's are seconds apart)
PRICE_URL, PRICE_MODEL = "https://api.z.ai/api/anthropic", "glm-4.6"
PROFILES = """version = 1
[profiles.ant]
base_url = "{ant}"
auth = "api-key"
model = "claude-bench"

[profiles.gpt]
api = "openai"
base_url = "{oai}/v1"
auth = "none"
model = "gpt-5"
models = {{ sonnet = "gpt-5" }}
"""
TARGETS = {"translated": "gpt", "pass-through": "ant"}  # the profile each upstream's rows name as their target


# ---------------------------------------------------------------- the proxies (child processes)


TABLE = None


def price(target: str, model: str, tokens, when: float):
    """The real pricing, whatever the fake's model: the price table's rates, asked once, in the writer thread."""
    global TABLE
    from ccswitch import prices

    TABLE = TABLE or prices.TablePrices()
    return prices.price({}, PRICE_URL, PRICE_MODEL, tokens, when, TABLE)


def serve(kind: str, db: str) -> None:
    """A proxy as `ccs proxy` runs one (`running`, its log on stderr), recording into `db` unless it is "-",
    until stdin closes (then the recorder writes what is queued)."""
    from ccswitch import profiles, usage
    from ccswitch.proxy.lifecycle import running
    from ccswitch.proxy.router import Router
    from ccswitch.proxy.upstream import Upstream

    config = profiles.load()
    if kind == "pass-through":
        ant = config.get("ant")
        upstream = Upstream(name="ant", base_url=ant.base_url, key=KEY, model="claude-bench", api="anthropic",
                            auth="api-key")
    else:
        upstream = Upstream.from_profile(config.get("gpt"), None, os.environ)
    recorder = None if db == "-" else usage.Recorder("bench", price, Path(db))
    with running(Router.single(upstream), recorder=recorder) as endpoint:
        print(json.dumps({"base_url": endpoint.url, "token": endpoint.token}), flush=True)
        sys.stdin.read()


def start(kind: str, db: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen(["taskset", "-c", "0", sys.executable, __file__, "--serve", kind, db], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


# ---------------------------------------------------------------- the client


@dataclass
class Way:
    """One proxy: where, its request's bytes, its process; what was sent and measured."""

    name: str
    url: str
    request: bytes
    pid: int
    target: str | None = None  # recorded: the target its rows name
    sent: int = 0
    rounds: list[list[float]] = field(default_factory=list)  # seconds per request, a list per round
    cpu: float = 0.0  # proxy CPU seconds over the timed requests (the writer's work for them included)
    lags: list[float] = field(default_factory=list)  # seconds from a request's last byte to its row in the log
    late: int = 0  # waits for the writer that ran out of time
    phases: list[tuple[float, list[float], float]] = field(default_factory=list)  # concurrent: rate, latencies, CPU

    @property
    def samples(self) -> list[float]:
        return [s for samples in self.rounds for s in samples]


def make_way(name: str, endpoint: dict, pid: int, target: str | None) -> Way:
    auth = f"x-api-key: {endpoint['token']}\r\nanthropic-version: 2023-06-01\r\nx-claude-code-session-id: {SESSION}"
    request = Target.make(endpoint["base_url"], "/v1/messages", auth, anthropic_request).requests["stream"]
    return Way(name, endpoint["base_url"], request, pid, target)


class Log:
    """The usage log as `ccs usage` reads it, from this process, while the proxies write it."""

    def __init__(self, path: Path):
        self.path = path
        self.db: sqlite3.Connection | None = None
        self.recorded: list[Way] = []  # the ways whose proxies write it

    def rows(self) -> int:
        try:
            if self.db is None:
                if not self.path.exists():
                    return 0
                self.db = sqlite3.connect(self.path, timeout=5.0)
            return self.db.execute("SELECT count(*) FROM requests").fetchone()[0]
        except sqlite3.OperationalError:  # no table yet: the writer has not migrated the new file
            return 0

    def settle(self, way: Way) -> float:
        """Wait until the log holds a row for every request sent to a recorded proxy (at most
        SETTLE_SECONDS); the seconds it took."""
        start = time.perf_counter()
        sent = sum(w.sent for w in self.recorded)
        while self.rows() < sent:
            if time.perf_counter() > start + SETTLE_SECONDS:
                way.late += 1
                break
            time.sleep(0.0002)
        return time.perf_counter() - start

    def close(self) -> None:
        if self.db is not None:
            self.db.close()


async def send(connection: Connection, way: Way, log: Log) -> float:
    """One request, then at least GAP seconds idle (for a recorded proxy: until its row is written, lag
    noted), so that neither proxy's request overlaps the writer's work for the one before; its seconds."""
    status, total = await connection.exchange(way.request)
    assert status == 200, status
    way.sent += 1
    lag = 0.0
    if way.target:
        lag = log.settle(way)
        way.lags.append(lag)
    if lag < GAP:
        time.sleep(GAP - lag)
    return total


async def sequential(ways: list[Way], log: Log, rounds: int, pairs: int, seconds: float) -> None:
    """Rounds of `pairs` requests to each way, alternately (A B, B A, A B, ...); bounded by `seconds`."""
    connections = {way.name: await Connection.open(way.url) for way in ways}
    for way in ways:  # warm: connections (client -> proxy -> provider), caches; the writer's imports
        for _ in range(WARM):
            await send(connections[way.name], way, log)
        way.lags.clear()  # the first row waited for the price table's child process
    deadline = time.monotonic() + seconds
    for number in range(rounds):
        if time.monotonic() > deadline:
            break
        samples: dict[str, list[float]] = {way.name: [] for way in ways}
        for pair in range(pairs):
            for way in (ways if (number * pairs + pair) % 2 == 0 else ways[::-1]):
                before = cpu_seconds(way.pid)
                samples[way.name].append(await send(connections[way.name], way, log))
                way.cpu += cpu_seconds(way.pid) - before
        for way in ways:
            way.rounds.append(samples[way.name])
    for connection in connections.values():
        connection.close()


async def concurrent_phase(way: Way, connections: list[Connection], log: Log,
                           seconds: float) -> tuple[float, list[float], float]:
    """CONCURRENT clients streaming at once for `seconds` (at most CONCURRENT_MAX streams), then (recorded)
    the writer caught up: rate, latencies, proxy CPU seconds per stream."""
    latencies: list[float] = []

    async def worker(connection: Connection) -> None:
        while time.monotonic() < deadline and len(latencies) < CONCURRENT_MAX:
            status, total = await connection.exchange(way.request)
            assert status == 200, status
            way.sent += 1
            latencies.append(total)

    cpu = cpu_seconds(way.pid)
    start = time.monotonic()
    deadline = start + seconds
    await asyncio.gather(*(worker(c) for c in connections))
    elapsed = time.monotonic() - start
    if way.target:
        way.lags.append(log.settle(way))
    return len(latencies) / elapsed, latencies, (cpu_seconds(way.pid) - cpu) / len(latencies)


async def concurrency(ways: list[Way], log: Log, rounds: int, seconds: float) -> None:
    """Phases of CONCURRENT clients to each way, alternately (A B, B A, ...), on the same connections."""
    connections = {way.name: [await Connection.open(way.url) for _ in range(CONCURRENT)] for way in ways}
    for way in ways:  # warm: CONCURRENT connections to the proxy, and from it to the provider
        for status, _ in await asyncio.gather(*(c.exchange(way.request) for c in connections[way.name])):
            assert status == 200, status
        way.sent += CONCURRENT
        if way.target:
            log.settle(way)
    for number in range(rounds):
        for way in (ways if number % 2 == 0 else ways[::-1]):
            way.phases.append(await concurrent_phase(way, connections[way.name], log, seconds))
    for way in ways:
        for connection in connections[way.name]:
            connection.close()


# ---------------------------------------------------------------- the report


def spread(values: list[float]) -> str:
    return f"median {statistics.median(values):.3f}, {min(values):.3f}-{max(values):.3f}"


def report(title: str, base: Way, recorded: Way, figures: dict) -> None:
    b, r = base.samples, recorded.samples
    print(f"\n{title}: {len(base.rounds)} rounds of {len(base.rounds[0])} streamed requests to each, one client, "
          f"alternately, each followed by >= {GAP * 1000:.0f} ms idle")
    print(f"  {'':12s}{'p50 ms':>8s} {'mean ms':>8s} {'p90 ms':>8s} {'CPU ms/req':>11s} {'row written p50/max':>20s}")
    for way in (base, recorded):
        s = way.samples
        lag = (f"{statistics.median(way.lags) * 1000:9.2f}/{max(way.lags) * 1000:.1f} ms" if way.target
               else f"{'-':>20s}")
        print(f"  {way.name:12s}{statistics.median(s) * 1000:8.3f} {statistics.mean(s) * 1000:8.3f} "
              f"{statistics.quantiles(s, n=10)[8] * 1000:8.3f} {way.cpu / len(s) * 1000:11.3f} {lag}")
    p50 = statistics.median(r) / statistics.median(b)
    mean = statistics.mean(r) / statistics.mean(b)
    per_round = [statistics.median(x) / statistics.median(y) for x, y in zip(recorded.rounds, base.rounds)]
    per_round_mean = [statistics.mean(x) / statistics.mean(y) for x, y in zip(recorded.rounds, base.rounds)]
    paired = statistics.median(x - y for x, y in zip(r, b)) * 1000
    cpu = (recorded.cpu / len(r)) / (base.cpu / len(b))
    print(f"  recorded/unrecorded: p50 {p50:.3f}, mean {mean:.3f}, CPU {cpu:.3f}; per round: p50 {spread(per_round)}, "
          f"mean {spread(per_round_mean)}; paired difference p50 {paired:+.3f} ms", flush=True)
    figures[title, "sequential"] = (p50, mean, per_round, statistics.median(b), statistics.median(r), paired, cpu)
    if base.phases and recorded.phases:
        print(f"  {CONCURRENT} concurrent clients, {len(base.phases)} phases to each, alternately:")
        print(f"  {'':12s}{'streams/s':>10s} {'p50 ms':>8s} {'mean ms':>8s} {'CPU ms/req':>11s}")
        for way in (base, recorded):
            latencies = [x for phase in way.phases for x in phase[1]]
            print(f"  {way.name:12s}{statistics.mean(p[0] for p in way.phases):10.1f} "
                  f"{statistics.median(latencies) * 1000:8.3f} {statistics.mean(latencies) * 1000:8.3f} "
                  f"{statistics.mean(p[2] for p in way.phases) * 1000:11.3f}")
        rates = [x[0] / y[0] for x, y in zip(recorded.phases, base.phases)]
        p50s = [statistics.median(x[1]) / statistics.median(y[1]) for x, y in zip(recorded.phases, base.phases)]
        means = [statistics.mean(x[1]) / statistics.mean(y[1]) for x, y in zip(recorded.phases, base.phases)]
        print(f"  recorded/unrecorded per phase: streams/s {spread(rates)}; p50 {spread(p50s)}; mean {spread(means)}",
              flush=True)
        figures[title, "concurrent"] = (rates, p50s, means)


def check_rows(path: Path, ways: list[Way]) -> bool:
    """Every request sent to a recorded proxy is a row, priced; after the proxies closed their recorders."""
    db = sqlite3.connect(path)
    ok = True
    try:
        for way in ways:
            rows, priced, cost, sources = db.execute(
                "SELECT count(*), count(cost), sum(cost), group_concat(DISTINCT price_source) FROM requests "
                "WHERE target = ?", (way.target,)).fetchone()
            good = rows == way.sent and priced == rows and not way.late
            ok &= good
            late = f", {way.late} waits for the writer ran out of time" if way.late else ""
            print(f"  target {way.target}: {rows} rows written of {way.sent} requests sent, {priced} priced "
                  f"({sources}, ${cost or 0:.2f} in all){late}: {'ok' if good else 'MISMATCH'}")
    finally:
        db.close()
    return ok


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer and shorter rounds and phases")
    parser.add_argument("--rounds", type=int, help="rounds at one client per upstream (default 16, --quick 4)")
    parser.add_argument("--pairs", type=int, help="requests to each proxy in a round (default 50, --quick 20)")
    parser.add_argument("--seconds", type=float, default=45.0, help="bound on each upstream's rounds")
    parser.add_argument("--concurrent-seconds", type=float, default=0.5, help="each concurrent phase (0: none)")
    parser.add_argument("--concurrent-rounds", type=int, help="concurrent phases to each proxy (default 12, --quick 4)")
    args = parser.parse_args()
    rounds = args.rounds or (4 if args.quick else 16)
    pairs = args.pairs or (20 if args.quick else 50)
    concurrent_seconds = args.concurrent_seconds
    concurrent_rounds = args.concurrent_rounds or (4 if args.quick else 12)
    began = time.monotonic()
    os.sched_setaffinity(0, {1})
    fakes = [subprocess.Popen([sys.executable, str(HERE / name)], stdout=subprocess.PIPE, text=True)
             for name in ("fake_anthropic.py", "fake_openai.py")]
    proxies: dict[tuple[str, str], subprocess.Popen] = {}
    ok = False
    try:
        ant, oai = (f"http://127.0.0.1:{fake.stdout.readline().strip()}" for fake in fakes)
        with tempfile.TemporaryDirectory() as home:
            Path(home, "profiles.toml").write_text(PROFILES.format(ant=ant, oai=oai))
            env = {**os.environ, "CCS_HOME": home, "CCS_CONFIG": f"{home}/profiles.toml"}
            path = Path(home, "usage.sqlite3")
            # a process per way: one that served the request just before is faster (warm caches)
            for kind in TARGETS:
                proxies[kind, "unrecorded"] = start(kind, "-", env)
                proxies[kind, "recorded"] = start(kind, str(path), env)
            endpoints = {key: json.loads(process.stdout.readline()) for key, process in proxies.items()}
            import ccswitch
            import genai_prices
            print(f"ccswitch from {Path(ccswitch.__file__).parent}; genai-prices {genai_prices.__version__} "
                  f"({PRICE_MODEL} at {PRICE_URL}); fakes: 200-chunk streams, each SSE event its own write; request "
                  f"{len(json.dumps(anthropic_request(True)))} bytes; load average {os.getloadavg()[0]:.1f}")
            log = Log(path)
            figures: dict = {}
            try:
                for kind, target in TARGETS.items():
                    ways = [make_way("unrecorded", endpoints[kind, "unrecorded"], proxies[kind, "unrecorded"].pid, None),
                            make_way("recorded", endpoints[kind, "recorded"], proxies[kind, "recorded"].pid, target)]
                    log.recorded.append(ways[1])
                    asyncio.run(sequential(ways, log, rounds, pairs, args.seconds))
                    if concurrent_seconds > 0:
                        asyncio.run(concurrency(ways, log, concurrent_rounds, concurrent_seconds))
                    report(kind, *ways, figures)
            finally:
                log.close()
                for process in proxies.values():  # stdin closed: the proxy stops, its recorder writes its queue
                    process.stdin.close()
                for process in proxies.values():
                    try:
                        process.wait(15)
                    except subprocess.TimeoutExpired:
                        process.kill()
            print("\nthe usage log, once the proxies stopped:")
            ok = check_rows(path, log.recorded)
            print("\nsummary, recorded/unrecorded:")
            for (title, what), values in figures.items():
                if what == "sequential":
                    p50, mean, per_round, b50, r50, paired, cpu = values
                    print(f"  {title}, one client: p50 {p50:.3f} ({b50 * 1000:.2f} -> {r50 * 1000:.2f} ms), "
                          f"mean {mean:.3f}, per round p50 {spread(per_round)}, paired {paired:+.3f} ms, CPU {cpu:.3f}")
                else:
                    rates, p50s, means = values
                    print(f"  {title}, {CONCURRENT} clients: streams/s {spread(rates)}; p50 {spread(p50s)}; "
                          f"mean {spread(means)}")
            print(f"load average now {os.getloadavg()[0]:.1f} (2 cores); {time.monotonic() - began:.0f} s")
    finally:
        for process in proxies.values():
            if process.poll() is None:
                process.kill()
        for fake in fakes:
            fake.kill()
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(sys.argv[2], sys.argv[3])
    else:
        main()
