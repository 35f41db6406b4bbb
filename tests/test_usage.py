"""The usage log: a row per request through the real proxy (successes, errors, fallback hops), its
migrations, `ccs usage` figures on a seeded log, the live view in a pty, several `ccs run` sessions
writing at once, `--observe`, and the cost in `ccs statusline`."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest

from ccswitch import prices, profiles, usage
from ccswitch.errors import CcsError
from ccswitch.prices import Tokens
from ccswitch.proxy import lifecycle
from conftest import ccs, imported_modules, logged_rows, write_config
from fakes import FakeServer, Reply, anthropic_sse, block, json_reply, message_end, message_start, sse
from proxy_harness import chunk

KEYS = {"GLM_KEY": "sk-glm-secret-1111", "GPT_KEY": "sk-gpt-secret-2222"}
PROMPT = "a prompt that must never reach the usage log"


def glm_stream(seen) -> Reply:
    if seen.body["messages"][-1]["content"] == "limit":
        return json_reply({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}, 429)
    if seen.body["messages"][-1]["content"] == "bad":
        return json_reply({"type": "error", "error": {"type": "invalid_request_error", "message": "no"}}, 400)
    start = {"type": "message_start", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": seen.body["model"], "content": [],
        "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 1, "cache_read_input_tokens": 100,
                  "cache_creation_input_tokens": 20}}}
    return anthropic_sse([start, *block(0, {"type": "text", "text": ""}, {"type": "text_delta", "text": "from glm"}),
                          *message_end("end_turn", 5)])


def gpt_stream(seen) -> Reply:
    if not seen.body.get("stream"):
        return json_reply({"id": "c1", "object": "chat.completion", "model": "gpt-5", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "from gpt"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 2}})
    return Reply(200, {"Content-Type": "text/event-stream"}, [
        b"data: " + json.dumps(chunk({"role": "assistant", "content": "from gpt"})).encode() + b"\n\n",
        b"data: " + json.dumps(chunk(finish="stop", usage={"prompt_tokens": 7, "completion_tokens": 2})).encode()
        + b"\n\n", b"data: [DONE]\n\n"])


def config_text(glm: FakeServer, gpt: FakeServer, mix: str = "") -> str:
    return f"""
[profiles.glm]
base_url = "{glm.url}/api/anthropic"
key_env = "GLM_KEY"
model = "glm-4.6"
prices = {{ "*" = {{ input = 1.0, output = 2.0, cache_read = 0.5 }} }}

[profiles.gpt]
api = "openai"
base_url = "{gpt.url}/v1"
key_env = "GPT_KEY"
model = "gpt-5"
prices = {{ "gpt-5" = {{ input = 3, output = 10 }} }}

[profiles.free]
base_url = "{glm.url}"
auth = "none"

