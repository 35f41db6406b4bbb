"""Profiles: the TOML file a user edits, validated into `Profile` values with presets merged in.

Reading uses `tomllib` (fast, on the launch hot path); edits go through `tomlkit` so the user's
comments and layout survive, and every edit is validated before it is written.
"""

from __future__ import annotations

import contextlib
import math
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple
from urllib.parse import urlsplit

from . import files
from .errors import CcsError
from .apis import APIS, AUTHS, DEFAULT_API, RESERVED_BODY, RESERVED_HEADERS, translated
from .claude import CLOUD_FIELDS, CLOUDS, Cloud
from .presets import PRESETS
from .prices import KINDS as PRICE_KINDS  # USD per million tokens

VERSION = 1
ANTHROPIC_URL = "https://api.anthropic.com"
TIERS = ("opus", "sonnet", "haiku", "fable", "subagent")
# What claude says each request is for (its x-claude-code-request-class header), as keys of `models` that route
# those requests, beside `agent:<Type>` for a subagent's type (x-claude-code-agent-type): "main" is the tiers'.
REQUEST_CLASSES = ("compaction", "auxiliary", "side_reply", "workflow", "subagent")
AGENT_KEY = re.compile(r"agent:[A-Za-z0-9_.-]{1,64}\Z")
EFFORTS = ("off", "minimal", "low", "medium", "high")  # "off": never send reasoning_effort
SUMMARIES = ("auto", "concise", "detailed", "off")  # the Responses API's reasoning summaries; "off": none asked for
VERBOSITIES = ("low", "medium", "high")  # GPT-5's verbosity
# The `reasoning` table (OpenRouter's reasoning object; elsewhere its effort is the reasoning_effort sent)
REASONING = {"effort": ("none", "minimal", "low", "medium", "high", "xhigh", "max"), "max_tokens": int,
             "exclude": bool, "enabled": bool}
SECRET_STORES = ("auto", "keyring", "file")
STANDS_IN = {"model": "models", "resource": "base_url"}  # what a preset needs, or what may stand in for it
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")  # \Z: "$" would let a trailing newline in
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
HEADER_NAME_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")  # an HTTP token (RFC 9110)

# Every key a profile may have, with its TOML type.
FIELDS: dict[str, type | tuple[type, ...]] = {
    "preset": str,
    "description": str,
    "api": str,
    "base_url": str,
    "auth": str,
    "key_name": str,
    "key_env": str,
    "key_cmd": str,
    "model": str,
    "models": dict,
    "env": dict,
    "claude_args": list,
    "config_dir": str,
    "aliases": list,
    "context_window": int,
    "max_output_tokens": int,
    "reasoning_effort": str,
    "reasoning_summary": str,
    "verbosity": str,
    "reasoning": dict,
    "timeout": (int, float),
    "max_request_mb": int,
    "fallback": list,
    "cooldown": (int, float),
    "vision": str,
    "reach": list,
    "prices": dict,
    "budget": dict,
    "over_budget": str,
    "headers": dict,
    "extra_body": dict,
    "direct": bool,
    "region": str,  # a cloud's (claude.CLOUDS)
    "aws_profile": str,
    "project": str,
    "resource": str,
    "observe": bool,  # no longer needed: every profile whose key ccs holds runs behind the proxy
}

# The `[search]` table: the web search backend the proxy runs claude's WebSearch with, for providers other than
# Anthropic (docs/profiles.md: "Web search"). Provider -> the base URL of its API (SearXNG is always the user's own).
SEARCH_PROVIDERS = {"searxng": None, "brave": "https://api.search.brave.com", "tavily": "https://api.tavily.com"}
SEARCH_FIELDS: dict[str, type | tuple[type, ...]] = {"provider": str, "url": str, "key_env": str, "key_cmd": str,
                                                     "max_results": int, "timeout": (int, float)}
MAX_SEARCH_RESULTS = 20  # what Brave and Tavily give at most per search

NEW_FILE_HEADER = """\
# ccswitch profiles: see `ccs --help` and profiles.example.toml for every field.
# Keys live in the OS keyring (or `key_env` / `key_cmd`), never in this file.
version = 1
"""


class ConfigError(CcsError):
    """The profiles file is not valid; the message names the file, line and profile. `reason`: what is wrong
    with the profile, without where (for a value typed on the command line rather than in the file)."""

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.reason = reason or message


NO_ITEMS = MappingProxyType({})  # the read-only default of a table field


