"""The embedded proxy against a direct baseline, measured in the same run.

    python bench/proxy.py            # starts a fake provider and `ccs run bench -- python bench/proxy.py --client`

The client runs as the child of a real `ccs run`, so it measures the proxy inside the `ccs`
process exactly as claude meets it. The proxy's process is pinned to core 0; the client and
the fake provider share core 1. Every loop is bounded in count and time.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2

HERE = Path(__file__).resolve().parent
SEQUENTIAL = 200
STREAMS = 100
CONCURRENCY = 64
LOAD_SECONDS = 5.0
LOAD_MAX = 3000


def anthropic_request(stream: bool) -> dict:
    """About 20 KB, shaped like Claude Code's: 3 system blocks, 15 tools, a tool round trip."""
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
    from ccswitch.proxy.to_openai import translate_request
    from ccswitch.proxy.upstream import Upstream

    body, _ = translate_request(anthropic_request(stream), Upstream(name="b", base_url="http://x/v1", model="gpt-bench"))
    return body


def client_main(upstream_url: str) -> None:
    os.sched_setaffinity(0, {1})
    proxy_url = os.environ["ANTHROPIC_BASE_URL"]
    token = os.environ["ANTHROPIC_AUTH_TOKEN"]
    idle_rss = rss_mb(os.getppid())
    via_proxy = (f"{proxy_url}/v1/messages", {"x-api-key": token}, anthropic_request)
    direct = (f"{upstream_url}/v1/chat/completions", {"authorization": "Bearer x"}, openai_request)
    print(f"request: {len(json.dumps(anthropic_request(False)))} bytes (Anthropic), "
          f"{len(json.dumps(openai_request(False)))} bytes upstream")
    print(f"idle RSS of the ccs process with the proxy running: {idle_rss:.1f} MB")
    with httpx2.Client(timeout=30) as client:
        for label, stream, rounds in (("non-stream", False, SEQUENTIAL), ("200-chunk stream", True, STREAMS)):
            samples = {"direct": [], "proxy": []}
            deadline = time.monotonic() + 60
            for _ in range(rounds):
                for name, (url, headers, make) in (("direct", direct), ("proxy", via_proxy)):
                    body = make(stream)
                    start = time.perf_counter()
                    response = client.post(url, json=body, headers=headers)
                    response.read()
                    samples[name].append(time.perf_counter() - start)
                    assert response.status_code == 200, response.text
                if time.monotonic() > deadline:
                    break
            base, prox = (statistics.median(samples[k]) * 1000 for k in ("direct", "proxy"))
            p90 = statistics.quantiles(samples["proxy"], n=10)[-1] * 1000
            print(f"{label:17s} direct p50 {base:6.2f} ms | via proxy p50 {prox:6.2f} ms (p90 {p90:6.2f}) | "
                  f"added {prox - base:6.2f} ms | ratio {prox / base:4.2f}x  [{len(samples['proxy'])} rounds]")
    for name, target in (("direct", direct), ("proxy", via_proxy)):
        done, seconds = asyncio.run(load(*target))
        print(f"{CONCURRENCY} concurrent 200-chunk streams, {name:6s}: {done / seconds:7.1f} streams/s "
              f"({done} in {seconds:.1f} s)")


async def load(url: str, headers: dict, make) -> tuple[int, float]:
    body = json.dumps(make(True)).encode()
    headers = {**headers, "content-type": "application/json"}
    done = 0
    deadline = time.monotonic() + LOAD_SECONDS
    async with httpx2.AsyncClient(timeout=30, limits=httpx2.Limits(max_connections=CONCURRENCY)) as client:
        async def worker():
            nonlocal done
            while time.monotonic() < deadline and done < LOAD_MAX:
                response = await client.post(url, content=body, headers=headers)
                assert response.status_code == 200
                done += 1

        start = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return done, time.monotonic() - start


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    fake = subprocess.Popen([sys.executable, str(HERE / "fake_openai.py")], stdout=subprocess.PIPE, text=True)
    os.sched_setaffinity(fake.pid, {1})
    upstream = f"http://127.0.0.1:{fake.stdout.readline().strip()}"
    try:
        with tempfile.TemporaryDirectory() as home:
            env = {**os.environ, "CCS_HOME": home, "CCS_CONFIG": f"{home}/profiles.toml"}
            Path(home, "profiles.toml").write_text(
                f'version = 1\n[profiles.bench]\npreset = "vllm"\nbase_url = "{upstream}/v1"\nmodel = "gpt-bench"\n')
            # the installed package, started as users start it (from the source tree, Python would
            # recompile it at every start where PYTHONDONTWRITEBYTECODE is set)
            ccs = [shutil.which("ccs", path=str(Path(sys.executable).parent)) or "ccs"]
            ready = []
            for _ in range(10):
                start = time.time()
                out = subprocess.run(["taskset", "-c", "0", *ccs, "run", "bench", "--", sys.executable, "-S", "-c",
                                      "import time; print(time.time())"], env=env, capture_output=True, text=True,
                                     cwd=home)
                ready.append(float(out.stdout) - start)
            print(f"proxy ready after `ccs run` starts (child running): median {statistics.median(ready) * 1000:.0f} ms"
                  f" (includes starting the child interpreter)")
            standalone_ready, standalone_rss = [], []
            for _ in range(5):
                start = time.perf_counter()
                proxy = subprocess.Popen([*ccs, "proxy", "bench", "--json"], env=env, stdout=subprocess.PIPE, text=True,
                                         cwd=home)
                proxy.stdout.readline()
                standalone_ready.append(time.perf_counter() - start)
                time.sleep(0.3)
                standalone_rss.append(rss_mb(proxy.pid))
                proxy.terminate()
                proxy.wait(10)
            print(f"`ccs proxy` standalone: ready (token printed) median {statistics.median(standalone_ready) * 1000:.0f} ms,"
                  f" idle RSS {statistics.median(standalone_rss):.1f} MB")
            subprocess.run(["taskset", "-c", "0", *ccs, "run", "bench", "--", sys.executable, __file__, "--client",
                            upstream], env=env, check=True, cwd=home)
    finally:
        fake.kill()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--client"]:
        client_main(sys.argv[2])
    else:
        main()
