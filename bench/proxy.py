"""The proxy's figures, each path against its direct baseline measured in the same run: relay (pass-through),
Chat (translated), Responses (translated).

    python bench/proxy.py [--reps R] [--rounds N] [--slices K] [--slice-seconds S] [--burst]
    python bench/proxy.py --profile chat|responses|relay --kind whole|stream [--clients C] [--seconds S]

Run it with a regular (non-editable) install of ccswitch (`pip install .`), with that venv's python: the
proxies are that venv's `ccs proxy`. Defaults: 3 repetitions, about 4 minutes.

Three fake providers, each a process of its own (`fake_anthropic.py`, `fake_openai.py`, `fake_responses.py`:
each SSE event its own write, the event loop free between events, 200 text events a stream; `--burst`: a
whole stream in one write) and three `ccs proxy` processes started fresh in each repetition, one per path:

| path | `ccs proxy` of a profile | its direct baseline: the driver straight to |
| --- | --- | --- |
| relay | api "anthropic" (relayed) | the Anthropic fake, with the body the relay sends it |
| chat | api "openai" (Chat Completions, translated) | the Chat fake, with the body the proxy translates to |
| responses | api "openai-responses" (translated) | the Responses fake, with the body the proxy translates to |

Placement ("one core"): this process sets its own affinity to core 1 (`os.sched_setaffinity`) before it
starts the fakes, which inherit it, so the load driver and the fakes share core 1; each proxy is started as
`taskset -c 0 ccs proxy ...`, alone on core 0. The direct baseline runs the same way: driver and fake on
core 1 (the direct harness), nothing on core 0. So direct traffic stays on one core and proxied traffic
crosses cores; that topology costs a few tens of microseconds a round trip (see --floor).

The driver is a minimal keep-alive HTTP/1.1 client on raw asyncio streams (so its own cost stays small),
the request the ~21 KB Claude-Code-shaped one below. In each repetition:

1. one client, whole answers, then 200-event streams: every round sends one request to each of the six
   targets (three direct, three proxied), the order rotating, each target on its own keep-alive connection;
   time from sending to the last byte; p50 per target. "added" = proxy p50 - its direct p50; the figure is
   added / direct p50. The proxy's CPU (all its threads, from /proc/PID/task/*/schedstat, in ns) over the
   phase, per request; per stream chunk = (CPU per stream - CPU per whole request) / 200.
2. 64 clients, streams, then whole answers: 64 keep-alive connections per target, all busy at once; each
   target gets K slices of S seconds, the slices of all six targets interleaved in rotating order so that
   noise hits them alike; the rate counts the answers completed in a slice after its first RAMP seconds
   (steady state), over that time. The figure is the proxy's rate / its direct baseline's rate. Also
   printed: core 0's busy share and the proxy's own share of it (a proxy that got less than its core was
   crowded out by other tenants: its rate is then too low), and "at CPU bound": the rate one whole core
   would allow at the CPU the proxy spent per answer (1 / CPU per answer), over the direct rate; an upper
   bound, the figure to read when the proxy's share is well under 100%.

At the end, the median [min-max] over the repetitions of every figure, beside the issue's goals.
`--proxy-core 1` puts the proxies on the driver's and the fakes' core instead (no core crossed: one-client
latency without the topology; the 64-client figures then mean nothing). `--floor` adds a fourth path: a raw-asyncio byte relay (no HTTP parsing) on core 0 in front of the Anthropic
fake, what crossing cores costs by itself.

`--profile PATH --kind KIND`: one proxy under that load alone (`--clients` at once) with py-spy recording
(`py-spy record --gil`: samples only while a thread holds the GIL); prints where its time goes by step.

Every loop is bounded in count and time; all traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
CHUNKS = 200  # text events in each fake's stream
ROUNDS = {"whole": 400, "stream": 150}  # rounds at one client (one request to every target each)
SLICE_MAX = 60000  # answers in one slice at most
RAMP = 0.25  # seconds at the start of a slice not counted (all clients start at once)
CLIENTS = 64
TICKS = os.sysconf("SC_CLK_TCK")
# The goals: (figure, path kind, bound, "max" or "min")
GOALS = {
    ("whole added / direct p50", "translated"): (5.0, "max"),
    ("whole added / direct p50", "relay"): (4.0, "max"),
    ("stream added / direct", "translated"): (2.0, "max"),
    ("stream added / direct", "relay"): (1.0, "max"),
    ("streams/s 64 clients / direct", "translated"): (0.4, "min"),
    ("streams/s 64 clients / direct", "relay"): (0.7, "min"),
    ("whole/s 64 clients / direct", "translated"): (0.2, "min"),
}
PROFILES = """version = 1
[profiles.bench-relay]
api = "anthropic"
auth = "none"
base_url = "{relay}"
model = "claude-bench"

