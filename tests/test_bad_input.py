"""Hostile and odd input: whatever a client sends, the proxy answers in Anthropic's shape, a 4xx when the
input is at fault, never a 5xx, never a crash; whatever a profiles file holds, a clear error or a profile.

"Refused with a reason" means check_request's InvalidRequest: a request may not pass only because a bug
of ours raised a TypeError that became a 400 (the proxy logs those as bugs, and the tests expect none).
"""

from __future__ import annotations

import copy
import json
import socket
import tomllib
from pathlib import Path

import httpx2
import pytest
import tomlkit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccswitch import profiles
from ccswitch.errors import CcsError
from ccswitch.proxy import jsonio
from ccswitch.proxy.anthropic import InvalidRequest, check_request, estimate_tokens
from ccswitch.proxy.to_openai import translate_request
from ccswitch.proxy.upstream import Upstream
from conftest import FIXTURES, options_for
from fakes import Reply, json_reply, sse
from proxy_harness import SIMPLE, Harness, chunk, completion

UP = Upstream(api="openai", name="gpt", base_url="https://api.example/v1", model="gpt-main", models={"haiku": "gpt-small"})
REAL = [json.loads(path.read_text()) for path in sorted(FIXTURES.glob("*.json"))
        if path.name != "index.json" and "messages" in json.loads(path.read_text())]

_KEYS = st.sampled_from(["model", "messages", "max_tokens", "role", "content", "type", "text", "source", "data",
                         "media_type", "url", "id", "name", "input", "tool_use_id", "is_error", "system", "tools",
                         "input_schema", "tool_choice", "thinking", "budget_tokens", "output_config", "effort",
                         "stream", "metadata", "user_id", "stop_sequences", "temperature", "title", "tool_name"])
_WORDS = st.sampled_from(["user", "assistant", "system", "robot", "text", "image", "tool_use", "tool_result",
                          "thinking", "redacted_thinking", "document", "search_result", "tool_reference", "base64",
                          "url", "content", "auto", "any", "tool", "none", "enabled", "adaptive", "claude-x"])
_SCALARS = (st.none() | st.booleans() | st.integers(-3, 10**6) | st.floats(allow_nan=False, allow_infinity=False)
            | st.text(max_size=6) | _WORDS)
ANY_JSON = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=5),
                        max_leaves=30)


def _paths(value, at=()):
    """Every place in a JSON value, as a path of keys and indices."""
    yield at
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*at, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*at, index))


@st.composite
def mutated_requests(draw):
    """A real Claude Code request with a few places replaced by arbitrary JSON, or removed."""
    req = copy.deepcopy(draw(st.sampled_from(REAL)))
    for _ in range(draw(st.integers(1, 3))):
        places = [path for path in _paths(req) if path]
        path = draw(st.sampled_from(places))
        parent = req
        for step in path[:-1]:
            parent = parent[step]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(ANY_JSON)
    return req


def translated_or_refused(req) -> dict | None:
    """The upstream body, or None when the request was refused with a reason; anything else fails the test."""
    try:
        body, _ = translate_request(req, options_for(UP, req))
    except InvalidRequest:
        return None
    jsonio.dumps(body)  # and what goes upstream can be sent
    return body


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(_KEYS, ANY_JSON, max_size=8))
def test_property_any_json_object_is_translated_or_refused_with_a_reason(req):
    translated_or_refused(req)
    estimate_tokens(req)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated_requests())
def test_property_real_requests_with_wrong_types_anywhere_are_translated_or_refused(req):
    translated_or_refused(req)
    estimate_tokens(req)


def test_unknown_block_types_are_dropped_known_ones_with_wrong_fields_refused():
    unknown = {**SIMPLE, "messages": [{"role": "user", "content": [{"type": "hologram", "x": 1},
                                                                   {"type": "text", "text": "hi"}]}]}
    assert translated_or_refused(unknown)["messages"] == [{"role": "user", "content": "hi"}]
    for block, words in [({"type": "text", "text": 5}, "messages.0.content.0.text: must be a string"),
                         ({"type": "tool_result"}, "messages.0.content.0.tool_use_id: field required"),
                         ({"type": "image", "source": {"type": "base64", "data": None}},
                          "messages.0.content.0.source.data: must be a string"),
                         ({"text": "no type"}, "messages.0.content.0: must be a content block with a string `type`")]:
        with pytest.raises(InvalidRequest, match=words.replace(".", r"\.").replace("`", "`")):
            check_request({**SIMPLE, "messages": [{"role": "user", "content": [block]}]})
    with pytest.raises(InvalidRequest, match="max_tokens: must be an integer"):
        check_request({**SIMPLE, "max_tokens": True})