class Profile(NamedTuple):
    """One validated profile. A NamedTuple rather than a dataclass: `dataclasses` imports `inspect`,
    a good part of what `ccs run` of a native profile costs beyond Python's own start."""

    name: str
    api: str = DEFAULT_API
    auth: str = "bearer"
    base_url: str | None = None
    preset: str | None = None
    description: str = ""
    key_name: str | None = None
    key_env: str | None = None
    key_cmd: str | None = None
    model: str | None = None
    models: dict[str, str] = NO_ITEMS
    env: dict[str, str] = NO_ITEMS
    claude_args: list[str] = ()
    config_dir: str | None = None
    aliases: list[str] = ()
    context_window: int | None = None
    max_output_tokens: int | None = None
    reasoning_effort: str | None = None
    reasoning_summary: str | None = None  # proxy, Responses API only: the reasoning summary asked for
    verbosity: str | None = None  # proxy only: GPT-5's verbosity
    reasoning: dict = NO_ITEMS  # how a translated request asks for reasoning: {effort|max_tokens, exclude, enabled}
    timeout: float | None = None  # seconds the proxy waits for the provider's next byte (and claude a little longer)
    max_request_mb: int | None = None  # the proxy's limit on a request body
    fallback: list[str] = ()  # routes ("profile,model") tried in turn when a request's own fails before answering
    cooldown: float | None = None  # seconds a failing route is skipped
    vision: str | None = None  # the route ("profile,model") that describes images for this profile's models
    reach: list[str] = ()  # more profiles a session may switch to with "/model profile,model" ("*": any)
    prices: dict[str, dict[str, float]] = NO_ITEMS  # model (or "*") -> USD per million tokens, over the price table
    budget: dict[str, float] = NO_ITEMS  # "day" / "month" -> US dollars (budgets.py)
    over_budget: str = "refuse"  # or "fallback": past its budget, a request goes to the fallback routes
    headers: dict[str, str] = NO_ITEMS  # sent to the provider with every request (beside its key, never instead)
    extra_body: dict = NO_ITEMS  # merged into every request body the proxy sends the provider
    direct: bool = False  # claude talks to the provider itself, holding its key: no proxy in between
    region: str | None = None  # a cloud's region (Bedrock, Mantle, Vertex AI)
    aws_profile: str | None = None  # the AWS profile claude signs Bedrock's requests with
    project: str | None = None  # the Google Cloud project of Vertex AI
    resource: str | None = None  # the Microsoft Foundry resource's name
    observe: bool = False  # from before every profile ran behind the proxy; it changes nothing now

    @property
    def is_router(self) -> bool:
        """A router: some model goes to another profile (`"glm,glm-4.6"`), or there is a fallback. It is
        served through the proxy, which sends each request where its model says."""
        return _routes(self._asdict())

    @property
    def own_provider(self) -> bool:
        """False for a router that only routes elsewhere: no base_url or preset of its own, so no key."""
        return not self.is_router or bool(self.base_url or self.preset or translated(self.api))

    @property
    def needs_key(self) -> bool:
        return self.own_provider and self.auth in ("bearer", "api-key")

    @property
    def signed_with(self) -> str | None:
        """What claude signs its own requests with (its login, a cloud's credentials), if it does: then ccs holds
        no key for it, and the proxy cannot stand in between."""
        return AUTHS[self.auth].signed_with

    @property
    def cloud(self) -> Cloud | None:
        """The cloud claude signs in to itself (Bedrock, Vertex AI, ...), if this profile runs on one."""
        return CLOUDS.get(self.auth)

    @property
    def needs_proxy(self) -> bool:
        """Only the proxy can serve it: an API claude does not speak, routes to other profiles, or images
        described by another profile's model."""
        return translated(self.api) or self.is_router or bool(self.vision)

    @property
    def uses_proxy(self) -> bool:
        """Behind the proxy, which holds the key: every profile but those claude signs in to itself (its own
        login, a cloud) and those that say `direct = true`."""
        return self.needs_proxy or not (self.direct or self.signed_with)

    @property
    def why_proxied(self) -> str:
        if translated(self.api):
            return f"speaks the {APIS[self.api].title} API"
        if self.is_router:
            return "routes requests to other profiles"
        return f"has its images described by {self.vision}"

    @property
    def url(self) -> str:
        """Where its requests go: its base_url, else Anthropic's API."""
        return self.base_url or ANTHROPIC_URL

    @property
    def local(self) -> bool:
        """Its provider is a server on this machine."""
        return on_this_machine(urlsplit(self.url).hostname or "")

    @property
    def keyring_user(self) -> str:
        """The keyring entry's user name (service is always "ccswitch")."""
        return self.key_name or self.name

    @property
    def provider(self) -> str:
        """A short label for tables: the preset, else the base URL's host; "router" for one with no provider
        of its own."""
        if not self.own_provider:
            return "router"
        if self.preset or self.cloud:
            return self.preset or self.auth
        return urlsplit(self.base_url).hostname or "" if self.base_url else "anthropic"


class SearchSettings(NamedTuple):
    """The `[search]` table, validated: which backend runs web searches, where, and where its key comes from (the
    keyring entry `ccs key set search` writes, else `key_env` / `key_cmd`, read as a profile's are)."""

    provider: str
    url: str
    key_env: str | None = None
    key_cmd: str | None = None
    max_results: int = 5
    timeout: float = 15.0  # seconds for one search, answer included

    name = "[search]"  # how `keys` names it in a message
    keyring_user = "[search]"  # no profile can have this name, so no profile's key is ever this one
    cloud = None

    @property
    def needs_key(self) -> bool:
        return SEARCH_PROVIDERS[self.provider] is not None  # SearXNG is the user's own server: no key


