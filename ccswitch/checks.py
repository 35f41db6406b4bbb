"""Questions to the world outside the profiles file. `ccs doctor`: does each provider take its key, which
Claude Code settings would override a profile, which claude is installed. `ccs test`: does one request
the way claude sends it work. `ccs models`: what each provider lists.

Each doctor check is one `Finding`: ok, warn (worth knowing, nothing is broken) or fail (this will not work).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from . import claude, files, keys, launch
from .errors import CcsError
from .profiles import Config, Profile, default_model, is_route, route_list, split_route

PROBE_TIMEOUT = 8.0  # seconds for a provider to answer the key check
LIST_TIMEOUT = 20.0  # seconds for a provider to list its models
TRIAL_TIMEOUT = 60.0  # seconds one `ccs test` request may take in all, so that `--all` never hangs
TRIAL_MAX_TOKENS = 256  # enough for a tool call, even after a little reasoning
DEFAULT_MODEL = "claude-sonnet-4-5"  # what claude asks for when a profile names no model
ANTHROPIC_VERSION = "2023-06-01"
WEATHER_TOOL = {"name": "get_weather", "description": "The current weather in a city.",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
LOGIN = "profile '{name}' uses claude's own login, which only claude can send: ccs has no key to {what}"


@dataclass(frozen=True)
class Finding:
    level: str  # "ok", "warn" or "fail"
    check: str
    detail: str


def probe_keys(profiles: list[tuple[Profile, str | None]]) -> list[Finding]:
    """Ask each provider's models endpoint with the profile's key, all at once: accepted, rejected, unreachable."""
    return asyncio.run(_probe_all(profiles)) if profiles else []


async def _probe_all(profiles: list[tuple[Profile, str | None]]) -> list[Finding]:
    import httpx2

    from .proxy.dialect import on_this_machine

    async def probe(profile: Profile, secret: str | None) -> Finding:
        url, headers = models_request(profile, secret)
        host = urlsplit(url).hostname or ""
        check = f"{profile.name}: {url}"
        try:
            async with httpx2.AsyncClient(timeout=PROBE_TIMEOUT, trust_env=not on_this_machine(host)) as client:
                response = await client.get(url, headers=headers)
        except httpx2.HTTPError as e:
            level = "warn" if on_this_machine(host) else "fail"  # a local server may simply not be running now
            return Finding(level, check, f"unreachable ({type(e).__name__}: {e})")
        status = response.status_code
        if status in (401, 403):
            return Finding("fail", check, f"the provider rejected the key ({status}): `ccs key set {profile.name}`")
        if status == 200:
            return Finding("ok", check, "the key works" if secret else "the server answers")
        return Finding("warn", check, f"answered {status}; the key could not be checked this way")

    return list(await asyncio.gather(*(probe(profile, secret) for profile, secret in profiles)))


def models_request(profile: Profile, secret: str | None) -> tuple[str, dict[str, str]]:
    """The provider's model list, asked for with the key sent the way the proxy or claude sends it."""
    from .proxy.upstream import Upstream

    upstream = Upstream.from_profile(profile, secret, {})
    return upstream.models_url, {"anthropic-version": ANTHROPIC_VERSION, **upstream.headers()}


def settings_overrides(environ: dict[str, str], cwd: Path) -> list[Finding]:
    """Claude Code settings files whose `env` or `apiKeyHelper` beat the environment: plain `claude`
    (without `ccs run` or the shell integration) goes where they say, not where a profile says. A helper
    written by an older ccs runs Python that imports from claude's working directory: a failure."""
    from .claude_settings import unsafe_helper

    found = []
    for settings in claude.settings_files(environ, cwd):
        where = str(settings.path)
        if settings.problem:
            found.append(Finding("warn", where, f"{settings.problem}: ccs cannot tell what it sets; `ccs run` "
                                                "overrides every provider setting all the same"))
            continue
        helper = settings.get(claude.HELPER)
        if name := unsafe_helper(helper):
            found.append(Finding("fail", where, f"{claude.HELPER} runs `python -m ccswitch` in claude's working "
                                                "directory, where a repository's own `ccswitch/` folder would run "
                                                f"instead: `ccs use {name} --claude-settings` rewrites it safely"))
        managed = sorted(var for var in settings.env if var in claude.MANAGED)
        if helper:
            managed.append(f"{claude.HELPER} ({helper})")
        if managed:
            found.append(Finding("warn", where, f"sets {', '.join(managed)}: plain `claude` goes there; "
                                                "`ccs run` and the shell integration override it"))
    return found


