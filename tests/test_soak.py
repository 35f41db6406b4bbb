"""A working day, compressed: thousands of Claude-Code-shaped requests through one `ccs proxy`, counting
what a long session would exhaust. Each loop is bounded in count and in time."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx2
import pytest

from ccswitch import usage
from conftest import FIXTURES, ccs, logged_rows, write_config
from fakes import (FakeServer, Reply, anthropic_sse, anthropic_text_stream, block, json_reply, message_end,
                   message_start, sse)
from streams import parse_anthropic_sse

pytestmark = pytest.mark.slow

STREAMED, WHOLE, MIXED, CONCURRENCY = 1000, 1000, 2000, 32
PHASE_SECONDS = 300  # a phase that has not finished by then fails the test
MAIN = json.loads((FIXTURES / "main-streaming-request.json").read_text())  # ~52 KB, as claude sends it
SMALL = json.loads((FIXTURES / "small-model-request.json").read_text())
COUNT = json.loads((FIXTURES / "count-tokens.json").read_text())


def provider(seen) -> Reply:
    """Streams of 200 text deltas, each its own write (a tool call now and then); whole answers otherwise."""
    if seen.body.get("stream"):
        deltas = [{"choices": [{"index": 0, "delta": {"content": f"w{i} "}, "finish_reason": None}]}
                  for i in range(200)]
        if len(seen.body["messages"]) % 3 == 0:
            deltas.append({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "c1", "function": {
                "name": "Bash", "arguments": '{"command": "ls"}'}}]}, "finish_reason": None}]})
        deltas.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 9000, "completion_tokens": 200}})
        return Reply(200, {"Content-Type": "text/event-stream"}, sse(deltas))
    return json_reply({"choices": [{"index": 0, "message": {"role": "assistant", "content": "done"},
                                    "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 9000, "completion_tokens": 1}})


def process_figures(pid: int) -> dict:
    status = dict(line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                  if ":\t" in line)
    return {"fds": len(os.listdir(f"/proc/{pid}/fd")), "threads": int(status["Threads"]),
            "rss_mb": int(status["VmRSS"].split()[0]) / 1024}


def check(response: httpx2.Response, stream: bool) -> None:
    assert response.status_code == 200, response.text[:500]
    if stream:
        assert parse_anthropic_sse(response.content)[-1][0] == "message_stop"


@pytest.fixture
def soak_proxy(no_keyring):
    fake = FakeServer(provider)
    write_config(f"""
        version = 1
        [profiles.soak]
        preset = "openai-chat"
        base_url = "{fake.url}/v1"
        models = {{ opus = "gpt-big", sonnet = "gpt-main", haiku = "gpt-small" }}
    """)
    assert ccs("key", "set", "soak", "--stdin", input="sk-soak-key-000000").returncode == 0
    proxy = subprocess.Popen([sys.executable, "-m", "ccswitch", "proxy", "soak", "--json"], env=os.environ,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    info = json.loads(proxy.stdout.readline())
    log: list[str] = []  # its line per request, read as it comes (a full pipe would stall the proxy)
    reader = threading.Thread(target=lambda: log.extend(proxy.stderr), daemon=True)
    reader.start()
    yield fake, proxy, info, log
    proxy.send_signal(signal.SIGTERM)
    assert proxy.wait(20) == 0
    reader.join(5)
    fake.close()


def test_a_working_day_through_one_proxy(soak_proxy, capsys):
    fake, proxy, info, log = soak_proxy
    url, headers = info["base_url"] + "/v1/messages", {"x-api-key": info["token"]}
    figures: dict[str, dict] = {}
    opened: dict[str, int] = {}

    def sequential(name: str, count: int, body: dict) -> None:
        before = fake.connections
        deadline = time.monotonic() + PHASE_SECONDS
        done = 0
        with httpx2.Client(timeout=60) as client:
            for index in range(count):
                check(client.post(url, json=body, headers=headers), body.get("stream", False))
                done += 1
                if index == 99:
                    figures[f"{name}: after warm-up"] = process_figures(proxy.pid)
                if time.monotonic() > deadline:
                    break
        assert done == count, f"{name}: {done} of {count} in {PHASE_SECONDS} s"
        figures[f"{name}: end"] = process_figures(proxy.pid)
        opened[name] = fake.connections - before

    sequential("streamed", STREAMED, {**MAIN, "stream": True})
    sequential("whole", WHOLE, {**MAIN, "stream": False})

    rng = random.Random(11)
    kinds = [("main", {**MAIN, "stream": True}), ("haiku", {**SMALL, "stream": True}),
             ("whole", {**MAIN, "stream": False}), ("count", COUNT)]
    plan = [rng.choice(kinds) for _ in range(MIXED)]
    forwarded = STREAMED + WHOLE + sum(kind != "count" for kind, _ in plan)  # count_tokens is answered locally

    async def mixed() -> int:
        deadline = time.monotonic() + PHASE_SECONDS
        done = 0
        async with httpx2.AsyncClient(timeout=60, limits=httpx2.Limits(max_connections=CONCURRENCY)) as client:
            async def worker():
                nonlocal done
                while plan and time.monotonic() < deadline:
                    kind, body = plan.pop()
                    path = url + ("/count_tokens" if kind == "count" else "")
                    check(await client.post(path, json=body, headers=headers), body.get("stream", False))
                    done += 1
                    if done == 100:
                        figures["mixed: after warm-up"] = process_figures(proxy.pid)

            await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return done

    before = fake.connections
    assert asyncio.run(mixed()) == MIXED
    figures["mixed: end"] = process_figures(proxy.pid)
    opened["mixed"] = fake.connections - before

    with capsys.disabled():
        print(f"\nsoak: {STREAMED} streamed + {WHOLE} whole + {MIXED} mixed at {CONCURRENCY} clients, 0 errors")
        for name, values in figures.items():
            print(f"  {name:22s} fds {values['fds']:3d}  threads {values['threads']:2d}  "
                  f"RSS {values['rss_mb']:5.1f} MB")
        print(f"  upstream connections opened: {opened}; open at the end: {fake.open_connections}")

    for phase in ("streamed", "whole", "mixed"):
        warm, end = figures[f"{phase}: after warm-up"], figures[f"{phase}: end"]
        assert end["fds"] - warm["fds"] <= 4, (phase, warm, end)
        assert end["threads"] - warm["threads"] <= 2, (phase, warm, end)
        assert end["rss_mb"] - warm["rss_mb"] <= 16, (phase, warm, end)
    assert opened["streamed"] <= 2 and opened["whole"] <= 2  # one connection, kept alive
    # A stream's connection is busy until the end of its body has been read, which can come just after
    # the client got its last event and sent its next request: a burst may open a second connection
    # per client, never more, and the pool keeps at most 64 idle ones.
    assert opened["mixed"] <= 2 * CONCURRENCY
    assert fake.open_connections <= 64
    assert len(fake.requests) == forwarded
    requests_logged = [line for line in log if " -> " in line]
    assert len(requests_logged) == forwarded and all(" 200 in " in line for line in requests_logged)
    assert recorded(forwarded) == (forwarded, 0)  # a row each in the usage log, written while it ran


def recorded(expected: int) -> tuple[int, int]:
    """(rows, rows with an error) in the usage log, once it holds `expected` rows (or after 10 s)."""
    db = usage.connect()
    try:
        deadline = time.monotonic() + 10
        while True:
            rows, errors = db.execute("SELECT count(*), count(error) FROM requests").fetchone()
            if rows >= expected or time.monotonic() > deadline:
                return rows, errors
            time.sleep(0.1)
    finally:
        db.close()


ROUTED, ROUTED_MIXED = 1000, 1500
LIMITED = itertools.count()


def anthropic_provider(seen) -> Reply:
    """An Anthropic-API provider: 200 text deltas, each its own write; every 7th request marked x-soak-limit a 429."""
    if seen.headers.get("x-soak-limit") and next(LIMITED) % 7 == 6:
        return json_reply({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}, 429)
    deltas = [{"type": "text_delta", "text": f"w{i} "} for i in range(200)]
    return anthropic_sse([message_start(seen.body["model"], 9000, "msg_s"),
                          *block(0, {"type": "text", "text": ""}, *deltas), *message_end("end_turn", 200)])


def test_a_working_day_through_a_router(no_keyring, capsys):
    """Pass-through streams, translated ones and fallbacks after 429s, mixed, through one router proxy."""
    glm, gpt = FakeServer(anthropic_provider), FakeServer(provider)
    write_config(f"""
        version = 1
        [profiles.glm]
        base_url = "{glm.url}"
        model = "glm-4.6"
        [profiles.gpt]
        preset = "openai-chat"
        base_url = "{gpt.url}/v1"
        [profiles.mix]
        models = {{ opus = "gpt,gpt-big", sonnet = "glm,glm-4.6", haiku = "gpt,gpt-small" }}
        fallback = ["gpt,gpt-main"]
        cooldown = 0
    """)
    for name in ("glm", "gpt"):
        assert ccs("key", "set", name, "--stdin", input=f"sk-{name}-soak-key").returncode == 0
    proxy = subprocess.Popen([sys.executable, "-m", "ccswitch", "proxy", "mix", "--json", "--quiet"],
                             env=os.environ, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        info = json.loads(proxy.stdout.readline())
        url, headers = info["base_url"] + "/v1/messages", {"x-api-key": info["token"]}
        figures = {}
        deadline = time.monotonic() + PHASE_SECONDS
        with httpx2.Client(timeout=60) as client:
            for index in range(ROUTED):
                check(client.post(url, json={**MAIN, "model": "glm,glm-4.6", "stream": True}, headers=headers), True)
                if index == 99:
                    figures["pass-through: after warm-up"] = process_figures(proxy.pid)
                assert time.monotonic() < deadline, f"pass-through: {index} of {ROUTED} in {PHASE_SECONDS} s"
        figures["pass-through: end"] = process_figures(proxy.pid)
        opened_glm = glm.connections

        rng = random.Random(5)
        plan = [rng.choice(["claude-sonnet-4-6", "claude-opus-4-5", "claude-haiku-4-5"]) for _ in range(ROUTED_MIXED)]

        async def mixed() -> int:
            done = 0
            async with httpx2.AsyncClient(timeout=60, limits=httpx2.Limits(max_connections=16)) as client:
                async def worker():
                    nonlocal done
                    while plan and time.monotonic() < deadline + PHASE_SECONDS:
                        model = plan.pop()
                        body = {**MAIN, "model": model, "stream": True}
                        check(await client.post(url, json=body, headers={**headers, "x-soak-limit": "1"}), True)
                        done += 1
                        if done == 100:
                            figures["mixed: after warm-up"] = process_figures(proxy.pid)

                await asyncio.gather(*(worker() for _ in range(16)))
            return done

        assert asyncio.run(mixed()) == ROUTED_MIXED
        figures["mixed: end"] = process_figures(proxy.pid)
    finally:
        proxy.send_signal(signal.SIGTERM)
        assert proxy.wait(20) == 0
        glm.close()
        gpt.close()
    limited = len([r for r in glm.requests if r.headers.get("x-soak-limit")]) // 7
    with capsys.disabled():
        print(f"\nrouter soak: {ROUTED} passed through + {ROUTED_MIXED} mixed at 16 clients ({limited} fell back "
              f"after a 429), 0 errors")
        for name, values in figures.items():
            print(f"  {name:28s} fds {values['fds']:3d}  threads {values['threads']:2d}  RSS {values['rss_mb']:5.1f} MB")
        print(f"  connections opened: glm {glm.connections} (pass-through phase {opened_glm}), gpt {gpt.connections}")
    assert limited > 0
    assert recorded(ROUTED + ROUTED_MIXED) == (ROUTED + ROUTED_MIXED, 0)
    hops = usage.connect().execute("SELECT count(*) FROM requests WHERE hops = 1 AND failed LIKE 'glm,%(429)'")
    assert hops.fetchone()[0] == limited
    for phase in ("pass-through", "mixed"):
        warm, end = figures[f"{phase}: after warm-up"], figures[f"{phase}: end"]
        assert end["fds"] - warm["fds"] <= 4, (phase, warm, end)
        assert end["threads"] - warm["threads"] <= 2, (phase, warm, end)
        assert end["rss_mb"] - warm["rss_mb"] <= 16, (phase, warm, end)
    assert opened_glm <= 2 and glm.connections <= 2 + 2 * 16 and gpt.connections <= 2 * 16


LONG_SESSION = """
import os, sys, time
import anthropic
client = anthropic.Anthropic(base_url=os.environ["ANTHROPIC_BASE_URL"], auth_token=os.environ["ANTHROPIC_AUTH_TOKEN"],
                             api_key=None, max_retries=0, timeout=30)