def tier_model(model: str | None, models, tier: str) -> str | None:
    """The model (or route) a tier runs, one rule for `ccs run`, the proxy and `ccs test`: its own; fable's
    is opus's; else the profile's model, sonnet's, the first one named."""
    return (models.get(tier) or (tier == "fable" and models.get("opus")) or model or models.get("sonnet")
            or next((m for t, m in models.items() if t in TIERS and t != "subagent"), None))


def default_model(model: str | None, models) -> str | None:
    """What runs when nothing names a tier: the profile's model, else the tier rule's sonnet."""
    return model or tier_model(None, models, "sonnet")


def on_this_machine(host: str) -> bool:
    """A server on this machine (a local model server), which no outside HTTP proxy can reach: the one
    definition, for TLS, proxies from the environment, keys and doctor alike."""
    host = host.lower().strip("[]")
    return host in ("localhost", "::1") or host.startswith("127.") or host.endswith(".localhost")


def _routes(fields: dict) -> bool:
    """Whether raw profile fields route anywhere (see Profile.is_router)."""
    named = [fields.get("model"), *fields.get("models", {}).values()]
    return bool(fields.get("fallback")) or any(isinstance(m, str) and is_route(m) for m in named)


def is_route(model: str) -> bool:
    """`profile,model` (claude-code-router's form): that model of another profile."""
    return "," in model


def split_route(route: str) -> tuple[str, str]:
    """`"GLM, glm-4.6"` -> ("GLM", "glm-4.6"); the model may be empty (the profile's default)."""
    profile, _, model = route.partition(",")
    return profile.strip(), model.strip()


class Config:
    """The profiles file: where it is, its text, and its profiles by name."""

    def __init__(self, path: Path, text: str = "", secret_store: str = "auto", search: SearchSettings | None = None):
        self.path = path
        self.text = text
        self.secret_store = secret_store
        self.search = search  # the `[search]` table, if there is one
        self.profiles: dict[str, Profile] = {}

    def get(self, name: str) -> Profile:
        try:
            return self.profiles[name]
        except KeyError:
            raise CcsError(_unknown_profile_message(name, self)) from None

    def find(self, name: str) -> Profile | None:
        """A profile by name, case-insensitively (how routes name them)."""
        return self.profiles.get(name) or next((p for n, p in self.profiles.items() if n.lower() == name.lower()), None)

    def route_problems(self, profile: Profile) -> list[str]:
        """What stops a router's routes from working: a target that does not exist, uses claude's own
        login (claude would send the proxy's token, not its login), or has no provider of its own."""
        problems = []
        if profile.signed_with and profile.is_router:
            problems.append(f"profile '{profile.name}' is signed in by claude itself, with {profile.signed_with}, "
                            "which cannot go through the proxy that its routes need")
        for route in route_list(profile):
            name = split_route(route)[0]
            if route == profile.vision:
                if problem := self.target_problem(name) or self._describes_none(name, profile):
                    problems.append(f"vision {route!r}: {problem}")
            elif problem := self.target_problem(name):
                problems.append(f"route {route!r}: {problem}")
        return problems

    def _describes_none(self, name: str, profile: Profile) -> str | None:
        """Why profile `name` cannot describe `profile`'s images: it has its own described elsewhere (so its
        models take none; this also rules out loops)."""
        target = self.find(name)
        if not target.vision:
            return None
        loop = split_route(target.vision)[0].lower() == profile.name.lower()
        return (f"profile '{target.name}' has its own images described by {target.vision!r}, so its models take "
                f"none{' (a loop)' if loop else ''}; name a profile whose model sees images")

    def route_targets(self, profile: Profile) -> list[Profile]:
        """The profiles a router's routes reach, each once (those that exist)."""
        found = (self.find(split_route(route)[0]) for route in route_list(profile))
        return list({target.name: target for target in found if target is not None}.values())

    def reachable(self, profile: Profile) -> list[Profile]:
        """Every other profile a session of `profile` may send requests to: its routes' targets and theirs
        (a target's own vision route), and those its `reach` names (all, for "*"). A `profile,model` that a
        repository's settings or agent files name can go nowhere else."""
        if "*" in profile.reach:
            return [p for p in self.profiles.values() if p.name != profile.name]
        found, todo = {}, [*self.route_targets(profile), *filter(None, map(self.find, profile.reach))]
        while todo:
            target = todo.pop()
            if target.name != profile.name and target.name not in found:
                found[target.name] = target
                todo.extend(self.route_targets(target))
        return list(found.values())

    def target_problem(self, name: str) -> str | None:
        """Why a route cannot go to profile `name`, if it cannot."""
        target = self.find(name)
        if target is None:
            return f"no profile named '{name}'"
        if target.signed_with:
            return (f"profile '{target.name}' is signed in by claude itself, with {target.signed_with}, which "
                    "cannot go through the proxy (claude would send the proxy's token instead)")
        if not target.own_provider:
            return f"profile '{target.name}' is a router itself; name a provider's profile"
        return None

    def by_alias(self) -> dict[str, Profile]:
        return {alias: p for p in self.profiles.values() for alias in p.aliases}


