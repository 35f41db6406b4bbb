"""The proxy's JSON (orjson, with `json` behind it) reads and writes what `json` would, digit for digit."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccswitch.proxy import jsonio
from ccswitch.proxy.app import _finite, _not_a_number

STRICT = {"parse_constant": _not_a_number, "parse_float": _finite}
values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=40)


@settings(max_examples=400, deadline=None)
@given(values)
def test_what_json_reads_jsonio_reads_the_same(value):
    text = json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
    try:
        expected = json.loads(text)
    except ValueError:  # a lone surrogate: json refuses its UTF-8-encoded bytes, and so must jsonio
        with pytest.raises(ValueError):
            jsonio.loads(text)
        return
    assert jsonio.loads(text) == expected


@settings(max_examples=400, deadline=None)
@given(values)
def test_what_jsonio_writes_reads_back(value):
    written = jsonio.dumps(value)
    assert json.loads(written) == json.loads(json.dumps(value, ensure_ascii=False).encode("utf-16", "surrogatepass")
                                             .decode("utf-16", "replace"))


def test_integers_past_64_bits_keep_every_digit():
    big = 2**70 + 1
    assert jsonio.loads(b'{"id": %d, "neg": -%d}' % (big, big)) == {"id": big, "neg": -big}
    assert jsonio.loads(jsonio.dumps({"id": big})) == {"id": big}


@pytest.mark.parametrize("raw", [b'{"a": NaN}', b'{"a": Infinity}', b'{"a": 1e400}'])
def test_what_json_refuses_in_strict_mode_is_refused(raw):
    with pytest.raises(ValueError):
        jsonio.loads(raw, **STRICT)


def test_writing_what_orjson_cannot():
    assert jsonio.dumps({"a": "\ud83d!"}) == '{"a":"\ufffd!"}'.encode()  # a lone surrogate
    assert jsonio.dumps({1: 2}) == b'{"1":2}'
    deep = []
    for _ in range(400):  # past orjson's nesting limit
        deep = [deep]
    assert jsonio.loads(jsonio.dumps(deep)) == deep
    assert jsonio.dumps({"x": math.nan}) == b'{"x":null}'  # a provider's NaN reaches claude as valid JSON
