"""`ccs test`: one small streamed request with a tool, sent the way claude sends it (through the profile's
proxy when it has one), timed and read for what came back."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass

from . import http_client, keys, launch
from .apis import key_headers
from .diagnosis import ANTHROPIC_VERSION, error_message, message_in, status_diagnosis, transport_diagnosis
from .errors import CcsError
from .profiles import Config, Profile, default_model, is_route, split_route

TRIAL_TIMEOUT = 60.0  # seconds one `ccs test` request may take in all, so that `--all` never hangs
TRIAL_MAX_TOKENS = 256  # enough for a tool call, even after a little reasoning
DEFAULT_MODEL = "claude-sonnet-4-5"  # what claude asks for when a profile names no model
WEATHER_TOOL = {"name": "get_weather", "description": "The current weather in a city.",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
SIGNED = "profile '{name}' is signed in by claude itself, with {how}: ccs has no key to {what}"


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

            endpoint = proxies.enter_context(running_for(config, profile, keys_for(config, profile), test=True,
                                                         log_file=log_path()))
            trial.via, trial.url, trial.log = "proxy", f"{endpoint.url}/v1/messages", endpoint.log
            return trial, {"Authorization": f"Bearer {endpoint.token}"}, None
        if profile.signed_with:
            trial.result = "skipped"
            trial.diagnosis = SIGNED.format(name=profile.name, how=profile.signed_with,
                                            what=f"test it with; try `ccs run {profile.name} --print hi`")
            return trial, None, None
        secret = keys.lookup(profile, config.secret_store)
    except CcsError as e:  # no key, a key_cmd that failed, a route that goes nowhere
        trial.diagnosis = str(e)
        return trial, None, None
    from .proxy.upstream import Upstream

    trial.via, trial.url = "direct", Upstream.from_profile(profile, secret, {}).url  # the Messages API
    return trial, claude_headers(profile, secret), secret


def claude_headers(profile: Profile, secret: str | None) -> dict[str, str]:
    """The key as claude sends what `ccs run --direct` gives it (see launch.profile_env)."""
    return key_headers("anthropic", profile.auth, secret or launch.NO_KEY)


async def _send_all(config: Config, planned, timeout: float) -> list[Trial]:
    if any(trial.url.startswith("https:") for trial, headers, _ in planned if headers is not None):
        http_client.tls_context()  # loaded once, before any clock runs: it blocks for tens of milliseconds

    async def one(trial: Trial, headers: dict[str, str] | None, secret: str | None) -> Trial:
        if headers is None:
            return trial
        try:
            await asyncio.wait_for(_stream(config, trial, headers, secret, timeout), timeout)
        except TimeoutError:
            trial.diagnosis = (f"no complete answer within {timeout:.0f} s"
                               + ("" if trial.status else ": is the server up? is base_url right?"))
        return trial

    return list(await asyncio.gather(*(one(*plan) for plan in planned)))


async def _stream(config: Config, trial: Trial, headers: dict[str, str], secret: str | None, timeout: float) -> None:
    """Send the trial request and read its stream, noting the times and what came back."""
    body = {"model": trial.model, "max_tokens": TRIAL_MAX_TOKENS, "stream": True, "tools": [WEATHER_TOOL],
            "messages": [{"role": "user", "content": "What is the weather in Paris? Answer by calling get_weather."}]}
    headers = {**headers, "anthropic-version": ANTHROPIC_VERSION, "content-type": "application/json"}
    started = time.monotonic()

    def elapsed() -> int:
        return round((time.monotonic() - started) * 1000)

    try:
        async with (http_client.session(trial.url, read_timeout=timeout) as client,
                    client.post(trial.url, data=json.dumps(body), headers=headers) as response):
            trial.status = response.status
            if response.status != 200:
                raw = await response.read()
                reached = _reached(config, trial)
                said = error_message(raw, secret)
                if trial.via == "proxy" and said.startswith(ours := f"profile '{reached}': "):
                    trial.diagnosis = f"{said.removeprefix(ours)} ({response.status})"  # the proxy's own words
                    return
                trial.diagnosis = status_diagnosis(response.status, said, reached,
                                                   f"`ccs models {reached}` lists the provider's models")
                return
            kind = response.headers.get("content-type", "")
            if "text/event-stream" not in kind:
                trial.diagnosis = (f"answered 200 with {kind or 'no content type'}, not a stream "
                                   "(a login page or another service at this URL?): is base_url right?")
                return
            await _read_stream(response, trial, secret, elapsed)
    except http_client.errors() as e:
        trial.diagnosis = transport_diagnosis(e, trial.url)
    finally:
        trial.total_ms = elapsed()


async def _read_stream(response, trial: Trial, secret: str | None, elapsed) -> None:
    stopped, stop_reason = False, None
    trial.tool_use = False
    async for raw in response.content:  # line by line
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
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
