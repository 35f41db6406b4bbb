"""Pass-through and routing against baselines measured in the same run, through the official SDK.

    python bench/passthrough.py [--repeat R] [--rounds N] [--seconds S] [--driver sdk|raw] [--burst]

Run it with a regular (non-editable) install of ccswitch and `anthropic` in the same venv (from the
source tree, where PYTHONDONTWRITEBYTECODE is set, every start recompiles it).

Two fake providers (`fake_anthropic.py`, `fake_openai.py`: each SSE event its own write, 200-chunk
streams) and the proxies, each way compared its own process (one that served the request just before
is faster: warm caches), serving what `running(router)` serves (what `ccs proxy` and `ccs run` serve)
and pinned to core 0; the client (the `anthropic` SDK, sync, or with `--driver raw` the minimal
keep-alive client of `proxy.py`) and the fakes on core 1:

- pass-through: `Router.single(Upstream(api="anthropic", auth="api-key"))` in front of the Anthropic fake;
- translated: `Router.single` of the OpenAI fake's profile (`claude-sonnet-4-5` mapped by its tier);
- router: `Router.for_profile` of `models = { sonnet = "gpt,gpt-5", opus = "ant,claude-bench" }`,
  both fakes behind it.

Phases, each at one client with every target's request in turn in each round (the order rotating),
so the machine's noise hits them alike; the ~21 KB Claude-Code-shaped request of `proxy.py`:

1. pass-through: SDK -> fake directly (the baseline), SDK -> pass-through proxy -> fake, and
   SDK -> router -> fake (model "ant,claude-bench");
2. routing: the translated single-provider proxy (the baseline) against the router for
   "gpt,gpt-5" and for "claude-sonnet-4-5" (its sonnet tier routes to gpt,gpt-5);
3. concurrency: 8 concurrent streams (the async SDK), direct and through the pass-through proxy,
   alternately, twice each.

Whole answers and streams (time to the last byte; with the SDK also to the first); p50, p90, what the
proxy adds to them and the proxy process's CPU per request. With `--repeat` the phases run again and
a summary gives the range over the repetitions. `--profile whole|stream|paced` instead runs that load
alone on the pass-through proxy under py-spy and says where its time goes. Every loop is bounded in
count and time; all traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from proxy import Connection, anthropic_request, cpu_seconds, where_time_goes

KEY = "sk-bench-key"
KINDS = ("whole", "stream", "paced")
PACE = (1, 50)  # a paced stream: 50 text events, 1 ms apart (see fake_anthropic.py)
CONCURRENT = 8
CONCURRENT_MAX = 2000  # streams in one concurrent phase at most
PROFILES = """version = 1
[profiles.ant]
base_url = "{ant}"
auth = "api-key"
key_env = "BENCH_ANT_KEY"
model = "claude-bench"

[profiles.gpt]
api = "openai"
base_url = "{oai}/v1"
auth = "none"
model = "gpt-5"
models = {{ sonnet = "gpt-5" }}