[profiles.mix]
models = {{ opus = "glm,glm-4.6", sonnet = "gpt,gpt-5", haiku = "free,local-model" }}
reach = ["*"]
{mix}
"""


@pytest.fixture
def fakes(monkeypatch):
    for var, value in KEYS.items():
        monkeypatch.setenv(var, value)
    glm, gpt = FakeServer(glm_stream), FakeServer(gpt_stream)
    yield glm, gpt
    glm.close()
    gpt.close()


def serve(text: str, name: str = "mix"):
    config = profiles.parse(text, Path("profiles.toml"))
    profile = config.get(name)
    return lifecycle.running_for(config, profile, lifecycle.keys_for(config, profile))


def post(endpoint, model: str, content: str = PROMPT, session: str | None = "sess-1", stream: bool = True):
    headers = {"authorization": f"Bearer {endpoint.token}"}
    if session:
        headers["x-claude-code-session-id"] = session
    body = {"model": model, "max_tokens": 50, "stream": stream, "messages": [{"role": "user", "content": content}]}
    return httpx2.post(endpoint.url + "/v1/messages", json=body, headers=headers, timeout=20)


def test_every_request_through_the_proxy_is_one_row_with_its_route_tokens_times_and_cost(fakes):
    glm, gpt = fakes
    with serve(config_text(glm, gpt, 'fallback = ["gpt,gpt-5"]')) as endpoint:
        assert post(endpoint, "claude-opus-4-5").status_code == 200  # passed through to glm
        assert post(endpoint, "claude-sonnet-4-5", stream=False).status_code == 200  # translated for gpt
        assert post(endpoint, "glm,glm-4.6", "limit").status_code == 200  # glm 429: gpt answers
        assert post(endpoint, "glm,glm-4.5-air", "bad", session=None).status_code == 400  # no fallback on a 400
        assert post(endpoint, "nobody,x").status_code == 404
    first, second, hop, bad, unknown = logged_rows()
    assert {k: first[k] for k in ("session", "profile", "target", "model", "requested", "stream", "status",
                                  "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
                                  "error", "hops", "failed", "price_source")} == {
        "session": "sess-1", "profile": "mix", "target": "glm", "model": "glm-4.6", "requested": "claude-opus-4-5",
        "stream": 1, "status": 200, "input_tokens": 10, "output_tokens": 5, "cache_read_tokens": 100,
        "cache_write_tokens": 20, "error": None, "hops": 0, "failed": None, "price_source": "profile"}
    assert first["cost"] == pytest.approx((10 * 1.0 + 5 * 2.0 + 100 * 0.5 + 20 * 1.0) / 1e6)  # cache write: input's
    assert 0 < first["ttfb_ms"] <= first["duration_ms"] and abs(first["time"] - time.time()) < 60
    assert (second["target"], second["model"], second["stream"], second["input_tokens"], second["output_tokens"]) \
        == ("gpt", "gpt-5", 0, 7, 2)
    assert second["cost"] == pytest.approx((7 * 3 + 2 * 10) / 1e6)
    assert (hop["target"], hop["status"], hop["hops"], hop["failed"]) == ("gpt", 200, 1, "glm,glm-4.6 (429)")
    assert (bad["target"], bad["status"], bad["error"], bad["session"], bad["cost"]) == \
        ("glm", 400, "invalid_request_error", None, None)
    assert (unknown["target"], unknown["status"], unknown["error"], unknown["ttfb_ms"]) == \
        (None, 404, "not_found_error", None)
    stored = b"".join(p.read_bytes() for p in usage.log_file().parent.iterdir())
    assert PROMPT.encode() not in stored and not any(key.encode() in stored for key in KEYS.values())


def test_each_row_says_what_claude_said_the_request_was_for_and_usage_groups_by_it(fakes):
    glm, gpt = fakes
    with serve(config_text(glm, gpt)) as endpoint:
        for purpose in ("main", "compaction", "main", None):
            headers = {"authorization": f"Bearer {endpoint.token}",
                       **({"x-claude-code-request-class": purpose} if purpose else {})}
            body = {"model": "claude-opus-4-5", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
            assert httpx2.post(endpoint.url + "/v1/messages", json=body, headers=headers, timeout=20).status_code == 200
    assert [row["request_class"] for row in logged_rows()] == ["main", "compaction", "main", None]
    groups = {g["class"]: g["requests"] for g in usage_json("--by", "class")["groups"]}
    assert groups == {"main": 2, "compaction": 1, "-": 1}


def test_a_client_that_leaves_mid_stream_and_a_provider_without_prices(fakes):
    glm, gpt = fakes
    slow = FakeServer(lambda seen: Reply(200, {"Content-Type": "text/event-stream"},
                                         [b"event: ping\ndata: {}\n\n", 5.0]))
    try:
        text = config_text(glm, gpt) + f'\n[profiles.slow]\nbase_url = "{slow.url}"\nauth = "none"\n'
        with serve(text) as endpoint:
            assert post(endpoint, "free,local-model").status_code == 200
            with httpx2.stream("POST", endpoint.url + "/v1/messages", timeout=20,
                               headers={"authorization": f"Bearer {endpoint.token}"},
                               json={"model": "slow,m", "max_tokens": 5, "stream": True,
                                     "messages": [{"role": "user", "content": "x"}]}) as response:
                next(response.iter_raw())
    finally:
        slow.close()
    free, left = logged_rows()
    assert (free["target"], free["cost"], free["price_source"], free["output_tokens"]) == ("free", None, None, 5)
    assert (left["target"], left["status"], left["error"]) == ("slow", 499, "client_left")


def test_a_client_that_leaves_mid_stream_is_billed_for_what_the_provider_reported_so_far(fakes):
    """Found in review: message_start's usage (the input tokens the provider bills) was seen, and 0 recorded."""
    glm, gpt = fakes
    slow = FakeServer(lambda seen: anthropic_sse([message_start("m", input_tokens=1234), 5.0]))
    translated = FakeServer(lambda seen: Reply(200, {"Content-Type": "text/event-stream"},
                                               sse([chunk({"content": "partial answer"})])[:1] + [5.0]))
    try:
        text = config_text(glm, gpt) + (f'\n[profiles.slow]\nbase_url = "{slow.url}"\nauth = "none"\n'
                                        f'[profiles.tslow]\napi = "openai"\nbase_url = "{translated.url}/v1"\n'
                                        'auth = "none"\n')
        with serve(text) as endpoint:
            for model in ("slow,m", "tslow,m"):
                with httpx2.stream("POST", endpoint.url + "/v1/messages", timeout=20,
                                   headers={"authorization": f"Bearer {endpoint.token}"},
                                   json={"model": model, "max_tokens": 5, "stream": True,
                                         "messages": [{"role": "user", "content": "x" * 400}]}) as response:
                    next(response.iter_raw())
    finally:
        slow.close()
        translated.close()
    relayed, estimated = logged_rows()
    assert (relayed["status"], relayed["error"], relayed["input_tokens"]) == (499, "client_left", 1234)
    assert (estimated["status"], estimated["error"]) == (499, "client_left")
    assert estimated["input_tokens"] > 100 and estimated["output_tokens"] > 0  # the estimate: no usage came


