"""Which provider and model each request goes to: the requested model -> an ordered list of targets
(its own, then the fallbacks), and which targets are cooling down after failures.

Built once per proxy from the profile it serves. A request names its model the way claude sends it:
`profile,model` (claude-code-router's form: that profile, that model, any case; a profile the served one
reaches, see `Config.reachable`), a tier's value (`ANTHROPIC_DEFAULT_SONNET_MODEL`, set by `ccs run`), a `claude-*` name (mapped
by its tier word), or a plain model name of the profile's own provider. What claude says a request is
for (its hint headers) wins over all of those where the profile's `models` names it: the subagent's type
(`agent:Explore`), then the request's class (`compaction`, `auxiliary`, ...).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import NamedTuple

from ..budgets import Over, Unpriced, Watch
from ..errors import CcsError
from ..profiles import AGENT_KEY, REQUEST_CLASSES, Config, Profile, is_route, split_route, tier_model
from ..keys import mask
from .errors import ProxyError
from .upstream import TIERS, Upstream, tier_of

log = logging.getLogger("ccswitch.proxy")

COOLDOWN = 30.0  # seconds a failing target is skipped, unless the profile's `cooldown` says otherwise
FAILURES = 3  # server errors within WINDOW that cool a target down (a 429 or no connection does at once)
WINDOW = 60.0
MAX_RETRY_AFTER = 300.0  # the longest a provider's retry-after may cool its target


class Target(NamedTuple):
    profile: str
    model: str

    def __str__(self) -> str:
        return f"{self.profile},{self.model}"


class Purpose(NamedTuple):
    """What claude says a request is for (with CLAUDE_CODE_GATEWAY_HINT_HEADERS=1): its class (main,
    subagent, workflow, compaction, auxiliary, side_reply) and, for a subagent, its type (Explore, ...)."""

    request_class: str | None = None
    agent_type: str | None = None

    @classmethod
    def of(cls, headers) -> Purpose:
        return cls(headers.get("x-claude-code-request-class", "")[:64] or None,
                   headers.get("x-claude-code-agent-type", "")[:64] or None)


class Route(NamedTuple):
    """A target resolved: the profile's own name and a model (health, de-duplication and logs agree)."""

    target: Target
    upstream: Upstream


LOOKUP_RETRY = 30.0  # seconds before a profile whose key could not be looked up is tried again


