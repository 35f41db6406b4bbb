"""Key pools: several keys for one profile (`ccs key add`, `ccs key list`), the proxy moving to the next key on
a rate limit or an exhausted quota (and keeping to it), setting aside a rejected one, the usage row naming
the key that served (masked), and `ccs doctor` checking each. Real proxy, fake provider, keyring backend."""

from __future__ import annotations

import json

import httpx2
import pytest

from ccswitch import keys, profiles
from ccswitch.proxy import lifecycle
from conftest import ccs, logged_rows, write_config
from fakes import FakeServer, anthropic_text_stream, json_reply

FIRST, SECOND, THIRD = "sk-pool-first-1111", "sk-pool-second-2222", "sk-pool-third-3333"


def keyed_provider(answers: dict[str, int]):
    """A provider that answers each key with its status (200 by default): who sent what, in `requests`."""
    def answer(seen):
        key = seen.headers.get("authorization", "").removeprefix("Bearer ")
        status = answers.get(key, 200)
        if status == 200:
            return anthropic_text_stream(f"answered with {key[-4:]}", seen.body["model"])
        kind = {401: "authentication_error", 429: "rate_limit_error"}.get(status, "invalid_request_error")
        message = "You exceeded your current quota" if status == 400 else "no"
        return json_reply({"type": "error", "error": {"type": kind, "message": message}}, status)
    return FakeServer(answer)


@pytest.fixture
def pooled(file_keyring):
    import keyring
    from file_keyring import FileKeyring

    keyring.set_keyring(FileKeyring())  # the same keys for this process's proxy as for `ccs` subprocesses

    def make(answers: dict[str, int]):
        provider = keyed_provider(answers)
        write_config(f'version = 1\n[profiles.glm]\nbase_url = "{provider.url}"\nmodel = "glm-4.6"\n')
        for command, key in (("set", FIRST), ("add", SECOND), ("add", THIRD)):
            assert ccs("key", command, "glm", "--stdin", input=key).returncode == 0
        return provider
    providers = []
    yield lambda answers: providers.append(make(answers)) or providers[-1]
    for provider in providers:
        provider.close()


def sent_keys(provider: FakeServer) -> list[str]:
    return [r.headers["authorization"].removeprefix("Bearer ")[-4:] for r in provider.requests]


def serve():
    config = profiles.load()
    profile = config.get("glm")
    return lifecycle.running_for(config, profile, lifecycle.keys_for(config, profile))


def post(endpoint) -> httpx2.Response:
    return httpx2.post(endpoint.url + "/v1/messages", timeout=20, headers={"authorization": f"Bearer {endpoint.token}"},
                       json={"model": "glm-4.6", "max_tokens": 20, "stream": True,
                             "messages": [{"role": "user", "content": "hi"}]})


def test_key_add_and_list_keep_a_pool_in_order_and_rm_and_rename_take_it_all(pooled):
    pooled({})
    listed = ccs("key", "list", "glm")
    assert listed.returncode == 0
    assert [line.split()[:2] for line in listed.stdout.splitlines()] == [
        ["1", keys.mask(FIRST)], ["2", keys.mask(SECOND)], ["3", keys.mask(THIRD)]]
    assert FIRST not in listed.stdout and SECOND not in listed.stdout
    again = ccs("key", "add", "glm", "--stdin", input=SECOND)
    assert again.returncode == 2 and "holds that key already" in again.stderr
    assert ccs("rename", "glm", "zhipu").returncode == 0
    assert keys.pool(profiles.load().get("zhipu")) == [FIRST, SECOND, THIRD]
    assert ccs("key", "rm", "zhipu", "--yes").returncode == 0
    assert keys.pool(profiles.load().get("zhipu")) == [] and not keys.stored("glm#2")


def test_a_rate_limited_key_hands_over_to_the_next_which_keeps_serving(pooled):
    provider = pooled({FIRST: 429})
    with serve() as endpoint:
        first, second = post(endpoint), post(endpoint)
    assert first.status_code == second.status_code == 200 and "answered with 2222" in first.text
    assert sent_keys(provider) == ["1111", "2222", "2222"]  # the next request stays on the working key
    rows = logged_rows()
    assert [row["key"] for row in rows] == [keys.mask(SECOND)] * 2
    assert f"glm,glm-4.6 key {keys.mask(FIRST)} (429)" in rows[0]["failed"]


def test_a_rejected_key_is_set_aside_and_an_exhausted_quota_moves_on(pooled, capfd):
    provider = pooled({FIRST: 401, SECOND: 400})
    with serve() as endpoint:
        assert "answered with 3333" in post(endpoint).text
        assert "answered with 3333" in post(endpoint).text
    assert sent_keys(provider) == ["1111", "2222", "3333", "3333"]
    log = capfd.readouterr().err
    assert f"key {keys.mask(FIRST)} was rejected (401); set aside" in log and "is out of quota" in log
    assert FIRST not in log and SECOND not in log


def test_every_key_failing_answers_the_providers_error(pooled):
    provider = pooled({FIRST: 429, SECOND: 429, THIRD: 429})
    with serve() as endpoint:
        assert post(endpoint).status_code == 429
        after = post(endpoint)  # all cooling down now
    assert after.status_code == 429 and "every key is rate limited" in after.json()["error"]["message"]
    assert len(provider.requests) == 3


def test_doctor_checks_each_key_of_a_pool(pooled):
    def models(seen):
        key = seen.headers.get("authorization", "").removeprefix("Bearer ")
        return json_reply({"data": [{"id": "glm-4.6"}]}) if key != SECOND else \
            json_reply({"type": "error", "error": {"type": "authentication_error", "message": "bad key"}}, 401)
    provider = pooled({})
    provider.script = models
    findings = json.loads(ccs("doctor", "--json").stdout)
    by_check = {f["check"].split(":")[0]: f["level"] for f in findings if f["check"].startswith("glm")}
    assert by_check == {f"glm key 1 ({keys.mask(FIRST)})": "ok", f"glm key 2 ({keys.mask(SECOND)})": "fail",
                        f"glm key 3 ({keys.mask(THIRD)})": "ok"}