def test_a_log_that_cannot_be_written_costs_no_request(fakes, capfd):
    glm, gpt = fakes
    usage.log_file().parent.parent.mkdir(parents=True, exist_ok=True)
    usage.log_file().parent.write_text("a file where the data dir should be")
    with serve(config_text(glm, gpt)) as endpoint:
        assert post(endpoint, "claude-opus-4-5").status_code == 200
    assert "requests are not recorded" in capfd.readouterr().err


# ---------------------------------------------------------------- the schema


def version(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return db.execute("PRAGMA user_version").fetchone()[0]
    finally:
        db.close()


def test_migrations_from_nothing_and_from_the_first_schema_keep_every_row(tmp_path):
    fresh = tmp_path / "fresh.sqlite3"
    usage.connect(fresh).close()
    assert version(fresh) == usage.SCHEMA and oct(fresh.stat().st_mode & 0o777) == "0o600"
    old = tmp_path / "old.sqlite3"
    db = sqlite3.connect(old, isolation_level=None)
    for statement in usage.MIGRATIONS[0]:
        db.execute(statement)
    db.execute("PRAGMA user_version = 1")
    db.execute("INSERT INTO requests (time, profile, stream, status, input_tokens, duration_ms) "
               "VALUES (1, 'glm', 1, 200, 42, 3.5)")
    db.close()
    migrated = usage.connect(old)
    assert migrated.execute("SELECT profile, input_tokens, cost FROM requests").fetchall() == [("glm", 42, None)]
    assert version(old) == usage.SCHEMA
    migrated.close()
    usage.connect(old).close()  # once more: nothing left to do


def test_a_log_from_a_newer_ccs_is_left_alone(tmp_path):
    newer = tmp_path / "newer.sqlite3"
    db = sqlite3.connect(newer)
    db.execute("CREATE TABLE requests (id INTEGER PRIMARY KEY, future TEXT)")
    db.execute(f"PRAGMA user_version = {usage.SCHEMA + 1}")
    db.commit()
    db.close()
    before = newer.read_bytes()
    with pytest.raises(CcsError, match="from a newer ccs"):
        usage.connect(newer)
    assert newer.read_bytes() == before


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path):
    path = tmp_path / "usage.sqlite3"
    path.write_text("my notes, not a database\n" * 100)
    with pytest.raises(CcsError, match="cannot be used"):
        usage.connect(path)
    assert path.read_text().startswith("my notes")


# ---------------------------------------------------------------- `ccs usage` on a seeded log

DAY = 86400
NOW = time.time()


