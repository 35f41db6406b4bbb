"""`ccs doctor`'s questions to the world outside the profiles file: does each provider take its key,
which Claude Code settings would override a profile, which claude is installed.

Each check is one `Finding`: ok, warn (worth knowing, nothing is broken) or fail (this will not work).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from . import launch
from .profiles import Config, Profile, is_route, route_list, split_route

PROBE_TIMEOUT = 8.0  # seconds for a provider to answer the key check


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
    return upstream.models_url, {"anthropic-version": "2023-06-01", **upstream.headers()}


def settings_overrides(environ: dict[str, str], cwd: Path) -> list[Finding]:
    """Claude Code settings files whose `env` or `apiKeyHelper` beat the environment: plain `claude`
    (without `ccs run` or the shell integration) goes where they say, not where a profile says."""
    found = []
    for path, settings in launch.claude_settings_files(environ, cwd):
        managed = sorted(var for var in settings["env"] if var in launch.MANAGED)
        if settings.get(launch.HELPER):
            managed.append(f"{launch.HELPER} ({settings[launch.HELPER]})")
        if managed:
            found.append(Finding("warn", str(path), f"sets {', '.join(managed)}: plain `claude` goes there; "
                                                    "`ccs run` and the shell integration override it"))
    return found


def claude_version() -> Finding:
    claude = shutil.which("claude")
    if claude is None:
        return Finding("fail", "claude", f"not on PATH ({launch.INSTALL_HINT})")
    try:
        done = subprocess.run([claude, "--version"], capture_output=True, text=True, timeout=15)
        version = done.stdout.strip().splitlines()[0] if done.stdout.strip() else f"exit code {done.returncode}"
    except (OSError, subprocess.TimeoutExpired) as e:
        return Finding("fail", "claude", f"{claude} does not start: {e}")
    return Finding("ok", "claude", f"{claude}: {version}")


def route_findings(config: Config) -> list[Finding]:
    """Each router's routes: what stops them (a missing, login or router target), else where they go. The
    targets' keys are checked on their own lines, as profiles of their own."""
    found = []
    for profile in config.profiles.values():
        if not profile.routes:
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
    for path, settings in launch.claude_settings_files(environ, cwd):
        model = settings.get("model")
        if isinstance(model, str) and is_route(model):
            found.append(Finding("warn", str(path), f'"model": "{model}" is a route, which only a router\'s proxy '
                                                    "understands (claude saves a /model pick here): plain `claude` "
                                                    'sends it to its provider as is; remove "model" from this file '
                                                    "and set it in the router's profile "
                                                    f"(`ccs set ROUTER model={model}`)"))
    return found
