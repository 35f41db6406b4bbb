"""The proxy against a direct baseline, measured in the same run, the way providers stream.

    python bench/proxy.py [--burst] [--run] [--apis] [--seconds S]

A fake provider (`fake_openai.py`) sends each SSE event as its own write (`--burst`: a whole stream
in one write, for comparison). `ccs proxy` runs as its own process pinned to core 0; the load
driver and the fake share core 1. With `--run` the proxy is the one inside `ccs run` instead, the
driver being the child that `ccs run` starts, as claude would be.

For whole and streamed requests at 1, 8 and 64 concurrent clients it prints requests per second
direct and through the proxy, p50 latency and what the proxy adds to it, and the proxy process's
CPU seconds per 1,000 requests; then its RSS. Before that: how long `ccs proxy` takes from start
to its first answered request, and its idle RSS. Last (`--apis`: only this), the two OpenAI APIs side by
side: a `ccs proxy` translating Chat Completions and one translating the Responses API, each in front of its
own fake (`fake_openai.py`, `fake_responses.py`: the same 200-chunk stream in each API's events), and the
proxy's CPU per streamed chunk for each, Chat's the baseline. The driver is a minimal keep-alive HTTP/1.1
client on raw asyncio streams, so that its own cost stays small beside the proxy's. Every loop is
bounded in count and time; all traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
CLIENTS = (1, 8, 64)
SEQUENTIAL = {"whole": 300, "stream": 120}  # rounds (one direct, one proxied request each) at 1 client
PHASE_MAX = 5000  # requests in one timed phase at most
STARTS = 7  # cold starts of `ccs proxy` timed
TICKS = os.sysconf("SC_CLK_TCK")


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


def openai_request(stream: bool) -> dict:
    """What the proxy sends upstream for `anthropic_request`: the direct baseline sends the same."""
    from ccswitch.proxy.to_openai import translate_request
    from ccswitch.proxy.upstream import Upstream

    upstream = Upstream(api="openai", name="b", base_url="http://x/v1", model="gpt-bench")
    body, _ = translate_request(anthropic_request(stream), upstream.options(upstream.model))
    return body


@dataclass
class Target:
    """Where requests go, and each request's exact bytes."""

    url: str
    requests: dict[str, bytes]  # by kind: "whole", "stream"

    @classmethod
    def make(cls, url: str, path: str, auth: str, body_of) -> Target:
        host = urlsplit(url).netloc
        requests = {}
        for kind in ("whole", "stream"):
            body = json.dumps(body_of(kind == "stream"), separators=(",", ":")).encode()
            requests[kind] = (f"POST {urlsplit(url).path.rstrip('/')}{path} HTTP/1.1\r\nhost: {host}\r\n{auth}\r\n"
                              f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n").encode() + body
        return cls(url, requests)


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


@dataclass
class Phase:
    seconds: float
    latencies: list[float]
    cpu: float  # CPU seconds of the proxy process over the phase

    @property
    def done(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.done / self.seconds

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies) * 1000


async def timed_phase(target: Target, kind: str, clients: int, seconds: float, proxy_pid: int) -> Phase:
    connections = [await Connection.open(target.url) for _ in range(clients)]
    request = target.requests[kind]
    latencies: list[float] = []

    async def worker(connection: Connection) -> None:
        while time.monotonic() < deadline and len(latencies) < PHASE_MAX:
            status, total = await connection.exchange(request)
            assert status == 200, status
            latencies.append(total)

    for connection in connections:  # warm: connections to the provider, caches
        await connection.exchange(request)
    cpu = cpu_seconds(proxy_pid)
    start = time.monotonic()
    deadline = start + seconds
    await asyncio.gather(*(worker(c) for c in connections))
    elapsed = time.monotonic() - start
    for connection in connections:
        connection.close()
    return Phase(elapsed, latencies, cpu_seconds(proxy_pid) - cpu)


async def sequential(direct: Target, proxy: Target, kind: str, rounds: int, seconds: float,
                     proxy_pid: int) -> tuple[Phase, Phase]:
    """One client: a direct and a proxied request alternately, so noise hurts both alike."""
    pair = {"direct": await Connection.open(direct.url), "proxy": await Connection.open(proxy.url)}
    samples: dict[str, list[float]] = {"direct": [], "proxy": []}
    targets = {"direct": direct, "proxy": proxy}
    for name in pair:
        await pair[name].exchange(targets[name].requests[kind])
    cpu = 0.0
    start = time.monotonic()
    while len(samples["proxy"]) < rounds and time.monotonic() < start + seconds:
        for name, connection in pair.items():
            before = cpu_seconds(proxy_pid) if name == "proxy" else 0.0
            status, total = await connection.exchange(targets[name].requests[kind])
            assert status == 200, status
            samples[name].append(total)
            if name == "proxy":
                cpu += cpu_seconds(proxy_pid) - before
    for connection in pair.values():
        connection.close()
    return (Phase(sum(samples["direct"]), samples["direct"], 0.0),
            Phase(sum(samples["proxy"]), samples["proxy"], cpu))


def report(direct: Target, proxy: Target, proxy_pid: int, seconds: float) -> None:
    print(f"{'':7s}{'clients':>8s} {'direct/s':>9s} {'proxy/s':>9s} {'ratio':>6s} {'direct p50':>11s} "
          f"{'proxy p50':>10s} {'added p50':>10s} {'proxy CPU s/1k':>15s}")
    for clients in CLIENTS:
        for kind in ("whole", "stream"):
            if clients == 1:
                d, p = asyncio.run(sequential(direct, proxy, kind, SEQUENTIAL[kind], seconds * 3, proxy_pid))
            else:
                d = asyncio.run(timed_phase(direct, kind, clients, seconds, proxy_pid))
                p = asyncio.run(timed_phase(proxy, kind, clients, seconds, proxy_pid))
            print(f"{kind:7s}{clients:8d} {d.rate:9.1f} {p.rate:9.1f} {p.rate / d.rate:6.2f} {d.p50_ms:8.2f} ms "
                  f"{p.p50_ms:7.2f} ms {p.p50_ms - d.p50_ms:7.2f} ms {p.cpu / p.done * 1000:15.2f}", flush=True)
    rss, peak = memory_mb(proxy_pid)
    print(f"proxy RSS after the load: {rss:.1f} MB (peak {peak:.1f} MB)")


API_CHUNKS = 200  # text events in each fake's stream
APIS = {"chat": ("openai", "fake_openai.py"), "responses": ("openai-responses", "fake_responses.py")}


def compare_apis(env: dict, home: str, seconds: float, burst: bool) -> None:
    """Chat Completions and the Responses API through a `ccs proxy` each: the proxy's CPU per streamed chunk (a
    stream's CPU less a whole answer's, over its chunks), in alternating rounds so that noise hurts both alike."""
    fakes, proxies, targets_by_api = [], [], {}
    try:
        for name, (api, script) in APIS.items():
            fake = subprocess.Popen([sys.executable, str(HERE / script), *(["--burst"] if burst else [])],
                                    stdout=subprocess.PIPE, text=True)
            fakes.append(fake)
            port = fake.stdout.readline().strip()
            with open(Path(home, "profiles.toml"), "a") as config:
                config.write(f'[profiles.bench-{name}]\napi = "{api}"\nauth = "none"\n'
                             f'base_url = "http://127.0.0.1:{port}/v1"\nmodel = "gpt-bench"\n')
        for name in APIS:
            proxy = subprocess.Popen(["taskset", "-c", "0", *ccs_command(), "proxy", f"bench-{name}", "--json"],
                                     env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=home)
            proxies.append(proxy)
            endpoint = json.loads(proxy.stdout.readline())
            targets_by_api[name] = (Target.make(endpoint["base_url"], "/v1/messages", f"x-api-key: {endpoint['token']}",
                                                anthropic_request), proxy.pid)
        print(f"\nthe two OpenAI APIs, {API_CHUNKS}-chunk streams, proxy CPU per streamed chunk (best of 3 rounds):")
        print(f"{'clients':>8s} {'chat us/chunk':>14s} {'responses us/chunk':>19s} {'ratio':>6s} "
              f"{'chat ms/req':>12s} {'responses ms/req':>17s}")
        for clients in (1, 8):
            per_chunk: dict[str, list[float]] = {name: [] for name in APIS}
            per_request: dict[str, list[float]] = {name: [] for name in APIS}
            for _ in range(3):
                for name, (target, pid) in targets_by_api.items():
                    whole = asyncio.run(timed_phase(target, "whole", clients, seconds / 2, pid))
                    stream = asyncio.run(timed_phase(target, "stream", clients, seconds, pid))
                    per_request[name].append(stream.cpu / stream.done * 1000)
                    per_chunk[name].append((stream.cpu / stream.done - whole.cpu / whole.done) / API_CHUNKS * 1e6)
            chat, responses = min(per_chunk["chat"]), min(per_chunk["responses"])
            print(f"{clients:8d} {chat:14.1f} {responses:19.1f} {responses / chat:6.2f} "
                  f"{min(per_request['chat']):12.2f} {min(per_request['responses']):17.2f}", flush=True)
    finally:
        for process in proxies:
            process.terminate()
            process.wait(10)
        for process in fakes:
            process.kill()


def ccs_command() -> list[str]:
    """The installed package's `ccs`, started as users start it (from the source tree, Python would recompile
    it at every start where PYTHONDONTWRITEBYTECODE is set)."""
    return [shutil.which("ccs", path=str(Path(sys.executable).parent)) or "ccs"]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def memory_mb(pid: int) -> tuple[float, float]:
    """RSS now and its peak, of a process."""
    status = {line.split(":")[0]: line.split()[1] for line in Path(f"/proc/{pid}/status").read_text().splitlines()
              if line.startswith(("VmRSS", "VmHWM"))}
    return int(status["VmRSS"]) / 1024, int(status["VmHWM"]) / 1024


def targets(upstream: str, proxy_url: str, token: str) -> tuple[Target, Target]:
    return (Target.make(upstream, "/v1/chat/completions", "authorization: Bearer x", openai_request),
            Target.make(proxy_url, "/v1/messages", f"x-api-key: {token}", anthropic_request))


def answer_one(url: str, request: bytes) -> None:
    async def once() -> None:
        connection = await Connection.open(url)
        status, _ = await connection.exchange(request)
        assert status == 200, status
        connection.close()

    asyncio.run(once())


def client_main(upstream: str, seconds: float) -> None:
    """The driver as the child of `ccs run` (the proxy is its parent process)."""
    os.sched_setaffinity(0, {1})
    direct, proxy = targets(upstream, os.environ["ANTHROPIC_BASE_URL"], os.environ["ANTHROPIC_AUTH_TOKEN"])
    print(f"idle RSS of the ccs process with the proxy running: {memory_mb(os.getppid())[0]:.1f} MB")
    report(direct, proxy, os.getppid(), seconds)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--burst", action="store_true", help="the fake writes each stream at once")
    parser.add_argument("--run", action="store_true", help="measure the proxy inside `ccs run`")
    parser.add_argument("--apis", action="store_true", help="only Chat Completions against the Responses API")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each timed phase")
    args = parser.parse_args()
    os.sched_setaffinity(0, {1})
    fake = subprocess.Popen([sys.executable, str(HERE / "fake_openai.py"), *(["--burst"] if args.burst else [])],
                            stdout=subprocess.PIPE, text=True)
    upstream = f"http://127.0.0.1:{fake.stdout.readline().strip()}"
    print(f"fake provider: 200-chunk streams, {'one write each' if args.burst else 'each SSE event its own write'}")
    print(f"request: {len(json.dumps(anthropic_request(False)))} bytes (Anthropic), "
          f"{len(json.dumps(openai_request(False)))} bytes upstream")
    try:
        with tempfile.TemporaryDirectory() as home:
            env = {**os.environ, "CCS_HOME": home, "CCS_CONFIG": f"{home}/profiles.toml"}
            Path(home, "profiles.toml").write_text(
                f'version = 1\n[profiles.bench]\npreset = "vllm"\nbase_url = "{upstream}/v1"\nmodel = "gpt-bench"\n')
            if args.apis:
                compare_apis(env, home, args.seconds, args.burst)
                return
            on_core0 = ["taskset", "-c", "0", *ccs_command()]
            if args.run:
                subprocess.run([*on_core0, "run", "bench", "--", sys.executable, __file__, "--client", upstream,
                                str(args.seconds)], env=env, check=True, cwd=home)
                return
            measure_starts(on_core0, env, home, upstream)
            proxy = subprocess.Popen([*on_core0, "proxy", "bench", "--json"], env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, cwd=home)
            try:
                endpoint = json.loads(proxy.stdout.readline())
                report(*targets(upstream, endpoint["base_url"], endpoint["token"]), proxy.pid, args.seconds)
            finally:
                proxy.terminate()
                proxy.wait(10)
            compare_apis(env, home, args.seconds, args.burst)
    finally:
        fake.kill()


def measure_starts(on_core0: list[str], env: dict, home: str, upstream: str) -> None:
    """`ccs proxy` from start to its first answered request, and its RSS once idle; `ccs run` to its child."""
    ready, printed, idle = [], [], []
    for _ in range(STARTS):
        start = time.perf_counter()
        proxy = subprocess.Popen([*on_core0, "proxy", "bench", "--json"], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True, cwd=home)
        try:
            endpoint = json.loads(proxy.stdout.readline())
            printed.append(time.perf_counter() - start)
            _, target = targets(upstream, endpoint["base_url"], endpoint["token"])
            answer_one(target.url, target.requests["whole"])
            ready.append(time.perf_counter() - start)
            time.sleep(0.3)
            idle.append(memory_mb(proxy.pid)[0])
        finally:
            proxy.terminate()
            proxy.wait(10)
    print(f"`ccs proxy`: start to first answered request p50 {statistics.median(ready) * 1000:.0f} ms "
          f"(token printed: {statistics.median(printed) * 1000:.0f} ms), idle RSS {statistics.median(idle):.1f} MB "
          f"[{STARTS} starts]", flush=True)
    running = []
    for _ in range(STARTS):
        start = time.time()
        out = subprocess.run([*on_core0, "run", "bench", "--", sys.executable, "-S", "-c",
                              "import time; print(time.time())"], env=env, capture_output=True, text=True, cwd=home)
        running.append(float(out.stdout) - start)
    print(f"`ccs run` of this profile: start to the child running (the proxy may still be starting) p50 "
          f"{statistics.median(running) * 1000:.0f} ms, the child's own start included", flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--client"]:
        client_main(sys.argv[2], float(sys.argv[3]))
    else:
        main()