# ---------------------------------------------------------------- over real sockets

ANSWER = json_reply(completion("fine"))


def post_raw(h: Harness, raw: bytes, path: str = "/v1/messages", headers: dict | None = None) -> httpx2.Response:
    return httpx2.post(h.endpoint.url + path, content=raw, timeout=30,
                       headers={"x-api-key": h.endpoint.token, "content-type": "application/json", **(headers or {})})


def assert_refused(response: httpx2.Response, status: int = 400, words: str = "") -> None:
    assert response.status_code == status, response.text
    error = response.json()
    assert error["type"] == "error" and error["error"]["type"] in ("invalid_request_error", "request_too_large")
    assert words in error["error"]["message"]


@pytest.fixture(scope="module")
def proxy():
    with Harness(lambda seen: ANSWER, max_request_mb=1) as h:
        yield h
        assert h.bugs == []


@pytest.mark.parametrize("raw, words", [
    (b'{"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "\xff\xfe"}]}', "not valid JSON"),
    (b'{"model": "m", "max_tokens": 5, "temperature": NaN, "messages": []}', "NaN is not a JSON number"),
    (b'{"model": "m", "max_tokens": 5, "temperature": Infinity, "messages": []}', "Infinity is not a JSON number"),
    (b'{"model": "m", "max_tokens": 5, "temperature": -Infinity, "messages": []}', "Infinity is not a JSON number"),
    (b'{"model": "m", "max_tokens": 5, "temperature": 1e400, "messages": []}', "1e400 is out of range"),
    (b'{"model": "m", "max_tokens": 5, "messages": [' + b"[" * 100000 + b"]" * 100000 + b"]}", "nested too deeply"),
    (b"", "not valid JSON"), (b"[]", "must be a JSON object"), (b'"text"', "must be a JSON object"),
    (b'{"model": "m", "messages": "x"}', "messages: must be a list"),
    (b'{"model": 7, "messages": [{"role": "user", "content": "x"}]}', "model: must be a string"),
], ids=["invalid-utf8", "nan", "infinity", "-infinity", "1e400", "deep-100000", "empty", "list", "string",
        "messages-string", "model-number"])
def test_bodies_that_no_provider_can_take_are_400s(proxy, raw, words):
    assert_refused(post_raw(proxy, raw), 400, words)
    assert_refused(post_raw(proxy, raw, "/v1/messages/count_tokens"), 400)


@pytest.mark.parametrize("depth", [50, 400, 900])
def test_deep_nesting_that_parses_is_translated_or_refused_never_a_500(proxy, depth):
    """Deep but parseable: tool schemas and tool results nest; count_tokens used to fail at a few hundred levels."""
    schema = '{"type": "object", "properties": {"x": ' * (depth // 2) + "{}" + "}}" * (depth // 2)
    raw = json.dumps(SIMPLE)[:-1] + ', "tools": [{"name": "Deep", "input_schema": ' + schema + "}]}"
    response = post_raw(proxy, raw.encode())
    assert response.status_code in (200, 400), response.text
    counted = post_raw(proxy, raw.encode(), "/v1/messages/count_tokens")
    assert counted.status_code == 200 and counted.json()["input_tokens"] >= 1


def test_a_lone_surrogate_goes_upstream_as_a_replacement_character(proxy):
    text = "cut emoji: \ud83d and a whole one \U0001F600"
    raw = json.dumps({**SIMPLE, "messages": [{"role": "user", "content": text}]})
    before = len(proxy.requests)
    response = post_raw(proxy, raw.encode())
    assert response.status_code == 200, response.text
    assert proxy.requests[before].body["messages"][-1]["content"] == "cut emoji: \ufffd and a whole one \U0001F600"


def test_huge_strings_pass_and_an_oversize_body_is_a_413(proxy):
    big = json.dumps({**SIMPLE, "messages": [{"role": "user", "content": "x" * 900_000}]}).encode()
    assert post_raw(proxy, big).status_code == 200
    assert_refused(post_raw(proxy, big + b" " * 200_000), 413, "max_request_mb")
    chunked = post_raw(proxy, iter([big[:1000], big[1000:] + b" " * 200_000]))  # no content-length: chunked
    assert_refused(chunked, 413, "max_request_mb")
    assert post_raw(proxy, iter([big[:10], big[10:]])).status_code == 200  # a chunked body that fits


def test_a_post_without_content_length_or_chunking_is_an_empty_body(proxy):
    port = int(proxy.endpoint.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: " + proxy.endpoint.token.encode()
                     + b"\r\nconnection: close\r\n\r\n")
        answer = b""
        while chunk_ := sock.recv(65536):
            answer += chunk_
    assert answer.startswith(b"HTTP/1.1 400") and b"not valid JSON" in answer


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(mutated_requests(), st.dictionaries(_KEYS, ANY_JSON, max_size=8)))
def test_property_odd_requests_over_real_sockets_are_answered_never_a_5xx(proxy, req):
    response = post_raw(proxy, jsonio.dumps(req))
    if response.status_code == 200:
        assert translated_or_refused(req) is not None
    else:
        assert_refused(response)
        assert translated_or_refused(req) is None
    assert proxy.bugs == []


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(ANY_JSON, st.sampled_from(REAL))
def test_property_count_tokens_takes_any_max_tokens_never_a_5xx(proxy, max_tokens, req):
    """Found by the reliability harness: count_tokens with max_tokens a string, a list or an object was a 500."""
    response = post_raw(proxy, jsonio.dumps({**req, "max_tokens": max_tokens}), "/v1/messages/count_tokens")
    assert response.status_code in (200, 400), response.text
    assert proxy.bugs == []