[profiles.bench-chat]
api = "openai"
auth = "none"
base_url = "{chat}/v1"
model = "gpt-bench"

[profiles.bench-responses]
api = "openai-responses"
auth = "none"
base_url = "{responses}/v1"
model = "gpt-bench"
"""


# ---------------------------------------------------------------- the requests


def anthropic_request(stream: bool) -> dict:
    """About 21 KB, shaped like Claude Code's: 3 system blocks, 15 tools, a tool round trip."""
    tools = [{"name": f"Tool{i}", "description": "Does a thing with files. " * 12,
              "input_schema": {"type": "object", "$schema": "http://json-schema.org/draft-07/schema#",
                               "properties": {f"arg{j}": {"type": "string", "description": "An argument. " * 3}
                                              for j in range(5)}, "required": ["arg0"]}} for i in range(15)]
    return {"model": "claude-sonnet-4-5", "max_tokens": 32000, "stream": stream,
            "system": [{"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.329"},
                       {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
                       {"type": "text", "text": "Follow the instructions carefully. " * 200,
                        "cache_control": {"type": "ephemeral"}}],
            "tools": tools, "thinking": {"type": "adaptive"}, "output_config": {"effort": "medium"},
            "messages": [{"role": "user", "content": "List the files and summarise them."},
                         {"role": "assistant", "content": [
                             {"type": "text", "text": "Listing."},
                             {"type": "tool_use", "id": "toolu_1", "name": "Tool1", "input": {"arg0": "ls -la"}}]},
                         {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                                       "content": "file.txt\n" * 100}]}]}


def relayed_request(stream: bool) -> dict:
    """What the relay sends the provider for `anthropic_request`: the direct baseline sends the same."""
    return {**anthropic_request(stream), "model": "claude-bench"}


def openai_request(stream: bool) -> dict:
    """What the proxy sends a Chat Completions provider for `anthropic_request`."""
    from ccswitch.proxy.to_openai import translate_request
    from ccswitch.proxy.upstream import Upstream

    upstream = Upstream(api="openai", name="b", base_url="http://x/v1", model="gpt-bench")
    return translate_request(anthropic_request(stream), upstream.options(upstream.model))[0]


def responses_request(stream: bool) -> dict:
    """What the proxy sends a Responses provider for `anthropic_request`."""
    from ccswitch.proxy.to_responses import translate_request
    from ccswitch.proxy.upstream import Upstream

    upstream = Upstream(api="openai-responses", name="b", base_url="http://x/v1", model="gpt-bench")
    return translate_request(anthropic_request(stream), upstream.options(upstream.model))[0]


@dataclass
class Target:
    """Where requests go, and each request's exact bytes."""

    url: str
    requests: dict[str, bytes]  # by kind: "whole", "stream"
    name: str = ""
    pid: int | None = None  # the proxy's process (None: direct)

    @classmethod
    def make(cls, url: str, path: str, auth: str, body_of, name: str = "", pid: int | None = None) -> Target:
        host = urlsplit(url).netloc
        requests = {}
        for kind in ("whole", "stream"):
            body = json.dumps(body_of(kind == "stream"), separators=(",", ":")).encode()
            requests[kind] = (f"POST {urlsplit(url).path.rstrip('/')}{path} HTTP/1.1\r\nhost: {host}\r\n{auth}\r\n"
                              f"anthropic-version: 2023-06-01\r\ncontent-type: application/json\r\n"
                              f"content-length: {len(body)}\r\n\r\n").encode() + body
        return cls(url, requests, name, pid)


# ---------------------------------------------------------------- the driver