def route_list(profile: Profile) -> list[str]:
    """Every route a profile names, each once: its models', its fallbacks' and its vision's."""
    named = [m for m in (profile.model, *profile.models.values()) if m and is_route(m)]
    return list(dict.fromkeys([*named, *profile.fallback, *([profile.vision] if profile.vision else [])]))


CLAUDE_TIMEOUT = 600.0  # seconds claude waits for an answer unless API_TIMEOUT_MS says otherwise


def claude_timeout(profile: Profile, environ) -> float:
    """Seconds claude will wait for an answer: API_TIMEOUT_MS from the profile's env, else a little
    over the profile's `timeout` (ccs run sets it so), else the environment's, else claude's default."""
    if profile.timeout and "API_TIMEOUT_MS" not in profile.env:
        return profile.timeout + _margin(profile.timeout)
    raw = profile.env.get("API_TIMEOUT_MS", environ.get("API_TIMEOUT_MS", ""))
    return int(raw) / 1000 if raw.isdigit() and int(raw) > 0 else CLAUDE_TIMEOUT


def proxy_timeout(profile: Profile, environ) -> float:
    """Seconds the proxy waits for the provider's next byte: the profile's `timeout`, else a little less
    than claude waits, so that claude hears the proxy's 504 naming the provider rather than its own time-out."""
    if profile.timeout:
        return float(profile.timeout)
    seconds = claude_timeout(profile, environ)
    return seconds - _margin(seconds)


def _margin(seconds: float) -> float:
    return min(10.0, seconds / 10)


def load(path: Path | None = None) -> Config:
    """Read and validate the profiles file; a missing file is an empty config."""
    path = path or files.config_file()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Config(path)
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read {path}: {e}") from None
    return parse(text, path)


def parse(text: str, path: Path) -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}; fix it with `ccs edit`") from None
    where = _Locator(text, path)
    unknown = set(data) - {"version", "secret_store", "profiles", "search"}
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError(f"{where.top(key)}: unknown top-level key {key!r} (allowed: version, secret_store, profiles, "
                          "search)")
    version = data.get("version", VERSION)
    if not isinstance(version, int) or isinstance(version, bool):
        raise ConfigError(f"{where.top('version')}: version must be an integer")
    if version > VERSION:
        raise ConfigError(f"{where.top('version')}: version {version} was written by a newer ccs; upgrade ccswitch")
    store = data.get("secret_store", "auto")
    if store not in SECRET_STORES:
        raise ConfigError(f"{where.top('secret_store')}: secret_store must be one of {', '.join(SECRET_STORES)}")
    raw_profiles = data.get("profiles", {})
    if not isinstance(raw_profiles, dict):
        raise ConfigError(f"{where.top('profiles')}: 'profiles' must be a table of [profiles.NAME] sections")
    config = Config(path, text, store, _search_settings(data["search"], where) if "search" in data else None)
    for name, raw in raw_profiles.items():
        config.profiles[name] = _validate(name, raw, where)
    _check_aliases(config, where)
    return config


def _search_settings(raw: object, where: _Locator) -> SearchSettings:
    """The `[search]` table checked as a profile is: every key known and of its type, values that work."""

    def fail(key: str | None, message: str) -> ConfigError:
        return ConfigError(f"{where.table('search', key)}: [search]: {message}", message)

    if not isinstance(raw, dict):
        raise fail(None, "search must be a table: [search] with provider = \"searxng\" and url = \"...\"")
    for key, value in raw.items():
        expected = SEARCH_FIELDS.get(key)
        if expected is None:
            raise fail(key, f"unknown key {key!r}{suggest(key, SEARCH_FIELDS)} (allowed: {', '.join(SEARCH_FIELDS)})")
        if not isinstance(value, expected) or isinstance(value, bool):
            raise fail(key, f"{key!r} must be {_type_name(expected)}, not {_type_name(type(value))}")
    provider = raw.get("provider")
    if provider not in SEARCH_PROVIDERS:
        raise fail("provider" if provider else None, f"provider must be one of {', '.join(SEARCH_PROVIDERS)}")
    url = raw.get("url") or SEARCH_PROVIDERS[provider]
    if url is None:
        raise fail("provider", "a SearXNG backend needs its url: url = \"http://127.0.0.1:8888\" (JSON output "
                               "enabled in its settings.yml: search.formats has json)")
    if problem := url_problem(url, "search", "url"):
        raise fail("url", problem)
    if not SEARCH_PROVIDERS[provider] and ({"key_env", "key_cmd"} & set(raw)):
        raise fail(next(k for k in ("key_env", "key_cmd") if k in raw), "a SearXNG backend takes no key")
    _check_key_source(raw, raw.get("key_env"), fail)
    if not 1 <= raw.get("max_results", 1) <= MAX_SEARCH_RESULTS:
        raise fail("max_results", f"max_results must be from 1 to {MAX_SEARCH_RESULTS}")
    if not 0 < raw.get("timeout", 1) < math.inf:
        raise fail("timeout", "timeout must be a positive number of seconds")
    return SearchSettings(**{**raw, "provider": provider, "url": url.rstrip("/")})