def claude_version() -> Finding:
    program = shutil.which("claude")
    if program is None:
        return Finding("fail", "claude", f"not on PATH ({claude.INSTALL_HINT})")
    try:
        done = subprocess.run([program, "--version"], capture_output=True, text=True, timeout=15)
        version = done.stdout.strip().splitlines()[0] if done.stdout.strip() else f"exit code {done.returncode}"
    except (OSError, subprocess.TimeoutExpired) as e:
        return Finding("fail", "claude", f"{program} does not start: {e}")
    return Finding("ok", "claude", f"{program}: {version}")


def route_findings(config: Config) -> list[Finding]:
    """Each router's routes: what stops them (a missing, login or router target), else where they go. The
    targets' keys are checked on their own lines, as profiles of their own."""
    found = []
    for profile in config.profiles.values():
        if not profile.is_router:
            continue
        problems = config.route_problems(profile)
        found += [Finding("fail", profile.name, problem) for problem in problems]
        if not problems:
            targets = dict.fromkeys(config.find(split_route(route)[0]).name for route in route_list(profile))
            found.append(Finding("ok", profile.name, f"routes to {', '.join(targets)}"))
    return found


def saved_route_models(environ: dict[str, str], cwd: Path) -> list[Finding]:
    """A router's `profile,model` saved as the `model` of a Claude Code settings file (claude keeps a /model
    pick there): plain `claude`, and a profile without a model of its own, would send that name to a
    provider that has no such model."""
    found = []
    for settings in claude.settings_files(environ, cwd):
        model = settings.get("model")
        if isinstance(model, str) and is_route(model):
            found.append(Finding("warn", str(settings.path), f'"model": "{model}" is a route, which only a router\'s proxy '
                                                    "understands (claude saves a /model pick here): plain `claude` "
                                                    'sends it to its provider as is; remove "model" from this file '
                                                    "and set it in the router's profile "
                                                    f"(`ccs set ROUTER model={model}`)"))
    return found


# ---------------------------------------------------------------- ccs test


@dataclass
class Trial:
    """One `ccs test` request and what came of it (times in milliseconds from sending)."""

    profile: str
    model: str
    via: str = ""  # "direct" (to the provider) or "proxy" (the profile's own, in this process)
    url: str = ""
    result: str = "failed"  # "ok", "failed" or "skipped"
    status: int | None = None
    answered_by: str | None = None  # the model in message_start
    first_token_ms: int | None = None  # the first content_block_delta
    total_ms: int | None = None
    tool_use: bool | None = None
    diagnosis: str | None = None  # what went wrong and the fix; for "ok", anything worth knowing
    log: str | None = None  # the proxy's log file


def trial_model(profile: Profile, model: str | None = None) -> str:
    """The model claude would ask for first: the given one, the profile's main model, its sonnet tier."""
    return model or default_model(profile.model, profile.models) or DEFAULT_MODEL


def try_profiles(config: Config, chosen: list[Profile], model: str | None = None,
                 timeout: float = TRIAL_TIMEOUT) -> list[Trial]:
    """One small streamed request with a tool per profile, all at once, each the way claude sends it: to the
    profile's proxy (started here) when it needs one, else to the provider's Messages API with its key."""
    with contextlib.ExitStack() as proxies:
        planned = [_plan(config, profile, trial_model(profile, model), proxies) for profile in chosen]
        return asyncio.run(_send_all(config, planned, timeout))


