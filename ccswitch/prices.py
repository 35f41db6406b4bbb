"""What a request cost, in US dollars: the profile's own `prices` when it has them, else the list price in
genai-prices (a maintained table of providers' prices over time, matched by the provider's URL and the
model name; update it with `pip install -U genai-prices`).

genai-prices brings pydantic: only the usage log's writer thread and `ccs usage` import it, never a
request's path or `ccs statusline`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import NamedTuple

MILLION = 1_000_000
TABLE = "genai-prices"


class Tokens(NamedTuple):
    input: int = 0  # not read from the cache, as Anthropic counts `input_tokens`
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0


class Priced(NamedTuple):
    cost: float | None  # None: no price known for this provider and model
    source: str | None  # "profile" (its own `prices`) or "genai-prices 0.2.3"


UNPRICED = Priced(None, None)


def own_price(prices: Mapping[str, Mapping[str, float]], model: str, tokens: Tokens) -> Priced | None:
    """From a profile's `prices` (per million tokens; `"*"` for any model). A cache price not given is the
    input price: what the tokens would cost without the cache, never less than they did."""
    price = prices.get(model) or prices.get(model.lower()) or prices.get("*")
    if price is None:
        return None
    plain = price.get("input", 0)
    cost = (tokens.input * plain + tokens.output * price.get("output", 0)
            + tokens.cache_read * price.get("cache_read", plain) + tokens.cache_write * price.get("cache_write", plain))
    return Priced(cost / MILLION, "profile")


def table_price(base_url: str, model: str, tokens: Tokens, when: float) -> Priced:
    """From genai-prices, at the price in force at `when` (a Unix time); UNPRICED when it knows neither the
    provider at `base_url` nor the model there."""
    import genai_prices

    usage = genai_prices.Usage(input_tokens=tokens.input + tokens.cache_read + tokens.cache_write,
                               output_tokens=tokens.output, cache_read_tokens=tokens.cache_read,
                               cache_write_tokens=tokens.cache_write)
    try:
        priced = genai_prices.calc_price(usage, model, provider_api_url=base_url,
                                         genai_request_timestamp=datetime.fromtimestamp(when, timezone.utc))
    except (LookupError, ValueError):
        return UNPRICED
    return Priced(float(priced.total_price), table_source())


def table_source() -> str:
    import genai_prices

    return f"{TABLE} {genai_prices.__version__}"


def price(prices: Mapping, base_url: str, model: str, tokens: Tokens, when: float) -> Priced:
    return own_price(prices, model, tokens) or table_price(base_url, model, tokens, when)