def seed(*requests: dict) -> None:
    db = usage.connect()
    db.executemany("INSERT INTO requests (time, session, profile, target, model, stream, status, input_tokens, "
                   "output_tokens, cache_read_tokens, cache_write_tokens, duration_ms, cost, price_source) VALUES "
                   "(:time, :session, :profile, :target, :model, 1, :status, :input, :output, :cache_read, 0, 10, "
                   ":cost, :source)",
                   [{"session": "s1", "status": 200, "cache_read": 0, "source": "genai-prices 0.2.3", **r}
                    for r in requests])
    db.close()


SEEDED = (
    {"time": NOW - 3600, "profile": "mix", "target": "glm", "model": "glm-4.6", "input": 1000, "output": 100,
     "cache_read": 5000, "cost": 0.25},
    {"time": NOW - 1800, "profile": "mix", "target": "glm", "model": "glm-4.6", "input": 2000, "output": 300,
     "cost": 0.5},
    {"time": NOW - 60, "profile": "mix", "target": "gpt", "model": "gpt-5", "input": 10, "output": 20, "cost": 1.25,
     "session": "s2"},
    {"time": NOW - 30, "profile": "gpt", "target": "gpt", "model": "gpt-5", "input": 0, "output": 0, "cost": None,
     "status": 429, "session": "s2"},
    {"time": NOW - 20, "profile": "qwen", "target": "qwen", "model": "qwen3-coder-plus", "input": 50, "output": 5,
     "cost": None, "source": None, "session": "s3"},
    {"time": NOW - 10 * DAY, "profile": "glm", "target": "glm", "model": "glm-4.6", "input": 7, "output": 7,
     "cost": 9.0, "session": "old"},
)


def usage_json(*args: str) -> dict:
    result = ccs("usage", "--json", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_usage_totals_groups_and_costs_are_exact():
    seed(*SEEDED)
    report = usage_json()  # the last 7 days: the old row is out
    assert report["by"] == "profile"
    assert [(g["profile"], g["requests"], g["errors"], g["input_tokens"], g["output_tokens"],
             g["cache_read_tokens"], g["cost"], g["unpriced"]) for g in report["groups"]] == [
        ("gpt", 2, 1, 10, 20, 0, 1.25, 0), ("glm", 2, 0, 3000, 400, 5000, 0.75, 0), ("qwen", 1, 0, 50, 5, 0, None, 1)]
    total = report["total"]
    assert (total["requests"], total["errors"], total["input_tokens"], total["output_tokens"], total["cost"]) == \
        (5, 1, 3060, 425, 2.0)
    assert any("genai-prices 0.2.3" in note for note in report["notes"])
    assert any("No price known for qwen,qwen3-coder-plus" in note and "prices = {" in note for note in report["notes"])
    every = usage_json("--since", "all")
    assert every["total"]["requests"] == 6 and every["total"]["cost"] == 11.0
    by_model = usage_json("--by", "model")["groups"]
    assert [(g["profile"], g["model"], g["requests"]) for g in by_model][:2] == [("gpt", "gpt-5", 2),
                                                                               ("glm", "glm-4.6", 2)]
    by_session = [(g["session"], g["cost"]) for g in usage_json("--by", "session", "--since", "30d")["groups"]]
    assert by_session == [("old", 9.0), ("s1", 0.75), ("s2", 1.25), ("s3", None)]  # in the order they began
    by_day = usage_json("--by", "day", "--since", "all")["groups"]
    assert sum(g["requests"] for g in by_day) == 6 and by_day[0]["cost"] == 9.0  # oldest first
    recent = usage_json("--since", "45m")["total"]
    assert (recent["requests"], recent["cost"]) == (4, 1.75)


def test_usage_table_and_csv():
    seed(*SEEDED)
    table = ccs("usage")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].startswith("Usage by profile, since ")
    assert any(line.split()[:2] == ["gpt", "2"] and line.split()[-1] == "$1.2500" for line in lines)
    assert any(line.split()[0] == "total" and line.split()[-1] == "$2.0000" for line in lines)
    assert any(line.split()[0] == "qwen" and line.split()[-1] == "-*" for line in lines)
    parsed = list(csv.DictReader(io.StringIO(ccs("usage", "--csv", "--by", "model").stdout)))
    assert list(parsed[0]) == ["profile", "model", *usage.FIGURES]
    assert [(r["profile"], r["model"], r["requests"], r["cost"]) for r in parsed] == [
        ("gpt", "gpt-5", "2", "1.25"), ("glm", "glm-4.6", "2", "0.75"), ("qwen", "qwen3-coder-plus", "1", "")]