class Connection:
    """One keep-alive HTTP/1.1 connection: send a request, read its whole response (length or chunked)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self.buffer = bytearray()

    @classmethod
    async def open(cls, url: str) -> Connection:
        parts = urlsplit(url)
        return cls(*await asyncio.open_connection(parts.hostname, parts.port))

    async def exchange(self, request: bytes) -> tuple[int, float]:
        """Status, and seconds to the end of the response."""
        start = time.perf_counter()
        self.writer.write(request)
        end = await self._find(b"\r\n\r\n", 0)
        head = bytes(self.buffer[:end]).lower()
        del self.buffer[:end + 4]
        if b"transfer-encoding: chunked" in head:
            await self._chunked()
        else:
            length = int(head.split(b"content-length:")[1].split(b"\r\n")[0])
            await self._need(length)
            del self.buffer[:length]
        return int(head[9:12]), time.perf_counter() - start

    async def _chunked(self) -> None:
        while True:
            end = await self._find(b"\r\n", 0)
            size = int(bytes(self.buffer[:end]).split(b";")[0], 16)
            await self._need(end + 2 + size + 2)
            del self.buffer[:end + 2 + size + 2]
            if size == 0:
                return

    async def _find(self, what: bytes, start: int) -> int:
        while (at := self.buffer.find(what, start)) < 0:
            await self._fill()
        return at

    async def _need(self, size: int) -> None:
        while len(self.buffer) < size:
            await self._fill()

    async def _fill(self) -> None:
        data = await self.reader.read(262144)
        if not data:
            raise ConnectionError("the server closed the connection")
        self.buffer += data

    def close(self) -> None:
        self.writer.close()


def answer_one(url: str, request: bytes) -> None:
    """One request on a new connection, its answer read whole."""
    async def once() -> None:
        connection = await Connection.open(url)
        status, _ = await connection.exchange(request)
        assert status == 200, status
        connection.close()

    asyncio.run(once())


# ---------------------------------------------------------------- /proc


def cpu_seconds(pid: int) -> float:
    """CPU time of a process, all its live threads, in ns resolution (schedstat); clock ticks if unavailable."""
    try:
        return sum(int(Path(f"/proc/{pid}/task/{task}/schedstat").read_text().split()[0])
                   for task in os.listdir(f"/proc/{pid}/task")) / 1e9
    except (OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def memory_mb(pid: int) -> tuple[float, float]:
    """RSS now and its peak, of a process."""
    status = {line.split(":")[0]: line.split()[1] for line in Path(f"/proc/{pid}/status").read_text().splitlines()
              if line.startswith(("VmRSS", "VmHWM"))}
    return int(status["VmRSS"]) / 1024, int(status["VmHWM"]) / 1024


def core_busy(core: int) -> tuple[float, float]:
    """(busy, total) seconds of one core since boot, from /proc/stat."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{core} "):
            values = [int(v) for v in line.split()[1:]]
            idle = values[3] + values[4]
            return (sum(values) - idle) / TICKS, sum(values) / TICKS
    return 0.0, 0.0


# ---------------------------------------------------------------- phases


@dataclass
class Samples:
    """What one target got in a phase."""

    latencies: list[float] = field(default_factory=list)
    counted: int = 0  # answers inside the counted part of slices
    answered: int = 0  # all answers of the slices (the CPU is over all of them)
    seconds: float = 0.0  # counted time
    cpu: float = 0.0  # the proxy's CPU seconds
    core0: float = 0.0  # core 0's busy seconds over the slices
    wall: float = 0.0  # the slices' whole length

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies) * 1000

    @property
    def rate(self) -> float:
        return self.counted / self.seconds if self.seconds else 0.0


async def one_client(targets: list[Target], kind: str, rounds: int, seconds: float) -> dict[str, Samples]:
    """Every target once a round, the order rotating; bounded by `rounds` and `seconds`."""
    connections = {t.name: await Connection.open(t.url) for t in targets}
    samples = {t.name: Samples() for t in targets}
    for t in targets:  # warm: connections (client -> proxy -> provider), caches
        for _ in range(5):
            await connections[t.name].exchange(t.requests[kind])
    cpu = {t.name: cpu_seconds(t.pid) for t in targets if t.pid}
    start = time.monotonic()
    for number in range(rounds):
        if time.monotonic() > start + seconds:
            break
        shift = number % len(targets)
        for t in targets[shift:] + targets[:shift]:
            status, total = await connections[t.name].exchange(t.requests[kind])
            assert status == 200, (t.name, status)
            samples[t.name].latencies.append(total)
    for t in targets:
        if t.pid:
            samples[t.name].cpu = cpu_seconds(t.pid) - cpu[t.name]
        connections[t.name].close()
    return samples


