"""Budgets that hold: spend is what the usage log recorded (every session's), a request past a budget is
refused at once (or sent to the fallback), from 80% the proxy log and the status line say so, `ccs usage`
shows spent against budget. Real proxy, real sockets, fake providers; the real claude in test_real_claude."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest

from ccswitch import budgets, profiles, usage
from ccswitch.proxy import lifecycle
from conftest import ccs, logged_rows, write_config
from fakes import FakeServer, anthropic_text_stream

PRICED = 'prices = { "*" = { input = 1.0, output = 2.0 } }'


@pytest.fixture
def providers(no_keyring):
    glm = FakeServer(lambda seen: anthropic_text_stream("from glm", seen.body["model"]))
    ds = FakeServer(lambda seen: anthropic_text_stream("from ds", seen.body["model"]))
    yield glm, ds
    glm.close()
    ds.close()


def config(glm: FakeServer, ds: FakeServer, glm_extra: str = "") -> str:
    return f"""
version = 1
[profiles.glm]
base_url = "{glm.url}"
auth = "none"
model = "glm-4.6"
{PRICED}
{glm_extra}

[profiles.ds]
base_url = "{ds.url}"
auth = "none"
model = "deepseek-flash"
{PRICED}
"""


def spend(profile: str, cost: float, when: float | None = None, target: str | None = None) -> None:
    """A request another session made (its cost as the log recorded it)."""
    db = usage.connect()
    db.execute("INSERT INTO requests (time, profile, target, model, stream, status, duration_ms, cost) VALUES "
               "(?, ?, ?, 'm', 1, 200, 5, ?)", (when or time.time(), profile, target or profile, cost))
    db.close()


def serve(text: str, name: str):
    write_config(text)
    config = profiles.load()
    profile = config.get(name)
    return lifecycle.running_for(config, profile, lifecycle.keys_for(config, profile))


def post(endpoint, content: str = "hi") -> httpx2.Response:
    return httpx2.post(endpoint.url + "/v1/messages", timeout=20, headers={"authorization": f"Bearer {endpoint.token}"},
                       json={"model": "claude-sonnet-4-6", "max_tokens": 50, "stream": True,
                             "messages": [{"role": "user", "content": content}]})


def test_a_request_past_the_budget_is_refused_before_it_is_sent(providers):
    glm, ds = providers
    spend("glm", 4.0)
    spend("mix", 9.0, target="glm", when=time.time() - 40 * 86400)  # long ago: another month
    with serve(config(glm, ds, "budget = { day = 5.0, month = 50.0 }"), "glm") as endpoint:
        assert post(endpoint).status_code == 200  # $4 of $5: still sent
        spend("glm", 1.5)  # another session's request meanwhile
        deadline = time.monotonic() + 60
        while (refused := post(endpoint)).status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.5)  # the proxy reads the spend again within budgets.REFRESH seconds of a write
    assert refused.status_code == 429 and refused.headers["x-should-retry"] == "false"
    message = refused.json()["error"]["message"]
    assert "profile 'glm' has spent $5.50 of its $5.00 budget today" in message
    assert "ccs set glm budget.day=" in message
    sent = len(glm.requests)
    assert logged_rows()[-1]["status"] == 429 and len(glm.requests) == sent  # refused, not sent


def test_over_budget_with_fallback_goes_to_the_fallback_routes(providers, capfd):
    glm, ds = providers
    spend("glm", 6.0)
    extra = 'budget = { day = 5.0 }\nover_budget = "fallback"\nfallback = ["ds,deepseek-flash"]'
    with serve(config(glm, ds, extra), "glm") as endpoint:
        answered = post(endpoint)
    assert answered.status_code == 200 and "from ds" in answered.text and not glm.requests
    assert "glm,glm-4.6 (over budget)" in logged_rows()[-1]["failed"]
    assert "-> ds,deepseek-flash stream 200" in capfd.readouterr().err


def test_a_router_budget_counts_what_it_served_and_warns_once_from_80_percent(providers, capfd):
    glm, ds = providers
    text = config(glm, ds) + '\n[profiles.mix]\nmodels = { sonnet = "glm,glm-4.6" }\nbudget = { day = 10.0 }\n'
    spend("mix", 8.5, target="ds")  # routed elsewhere, still the router's spend
    with serve(text, "mix") as endpoint:
        for _ in range(2):
            assert post(endpoint).status_code == 200
    log = capfd.readouterr().err
    assert log.count("profile 'mix' has spent $8.50/$10.00 today of its budget") == 1


def test_usage_and_the_status_line_show_spent_against_budget(providers):
    glm, ds = providers
    write_config(config(glm, ds, "budget = { day = 5.0, month = 50.0 }"))
    spend("glm", 4.25)
    report = json.loads(ccs("usage", "--json").stdout)
    assert {(b["period"], b["budget"], b["spent"]) for b in report["budgets"]} == {("day", 5.0, 4.25),
                                                                                 ("month", 50.0, 4.25)}
    assert any("Budget: profile 'glm' has spent $4.25 of $5.00 today" in note for note in report["notes"])
    line = subprocess.run([sys.executable, "-m", "ccswitch", "statusline"], input=json.dumps(
        {"session_id": "s", "model": {"id": "glm-4.6"}}), capture_output=True, text=True,
        env={**__import__("os").environ, "CCS_RUN": "glm"}).stdout
    assert "$4.25/$5.00 today" in line


@pytest.mark.parametrize(("extra", "words"), [
    ('budget = { week = 5.0 }', "unknown period 'week'"),
    ('budget = { day = 0 }', "budget.day must be a number of US dollars above 0"),
    ('budget = { day = 5.0 }\nover_budget = "shrug"', "over_budget must be one of refuse, fallback"),
])
def test_bad_budgets_are_one_clear_line_and_exit_2(providers, extra, words):
    glm, ds = providers
    write_config(config(glm, ds, extra))
    result = ccs("list")
    assert result.returncode == 2 and words in result.stderr


def test_a_profile_without_prices_cannot_have_a_budget(no_keyring):
    write_config('version = 1\n[profiles.x]\nbase_url = "https://llm.example"\nbudget = { day = 5.0 }\n')
    result = ccs("list")
    assert result.returncode == 2 and "a budget needs prices to count against" in result.stderr
    write_config('version = 1\n[profiles.x]\npreset = "deepseek"\nbudget = { day = 5.0 }\n')  # list prices
    assert ccs("list").returncode == 0


def test_the_presets_said_to_have_list_prices_have_them():
    from ccswitch.presets import LISTED, PRESETS
    from ccswitch.prices import table_rates

    for name in LISTED:
        fields = PRESETS[name].fields
        model = fields.get("model") or fields.get("models", {}).get("sonnet") or "claude-sonnet-4-5"
        assert table_rates(fields["base_url"], model, time.time()), name


def test_spend_periods_begin_at_local_midnight_and_the_first_of_the_month():
    now = time.mktime((2026, 12, 4, 15, 30, 0, 0, 0, -1))
    starts = budgets.period_starts(now)
    assert time.localtime(starts["day"])[:6] == (2026, 12, 4, 0, 0, 0)
    assert time.localtime(starts["month"])[:6] == (2026, 12, 1, 0, 0, 0)


def test_an_image_description_is_not_asked_of_a_vision_profile_past_its_budget(providers):
    """What the proxy asks by itself (a description for a text-only model) spends budgets like any request."""
    import base64

    from fakes import png

    glm, ds = providers
    spend("ds", 3.0)
    text = config(glm, ds, 'vision = "ds,deepseek-flash"').replace('model = "deepseek-flash"\n',
                                                                    'model = "deepseek-flash"\nbudget = { day = 2.0 }\n')
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": base64.b64encode(png((255, 0, 0))).decode()}}
    with serve(text, "glm") as endpoint:
        answered = httpx2.post(endpoint.url + "/v1/messages", timeout=20,
                               headers={"authorization": f"Bearer {endpoint.token}"},
                               json={"model": "glm-4.6", "max_tokens": 50, "messages": [
                                   {"role": "user", "content": [image, {"type": "text", "text": "what is it?"}]}]})
    assert answered.status_code == 200 and not ds.requests  # the turn goes on, the description is not asked
    sent = json.dumps(glm.requests[-1].body)
    assert "not described" in sent and "budget" in sent


@pytest.mark.parametrize("extra", ['budget = { day = 5.0 }', 'models = { compaction = "glm-4.5-air" }'])
def test_what_only_the_proxy_holds_is_refused_on_a_profile_without_it(no_keyring, extra):
    write_config(f'version = 1\n[profiles.x]\npreset = "deepseek"\ndirect = true\n{extra}\n')
    result = ccs("list")
    assert result.returncode == 2 and "by the proxy, and this profile runs without it (direct = true)" in result.stderr


def test_the_budget_warning_goes_to_the_proxy_log_once_a_request_goes_through_that_profile(providers, tmp_path):
    """Not at start (before the log is set up, over claude's screen), not for profiles the session never uses."""
    glm, ds = providers
    spend("glm", 4.5)
    spend("ds", 4.5)
    text = config(glm, ds, "budget = { day = 5.0 }").replace('model = "deepseek-flash"\n',
                                                             'model = "deepseek-flash"\nbudget = { day = 5.0 }\n')
    write_config(text)
    config_ = profiles.load()
    profile = config_.get("glm")
    log = tmp_path / "proxy.log"
    with lifecycle.running_for(config_, profile, lifecycle.keys_for(config_, profile), log_file=str(log)) as endpoint:
        assert "budget" not in log.read_text()
        assert post(endpoint).status_code == 200
    written = log.read_text()
    assert "profile 'glm' has spent $4.50/$5.00 today of its budget" in written and "'ds'" not in written


def test_a_budgeted_profiles_model_without_a_price_costs_its_highest_price():
    from ccswitch import prices

    config = profiles.parse('version = 1\n[profiles.glm]\nbase_url = "http://127.0.0.1:9"\nauth = "none"\n'
                            'prices = { "glm-4.6" = { input = 1, output = 2 }, "glm-5" = { input = 3, output = 9 } }\n'
                            'budget = { day = 1 }\n[profiles.free]\nbase_url = "http://127.0.0.1:9"\nauth = "none"\n'
                            'prices = { "m" = { input = 1, output = 1 } }\n', Path("p.toml"))
    tokens = usage.Tokens(1_000_000, 1_000_000, 0, 0)
    price = prices.ProfilePrices(config, table=lambda *_: prices.UNPRICED)
    assert price("glm", "glm-4.6", tokens, 0) == (3.0, "profile")
    assert price("glm", "glm-4.6-air", tokens, 0) == (12.0, prices.HIGHEST)  # at glm-5's: counted, not $0
    assert price("free", "other", tokens, 0) == prices.UNPRICED  # no budget: an unknown price stays unknown