[profiles.mix]
models = {{ sonnet = "gpt,gpt-5", opus = "ant,claude-bench" }}
"""


# ---------------------------------------------------------------- the proxies (child processes)


def serve(kind: str) -> None:
    """A proxy as `ccs proxy` runs one (`running`, its log on stderr), until stdin closes."""
    from ccswitch import profiles
    from ccswitch.proxy.lifecycle import keys_for, running
    from ccswitch.proxy.router import Router
    from ccswitch.proxy.upstream import Upstream

    config = profiles.load()
    if kind == "pass-through":
        ant = config.get("ant")
        router = Router.single(Upstream(name="ant", base_url=ant.base_url, key=KEY, model="claude-bench",
                                        api="anthropic", auth="api-key"))
    elif kind == "translated":
        router = Router.single(Upstream.from_profile(config.get("gpt"), None, os.environ))
    else:
        mix = config.get("mix")
        router = Router.for_profile(config, mix, keys_for(config, mix), os.environ)
    with running(router) as endpoint:
        print(json.dumps({"base_url": endpoint.url, "token": endpoint.token}), flush=True)
        sys.stdin.read()


# ---------------------------------------------------------------- the client


@dataclass
class Way:
    """One way to send the request: where, with which key and model; its samples."""

    name: str
    url: str
    key: str
    model: str
    pid: int | None = None  # the proxy's process, for its CPU
    total: dict[str, list[float]] = field(default_factory=lambda: {kind: [] for kind in KINDS})
    first: dict[str, list[float]] = field(default_factory=lambda: {kind: [] for kind in KINDS})
    cpu: dict[str, float] = field(default_factory=lambda: dict.fromkeys(KINDS, 0.0))

    def reset(self) -> None:
        for kind in KINDS:
            self.total[kind], self.first[kind], self.cpu[kind] = [], [], 0.0


def split_request(way: Way, kind: str) -> dict:
    """The request as SDK arguments: what its `create` types, the rest as extra_body."""
    body = {**anthropic_request(kind != "whole"), "model": way.model}
    known = {k: body.pop(k) for k in ("model", "max_tokens", "messages", "stream")}
    pace = {"extra_headers": {"x-bench-pace": "{},{}".format(*PACE)}} if kind == "paced" else {}
    return {**known, "extra_body": body, **pace}


class SdkDriver:
    """The official SDK, sync: one client (one keep-alive pool) per way."""

    def __init__(self, ways: list[Way]):
        import anthropic

        self.clients = {w.name: anthropic.Anthropic(base_url=w.url, api_key=w.key, max_retries=0, timeout=60.0)
                        for w in ways}
        self.requests = {(w.name, kind): split_request(w, kind) for w in ways for kind in KINDS}

    def send(self, way: Way, kind: str) -> tuple[float, float]:
        """Seconds to the first and to the last byte of the answer."""
        client = self.clients[way.name]
        start = time.perf_counter()
        first = 0.0
        with client.messages.with_streaming_response.create(**self.requests[way.name, kind]) as response:
            assert response.status_code == 200, response.status_code
            size = 0
            for chunk in response.iter_bytes():
                if not first:
                    first = time.perf_counter() - start
                size += len(chunk)
        total = time.perf_counter() - start
        assert size > 100, size
        return first, total

    def close(self) -> None:
        for client in self.clients.values():
            client.close()


class RawDriver:
    """bench/proxy.py's minimal keep-alive client: its own cost stays small beside the proxy's."""

    def __init__(self, ways: list[Way]):
        from urllib.parse import urlsplit

        self.loop = asyncio.new_event_loop()
        self.connections = {w.name: self.loop.run_until_complete(Connection.open(w.url)) for w in ways}
        self.requests = {}
        for w in ways:
            parts = urlsplit(w.url)
            for kind in KINDS:
                body = json.dumps({**anthropic_request(kind != "whole"), "model": w.model},
                                  separators=(",", ":")).encode()
                pace = "x-bench-pace: {},{}\r\n".format(*PACE) if kind == "paced" else ""
                self.requests[w.name, kind] = (
                    f"POST /v1/messages HTTP/1.1\r\nhost: {parts.netloc}\r\nx-api-key: {w.key}\r\n{pace}"
                    f"anthropic-version: 2023-06-01\r\ncontent-type: application/json\r\n"
                    f"content-length: {len(body)}\r\n\r\n").encode() + body

    def send(self, way: Way, kind: str) -> tuple[float, float]:
        status, total = self.loop.run_until_complete(self.connections[way.name].exchange(self.requests[way.name, kind]))
        assert status == 200, status
        return 0.0, total

    def close(self) -> None:
        for connection in self.connections.values():
            connection.close()
        self.loop.close()


def sequential(driver, ways: list[Way], kind: str, rounds: int, seconds: float) -> None:
    """Every way once a round, the order rotating; bounded by `rounds` and `seconds`."""
    for way in ways:  # warm: connections (client -> proxy -> provider), caches
        for _ in range(3):
            driver.send(way, kind)
    start = time.monotonic()
    for number in range(rounds):
        if time.monotonic() > start + seconds:
            break
        shift = number % len(ways)
        for way in ways[shift:] + ways[:shift]:
            before = cpu_seconds(way.pid) if way.pid else 0.0
            first, total = driver.send(way, kind)
            if way.pid:
                way.cpu[kind] += cpu_seconds(way.pid) - before
            way.total[kind].append(total)
            way.first[kind].append(first)


def quantile(samples: list[float], q: float) -> float:
    return statistics.quantiles(samples, n=10, method="inclusive")[int(q * 10) - 1] if q != 0.5 \
        else statistics.median(samples)


def table(title: str, ways: list[Way], kind: str, figures: dict) -> None:
    base = ways[0]
    b50, b90 = statistics.median(base.total[kind]) * 1000, quantile(base.total[kind], 0.9) * 1000
    streams = kind != "whole" and any(base.first[kind])
    what = {"whole": "whole answers", "stream": "200-event streams as fast as the fake can write, time to the last byte",
            "paced": f"paced streams ({PACE[1]} events {PACE[0]} ms apart), time to the last byte"}[kind]
    print(f"\n{title}, {what} ({len(base.total[kind])} rounds)")
    print(f"  {'':28s}{'p50 ms':>8s} {'p90 ms':>8s} {'added p50':>10s} {'added p90':>10s} {'ratio p50':>10s} "
          f"{'paired':>8s}" + (f" {'first byte p50':>15s}" if streams else "") + f" {'proxy CPU ms':>13s}")
    for way in ways:
        p50, p90 = statistics.median(way.total[kind]) * 1000, quantile(way.total[kind], 0.9) * 1000
        # paired: the median of (this way - the baseline) within each round, less sensitive to drift
        paired = statistics.median(t - b for t, b in zip(way.total[kind], base.total[kind])) * 1000
        cpu = way.cpu[kind] / len(way.total[kind]) * 1000 if way.pid else None
        line = (f"  {way.name:28s}{p50:8.2f} {p90:8.2f} {p50 - b50:+10.2f} {p90 - b90:+10.2f} {p50 / b50:10.3f} "
                f"{paired:+8.2f}")
        if streams:
            line += f" {statistics.median(way.first[kind]) * 1000:12.2f} ms"
        line += f" {cpu:13.2f}" if cpu is not None else f" {'-':>13s}"
        print(line, flush=True)
        if way is not base:
            figures.setdefault((title, kind, way.name), []).append((p50 - b50, p90 - b90, p50 / b50, paired, cpu))


async def concurrent_phase(url: str, key: str, model: str, seconds: float, pid: int | None) -> tuple[float, list[float], float]:
    """CONCURRENT clients streaming at once for `seconds` (at most CONCURRENT_MAX streams): rate, latencies,
    proxy CPU seconds per stream."""
    import anthropic

    client = anthropic.AsyncAnthropic(base_url=url, api_key=key, max_retries=0, timeout=60.0)
    request = split_request(Way("c", url, key, model), "stream")
    latencies: list[float] = []

    async def one() -> float:
        start = time.perf_counter()
        async with client.messages.with_streaming_response.create(**request) as response:
            assert response.status_code == 200, response.status_code
            async for _ in response.iter_bytes():
                pass
        return time.perf_counter() - start

    async def worker() -> None:
        while time.monotonic() < deadline and len(latencies) < CONCURRENT_MAX:
            latencies.append(await one())

    await asyncio.gather(*(one() for _ in range(CONCURRENT)))  # warm: CONCURRENT connections each way
    cpu = cpu_seconds(pid) if pid else 0.0
    start = time.monotonic()
    deadline = start + seconds
    await asyncio.gather(*(worker() for _ in range(CONCURRENT)))
    elapsed = time.monotonic() - start
    used = (cpu_seconds(pid) - cpu) / len(latencies) if pid else 0.0
    await client.close()
    return len(latencies) / elapsed, latencies, used


def concurrency(direct: Way, proxied: Way, seconds: float, figures: dict) -> None:
    results = {"direct": [], "proxied": []}
    for _ in range(2):
        for name, way in (("direct", direct), ("proxied", proxied)):
            results[name].append(asyncio.run(concurrent_phase(way.url, way.key, way.model, seconds, way.pid)))
    print(f"\n{CONCURRENT} concurrent streams (async SDK), two phases of {seconds:.0f} s each way, alternately")
    print(f"  {'':28s}{'streams/s':>10s} {'p50 ms':>8s} {'p90 ms':>8s} {'ratio /s':>9s} {'ratio p50':>10s} "
          f"{'proxy CPU ms':>13s}")
    base_rate = statistics.mean(r[0] for r in results["direct"])
    base_p50 = statistics.median(x for r in results["direct"] for x in r[1])
    for name, way in (("direct", direct), ("proxied", proxied)):
        rate = statistics.mean(r[0] for r in results[name])
        latencies = [x for r in results[name] for x in r[1]]
        p50, p90 = statistics.median(latencies), quantile(latencies, 0.9)
        cpu = statistics.mean(r[2] for r in results[name]) * 1000
        print(f"  {way.name:28s}{rate:10.1f} {p50 * 1000:8.2f} {p90 * 1000:8.2f} {rate / base_rate:9.3f} "
              f"{p50 / base_p50:10.3f} " + (f"{cpu:13.2f}" if way.pid else f"{'-':>13s}"), flush=True)
        if name == "proxied":
            figures.setdefault(("concurrent", "stream", way.name), []).append(
                (p50 - base_p50, 0.0, p50 / base_p50, rate / base_rate, cpu))


def summary(figures: dict) -> None:
    print("\nsummary over the repetitions (min-max): added p50 ms, added p90 ms, ratio p50, paired ms, proxy CPU ms")
    for (title, kind, name), values in figures.items():
        if title == "concurrent":
            lo_hi = [(min(v[i] for v in values), max(v[i] for v in values)) for i in (0, 2, 3, 4)]
            print(f"  {title} {kind} {name}: added p50 {lo_hi[0][0] * 1000:+.2f}..{lo_hi[0][1] * 1000:+.2f} ms, "
                  f"ratio p50 {lo_hi[1][0]:.3f}-{lo_hi[1][1]:.3f}, ratio streams/s {lo_hi[2][0]:.3f}-{lo_hi[2][1]:.3f}, "
                  f"proxy CPU {lo_hi[3][0]:.2f}-{lo_hi[3][1]:.2f} ms")
            continue
        ranges = []
        for i, fmt in ((0, "{:+.2f}"), (1, "{:+.2f}"), (2, "{:.3f}"), (3, "{:+.2f}"), (4, "{:.2f}")):
            got = [v[i] for v in values if v[i] is not None]
            ranges.append(f"{fmt.format(min(got))}..{fmt.format(max(got))}" if got else "-")
        print(f"  {title} {kind} {name}: " + ", ".join(ranges))


# ---------------------------------------------------------------- where the time goes (py-spy)

def profile(way: Way, kind: str, seconds: float, driver_name: str) -> None:
    """Requests of one kind, one after another, to the pass-through proxy under
    `py-spy record --gil` (samples only while a thread holds the GIL: the proxy's Python and uvloop, not its
    waits); prints the milliseconds per request each step holds the GIL, and the process's CPU per request."""
    import shutil

    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        raise SystemExit("py-spy is not installed: pip install py-spy")
    driver = (SdkDriver if driver_name == "sdk" else RawDriver)([way])
    out = Path(tempfile.mkdtemp()) / "profile.txt"
    try:
        for _ in range(20):
            driver.send(way, kind)
        recorder = subprocess.Popen([spy, "record", "-p", str(way.pid), "--gil", "-r", "1000", "-f", "raw",
                                     "-o", str(out), "-d", str(int(seconds)), "--nonblocking"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # py-spy attached
        done, cpu, start = 0, cpu_seconds(way.pid), time.monotonic()
        while time.monotonic() < start + seconds - 2 and done < 50000:
            driver.send(way, kind)
            done += 1
        cpu = cpu_seconds(way.pid) - cpu
        recorder.wait(seconds + 30)
    finally:
        driver.close()
    steps = where_time_goes(out, done)
    held = sum(ms for _, ms, _ in steps)
    print(f"\n{kind} ({driver_name} driver): {done} requests one after another; proxy CPU {cpu / done * 1000:.2f} ms per "
          f"request, of which a thread held the GIL {held:.2f} ms (py-spy, 1 kHz):")
    for step, ms, share in steps:
        print(f"  {ms:6.3f} ms  {share:5.1%}  {step}")
    shutil.rmtree(out.parent)


def start(argv: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3, help="how many times every phase runs")
    parser.add_argument("--rounds", type=int, default=300, help="rounds of whole requests per phase (streams: a third)")
    parser.add_argument("--seconds", type=float, default=40.0, help="bound on each sequential phase")
    parser.add_argument("--concurrent-seconds", type=float, default=4.0, help="each concurrent phase (0: none)")
    parser.add_argument("--driver", choices=("sdk", "raw"), default="sdk")
    parser.add_argument("--burst", action="store_true", help="the fakes write each stream at once")
    parser.add_argument("--only", choices=("passthrough", "routing"), help="one of the sequential phases")
    parser.add_argument("--profile", choices=KINDS, help="instead: py-spy on the pass-through proxy under this load")
    parser.add_argument("--profile-seconds", type=float, default=12.0)
    args = parser.parse_args()
    os.sched_setaffinity(0, {1})
    burst = ["--burst"] if args.burst else []
    fakes = [subprocess.Popen([sys.executable, str(HERE / name), *burst], stdout=subprocess.PIPE, text=True)
             for name in ("fake_anthropic.py", "fake_openai.py")]
    proxies: dict[str, subprocess.Popen] = {}
    try:
        ant, oai = (f"http://127.0.0.1:{fake.stdout.readline().strip()}" for fake in fakes)
        with tempfile.TemporaryDirectory() as home:
            Path(home, "profiles.toml").write_text(PROFILES.format(ant=ant, oai=oai))
            env = {**os.environ, "CCS_HOME": home, "CCS_CONFIG": f"{home}/profiles.toml", "BENCH_ANT_KEY": KEY}
            endpoints = {}
            # a process per way in each phase: one that served the request before is faster (warm caches)
            for name, kind in (("pass-through", "pass-through"), ("translated", "translated"), ("router", "router"),
                               ("router2", "router")):
                proxies[name] = start(["taskset", "-c", "0", sys.executable, __file__, "--serve", kind], env)
            for kind, process in proxies.items():
                endpoints[kind] = json.loads(process.stdout.readline())
            url = {k: v["base_url"] for k, v in endpoints.items()}
            token = {k: v["token"] for k, v in endpoints.items()}
            pid = {k: p.pid for k, p in proxies.items()}
            import ccswitch
            print(f"ccswitch from {Path(ccswitch.__file__).parent}; driver: {args.driver}; fakes: 200-chunk streams, "
                  f"{'one write each' if args.burst else 'each SSE event its own write'}; "
                  f"request {len(json.dumps(anthropic_request(False)))} bytes; load average {os.getloadavg()[0]:.1f}")
            passthrough = [Way("direct (SDK -> fake)", ant, KEY, "claude-sonnet-4-5"),
                           Way("pass-through proxy", url["pass-through"], token["pass-through"], "claude-sonnet-4-5",
                               pid["pass-through"]),
                           Way("router -> ant,claude-bench", url["router"], token["router"], "ant,claude-bench",
                               pid["router"])]
            routing = [Way("single (translated)", url["translated"], token["translated"], "claude-sonnet-4-5",
                           pid["translated"]),
                       Way("router, gpt,gpt-5", url["router"], token["router"], "gpt,gpt-5", pid["router"]),
                       Way("router, claude-sonnet-4-5", url["router2"], token["router2"], "claude-sonnet-4-5",
                           pid["router2"])]
            if args.profile:
                return profile(passthrough[1], args.profile, args.profile_seconds, args.driver)
            figures: dict = {}
            driver_class = SdkDriver if args.driver == "sdk" else RawDriver
            phases = [("pass-through", passthrough), ("routing", routing)]
            if args.only:
                phases = [phases[0 if args.only == "passthrough" else 1]]
            for repetition in range(1, args.repeat + 1):
                print(f"\n=== repetition {repetition} of {args.repeat}")
                for title, ways in phases:
                    for way in ways:
                        way.reset()
                    driver = driver_class(ways)
                    try:
                        sequential(driver, ways, "whole", args.rounds, args.seconds)
                        table(title, ways, "whole", figures)
                        sequential(driver, ways, "stream", max(args.rounds // 3, 10), args.seconds)
                        table(title, ways, "stream", figures)
                        if title == "pass-through":
                            sequential(driver, ways, "paced", max(args.rounds // 10, 10), args.seconds)
                            table(title, ways, "paced", figures)
                    finally:
                        driver.close()
                if args.concurrent_seconds > 0 and args.only != "routing":
                    concurrency(passthrough[0], passthrough[1], args.concurrent_seconds, figures)
            summary(figures)
            print(f"load average now {os.getloadavg()[0]:.1f} (2 cores)")
    finally:
        for process in proxies.values():
            process.stdin.close()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        for fake in fakes:
            fake.kill()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(sys.argv[2])
    else:
        main()
