"""Hypothesis strategies the translators' property tests share: parts of Anthropic requests, and any JSON a
provider might send."""

from __future__ import annotations

from hypothesis import strategies as st

text = st.text(min_size=1, max_size=20)
tool_name = st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,90}", fullmatch=True)
image = st.builds(lambda d: {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": d}},
                  st.text("abcdef", min_size=1, max_size=8))
user_block = st.one_of(st.builds(lambda t: {"type": "text", "text": t}, text), image)


def any_json(keys: list[str], words: list[str]):
    """Any JSON value, its object keys and some of its strings drawn from an API's own words."""
    scalars = st.none() | st.booleans() | st.integers(-2, 3) | st.text(max_size=4) | st.sampled_from(words)
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.sampled_from(keys), inner, max_size=4), max_leaves=20)