def test_usage_says_what_the_log_does_not_hold(file_keyring):
    assert "No usage recorded yet" in ccs("usage").stdout
    write_config("""
        [profiles.ds]
        preset = "deepseek"
        key_env = "DS_KEY"
        direct = true
    """)
    ran = ccs("run", "ds", "--", sys.executable, "-c", "pass", env={"DS_KEY": "sk-ds"})
    assert ran.returncode == 0, ran.stderr
    report = usage_json()
    assert report["total"]["requests"] == 0
    assert any(note.startswith("Not recorded: profile 'ds' was started 1 time") and "direct = true" in note
               for note in report["notes"])


@pytest.mark.parametrize("args, message", [
    (["--since", "yesterday"], "--since 'yesterday'"),
    (["--since", "9999-99-99"], "--since '9999-99-99'"),
    (["--by", "colour"], "--by 'colour'"),
    (["--json", "--csv"], "not both"),
    (["--live", "--json"], "--live shows the latest requests"),
    (["--live", "--csv"], "--live shows the latest requests"),
    (["--live", "--by", "model"], "--live shows the latest requests"),
])
def test_bad_usage_options_exit_2(args, message):
    result = ccs("usage", *args)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_a_span_past_the_epoch_is_all_time():
    seed(*SEEDED)
    result = ccs("usage", "--since", "99999999w", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["total"]["requests"] == json.loads(ccs("usage", "--since", "all", "--json")
                                                                        .stdout)["total"]["requests"]


def test_readers_create_no_log():
    """`--json`, `--csv` (and `--live`) only read: with no log there is nothing to create."""
    for form in ("--json", "--csv", None):
        result = ccs("usage", *([form] if form else []))
        assert result.returncode == 0, result.stderr
        assert not usage.log_file().exists() and not usage.log_file().parent.exists()
    assert json.loads(ccs("usage", "--json").stdout)["total"]["requests"] == 0


def test_a_damaged_log_is_one_clear_line(tmp_path):
    """A database whose pages were overwritten (a disk fault, a copy cut short): no traceback."""
    db = usage.connect()
    db.executemany(f"INSERT INTO requests ({', '.join(usage.COLUMNS)}) VALUES ({', '.join('?' * len(usage.COLUMNS))})",
                   [(NOW, "s", "p", "p", "m", "m", 1, 200, 1, 1, 0, 0, 1.0, 2.0, None, 0, None, 0.1, "profile", 0, "main",
                     None)] * 3000)
    db.close()
    with open(usage.log_file(), "r+b") as f:
        f.seek(8192)
        f.write(os.urandom(40000))
    for args in (["usage"], ["usage", "--json"], ["usage", "--by", "session"]):
        result = ccs(*args)
        assert result.returncode == 2 and "cannot be read" in result.stderr and "move it away" in result.stderr, args
        assert "Traceback" not in result.stderr


def test_ccs_tests_own_requests_are_marked_and_left_out_unless_asked(fakes):
    glm, gpt = fakes
    write_config(config_text(glm, gpt))
    tested = ccs("test", "mix", "--model", "glm,glm-4.6")
    assert tested.returncode in (0, 1), tested.stderr
    (row,) = logged_rows()
    assert row["test"] == 1 and row["profile"] == "mix"
    left_out = usage_json()
    assert left_out["total"]["requests"] == 0 and any("Left out: 1 request of `ccs test`" in n for n in left_out["notes"])
    assert json.loads(ccs("usage", "--json", "--tests").stdout)["total"]["requests"] == 1


def test_rows_are_written_at_exit_however_slow_the_price_table_is(tmp_path, monkeypatch):
    """Found in review: a price asked of the table at exit could take a minute, and the rows were lost."""
    asked = []

    def slow_table(self, base_url, model, when):
        asked.append(model)
        time.sleep(1.5)
        return None

    monkeypatch.setattr(prices.TablePrices, "_ask", slow_table)
    config = profiles.parse('version = 1\n[profiles.p]\nbase_url = "https://api.example"\n', Path("p.toml"))
    recorder = usage.Recorder("p", prices.ProfilePrices(config), tmp_path / "u.sqlite3")
    for model in ("a", "b", "c", "d"):
        recorder.record(usage.Request(NOW, None, "p", model, model, True, 200, {"input_tokens": 5}, 0.1, 0.2, None, ()))
    time.sleep(0.2)  # the writer is asking the table about "a"
    started = time.monotonic()
    recorder.close()
    assert time.monotonic() - started < 3.0 and asked == ["a"]  # no more questions once closing
    db = sqlite3.connect(tmp_path / "u.sqlite3")
    assert db.execute("SELECT count(*), count(cost) FROM requests").fetchone() == (4, 0)


def test_a_price_the_table_could_not_give_is_asked_again_later(monkeypatch):
    answers = [None, {"source": "genai-prices x", "input": [[0, 1.0]], "output": [[0, 2.0]]}]
    monkeypatch.setattr(prices.TablePrices, "_ask", lambda self, *args: answers.pop(0))
    table = prices.TablePrices()
    tokens = Tokens(1_000_000, 0, 0, 0)
    assert table("https://x", "m", tokens, NOW) == prices.UNPRICED
    assert table("https://x", "m", tokens, NOW) == prices.UNPRICED  # not asked again at once
    monkeypatch.setattr(prices, "RETRY_SECONDS", 0.0)
    assert table("https://x", "m", tokens, NOW) == prices.Priced(1.0, "genai-prices x")


# ---------------------------------------------------------------- writers and readers at once


CLIENT = """
import os, sys, httpx2
base, token = os.environ["ANTHROPIC_BASE_URL"], os.environ["ANTHROPIC_AUTH_TOKEN"]
for n in range(int(sys.argv[1])):
    r = httpx2.post(base + "/v1/messages", timeout=30, headers={"x-api-key": token, "x-claude-code-session-id": sys.argv[2]},
                    json={"model": "gpt-5", "max_tokens": 5, "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200, r.text
"""


def test_several_ccs_run_sessions_write_at_once_and_lose_no_row(fakes, tmp_path):
    glm, gpt = fakes
    write_config(config_text(glm, gpt))
    client = tmp_path / "client.py"
    client.write_text(CLIENT)
    sessions, each = 4, 40
    runs = [subprocess.Popen([sys.executable, "-m", "ccswitch", "run", "gpt", "--", sys.executable, str(client),
                              str(each), f"session-{n}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for n in range(sessions)]
    for run in runs:
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
    counts = dict(usage.connect().execute("SELECT session, count(*) FROM requests GROUP BY session").fetchall())
    assert counts == {f"session-{n}": each for n in range(sessions)}
    log = (Path(os.environ["CCS_HOME"]) / "state" / "proxy.log").read_text()
    assert "locked" not in log and "not recorded" not in log


def test_a_burst_from_one_proxy_is_written_in_few_transactions(tmp_path):
    recorder = usage.Recorder("p", lambda *a: prices.Priced(0.5, "test"), tmp_path / "u.sqlite3")
    for n in range(2000):
        recorder.record(usage.Request(NOW, "s", "p", "m", "m", True, 200, {"input_tokens": n, "output_tokens": 1},
                                      0.01, 0.02, None, ()))
    recorder.close()
    assert (recorder.written, recorder.lost) == (2000, 0)
    db = usage.connect(tmp_path / "u.sqlite3")
    assert db.execute("SELECT count(*), sum(input_tokens), sum(cost) FROM requests").fetchone() == \
        (2000, sum(range(2000)), 1000.0)


def test_odd_usage_from_a_provider_counts_as_nothing(tmp_path):
    assert usage.tokens_of({"input_tokens": "12", "output_tokens": -3, "cache_read_input_tokens": True,
                            "cache_creation_input_tokens": 1e300}) == Tokens()
    assert usage.tokens_of(None) == usage.tokens_of([1, 2]) == Tokens()
    assert usage.tokens_of({"input_tokens": 3.0, "output_tokens": 4}) == Tokens(3, 4)


# ---------------------------------------------------------------- the live view


def test_the_live_view_follows_requests_as_they_are_written(tmp_path):
    pexpect = pytest.importorskip("pexpect")
    seed(SEEDED[0])
    child = pexpect.spawn(sys.executable, ["-m", "ccswitch", "usage", "--live"], env={**os.environ, "COLUMNS": "160"},
                          encoding="utf-8", timeout=20, dimensions=(40, 160))
    try:
        child.expect("glm-4.6")
        recorder = usage.Recorder("mix", lambda *a: prices.Priced(0.125, "test"))
        for model in ("model-one", "model-two"):
            recorder.record(usage.Request(time.time(), "s", "gpt", model, model, True, 200,
                                          {"input_tokens": 1, "output_tokens": 2}, 0.1, 0.2, None, ()))
        recorder.record(usage.Request(time.time(), "s", "glm", "model-three", "x", True, 429, None, None, 0.2,
                                      "rate_limit_error", ("gpt,gpt-5 (503)",)))
        recorder.close()
        child.expect("model-one")
        child.expect("model-three")
        child.expect("4 requests")
        child.sendintr()
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0


# ---------------------------------------------------------------- observed native profiles, the status line


def test_a_native_profiles_requests_are_in_the_log_as_every_profiles_are(fakes, tmp_path):
    """Behind the proxy by default: what once took `--observe` (still taken, meaning nothing now)."""
    glm, gpt = fakes
    write_config(config_text(glm, gpt) + '\n[profiles.watched]\nbase_url = "' + glm.url + '"\nauth = "none"\n'
                 'observe = true\nmodel = "glm-4.6"\n')
    client = tmp_path / "client.py"
    client.write_text(CLIENT)
    for args in (["run", "glm"], ["run", "--observe", "watched"]):
        ran = ccs(*args, "--", sys.executable, str(client), "2", "observed")
        assert ran.returncode == 0, ran.stderr
    assert [(r["profile"], r["target"], r["status"]) for r in logged_rows()] == [("glm", "glm", 200)] * 2 + \
        [("watched", "watched", 200)] * 2
    assert [r.headers.get("authorization") for r in glm.requests] == ["Bearer sk-glm-secret-1111"] * 2 + [None] * 2
    assert profiles.resolve("max", {"preset": "claude", "observe": True}).uses_proxy is False  # old files load


def test_the_status_line_shows_this_sessions_cost_and_tokens_fast():
    write_config('[profiles.glm]\npreset = "zai"\n')
    seed(*SEEDED)
    line = ccs("statusline", input=json.dumps({"session_id": "s1", "model": {"id": "glm-4.6"}}),
               env={"CCS_RUN": "glm"})
    assert line.stdout == "glm · zai · glm-4.6 · $0.75 · 8.0k in / 400 out\n"
    cheap = ccs("statusline", input=json.dumps({"session_id": "s3", "model": {"id": "q"}}), env={"CCS_RUN": "glm"})
    assert cheap.stdout == "glm · zai · q · 50 in / 5 out\n"  # no price known: no cost shown
    unknown = ccs("statusline", input=json.dumps({"session_id": "nope", "model": {"id": "m"}}), env={"CCS_RUN": "glm"})
    assert unknown.stdout == "glm · zai · m\n"
    timed = subprocess.run([sys.executable, "-X", "importtime", "-m", "ccswitch", "statusline"], capture_output=True,
                           input=json.dumps({"session_id": "s1"}), text=True, env={**os.environ, "CCS_RUN": "glm"})
    assert not {"typer", "rich", "genai_prices", "pydantic", "httpx2"} & imported_modules(timed.stderr)
    plan = usage.connect().execute("EXPLAIN QUERY PLAN SELECT sum(cost) FROM requests WHERE session = ?",
                                   ("s1",)).fetchall()
    assert "requests_by_session" in str(plan)


def test_the_status_line_creates_no_log():
    ccs("statusline", input=json.dumps({"session_id": "s1"}), env={"CCS_RUN": "x"})
    assert not usage.log_file().exists()


# ---------------------------------------------------------------- prices

TABLE = prices.TablePrices()  # the list prices as the proxy gets them: from a child process, once per model


def test_a_profiles_own_prices_come_first_and_a_missing_cache_price_is_the_input_price():
    own = {"glm-4.6": {"input": 0.6, "output": 2.2, "cache_read": 0.11}, "*": {"input": 1, "output": 1}}
    tokens = Tokens(input=1_000_000, output=1_000_000, cache_read=1_000_000, cache_write=1_000_000)
    assert prices.price(own, "https://api.z.ai/api/anthropic", "glm-4.6", tokens, NOW, TABLE) == \
        prices.Priced(pytest.approx(0.6 + 2.2 + 0.11 + 0.6), "profile")
    assert prices.price(own, "https://api.z.ai", "other", tokens, NOW, TABLE).cost == 4


def test_list_prices_come_from_genai_prices_by_provider_url_and_model():
    import genai_prices

    tokens = Tokens(input=1_000_000, output=1_000_000)
    priced = prices.price({}, "https://api.z.ai/api/anthropic", "glm-4.6", tokens, NOW, TABLE)
    expected = genai_prices.calc_price(genai_prices.Usage(input_tokens=1_000_000, output_tokens=1_000_000), "glm-4.6",
                                       provider_api_url="https://api.z.ai")
    assert priced == prices.Priced(float(expected.total_price), f"genai-prices {genai_prices.__version__}")
    cached = prices.price({}, "https://api.anthropic.com", "claude-sonnet-4-5", Tokens(100, 10, 10_000, 1_000), NOW, TABLE)
    assert 0 < cached.cost < prices.price({}, "https://api.anthropic.com", "claude-sonnet-4-5",
                                          Tokens(11_100, 10), NOW, TABLE).cost  # cache reads are cheaper than input
    assert prices.price({}, "http://127.0.0.1:9/v1", "glm-4.6", tokens, NOW, TABLE) == prices.UNPRICED
    assert prices.price({}, "https://api.z.ai/api/anthropic", "no-such-model", tokens, NOW, TABLE) == prices.UNPRICED


def test_the_proxy_asks_a_child_for_list_prices_and_gets_the_same_figures_long_context_tiers_included():
    import genai_prices

    table = prices.TablePrices()
    long = Tokens(input=150_000, output=2_000, cache_read=60_000, cache_write=1_000)  # past the 200k tier
    for tokens in (Tokens(1000, 100, 5000, 200), long):
        expected = genai_prices.calc_price(
            genai_prices.Usage(input_tokens=tokens.input + tokens.cache_read + tokens.cache_write,
                               output_tokens=tokens.output, cache_read_tokens=tokens.cache_read,
                               cache_write_tokens=tokens.cache_write),
            "claude-sonnet-4-5", provider_api_url="https://api.anthropic.com")
        priced = prices.price({}, "https://api.anthropic.com", "claude-sonnet-4-5", tokens, NOW, table)
        assert priced.cost == pytest.approx(float(expected.total_price))
    assert len(table.rates) == 1  # one child per model, whatever the number of requests
    assert table("http://127.0.0.1:9", "m", long, NOW) == prices.UNPRICED


def test_local_model_presets_cost_nothing_and_prices_are_validated():
    for preset in ("ollama", "lmstudio", "vllm", "llamacpp"):
        assert profiles.resolve("local", {"preset": preset}).prices == {"*": {"input": 0, "output": 0}}
    merged = profiles.resolve("local", {"preset": "ollama", "prices": {"big": {"input": 1, "output": 2}}}).prices
    assert set(merged) == {"*", "big"}
    for bad, message in (({"m": {"input": -1}}, "must be a number"), ({"m": {"inptu": 1}}, "unknown price"),
                         ({"m": 3}, "must be a table"), ({"m": {"input": True}}, "must be a number")):
        with pytest.raises(profiles.ConfigError, match=message):
            profiles.resolve("p", {"preset": "zai", "prices": bad})


def test_the_example_profiles_show_prices_and_observe():
    text = (Path(__file__).resolve().parents[1] / "profiles.example.toml").read_text()
    config = profiles.parse(text, Path("profiles.example.toml"))
    assert any(p.prices and p.preset not in ("ollama", "lmstudio", "vllm", "llamacpp")
               for p in config.profiles.values())
    assert any(p.observe for p in config.profiles.values())