def _check_key_source(written: dict, key_env: str | None, fail) -> None:
    """A key from a variable or a command, not both (as written); the variable's name a name."""
    if "key_env" in written and "key_cmd" in written:
        raise fail("key_cmd", "set key_env or key_cmd, not both")
    if key_env is not None and not ENV_NAME_RE.match(key_env):
        raise fail("key_env", f"key_env {key_env!r} is not a variable name")


def resolve(name: str, raw: dict) -> Profile:
    """Validate one profile's fields outside any file (`ccs add` checks before it writes)."""
    return _validate(name, raw, _Locator("", Path("new profile")))


def _validate(name: str, raw: object, where: _Locator) -> Profile:
    at = where.of(name)
    if not NAME_RE.match(name):
        raise ConfigError(f"{at}: invalid profile name {name!r}: use letters, digits, '.', '_' or '-'")
    if not isinstance(raw, dict):
        raise ConfigError(f"{at}: profile '{name}' must be a table")

    def fail(key: str, message: str) -> ConfigError:
        return ConfigError(f"{where.of(name, key)}: profile '{name}': {message}", message)

    for key, value in raw.items():
        expected = FIELDS.get(key)
        if expected is None:
            raise fail(key, f"unknown key {key!r}{suggest(key, FIELDS)}")
        if not isinstance(value, expected) or (isinstance(value, bool) and expected is not bool):
            raise fail(key, f"{key!r} must be {_type_name(expected)}, not {_type_name(type(value))}")
    merged = _merge_preset(name, raw, where)

    if (api := merged.get("api", DEFAULT_API)) not in APIS:
        raise fail("api", f"api must be one of {', '.join(APIS)}")
    if merged.get("auth", "bearer") not in AUTHS:
        raise fail("auth", f"auth must be one of {', '.join(AUTHS)}")
    if (url := merged.get("base_url")) is not None and (problem := azure_problem(url) or url_problem(url, name)):
        raise fail("base_url", problem)
    preset = PRESETS.get(merged.get("preset", ""))
    for key, example in (preset and preset.needs or {}).items():
        if not merged.get(key) and not merged.get(STANDS_IN.get(key, "")):
            raise fail(key, f"the {preset.name} preset needs your {key}: {key} = \"{example}\"")
    if translated(api) and not merged.get("base_url"):
        raise fail("api", f"a profile that speaks the {APIS[api].title} API needs a base_url")
    auth = AUTHS[merged.get("auth", "bearer")]
    if translated(api) and auth.signed_with:
        raise fail("auth", f"auth = \"{auth.name}\" only works with api = \"anthropic\"")
    cloud = CLOUDS.get(auth.name)
    for key in CLOUD_FIELDS:
        if key not in merged:
            continue
        if cloud is None or key not in cloud.fields:
            users = " or ".join(f'"{c.name}"' for c in CLOUDS.values() if key in c.fields)
            raise fail(key, f"{key} is for a profile on claude's clouds (auth = {users})")
        if not cloud.fields[key].form.match(merged[key]):
            raise fail(key, f"{key} {merged[key]!r} is not {cloud.fields[key].what}")
    for choice in cloud.needs if cloud else ():
        if not any(merged.get(key) for key in choice):
            field = cloud.fields.get(choice[0])
            raise fail(choice[0], f"auth = \"{auth.name}\" ({cloud.title}) needs {' or '.join(choice)}"
                                  + (f": {field.what}" if field else ""))
    if cloud and {"key_env", "key_cmd", "key_name"} & set(merged):
        raise fail(next(k for k in ("key_env", "key_cmd", "key_name") if k in merged),
                   f"claude signs in to {cloud.title} with {auth.signed_with}: ccs holds no key for this profile")
    _check_key_source(raw, merged.get("key_env"), fail)
    for tier, model in merged.get("models", {}).items():
        if tier not in TIERS and tier not in REQUEST_CLASSES and not AGENT_KEY.match(tier):
            raise fail("models", f"unknown key {tier!r} in models (allowed: the tiers {', '.join(TIERS)}; what a "
                                 f"request is for: {', '.join(REQUEST_CLASSES)}; a subagent's type: \"agent:Explore\")")
        if not isinstance(model, str) or not model:
            raise fail("models", f"models.{tier} must be a non-empty string")
    for route in merged.get("fallback", []):
        if not isinstance(route, str) or not is_route(route) or not split_route(route)[0]:
            raise fail("fallback", f"fallback {route!r}: each entry is \"profile,model\"")
    for key, values in (("model", [merged.get("model")]), ("models", merged.get("models", {}).values()),
                        ("fallback", merged.get("fallback", []))):
        for route in values:
            if route and is_route(route) and not NAME_RE.match(split_route(route)[0]):
                raise fail(key, f"route {route!r}: {split_route(route)[0]!r} is not a profile name")
    for entry in merged.get("reach", []):
        if not isinstance(entry, str) or not (entry == "*" or NAME_RE.match(entry)):
            raise fail("reach", f"reach {entry!r}: each entry is a profile's name, or \"*\" for any")
    if (vision := merged.get("vision")) is not None:
        if not is_route(vision) or not NAME_RE.match(split_route(vision)[0]):
            raise fail("vision", f"vision {vision!r}: the route of a model that sees images, \"profile,model\" (such "
                                 "as \"gpt,gpt-5.6-luna\")")
        if split_route(vision)[0].lower() == name.lower():
            raise fail("vision", f"vision {vision!r}: a profile with `vision` takes no images, so it cannot describe its "
                                 "own; name another profile's model")
    if "cooldown" in merged and not 0 <= merged["cooldown"] < math.inf:
        raise fail("cooldown", "cooldown must be a number of seconds")
    for model, price in merged.get("prices", {}).items():
        if not isinstance(price, dict) or not price:
            raise fail("prices", f"prices.{model} must be a table such as {{ input = 0.6, output = 2.2 }}")
        for kind, value in price.items():
            if kind not in PRICE_KINDS:
                raise fail("prices", f"prices.{model}: unknown price {kind!r} (allowed: {', '.join(PRICE_KINDS)})")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
                raise fail("prices", f"prices.{model}.{kind} must be a number of US dollars per million tokens")
    _check_budget(merged, fail)
    if merged.get("direct") and (translated(api) or _routes(merged)):
        raise fail("direct", "direct = true needs a provider claude speaks to itself: this profile "
                             + (f"speaks the {APIS[api].title} API" if translated(api)
                                else "routes to other profiles") + ", which only the proxy can do")
    for var, value in merged.get("env", {}).items():
        if not ENV_NAME_RE.match(var):
            raise fail("env", f"env {var!r}: not a variable name")
        if not isinstance(value, str):
            raise fail("env", f"env.{var} must be a string")
    for header, value in merged.get("headers", {}).items():
        if not HEADER_NAME_RE.match(header):
            raise fail("headers", f"headers: {header!r} is not a header name")
        if header.lower() in RESERVED_HEADERS:
            raise fail("headers", f"headers.{header}: ccs sends that header itself (the key goes as `auth` says, "
                                  "the rest belongs to the connection); remove it from headers")
        if not isinstance(value, str) or any(c in value for c in "\r\n\0"):
            raise fail("headers", f"headers.{header} must be a string on one line")
    for key in merged.get("extra_body", {}):
        if key in RESERVED_BODY:
            raise fail("extra_body", f"extra_body.{key}: ccs writes the request's {key!r} itself; extra_body adds "
                                     "the provider's own fields beside it")
    purposes = [key for key in merged.get("models", {})  # (subagent is a tier too: claude's own variable)
                if key not in TIERS and (key in REQUEST_CLASSES or AGENT_KEY.match(key))]
    needs_proxy = {"extra_body": "extra_body is merged into requests", "vision": "images are described",
                   "budget": "a budget is held", "models": f"models.{purposes[0]} is routed" if purposes else ""}
    for key, what in needs_proxy.items():
        if (purposes if key == "models" else merged.get(key)) and (merged.get("direct") or auth.signed_with):
            raise fail(key, f"{what} by the proxy, and this profile runs without it "
                            + ("(direct = true)" if merged.get("direct") else f"(claude signs its requests "
                                                                              f"with {auth.signed_with})"))
    for key in ("claude_args", "aliases"):
        if not all(isinstance(item, str) for item in merged.get(key, [])):
            raise fail(key, f"{key} must be a list of strings")
    for alias in merged.get("aliases", []):
        if not NAME_RE.match(alias):
            raise fail("aliases", f"alias {alias!r} is not a valid command name")
        if alias in ("claude", "ccs"):
            raise fail("aliases", f"alias '{alias}' would hide the `{alias}` command itself")
    for key in ("context_window", "max_output_tokens", "max_request_mb"):
        if key in merged and merged[key] <= 0:
            raise fail(key, f"{key} must be a positive integer")
    if "timeout" in merged and not 0 < merged["timeout"] < math.inf:
        raise fail("timeout", "timeout must be a positive number of seconds")
    if (effort := merged.get("reasoning_effort")) is not None and effort not in EFFORTS:
        raise fail("reasoning_effort", f"reasoning_effort must be one of {', '.join(EFFORTS)}")
    for key, allowed in (("reasoning_summary", SUMMARIES), ("verbosity", VERBOSITIES)):
        if key in merged and merged[key] not in allowed:
            raise fail(key, f"{key} must be one of {', '.join(allowed)}")
    reasoning = merged.get("reasoning", {})
    for key, value in reasoning.items():
        kind = REASONING.get(key)
        if kind is None:
            raise fail("reasoning", f"reasoning: unknown key {key!r} (allowed: {', '.join(REASONING)})")
        if isinstance(kind, tuple) and value not in kind:
            raise fail("reasoning", f"reasoning.effort must be one of {', '.join(kind)}")
        if kind is int and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
            raise fail("reasoning", "reasoning.max_tokens must be a positive number of tokens")
        if kind is bool and not isinstance(value, bool):
            raise fail("reasoning", f"reasoning.{key} must be true or false")
    if "effort" in reasoning and "max_tokens" in reasoning:
        raise fail("reasoning", "reasoning takes an effort or a max_tokens budget, not both")
    if reasoning and not translated(api):
        raise fail("reasoning", "reasoning is how the proxy asks an OpenAI-API provider to reason; an Anthropic-API "
                                "provider gets claude's own thinking settings")
    for key, empty in (("models", dict), ("env", dict), ("claude_args", list), ("aliases", list), ("fallback", list),
                       ("reach", list), ("prices", dict), ("headers", dict), ("extra_body", dict), ("reasoning", dict),
                       ("budget", dict)):
        merged.setdefault(key, empty())
    profile = Profile(name=name, **merged)
    if not profile.own_provider:
        plain = [m for m in (profile.model, *profile.models.values()) if m and not is_route(m)]
        if plain:
            raise fail("models", f"model {plain[0]!r} has no provider: this router has no base_url or preset of "
                                 "its own, so each model is \"profile,model\"")
    return profile


