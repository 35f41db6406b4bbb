"""`ccs models`: what each provider behind a profile lists, and which of its models the profile uses as what."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from urllib.parse import urlsplit

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
            asks.append(_list_models(owner, secret, listing, uses.get(owner.name, {})))

    async def ask_all() -> None:
        await asyncio.gather(*asks)

    asyncio.run(ask_all())
    return lists


def _uses(config: Config, profile: Profile) -> dict[str, dict[str, list[str]]]:
    """Profile name -> model -> what the profile uses it as: "model", a tier, "fallback"."""
    uses: dict[str, dict[str, list[str]]] = {}
    named = [("model", profile.model), *profile.models.items(), *(("fallback", route) for route in profile.fallback)]
    for role, value in named:
        owner, model = profile.name, value
        if value and is_route(value):
            target = config.find(split_route(value)[0])
            owner, model = (target.name if target else ""), split_route(value)[1]
        if model and owner:
            uses.setdefault(owner, {}).setdefault(model, []).append(role)
    return uses


async def _list_models(profile: Profile, secret: str | None, listing: ModelList, used: dict[str, list[str]]) -> None:
    import httpx2

    from .proxy.dialect import on_this_machine

    listing.url, headers = models_request(profile, secret)
    params = {} if profile.api == "openai" else {"limit": "1000"}  # Anthropic's pages hold 20 otherwise
    try:
        async with httpx2.AsyncClient(timeout=LIST_TIMEOUT,
                                      trust_env=not on_this_machine(urlsplit(listing.url).hostname or "")) as client:
            response = await client.get(listing.url, headers=headers, params=params)
    except httpx2.HTTPError as e:
        listing.problem = transport_diagnosis(e, listing.url)
        return
    if response.status_code != 200:
        listing.problem = status_diagnosis(response.status_code, error_message(response.content, secret),
                                           profile.name, "this URL lists no models")
        return
    try:
        page = response.json().get("data")
    except (ValueError, AttributeError):
        page = None
    if not isinstance(page, list):
        listing.problem = "answered 200 without a model list (`data`): is base_url right?"
        return
    listed = list(dict.fromkeys(item["id"] for item in page
                                if isinstance(item, dict) and isinstance(item.get("id"), str)))
    listing.models = [{"id": m, "used_as": used.get(m, []), "listed": True} for m in listed]
    listing.models += [{"id": m, "used_as": roles, "listed": False} for m, roles in used.items() if m not in listed]