class Router:
    """`own`: the served profile's provider (None for a router with none). `tiers`: tier -> model or
    route. `find(name)`: the Upstream of another profile (its key looked up on first use, off the loop).
    `vision`: the served profile's route that describes images, for every target without one of its own.
    `reach`: the profiles (lower case) a request's `profile,model` may name; None: any."""

    def __init__(self, own: Upstream | None, tiers: dict[str, str], default: str | None = None,
                 fallback: list[str] = (), find=None, cooldown: float = COOLDOWN, named: list[str] = (),
                 name: str | None = None, budgets: Watch | None = None, vision: str | None = None,
                 reach: frozenset[str] | None = None):
        self.own = own
        self.name = name or (own.name if own else None)  # the profile it serves
        self.reach = reach
        self.budgets = budgets or Watch({})
        self.vision = vision
        self.named = named  # the profiles its routes name, loaded at start (see `warm`)
        self.tiers = tiers
        # the routes by purpose, looked up case-blind (claude names agent types as their files do)
        self.purposes = {key.lower(): value for key, value in tiers.items()
                         if key in REQUEST_CLASSES or AGENT_KEY.match(key)}
        self.default = default
        self.fallback = [Target(*split_route(route)) for route in fallback]
        self.upstreams: dict[str, Upstream] = {own.name.lower(): own} if own else {}
        self._find = find
        self._loading: dict[str, asyncio.Future] = {}  # one lookup per profile, however many requests wait
        self._refused: dict[str, tuple[float, ProxyError]] = {}
        self.health = Health(cooldown)

    @classmethod
    def single(cls, upstream: Upstream) -> Router:
        """One provider, no routes (tests and benchmarks)."""
        return cls(upstream, dict(upstream.models), upstream.model)

    @classmethod
    def for_profile(cls, config: Config, profile: Profile, known: dict[str, str | None], environ) -> Router:
        """`known`: the keys already looked up (the served profile's and its routes', see
        `lifecycle.keys_for`), by profile name."""
        from .. import keys

        def upstream(target: Profile, key: str | None) -> Upstream:
            pool = keys.pool(target, config.secret_store, first=key) if key else []
            return Upstream.from_profile(target, key, environ, pool if len(pool) > 1 else ())

        def find(name: str) -> Upstream:
            if problem := config.target_problem(name):
                raise ProxyError(404, f"model '{name},...': {problem} (see `ccs list`)", retry=False)
            target = config.find(name)
            return upstream(target, known[target.name] if target.name in known else
                            keys.lookup(target, config.secret_store))

        own = upstream(profile, known.get(profile.name)) if profile.own_provider else None
        reach = None if "*" in profile.reach else \
            frozenset(name.lower() for name in [profile.name, *profile.reach,
                                                 *(p.name for p in config.reachable(profile))])
        return cls(own, dict(profile.models), profile.model, profile.fallback, find,
                   COOLDOWN if profile.cooldown is None else profile.cooldown,
                   [name for name in known if name != profile.name], profile.name,
                   Watch.for_profiles(config.profiles.values()), profile.vision, reach)

    async def routes(self, requested: str, purpose: Purpose = Purpose()) -> list[Route]:
        """Where a request for `requested` goes, in the order to try: its own target (by its purpose, when
        the profile routes that purpose), then the fallbacks, each once, those cooling down last. A fallback
        whose profile cannot be loaded is left out."""
        by_purpose = self.for_purpose(purpose)
        first = await self.resolve(self._of(by_purpose) if by_purpose else self._target(requested))
        order = [first]
        for target in self.fallback:
            try:
                route = await self.resolve(target)
            except ProxyError as e:
                log.warning("ccs proxy: fallback %s left out: %s", target, e.message)
                continue
            if route.target not in [r.target for r in order]:
                order.append(route)
        return self.health.ordered(order)

    def over_budget(self, target: Target, first: bool) -> Over | Unpriced | None:
        """Whether a request to `target` would take its profile past its budget, or (the route it asked for,
        `first`) the served profile past its own; or could not be counted against one."""
        return self.budgets.check(target.profile, str(target)) or \
            (self.budgets.check(self.name, str(target)) if first and self.name else None)

    def for_purpose(self, purpose: Purpose) -> str | None:
        """The model or route the profile names for what the request is for: the agent's type first."""
        if purpose.agent_type and (value := self.purposes.get(f"agent:{purpose.agent_type}".lower())):
            return value
        return self.purposes.get((purpose.request_class or "").lower())

    def _target(self, requested: str) -> Target:
        if is_route(requested):
            target = Target(*split_route(requested))
            if self.reach is not None and target.profile.lower() not in self.reach:
                raise ProxyError(403, f"model {requested!r}: profile '{self.name}' does not reach profile "
                                      f"'{target.profile}' (a repository's settings, agents and commands can name a "
                                      "model, so a session reaches only the profiles its own names); to switch to "
                                      f"it, add reach = [\"{target.profile}\"] to [profiles.{self.name}]",
                                 retry=False)
            return target
        tier = tier_of(requested) if requested.startswith("claude") or requested in TIERS else None
        if tier is not None and (value := tier_model(self.default, self.tiers, tier)):
            return self._of(value)
        if self.own:
            return Target(self.own.name, requested)
        if self.default:
            return self._of(self.default)
        raise ProxyError(404, f"model {requested!r}: this profile has no provider of its own; ask for "
                              "\"profile,model\" (e.g. /model glm,glm-4.6)", retry=False)

    def _of(self, value: str) -> Target:
        return Target(*split_route(value)) if is_route(value) else Target(self.own.name, value)

    async def resolve(self, target: Target) -> Route:
        """A target's route: its profile's provider, and its model (the profile's default for none)."""
        upstream = await self.upstream(target.profile)
        return Route(Target(upstream.name, target.model or upstream.model_for("")), upstream)

    async def upstream(self, profile: str) -> Upstream:
        """A profile's provider; another profile's is loaded once (its key may come from the keyring or a
        command: off the event loop, and once however many requests ask at the same time)."""
        name = profile.lower()
        if (upstream := self.upstreams.get(name)) is not None:
            return upstream
        if self._find is None:
            raise ProxyError(404, f"no profile named '{profile}' is served by this proxy", retry=False)
        if (refused := self._refused.get(name)) and time.monotonic() - refused[0] < LOOKUP_RETRY:
            raise refused[1]
        loading = self._loading.get(name)
        if loading is None:
            loading = self._loading[name] = asyncio.ensure_future(self._load(profile))
            loading.add_done_callback(lambda _: self._loading.pop(name, None))
        return await asyncio.shield(loading)

    async def _load(self, profile: str) -> Upstream:
        try:
            upstream = await asyncio.to_thread(self._find, profile)
        except (CcsError, ProxyError) as e:  # no such profile, no key stored, a key_cmd that failed
            error = e if isinstance(e, ProxyError) else ProxyError(401, f"profile '{profile}': {e}", retry=False)
            self._refused[profile.lower()] = (time.monotonic(), error)
            raise error from None
        self.upstreams[profile.lower()] = upstream
        return upstream

    async def warm(self) -> list[Upstream]:
        """The providers this router names, loaded (their keys are at hand): at start, not in a request."""
        loaded = []
        for name in self.named:
            with contextlib.suppress(ProxyError):
                loaded.append(await self.upstream(name))
        return loaded

    def masked(self, text: str) -> str:
        """`text` with every provider key this proxy holds masked: for whatever it logs or answers."""
        for upstream in self.upstreams.values():
            for key in {upstream.key, *upstream.keys}:  # every key of a pool
                if key and key in text:
                    text = text.replace(key, mask(key))
        return text

    def models_page(self) -> dict:
        """`/v1/models`: the served profile's models and routes."""
        own = self.own.listed_models() if self.own else []
        ids = list(dict.fromkeys([*own, *(v for v in (self.default, *self.tiers.values()) if v)]))
        data = [{"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"} for m in ids]
        return {"data": data, "has_more": False, "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None}


class Health:
    """Which targets failed lately: a target that answered 429 (for its retry-after, within a bound),
    could not be reached, or had FAILURES server errors within WINDOW seconds is skipped for `cooldown`
    seconds, so the next requests go straight to a healthy one. A cooling target is still tried last."""

    def __init__(self, cooldown: float):
        self.cooldown = cooldown
        self.failures: dict[Target, deque[float]] = {}
        self.until: dict[Target, float] = {}

    def ordered(self, routes: list[Route]) -> list[Route]:
        now = time.monotonic()
        cooling = [r for r in routes if self.until.get(r.target, 0) > now]
        return [r for r in routes if r not in cooling] + cooling

    def cooling(self, target: Target) -> bool:
        return self.until.get(target, 0) > time.monotonic()

    def failed(self, target: Target, error: ProxyError) -> None:
        now = time.monotonic()
        recent = self.failures.setdefault(target, deque(maxlen=FAILURES))
        recent.append(now)
        if error.status == 429 or not error.retry or (len(recent) == FAILURES and now - recent[0] <= WINDOW):
            self.until[target] = now + (retry_after(error) or self.cooldown)

    def succeeded(self, target: Target) -> None:
        self.failures.pop(target, None)
        self.until.pop(target, None)


def retry_after(error: ProxyError) -> float | None:
    """The seconds a provider asked to wait (its retry-after), within MAX_RETRY_AFTER; None when it did not
    say (or said it as an HTTP date): the usual cool-down then."""
    try:
        value = float(error.headers.get("retry-after") or 0)
    except ValueError:
        return None
    return min(value, MAX_RETRY_AFTER) if value > 0 else None