def _check_budget(merged: dict, fail) -> None:
    """A budget in dollars a day and/or a month, counted at the profile's prices (its own, or the list prices
    of a provider the price table knows): without prices its spend would stay $0 for ever."""
    from .budgets import OVER, PERIODS
    from .presets import LISTED

    budget = merged.get("budget", {})
    for period, amount in budget.items():
        if period not in PERIODS:
            raise fail("budget", f"budget: unknown period {period!r} (allowed: {', '.join(PERIODS)})")
        if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not 0 < amount < math.inf:
            raise fail("budget", f"budget.{period} must be a number of US dollars above 0")
    if merged.get("over_budget", "refuse") not in OVER:
        raise fail("over_budget", f"over_budget must be one of {', '.join(OVER)}")
    listed = merged.get("preset") in LISTED and merged.get("base_url") in (None, PRESETS[merged["preset"]].fields.get(
        "base_url"))
    if budget and not (merged.get("prices") or listed or _routes(merged)):
        raise fail("budget", "a budget needs prices to count against: add prices = { \"*\" = { input = ..., "
                             "output = ... } } (US dollars per million tokens), or use a preset whose provider "
                             "the price table lists")


MERGED = ("models", "env", "prices", "headers", "extra_body")  # a preset's tables the profile's add to