def test_the_proxy_serves_normally_after_all_that(proxy):
    assert proxy.sdk.messages.create(**SIMPLE).content[0].text == "fine"


def test_odd_provider_streams_are_answered_without_a_bug_of_ours():
    odd = [b"data: 5\n\n", b'data: {"choices": "no"}\n\n', b'data: {"choices": [{"delta": []}]}\n\n',
           b'data: {"choices": [{"delta": {"tool_calls": [{"index": "0"}]}}]}\n\n', b"data: {broken\n\n"]
    for piece in odd:
        with Harness(lambda seen: Reply(200, {"Content-Type": "text/event-stream"}, [piece])) as h:
            response = h.post(body={**SIMPLE, "stream": True})
            assert response.status_code == 502 and "ccs" not in response.json()["error"]["message"]
            assert h.bugs == []
    stream = sse([chunk({"content": "ok"}, finish="stop")])
    with Harness(lambda seen: Reply(200, {"Content-Type": "text/event-stream"}, stream)) as h:
        assert h.post(body={**SIMPLE, "stream": True}).status_code == 200


# ---------------------------------------------------------------- the profiles file

_TOML_SCALARS = (st.booleans() | st.integers(-3, 10**12) | st.floats() | st.text(max_size=6) | _WORDS
                 | st.datetimes(timezones=st.none()))
_FIELD_VALUES = st.one_of(_TOML_SCALARS, st.lists(_TOML_SCALARS, max_size=3),
                          st.dictionaries(st.text(max_size=8), _TOML_SCALARS, max_size=3))
_PROFILE = st.dictionaries(st.sampled_from([*profiles.FIELDS, "modle", "key"]), _FIELD_VALUES, max_size=6)


@st.composite
def profile_files(draw) -> str:
    doc = tomlkit.document()
    if draw(st.booleans()):
        doc["version"] = draw(st.one_of(st.integers(-1, 3), st.text(max_size=3)))
    if draw(st.booleans()):
        doc["secret_store"] = draw(st.one_of(st.sampled_from(profiles.SECRET_STORES), st.text(max_size=5)))
    table = tomlkit.table(is_super_table=True)
    for name in draw(st.lists(st.text(max_size=8) | st.sampled_from(["glm", "a.b", "-x"]), max_size=4, unique=True)):
        values = draw(_PROFILE)
        if draw(st.booleans()):
            values["preset"] = draw(st.sampled_from([*profiles.PRESETS, "nope"]))
        table[name] = values
    doc["profiles"] = table
    return tomlkit.dumps(doc)


def load_or_refuse(text: str) -> None:
    try:
        config = profiles.parse(text, Path("profiles.toml"))
    except CcsError as e:
        assert "\n" not in str(e).strip() or "TOML" in str(e)
        return
    for profile in config.profiles.values():
        assert profile.name in config.profiles


@settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))
@given(profile_files())
def test_property_any_profiles_file_loads_or_is_refused_with_a_reason(text):
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return  # tomlkit wrote something tomllib refuses (odd keys): the loader's TOML error covers it
    load_or_refuse(text)


@settings(max_examples=800, deadline=None)
@given(st.text(alphabet=st.sampled_from(list('[]{}="\'., \nprofilesglmvrtnaeu=0123#')), max_size=120))
def test_property_random_text_as_a_profiles_file_is_a_clear_error_or_a_config(text):
    load_or_refuse(text)