def _plan(config: Config, profile: Profile, model: str, proxies: contextlib.ExitStack):
    """(the trial, the headers to send it with, the key in them), or (the trial, None, None) when it cannot be
    sent. Behind the proxy the key stays in the proxy, which masks it in what it answers."""
    trial = Trial(profile.name, model)
    try:
        if profile.uses_proxy:
            from .proxy.lifecycle import keys_for, log_path, running_for

            endpoint = proxies.enter_context(running_for(config, profile, keys_for(config, profile),
                                                         log_file=log_path()))
            trial.via, trial.url, trial.log = "proxy", f"{endpoint.url}/v1/messages", endpoint.log
            return trial, {"Authorization": f"Bearer {endpoint.token}"}, None
        if profile.auth == "login":
            trial.result = "skipped"
            trial.diagnosis = LOGIN.format(name=profile.name, what="test it with; try "
                                                                   f"`ccs run {profile.name} --print hi`")
            return trial, None, None
        secret = keys.lookup(profile, config.secret_store)
    except CcsError as e:  # no key, a key_cmd that failed, a route that goes nowhere
        trial.diagnosis = str(e)
        return trial, None, None
    from .proxy.upstream import Upstream

    trial.via, trial.url = "direct", Upstream.from_profile(profile, secret, {}).url  # the Messages API
    return trial, claude_headers(profile, secret), secret


def claude_headers(profile: Profile, secret: str | None) -> dict[str, str]:
    """The key as claude sends what `ccs run` gives it (see launch.profile_env)."""
    if profile.auth == "api-key":
        return {"x-api-key": secret or ""}
    return {"Authorization": f"Bearer {secret or launch.NO_KEY}"}


async def _send_all(config: Config, planned, timeout: float) -> list[Trial]:
    import httpx2

    tls = httpx2.create_ssl_context()  # loaded once, before any clock runs: it blocks for tens of milliseconds

    async def one(trial: Trial, headers: dict[str, str] | None, secret: str | None) -> Trial:
        if headers is None:
            return trial
        try:
            await asyncio.wait_for(_stream(config, trial, headers, secret, timeout, tls), timeout)
        except TimeoutError:
            trial.diagnosis = (f"no complete answer within {timeout:.0f} s"
                               + ("" if trial.status else ": is the server up? is base_url right?"))
        return trial

    return list(await asyncio.gather(*(one(*plan) for plan in planned)))


async def _stream(config: Config, trial: Trial, headers: dict[str, str], secret: str | None, timeout: float,
                  tls) -> None:
    """Send the trial request and read its stream, noting the times and what came back."""
    import httpx2

    from .proxy.dialect import on_this_machine

    body = {"model": trial.model, "max_tokens": TRIAL_MAX_TOKENS, "stream": True, "tools": [WEATHER_TOOL],
            "messages": [{"role": "user", "content": "What is the weather in Paris? Answer by calling get_weather."}]}
    headers = {**headers, "anthropic-version": ANTHROPIC_VERSION}
    client = httpx2.AsyncClient(timeout=httpx2.Timeout(timeout, connect=10.0), verify=tls,
                                trust_env=not on_this_machine(urlsplit(trial.url).hostname or ""))
    started = time.monotonic()

    def elapsed() -> int:
        return round((time.monotonic() - started) * 1000)

    try:
        async with client, client.stream("POST", trial.url, json=body, headers=headers) as response:
            trial.status = response.status_code
            if response.status_code != 200:
                reached = _reached(config, trial)
                message = error_message(await response.aread(), secret)
                trial.diagnosis = status_diagnosis(response.status_code, message, reached,
                                                   f"`ccs models {reached}` lists the provider's models")
                return
            kind = response.headers.get("content-type", "")
            if "text/event-stream" not in kind:
                trial.diagnosis = (f"answered 200 with {kind or 'no content type'}, not a stream "
                                   "(a login page or another service at this URL?): is base_url right?")
                return
            await _read_stream(response, trial, secret, elapsed)
    except httpx2.HTTPError as e:
        trial.diagnosis = transport_diagnosis(e, trial.url)
    finally:
        trial.total_ms = elapsed()


