"""`ccs models`: what each provider behind a profile lists, and which of its models the profile uses as what."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

from . import keys
from .diagnosis import error_message, status_diagnosis, transport_diagnosis
from .doctor import models_request
from .errors import CcsError
from .profiles import Config, Profile, is_route, route_list, split_route

LIST_TIMEOUT = 20.0  # seconds for a provider to list its models


@dataclass
class ModelList:
    """What one provider behind a profile lists, and which of its models the profile uses as what."""

    profile: str  # whose provider
    url: str = ""
    models: list[dict] = field(default_factory=list)  # {"id", "used_as": [...], "listed": bool}
    problem: str | None = None
    status: int | None = None  # the provider's HTTP status, when it answered


def model_lists(config: Config, profile: Profile) -> list[ModelList]:
    """`ccs models`: the profile's own provider's list, then each route target's, all asked at once."""
    uses = _uses(config, profile)
    names = [profile.name] if profile.own_provider else []
    names += [split_route(route)[0] for route in route_list(profile)]
    lists, asks = [], []
    for name in dict.fromkeys(name.lower() for name in names):
        owner = profile if name == profile.name.lower() else config.find(name)
        listing = ModelList(owner.name if owner else name)
        lists.append(listing)
        if owner is not profile:
            listing.problem = config.target_problem(name)
        if listing.problem is None:
            try:
                secret = keys.lookup(owner, config.secret_store)
            except CcsError as e:  # no key, a key_cmd that failed
                listing.problem = str(e)
                continue
            asks.append((lists.index(listing), ask(owner, secret, uses.get(owner.name, {}))))

    async def ask_all() -> list[ModelList]:
        return await asyncio.gather(*(asking for _, asking in asks))

    for (at, _), answered in zip(asks, asyncio.run(ask_all())):
        lists[at] = answered
    return lists


def _uses(config: Config, profile: Profile) -> dict[str, dict[str, list[str]]]:
    """Profile name -> model -> what the profile uses it as: "model", a tier, "fallback", "vision"."""
    uses: dict[str, dict[str, list[str]]] = {}
    named = [("model", profile.model), *profile.models.items(), *(("fallback", route) for route in profile.fallback),
             ("vision", profile.vision)]
    for role, value in named:
        owner, model = profile.name, value
        if value and is_route(value):
            target = config.find(split_route(value)[0])
            owner, model = (target.name if target else ""), split_route(value)[1]
        if model and owner:
            uses.setdefault(owner, {}).setdefault(model, []).append(role)
    return uses


async def ask(profile: Profile, secret: str | None, used: dict[str, list[str]] | None = None,
              timeout: float = LIST_TIMEOUT) -> ModelList:
    """What the profile's provider lists, asked with its key as the proxy or claude sends it; `used`: model ->
    what the profile uses it as (a used model the provider does not list is added, `listed` false)."""
    from . import http_client
    from .apis import APIS

    used = used or {}
    listing = ModelList(profile.name)
    listing.url, headers = models_request(profile, secret)
    try:
        async with (http_client.session(listing.url, read_timeout=timeout) as client,
                    client.get(listing.url, headers=headers, params=APIS[profile.api].list_params) as response):
            listing.status = response.status
            raw = await response.read()
    except http_client.errors() as e:
        listing.problem = transport_diagnosis(e, listing.url)
        return listing
    if response.status != 200:
        listing.problem = status_diagnosis(response.status, error_message(raw, secret), profile.name,
                                           "this URL lists no models")
        return listing
    try:
        page = json.loads(raw).get("data")
    except (ValueError, AttributeError):
        page = None
    if not isinstance(page, list):
        listing.problem = "answered 200 without a model list (`data`): is base_url right?"
        return listing
    listed = {item["id"]: context_of(item) for item in page if isinstance(item, dict) and isinstance(item.get("id"), str)}
    listing.models = [{"id": m, "used_as": used.get(m, []), "listed": True, "context": c} for m, c in listed.items()]
    listing.models += [{"id": m, "used_as": roles, "listed": False, "context": None}
                       for m, roles in used.items() if m not in listed]
    return listing


CONTEXT_FIELDS = ("max_model_len", "context_length", "context_window", "max_context_length")  # vLLM, OpenRouter, ...


def context_of(item: dict) -> int | None:
    """A model's context window, where its provider's list says it."""
    for name in CONTEXT_FIELDS:
        value = item.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def served(profile: Profile, secret: str | None, timeout: float = 5.0) -> ModelList:
    """`ask`, for code that does not run an event loop (`ccs add` offering a local server's models)."""
    return asyncio.run(ask(profile, secret, timeout=timeout))