async def many_clients(targets: list[Target], kind: str, slices: int, slice_seconds: float,
                       clients: int = CLIENTS) -> dict[str, Samples]:
    """`clients` connections per target, all busy; `slices` slices of `slice_seconds` per target, interleaved
    across targets in rotating order."""
    connections = {t.name: [await Connection.open(t.url) for _ in range(clients)] for t in targets}
    samples = {t.name: Samples() for t in targets}
    for t in targets:  # warm: every connection, and the proxy's own to the provider
        await asyncio.gather(*(c.exchange(t.requests[kind]) for c in connections[t.name]))
    for number in range(slices):
        shift = number % len(targets)
        for t in targets[shift:] + targets[:shift]:
            await _slice(t, kind, connections[t.name], slice_seconds, samples[t.name])
    for t in targets:
        for c in connections[t.name]:
            c.close()
    return samples


async def _slice(target: Target, kind: str, connections: list[Connection], seconds: float, into: Samples) -> None:
    request = target.requests[kind]
    start = time.monotonic()
    counted_from, deadline = start + RAMP, start + seconds
    done = 0
    cpu = cpu_seconds(target.pid) if target.pid else 0.0
    busy = core_busy(0)[0]

    async def worker(connection: Connection) -> None:
        nonlocal done
        while (now := time.monotonic()) < deadline and done < SLICE_MAX:
            status, total = await connection.exchange(request)
            assert status == 200, (target.name, status)
            into.answered += 1
            ended = now + total
            if counted_from <= ended <= deadline:
                done += 1
                into.latencies.append(total)

    await asyncio.gather(*(worker(c) for c in connections))
    into.counted += done
    into.seconds += deadline - counted_from
    into.wall += time.monotonic() - start
    into.core0 += core_busy(0)[0] - busy
    if target.pid:
        into.cpu += cpu_seconds(target.pid) - cpu


# ---------------------------------------------------------------- the processes


def ccs_command() -> list[str]:
    """The installed package's `ccs`, started as users start it (from the source tree, Python would recompile
    it at every start where PYTHONDONTWRITEBYTECODE is set)."""
    found = shutil.which("ccs", path=str(Path(sys.executable).parent))
    if found is None:
        raise SystemExit(f"no `ccs` beside {sys.executable}: run this with the python of a venv where "
                         "ccswitch is installed (pip install .)")
    return [found]