async def _read_stream(response, trial: Trial, secret: str | None, elapsed) -> None:
    stopped, stop_reason = False, None
    trial.tool_use = False
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue
        try:
            event = json.loads(line[5:])
        except ValueError:
            trial.diagnosis = f"the stream is not Anthropic's event stream: {line[:120]!r}"
            return
        kind = event.get("type") if isinstance(event, dict) else None
        if kind == "message_start":
            trial.answered_by = _object(event.get("message")).get("model")
        elif kind == "content_block_start" and _object(event.get("content_block")).get("type") == "tool_use":
            trial.tool_use = True
        elif kind == "content_block_delta" and trial.first_token_ms is None:
            trial.first_token_ms = elapsed()
        elif kind == "message_delta":
            stop_reason = _object(event.get("delta")).get("stop_reason")
        elif kind == "error":
            trial.diagnosis = f"the stream ended with an error: {message_in(event, secret)}"
            return
        elif kind == "message_stop":
            stopped = True
    if not stopped:
        trial.diagnosis = "the stream ended before message_stop (cut off)"
        return
    trial.result = "ok"
    if stop_reason == "max_tokens" and not trial.tool_use:
        trial.diagnosis = (f"no tool call within {TRIAL_MAX_TOKENS} tokens (a reasoning model thinking at length?); "
                           "the profile works, claude's tools may be slow with this model")
    elif not trial.tool_use:
        trial.diagnosis = "answered without calling the tool: claude's tools may not work well with this model"


def _object(value) -> dict:
    """A part of the provider's answer read as an object; any other shape reads as empty."""
    return value if isinstance(value, dict) else {}


def _reached(config: Config, trial: Trial) -> str:
    """The profile whose provider the trial's model reached: a route's, else the tested one's."""
    target = config.find(split_route(trial.model)[0]) if is_route(trial.model) else None
    return target.name if target else trial.profile


def status_diagnosis(status: int, message: str, profile: str, not_found: str) -> str:
    """What an error status from a provider (or the proxy in front of it) means, and the fix."""
    if status in (401, 403):
        meaning = f"the key was rejected: `ccs key set {profile}`"
    elif status == 404:
        meaning = f"wrong base_url or model: {not_found}"
    elif status == 429:
        meaning = "rate limited or out of credit: wait a minute, or look at the account's balance"
    elif status >= 500:
        meaning = "the provider failed or could not be reached: try again later; is base_url right?"
    else:
        meaning = "the provider refused the request"
    return f"{meaning} ({status}: {message})" if message else f"{meaning} ({status})"


def error_message(raw: bytes, secret: str | None) -> str:
    """The message in an error answer (Anthropic's or OpenAI's shape, else its text)."""
    try:
        return message_in(json.loads(raw), secret)
    except ValueError:
        return one_line(raw.decode("utf-8", "replace"), secret)


def message_in(data, secret: str | None) -> str:
    """`{"error": {"message": ...}}` (an error event too) -> the message."""
    error = data.get("error", data) if isinstance(data, dict) else data
    return one_line(str(error.get("message") or error) if isinstance(error, dict) else str(error), secret)


def one_line(text: str, secret: str | None) -> str:
    """A provider's words for a line of ours: short, and the key masked where the provider quotes it back."""
    if secret:
        text = text.replace(secret, keys.mask(secret))
    return " ".join(text.split())[:300]


def transport_diagnosis(error: Exception, url: str) -> str:
    """A request to `url` that got no answer at all: which of the usual reasons, and where to look."""
    import httpx2

    text = " ".join(str(error).split()) or type(error).__name__
    where = urlsplit(url).netloc
    if isinstance(error, httpx2.TimeoutException):
        return f"no answer from {where} in time ({type(error).__name__}): is the server up? is base_url right?"
    if isinstance(error, httpx2.ConnectError):
        if any(word in text for word in ("SSL", "TLS", "certificate")):
            return f"TLS with {where} failed ({text}): an untrusted certificate, or https:// to a plain HTTP server?"
        if any(word in text for word in ("name resolution", "not known", "nodename", "getaddrinfo")):
            return f"the host name {urlsplit(url).hostname} does not resolve ({text}): is base_url right?"
        return f"cannot connect to {where} ({text}): is the server running? is base_url right?"
    return f"the connection failed ({type(error).__name__}: {text})"


# ---------------------------------------------------------------- ccs models


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