def _merge_preset(name: str, raw: dict, where: _Locator) -> dict:
    """Preset values first, the profile's own on top; the tables of MERGED merge key by key."""
    preset_name = raw.get("preset")
    if preset_name is None:
        return dict(raw)
    preset = PRESETS.get(preset_name)
    if preset is None:
        reason = f"unknown preset {preset_name!r}{suggest(preset_name, PRESETS)}; see `ccs presets`"
        raise ConfigError(f"{where.of(name, 'preset')}: profile '{name}': {reason}", reason)
    merged = {**preset.fields, **raw}
    for key in MERGED:
        if key in preset.fields or key in raw:
            merged[key] = {**preset.fields.get(key, {}), **raw.get(key, {})}
    return merged


def _check_aliases(config: Config, where: _Locator) -> None:
    seen: dict[str, str] = {}
    for profile in config.profiles.values():
        for alias in profile.aliases:
            if alias in seen:
                raise ConfigError(f"{where.of(profile.name, 'aliases')}: alias '{alias}' is used by profiles "
                                  f"'{seen[alias]}' and '{profile.name}'")
            seen[alias] = profile.name


AZURE_OPENAI_HOSTS = (".openai.azure.com", ".cognitiveservices.azure.com", ".services.ai.azure.com")


def azure_problem(url: str) -> str | None:
    """Azure OpenAI's older URLs (a deployment in the path, a dated api-version, the resource alone), which the
    proxy cannot call: the v1 base_url and model to write instead. (The URL is not repeated: its query may
    hold a key.)"""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        at = f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")
    except ValueError:
        return None  # url_problem says what is wrong with it
    if not host.endswith(AZURE_OPENAI_HOSTS):
        return None
    deployment = re.search(r"/openai/deployments/([^/]+)", parts.path)
    bare = host.endswith(".openai.azure.com") and parts.path.rstrip("/") in ("", "/openai")
    if not (deployment or bare or "api-version" in parts.query.lower()):
        return None
    model = deployment[1] if deployment else "DEPLOYMENT"
    what = "the resource alone" if bare else "Azure OpenAI's older deployment URL"
    return (f"base_url is {what}: the proxy speaks Azure OpenAI's v1 API (no deployment in the URL, no "
            f"api-version); write base_url = \"{at}/openai/v1\" and model = \"{model}\" (the deployment's name "
            "is the model)")