for gap in [0] + [float(g) for g in sys.argv[1:]]:
    time.sleep(gap)
    with client.messages.stream(model="claude-sonnet-4-5", max_tokens=50,
                                messages=[{"role": "user", "content": "hi"}]) as stream:
        print("answer:", stream.get_final_text(), flush=True)
"""


def test_a_session_open_for_minutes_with_requests_far_apart(no_keyring, tmp_path):
    """`ccs run` of a native profile kept open while requests come minutes apart (longer than the proxy keeps
    an idle client connection, and than the pool keeps an idle upstream one): each is answered, and is a row."""
    fake = FakeServer(lambda seen: anthropic_text_stream("still here", seen.body["model"]))
    try:
        write_config(f'version = 1\n[profiles.native]\nbase_url = "{fake.url}"\nmodel = "m"\n')
        assert ccs("key", "set", "native", "--stdin", input="sk-native-key").returncode == 0
        (tmp_path / "session.py").write_text(LONG_SESSION)
        result = ccs("run", "native", "--", sys.executable, str(tmp_path / "session.py"), "65", "65", timeout=300)
        assert result.returncode == 0, result.stderr
        assert result.stdout.count("answer: still here") == 3
        assert len(logged_rows()) == 3 and {row["status"] for row in logged_rows()} == {200}
    finally:
        fake.close()
