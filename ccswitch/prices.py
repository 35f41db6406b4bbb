"""What a request cost, in US dollars: the profile's own `prices` when it has them, else the list price in
genai-prices (a maintained table of providers' prices over time, matched by the provider's URL and the
model name; update it with `pip install -U genai-prices`).

The table and the pydantic it is built on take 12 MB, which a proxy that lives all day should not carry:
the usage log's writer asks a short-lived `python -m ccswitch.prices` for a model's rates
once per proxy, and prices each request from those (`TablePrices`). Nothing else imports genai-prices.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import NamedTuple

MILLION = 1_000_000
KINDS = ("input", "output", "cache_read", "cache_write")
ASK_SECONDS = 15.0  # the most one question to the price table may take (it imports the table: ~0.5 s)
RETRY_SECONDS = 600.0  # a price the table could not give is asked again after this long


class Tokens(NamedTuple):
    input: int = 0  # not read from the cache, as Anthropic counts `input_tokens`
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0


class Priced(NamedTuple):
    cost: float | None  # None: no price known for this provider and model
    source: str | None  # "profile" (its own `prices`), HIGHEST, or "genai-prices 0.2.3"


UNPRICED = Priced(None, None)
HIGHEST = "profile (its highest price)"  # the source of a budgeted profile's price for a model it does not list


def own_price(prices: Mapping[str, Mapping[str, float]], model: str, tokens: Tokens) -> Priced | None:
    """From a profile's `prices` (per million tokens; `"*"` for any model). A cache price not given is the
    input price: what the tokens would cost without the cache (less than a provider that charges extra for
    cache writes bills them)."""
    price = prices.get(model) or prices.get(model.lower()) or prices.get("*")
    if price is None:
        return None
    plain = price.get("input", 0)
    cost = (tokens.input * plain + tokens.output * price.get("output", 0)
            + tokens.cache_read * price.get("cache_read", plain) + tokens.cache_write * price.get("cache_write", plain))
    return Priced(cost / MILLION, "profile")


def table_cost(rates: dict, tokens: Tokens) -> Priced:
    """A request's cost from a model's rates (see `table_rates`). As in the table, a tier's price applies
    to all of a request's tokens once its input (cached or not) is past the tier's start."""
    prompt = tokens.input + tokens.cache_read + tokens.cache_write
    cost = 0.0
    for kind, count in zip(KINDS, tokens):
        tiers = rates.get(kind) or rates["input"]
        cost += count * next(price for start, price in reversed(tiers) if start == 0 or prompt > start)
    return Priced(cost / MILLION, rates["source"])


def table_rates(base_url: str, model: str, when: float) -> dict | None:
    """{"source", and per kind [[tier start, USD per million], ...]} from genai-prices for `model` at
    `base_url` at the time `when`; None when it knows neither."""
    from datetime import datetime, timezone

    import genai_prices

    usage = genai_prices.Usage(input_tokens=1, output_tokens=1)
    try:
        price = genai_prices.calc_price(usage, model, provider_api_url=base_url,
                                        genai_request_timestamp=datetime.fromtimestamp(when, timezone.utc)).model_price
    except (LookupError, ValueError):
        return None
    rates: dict = {"source": f"genai-prices {genai_prices.__version__}"}
    for kind in KINDS:
        value = getattr(price, f"{kind}_mtok", None)
        if value is not None:
            tiers = [(0, value)] if not hasattr(value, "tiers") else \
                [(0, value.base), *((tier.start, tier.price) for tier in value.tiers)]
            rates[kind] = [[start, float(amount)] for start, amount in tiers]
    return rates if "input" in rates else None


class TablePrices:
    """List prices for the usage log's writer: each (URL, model)'s rates asked of a child process once (one
    that could not be had, again after RETRY_SECONDS); once the log is closing, only rates already known."""

    def __init__(self):
        self.rates: dict[tuple[str, str], tuple[float, dict | None]] = {}  # -> (when asked, rates)
        self.known_only = False

    def closing(self) -> None:
        self.known_only = True

    def __call__(self, base_url: str, model: str, tokens: Tokens, when: float) -> Priced:
        import time

        key = (base_url, model)
        asked, rates = self.rates.get(key, (None, None))
        if not self.known_only and (asked is None or rates is None and time.monotonic() - asked > RETRY_SECONDS):
            rates = self._ask(base_url, model, when)
            self.rates[key] = (time.monotonic(), rates)
        return UNPRICED if rates is None else table_cost(rates, tokens)

    @staticmethod
    def _ask(base_url: str, model: str, when: float) -> dict | None:
        import subprocess

        try:
            # -P: the current directory (claude's project, any cloned repo) is not put on the child's sys.path;
            # the question goes on stdin, not argv, which every local user can read
            answer = subprocess.run([sys.executable, "-P", "-m", "ccswitch.prices"], input=json.dumps(
                [base_url, model, when]), capture_output=True, text=True, timeout=ASK_SECONDS, check=True)
            return json.loads(answer.stdout)
        except (OSError, subprocess.SubprocessError, ValueError) as e:
            import logging

            detail = getattr(e, "stderr", None) or e
            logging.getLogger("ccswitch.usage").warning("ccs: no list price for %s at %s (the price table could not "
                                                        "be read: %s)", model, base_url, str(detail).strip()[-300:])
            return None


def price(prices: Mapping, base_url: str, model: str, tokens: Tokens, when: float, table: TablePrices) -> Priced:
    """The profile's own price, else the table's."""
    if (own := own_price(prices, model, tokens)) is not None:
        return own
    return table(base_url, model, tokens, when)


class ProfilePrices:
    """(target profile, model, tokens, time) -> Priced, for the usage log's writer: the profile's own `prices`,
    else the price table's for its provider's URL, else (a budgeted profile) the highest of its own."""

    def __init__(self, config, table: TablePrices | None = None):
        self.config = config
        self.table = table or TablePrices()

    def __call__(self, name: str, model: str, tokens: Tokens, when: float) -> Priced:
        profile = self.config.find(name)
        if profile is None:
            return UNPRICED
        priced = price(profile.prices, profile.url, model, tokens, when, self.table)
        if priced.cost is None and profile.budget and profile.prices:
            return highest(profile.prices, tokens)
        return priced

    def closing(self) -> None:
        self.table.closing()


def highest(prices: Mapping[str, Mapping[str, float]], tokens: Tokens) -> Priced:
    """A budgeted profile's request for a model it has no price for, at the dearest of its prices: a budget
    that counted such requests at nothing would never stop them (a repository's agent can name any model)."""
    costs = [own_price({model: price}, model, tokens) for model, price in prices.items()]
    return Priced(max(cost.cost for cost in costs), HIGHEST)


if __name__ == "__main__":  # the writer's question on stdin: ["URL", "MODEL", TIME]
    print(json.dumps(table_rates(*json.load(sys.stdin))))