def url_problem(url: str, name: str, field: str = "base_url") -> str | None:
    """Why `url` cannot be a base_url (or another `field` holding a server's URL): not http(s), or holding what may
    be a key (`user:pass@`, `?key=`), which would reach logs, error messages and every command's output."""
    not_http = f"{field} {url!r} is not an http(s) URL"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (a port that is not a number raises here)
    except ValueError:
        return not_http
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return not_http
    where = "a user name or password (user:pass@)" if "@" in parts.netloc else \
        "a query or fragment (?...)" if parts.query or parts.fragment or url.rstrip().endswith(("?", "#")) else None
    if where:
        return (f"{field} holds {where}, where a key would show in logs and output: give the server's URL "
                f"alone and keep the key in the keyring (`ccs key set {name}`, or key_env / key_cmd)")
    return None


def _type_name(t) -> str:
    if t == (int, float):
        return "a number"
    return {str: "a string", int: "an integer", dict: "a table", list: "a list", bool: "true/false",
            float: "a number"}.get(t, t.__name__)


def suggest(word: str, known) -> str:
    import difflib

    close = difflib.get_close_matches(word, list(known), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _unknown_profile_message(name: str, config: Config) -> str:
    if not config.profiles:
        return f"no profile named '{name}': {config.path} has no profiles yet; add one with `ccs add {name}`"
    return (f"no profile named '{name}'{suggest(name, config.profiles)}; "
            f"known: {', '.join(sorted(config.profiles))} (see `ccs list`)")


class _Locator:
    """Finds the line a profile or one of its keys is on, so errors can say `file:line`."""

    def __init__(self, text: str, path: Path):
        self.lines = text.splitlines()
        self.path = path

    def top(self, key: str) -> str:
        for number, line in enumerate(self.lines, 1):
            if line.startswith("["):
                break
            if re.match(rf"\s*{re.escape(key)}\s*=", line):
                return f"{self.path}:{number}"
        return str(self.path)

    def table(self, name: str, key: str | None = None) -> str:
        """The line of a top-level table's `key` (or of its header)."""
        header = re.compile(rf"\s*\[\s*{re.escape(name)}\s*\]")
        found = None
        for number, line in enumerate(self.lines, 1):
            if header.match(line):
                found = number
            elif found and line.lstrip().startswith("["):
                break
            elif found and key and re.match(rf"\s*[\"']?{re.escape(key)}[\"']?\s*=", line):
                return f"{self.path}:{number}"
        if found is None and (inline := self.top(name)) != str(self.path):
            return inline  # search = { ... } on a line of its own
        return f"{self.path}:{found}" if found else str(self.path)

    def of(self, profile: str, key: str | None = None) -> str:
        quoted = rf"(?:{re.escape(profile)}|\"{re.escape(profile)}\"|'{re.escape(profile)}')"
        header = re.compile(rf"\s*\[\s*profiles\s*\.\s*{quoted}\s*(\.\s*(\w+)\s*)?\]")
        found = None
        in_section = False
        for number, line in enumerate(self.lines, 1):
            if match := header.match(line):
                found = found or number
                in_section = True
                if key is not None and match.group(2) == key:
                    return f"{self.path}:{number}"
                continue
            if line.lstrip().startswith("["):
                in_section = False
            elif in_section and key is not None and re.match(rf"\s*[\"']?{re.escape(key)}[\"']?\s*[=.]", line):
                return f"{self.path}:{number}"
        return f"{self.path}:{found}" if found else str(self.path)


# ---------------------------------------------------------------- editing


@contextlib.contextmanager
def editing(path: Path | None = None) -> Iterator[object]:
    """Yield the file as a tomlkit document; on exit validate it and write it atomically under a lock.

    The user's comments and layout survive. If the result does not validate, nothing is written.
    """
    import tomlkit

    path = path or files.config_file()
    with files.locked(path):
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            text = NEW_FILE_HEADER
        parse(text, path)  # refuse to edit a file that is already broken: the user's text stays as it is
        doc = tomlkit.parse(text)
        yield doc
        new_text = tomlkit.dumps(doc)
        parse(new_text, path)
        files.write_atomic(path, new_text, mode=files.existing_mode(path, 0o600))


def profiles_table(doc):
    """The document's `profiles` table, created as a super-table (`[profiles.NAME]` headers) if missing."""
    import tomlkit

    if "profiles" not in doc:
        doc["profiles"] = tomlkit.table(is_super_table=True)
    return doc["profiles"]


def new_profile_table(values: dict):
    """A tomlkit table for a new profile, with `models` and `env` written inline."""
    import tomlkit

    table = tomlkit.table()
    for key, value in values.items():
        if isinstance(value, dict):
            inline = tomlkit.inline_table()
            inline.update(value)
            table[key] = inline
        else:
            table[key] = value
    return table


def parse_value(text: str):
    """A `ccs set` value: TOML when it parses as a TOML value (numbers, lists, tables), else a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text