def isolated_ccs(ccs: str, home: str, profiles: str, keyed: str) -> tuple[dict[str, str], Path]:
    """(the environment, the profiles file) of a `ccs` whose files all live under `home` (never the user's),
    with `profiles` as its profiles file and a key stored for profile `keyed`."""
    env = {k: v for k, v in os.environ.items() if k not in ("CCS_CONFIG", "CCS_HOME")}
    env.update(XDG_CONFIG_HOME=f"{home}/config", XDG_STATE_HOME=f"{home}/state", XDG_DATA_HOME=f"{home}/data",
               PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    config = Path(home, "config", "ccswitch", "profiles.toml")
    config.parent.mkdir(parents=True)
    config.write_text(profiles)
    subprocess.run([ccs, "key", "set", keyed, "--stdin"], input=b"sk-bench-key", env=env, check=True,
                   stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    return env, config


def start_fake(script: str, burst: bool) -> tuple[subprocess.Popen, str]:
    fake = subprocess.Popen([sys.executable, str(HERE / script), *(["--burst"] if burst else [])],
                            stdout=subprocess.PIPE, text=True)
    return fake, f"http://127.0.0.1:{fake.stdout.readline().strip()}"


PROXY_CORE = [0]  # where the proxies (and the floor) run: --proxy-core


def start_proxy(profile: str, env: dict, home: str) -> tuple[subprocess.Popen, dict]:
    proxy = subprocess.Popen(["taskset", "-c", str(PROXY_CORE[0]), *ccs_command(), "proxy", profile, "--json"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=home)
    line = proxy.stdout.readline()
    if not line:
        raise SystemExit(f"`ccs proxy {profile}` did not start (exit {proxy.wait(10)})")
    return proxy, json.loads(line)


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


class Floor:
    """A raw-asyncio byte relay on core 0 (no HTTP parsing: each client connection gets its own upstream
    connection, bytes copied both ways as they come): what crossing to another core costs by itself."""

    @staticmethod
    def main(upstream: str) -> None:
        parts = urlsplit(upstream)

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while data := await reader.read(262144):
                    writer.write(data)
                    await writer.drain()
            except ConnectionError:
                pass
            finally:
                writer.close()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            up_reader, up_writer = await asyncio.open_connection(parts.hostname, parts.port)
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

        async def serve() -> None:
            server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=512)
            print(json.dumps({"base_url": f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"}), flush=True)
            async with server:
                await server.serve_forever()

        try:
            import uvloop

            uvloop.run(serve())
        except ImportError:
            asyncio.run(serve())

    @staticmethod
    def start(upstream: str) -> tuple[subprocess.Popen, dict]:
        process = subprocess.Popen(["taskset", "-c", str(PROXY_CORE[0]), sys.executable, __file__, "--floor-serve",
                                    upstream],
                                   stdout=subprocess.PIPE, text=True)
        return process, json.loads(process.stdout.readline())


# ---------------------------------------------------------------- one repetition


PATHS = {  # path: (profile, fake script, the direct request's path and body)
    "relay": ("bench-relay", "fake_anthropic.py", "/v1/messages", relayed_request),
    "chat": ("bench-chat", "fake_openai.py", "/chat/completions", openai_request),
    "responses": ("bench-responses", "fake_responses.py", "/responses", responses_request),
}
KIND_OF = {"relay": "relay", "floor": "relay", "chat": "translated", "responses": "translated"}


def start_targets(fakes: dict[str, str], env: dict, home: str, floor: bool) -> tuple[list[Target], list]:
    """Direct and proxied targets for every path (fresh proxies), in the order direct, proxy per path."""
    targets, processes = [], []
    for path, (profile, _, direct_path, body) in PATHS.items():
        proxy, endpoint = start_proxy(profile, env, home)
        processes.append(proxy)
        base = fakes[path] + ("/v1" if path != "relay" else "")
        targets.append(Target.make(base, direct_path, "authorization: Bearer sk-direct", body, f"{path} direct"))
        targets.append(Target.make(endpoint["base_url"], "/v1/messages", f"x-api-key: {endpoint['token']}",
                                   anthropic_request, path, proxy.pid))
    if floor:
        process, endpoint = Floor.start(fakes["relay"])
        processes.append(process)
        targets.append(Target.make(endpoint["base_url"], "/v1/messages", "x-api-key: sk-direct", relayed_request,
                                   "floor", process.pid))
    asyncio.run(first_requests(targets))
    settle([t.pid for t in targets if t.pid])
    return targets, processes


async def first_requests(targets: list[Target]) -> None:
    """A whole answer and a stream from every target: what a proxy does once (its price lookup) is done."""
    for target in targets:
        connection = await Connection.open(target.url)
        for kind in ("whole", "stream"):
            status, _ = await connection.exchange(target.requests[kind])
            assert status == 200, (target.name, kind, status)
        connection.close()


def direct_of(name: str) -> str:
    return f"{'relay' if name == 'floor' else name} direct"


def repetition(fakes: dict[str, str], env: dict, home: str, args) -> dict[tuple[str, str], float]:
    """One repetition: fresh proxies, the phases; prints its tables, returns its figures by (figure, path)."""
    targets, processes = start_targets(fakes, env, home, args.floor)
    figures: dict[tuple[str, str], float] = {}
    try:
        proxied = [t for t in targets if t.pid]
        for kind in ("whole", "stream"):
            got = asyncio.run(one_client(targets, kind, args.rounds if kind == "whole" else args.rounds * 3 // 8,
                                         args.seconds))
            print(f"\none client, {'whole answers' if kind == 'whole' else f'{CHUNKS}-event streams'} "
                  f"({len(got[targets[0].name].latencies)} rounds), time to the last byte")
            print(f"  {'':18s}{'p50 ms':>8s} {'added ms':>9s} {'added/direct':>13s} {'paired ms':>10s} "
                  f"{'proxy CPU ms/req':>17s}")
            for t in targets:
                s = got[t.name]
                if t.pid is None:
                    print(f"  {t.name:18s}{s.p50_ms:8.3f}")
                    continue
                base = got[direct_of(t.name)]
                added = s.p50_ms - base.p50_ms
                paired = statistics.median(a - b for a, b in zip(s.latencies, base.latencies)) * 1000
                cpu = s.cpu / len(s.latencies) * 1000
                print(f"  {t.name:18s}{s.p50_ms:8.3f} {added:9.3f} {added / base.p50_ms:13.2f} {paired:10.3f} "
                      f"{cpu:17.3f}")
                figures[(f"{kind} added / direct" + (" p50" if kind == "whole" else ""), t.name)] = added / base.p50_ms
                figures[(f"{kind} added ms", t.name)] = added
                figures[(f"{kind} direct p50 ms", t.name)] = base.p50_ms
                figures[(f"CPU ms per {kind}", t.name)] = cpu
        for t in proxied:
            whole, stream = figures[("CPU ms per whole", t.name)], figures[("CPU ms per stream", t.name)]
            figures[("CPU us per stream chunk", t.name)] = (stream - whole) / CHUNKS * 1000
        for t in proxied:
            figures[("RSS MB after 1-client phases", t.name)] = memory_mb(t.pid)[0]
        for kind in ("stream", "whole"):
            got = asyncio.run(many_clients(targets, kind, args.slices, args.slice_seconds))
            label = "streams/s" if kind == "stream" else "whole/s"
            print(f"\n{CLIENTS} clients, {'streams' if kind == 'stream' else 'whole answers'}: {args.slices} slices of "
                  f"{args.slice_seconds} s per target, interleaved (first {RAMP} s of each not counted)")
            print(f"  {'':18s}{'per s':>9s} {'/direct':>8s} {'p50 ms':>8s} {'CPU ms/req':>11s} {'core0 busy':>11s} "
                  f"{'proxy share':>12s}")
            for t in targets:
                s = got[t.name]
                line = f"  {t.name:18s}{s.rate:9.1f} "
                if t.pid is None:
                    print(line + f"{'':8s} {s.p50_ms:8.2f} {'':11s} {s.core0 / s.wall:10.0%}")
                    continue
                ratio = s.rate / got[direct_of(t.name)].rate
                cpu = s.cpu / max(s.answered, 1) * 1000
                print(line + f"{ratio:8.3f} {s.p50_ms:8.2f} {cpu:11.3f} {s.core0 / s.wall:10.0%} "
                      f"{s.cpu / s.wall:11.0%}")
                figures[(f"{label} {CLIENTS} clients / direct", t.name)] = ratio
                figures[(f"{label} {CLIENTS} clients", t.name)] = s.rate
                figures[(f"{label} {CLIENTS} clients, direct", t.name)] = got[direct_of(t.name)].rate
                figures[(f"CPU ms per {kind}, {CLIENTS} clients", t.name)] = cpu
                # what one whole core would allow, for when other tenants crowd the proxy out of core 0
                figures[(f"{label} / direct at CPU bound", t.name)] = 1000 / cpu / got[direct_of(t.name)].rate
                figures[(f"proxy share of core 0, {kind}s", t.name)] = s.cpu / s.wall
        for t in proxied:
            rss, peak = memory_mb(t.pid)
            figures[("RSS MB after the load", t.name)] = rss
            figures[("peak RSS MB", t.name)] = peak
    finally:
        for process in processes:
            stop(process)
    return figures


def summary(runs: list[dict], paths: list[str]) -> None:
    print(f"\n=== summary over {len(runs)} repetitions: median [min-max]; goals from the issue")
    names = list(dict.fromkeys(name for run in runs for name, _ in run))
    print(f"  {'figure':34s}" + "".join(f"{p:>38s}" for p in paths))
    for name in names:
        cells = []
        for path in paths:
            values = [run[(name, path)] for run in runs if (name, path) in run]
            if not values:
                cells.append(f"{'-':>38s}")
                continue
            text = f"{number(statistics.median(values))} [{number(min(values))}-{number(max(values))}]"
            goal = GOALS.get((name, KIND_OF[path]))
            if goal is not None and path != "floor":
                bound, sense = goal
                met = statistics.median(values) <= bound if sense == "max" else statistics.median(values) >= bound
                text += f" {'<=' if sense == 'max' else '>='}{bound:g} {'ok' if met else 'MISSED'}"
            cells.append(f"{text:>38s}")
        print(f"  {name:34s}" + "".join(cells))


def number(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def settle(pids: list[int], seconds: float = 20.0) -> None:
    """Wait until none of `pids` has a child process: each proxy asks a child for its model's prices once, after
    its first request (a second of CPU on core 0 that would land in the first phase)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        children = []
        for pid in pids:
            for task in os.listdir(f"/proc/{pid}/task"):
                try:
                    children += Path(f"/proc/{pid}/task/{task}/children").read_text().split()
                except OSError:
                    pass
        if not children:
            return
        time.sleep(0.1)


# ---------------------------------------------------------------- where the time goes (py-spy)

# A sample goes to the innermost frame that is not SHARED code (JSON, aiohttp's stream reader and writer, asyncio:
# used by several steps, they belong to their caller): the first STEP it matches; a ccswitch frame that matches
# none is the proxy's own code; any other frame passes the sample on to its caller.
SHARED = r"jsonio\.py|http_writer\.py|/streams\.py|asyncio/|_weakrefset|payload\.py|aiohttp/helpers\.py|answer_shapes\.py"
STEPS = [
    ("the log line", r"logging/|StderrLog|Outcome\.__str__"),
    ("the usage log (record, its writer thread)", r"Recorder\.|Outcome\.request|ccswitch/usage\.py|ccswitch/prices\.py"),
    ("read_json (orjson, the request)", r"read_json"),
    ("translate the request", r"to_openai\.py|to_responses\.py|request_parts\.py|tool_ids\.py|check_request|"
                              r"estimate_tokens|Translated\.run|Chat\.translate |Responses\.translate "),
    ("translate the answer (events)", r"from_openai\.py|from_responses\.py|EventWriter|message_as_events"),
    ("SSE parse", r"SSEParser"),
    ("relay: request_body, headers", r"request_body|_without_foreign|forwarded_headers|relayed_headers|"
                                     r"Upstream\.headers|with_extra_body"),
    ("relay: StreamScan (usage, signatures)", r"StreamScan"),
    ("dumps (the upstream body)", r"Exchange\.content"),
    ("aiohttp client: send, response head", r"aiohttp/client\.py|connector\.py|ClientRequest|ClientResponse\.start|"
                                            r"client_reqrep\.py|Exchange\.send"),
    ("aiohttp client: reading the body", r"BodyReader\.|client_proto\.py|HttpResponseParser"),
    ("answering the client (StreamResponse)", r"web_response\.py|Reply\.|StreamClock\.write|json_response"),
    ("aiohttp server: parse, handler task", r"web_protocol\.py|web_server\.py|web_request\.py|HttpRequestParser|"
                                            r"front\.py"),
    ("event loop (uvloop callbacks)", r"Serving\._run|run_until_complete"),
]


def step_of(frames: list[str]) -> str:
    for frame in reversed(frames):
        if re.search(SHARED, frame):
            continue
        for name, pattern in STEPS:
            if re.search(pattern, frame):
                return name
        if "ccswitch/" in frame:
            return "ccswitch: auth, routing, the exchange's own code"
    return "other (asyncio, shared code with no caller in the sample)"


def where_time_goes(raw: Path, done: int) -> list[tuple[str, float, float]]:
    """py-spy's raw output as (step, ms per request, share), largest first."""
    steps: Counter = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        steps[step_of(stack.split(";"))] += int(count)
    total = sum(steps.values()) or 1
    return [(step, count / done, count / total) for step, count in steps.most_common()]


def profile(fakes: dict[str, str], env: dict, home: str, path: str, kind: str, clients: int, seconds: float) -> None:
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        raise SystemExit("py-spy is not installed: pip install py-spy")
    targets, processes = start_targets(fakes, env, home, False)
    target = next(t for t in targets if t.name == path)
    out = Path(tempfile.mkdtemp()) / "profile.txt"
    try:
        asyncio.run(many_clients([target], kind, 1, 1.0, clients))  # warm
        recorder = subprocess.Popen([spy, "record", "-p", str(target.pid), "--gil", "-r", "1000", "-f", "raw",
                                     "-o", str(out), "-d", str(int(seconds) + 2), "--nonblocking"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # py-spy attached
        cpu = cpu_seconds(target.pid)
        got = asyncio.run(many_clients([target], kind, 1, seconds, clients))[target.name]
        cpu = cpu_seconds(target.pid) - cpu
        recorder.wait(seconds + 30)
    finally:
        for process in processes:
            stop(process)
    done = len(got.latencies)
    print(f"\n{path}, {kind}, {clients} client(s): {done} answers counted in {seconds:.0f} s; proxy CPU "
          f"{cpu / done * 1000:.3f} ms per answer (ramp included: a little high); GIL held, by step (py-spy, 1 kHz):")
    for step, ms, share in where_time_goes(out, done):
        print(f"  {ms:7.3f} ms  {share:6.1%}  {step}")
    print(f"raw profile: {out}")


# ---------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3, help="repetitions (fresh proxies each)")
    parser.add_argument("--rounds", type=int, default=ROUNDS["whole"], help="one-client rounds of whole answers "
                                                                            "(streams: 3/8 of it)")
    parser.add_argument("--seconds", type=float, default=60.0, help="bound on each one-client phase")
    parser.add_argument("--slices", type=int, default=3, help="64-client slices per target and kind")
    parser.add_argument("--slice-seconds", type=float, default=1.5)
    parser.add_argument("--burst", action="store_true", help="the fakes write each stream at once")
    parser.add_argument("--floor", action="store_true", help="also a raw byte relay on core 0 (topology alone)")
    parser.add_argument("--proxy-core", type=int, default=0, help="the proxies' core (1: the driver's and the "
                                                                      "fakes' own, for one-client latency alone)")
    parser.add_argument("--profile", choices=list(PATHS), help="instead: py-spy on this path's proxy")
    parser.add_argument("--kind", choices=("whole", "stream"), default="stream")
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--profile-seconds", type=float, default=10.0)
    args = parser.parse_args()
    os.sched_setaffinity(0, {1})
    PROXY_CORE[0] = args.proxy_core
    ccs_command()
    fakes, processes = {}, []
    try:
        for path, (_, script, _, _) in PATHS.items():
            process, fakes[path] = start_fake(script, args.burst)
            processes.append(process)
        with tempfile.TemporaryDirectory() as home:
            env = {**os.environ, "CCS_HOME": home, "CCS_CONFIG": f"{home}/profiles.toml"}
            Path(home, "profiles.toml").write_text(PROFILES.format(**fakes))
            if args.profile:
                return profile(fakes, env, home, args.profile, args.kind, args.clients, args.profile_seconds)
            import ccswitch

            print(f"ccswitch {Path(ccswitch.__file__).parent}; python {sys.version.split()[0]}; "
                  f"fakes: {CHUNKS}-event streams, {'one write each' if args.burst else 'each SSE event its own write'}; "
                  f"request {len(json.dumps(anthropic_request(False)))} bytes (Chat upstream "
                  f"{len(json.dumps(openai_request(False)))}, Responses {len(json.dumps(responses_request(False)))}); "
                  f"load average {os.getloadavg()[0]:.1f}", flush=True)
            runs = []
            for number in range(1, args.reps + 1):
                print(f"\n=== repetition {number} of {args.reps} (load average {os.getloadavg()[0]:.1f})", flush=True)
                runs.append(repetition(fakes, env, home, args))
            summary(runs, [*PATHS, *(["floor"] if args.floor else [])])
            print(f"load average now {os.getloadavg()[0]:.1f} (2 cores)")
    finally:
        for process in processes:
            process.kill()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--floor-serve"]:
        Floor.main(sys.argv[2])
    else:
        main()
