"""`ccs doctor`: what would stop a setup from working, each check one `Finding`: ok, warn (worth knowing,
nothing is broken) or fail (this will not work). It asks each provider whether it takes its key, reads
the Claude Code settings files that would override a profile, and finds claude."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from . import claude, files
from .diagnosis import ANTHROPIC_VERSION
from .profiles import Config, Profile, is_route, route_list, split_route

PROBE_TIMEOUT = 8.0  # seconds for a provider to answer the key check
DIRECT = ("direct = true: claude holds the key itself, and gives up what the proxy does: a clear error in seconds "
          "when the provider is down, the usage log and cost, fallback, and keeping the key from what claude runs")


@dataclass(frozen=True)
class Finding:
    level: str  # "ok", "warn" or "fail"
    check: str
    detail: str


def run(offline: bool, environ: dict[str, str], cwd: Path) -> Iterator[Finding]:
    """Every check, each as soon as it is known: the local ones at once, each provider's answer as it comes
    (they are asked all at once, in a thread, while the rest is checked)."""
    from . import keys, profiles, shell, state
    from .errors import CcsError

    answers: Iterator[Finding] = iter(())
    try:
        config = profiles.load()
    except CcsError as e:
        config = None
        yield Finding("fail", "profiles", str(e))
    if config is not None:
        yield Finding("ok", "profiles", f"{config.path}: {len(config.profiles)} profile(s)")
        yield Finding("ok", "keys", f"stored in {keys.where_keys_go(config.secret_store)}")
        yield from route_findings(config)
        to_probe = []
        for profile in config.profiles.values():
            if profile.observe:
                yield Finding("warn", profile.name, "`observe = true` is no longer needed (every profile whose key "
                                                    f"ccs holds runs behind the proxy): `ccs set {profile.name} "
                                                    "--unset observe`")
            if profile.direct:
                yield Finding("warn", profile.name, DIRECT)
            if profile.cloud:
                yield cloud_credentials(profile, environ)
            if profile.signed_with or not profile.own_provider:
                continue  # a router's targets are profiles of their own, each checked on its own line
            source, present, secret = keys.key_info(profile, config.secret_store)
            if profile.needs_key and present is False:
                fix = (f"${profile.key_env} is not set here: `export {profile.key_env}=...` before `ccs run`"
                       if profile.key_env else f"`ccs key set {profile.name}`")
                yield Finding("fail", profile.name, f"no key ({source}): {fix}")
                continue
            if profile.key_cmd and not offline:
                try:
                    secret = keys.get(profile, config.secret_store)
                except CcsError as e:
                    yield Finding("fail", profile.name, str(e))
                    continue
            held = keys.pool(profile, config.secret_store, first=secret) if secret else [secret]
            to_probe += [(profile, key, f" key {n} ({keys.mask(key)})" if len(held) > 1 else "")
                         for n, key in enumerate(held, 1)]  # each key of a pool: the proxy sets aside one rejected
        if not offline and to_probe:
            answers = probe_keys(to_probe)
        name, why = state.current()
        if name is not None and name not in config.profiles:
            yield Finding("fail", "active profile", f"{why} names profile '{name}', which does not exist")
        else:
            yield Finding("ok", "active profile", f"{name or '-'} ({why})")
    yield from settings_overrides(environ, cwd)
    yield from saved_route_models(environ, cwd)
    active = shell.integration_active()
    yield (Finding("ok", "shell integration", f"active ({active})") if active else
           Finding("warn", "shell integration", 'not active: add `eval "$(ccs shell-init)"` to your rc file'))
    yield from claude_version()
    yield from answers


def probe_keys(profiles: list[tuple[Profile, str | None, str]]) -> Iterator[Finding]:
    """Ask each provider's models endpoint with the profile's key, all at once in a thread of their own:
    accepted, rejected, unreachable. Yields each answer as it comes."""
    import queue
    import threading

    answers: queue.SimpleQueue[Finding | None] = queue.SimpleQueue()

    async def ask_all() -> None:
        for answer in asyncio.as_completed([_probe(*probe) for probe in profiles]):
            answers.put(await answer)

    def asking() -> None:
        try:
            asyncio.run(ask_all())
        finally:
            answers.put(None)

    threading.Thread(target=asking, name="ccs-doctor", daemon=True).start()
    while (finding := answers.get()) is not None:
        yield finding


async def _probe(profile: Profile, secret: str | None, which: str = "") -> Finding:
    """The provider's model list, asked with the key (`which` of a pool's): a list means the key works (the
    same question and the same words as `ccs models`)."""
    from .model_list import ask
    from .profiles import on_this_machine

    listing = await ask(profile, secret, timeout=PROBE_TIMEOUT)
    check = f"{profile.name}{which}: {listing.url}"
    if listing.status in (401, 403):
        return Finding("fail", check, listing.problem)
    if listing.problem is None:
        return Finding("ok", check, f"{'the key works' if secret else 'the server answers'} "
                                    f"({len(listing.models)} model{'' if len(listing.models) == 1 else 's'})")
    if listing.status is None:  # no answer at all; a local server may simply not be running now
        return Finding("warn" if on_this_machine(urlsplit(listing.url).hostname or "") else "fail", check,
                       listing.problem)
    return Finding("warn", check, f"{listing.problem}; the key could not be checked this way")


def cloud_credentials(profile: Profile, environ: dict[str, str]) -> Finding:
    """Whether the credentials claude signs a cloud profile's requests with are on this machine, where that
    cloud's SDK looks for them: variables and files only, never a network call (a machine's own role, which
    only the network tells, makes a missing one a warning)."""
    from .launch import cloud_env

    env = {**environ, **cloud_env(profile), **profile.env}
    home = Path(env.get("HOME") or Path.home())
    level, detail = CREDENTIALS[profile.cloud.credentials](env, home)
    return Finding(level, profile.name, f"{profile.cloud.title}: {detail}")


def aws_credentials(env: dict[str, str], home: Path) -> tuple[str, str]:
    """The AWS SDK's chain, as far as files and variables tell: a Bedrock API key, access keys, a role to take
    on, or the profile (AWS_PROFILE, else "default") in the credentials or config file."""
    if env.get("AWS_BEARER_TOKEN_BEDROCK"):
        return "ok", "a Bedrock API key in $AWS_BEARER_TOKEN_BEDROCK"
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        return "ok", "access keys in $AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY"
    for var in ("AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
        if env.get(var):
            return "ok", f"the role ${var} names"
    named = env.get("AWS_PROFILE") or env.get("AWS_DEFAULT_PROFILE")
    name = named or "default"
    credentials = Path(env.get("AWS_SHARED_CREDENTIALS_FILE") or home / ".aws" / "credentials")
    config = Path(env.get("AWS_CONFIG_FILE") or home / ".aws" / "config")
    in_config = {f"profile {name}"} | ({"default"} if name == "default" else set())  # config's own spelling
    if name in ini_sections(credentials) or in_config & ini_sections(config):
        return "ok", f"AWS profile '{name}' ({credentials} or {config})"
    if named:
        return "fail", (f"AWS profile '{name}' is in neither {credentials} nor {config}: `aws configure --profile "
                        f"{name}` (or `aws configure sso`), or set aws_profile to one that is")
    return "warn", (f"no AWS credentials here ($AWS_ACCESS_KEY_ID, $AWS_BEARER_TOKEN_BEDROCK, {credentials}, "
                    f"{config}): `aws configure`, `aws login` or `aws sso login` (an instance role would do too)")


def gcp_credentials(env: dict[str, str], home: Path) -> tuple[str, str]:
    """Google's application default credentials: the file $GOOGLE_APPLICATION_CREDENTIALS names, else gcloud's."""
    if named := env.get("GOOGLE_APPLICATION_CREDENTIALS"):
        return ("ok", f"$GOOGLE_APPLICATION_CREDENTIALS ({named})") if Path(named).is_file() else \
            ("fail", f"$GOOGLE_APPLICATION_CREDENTIALS names {named}, which is not a file")
    gcloud = Path(env.get("CLOUDSDK_CONFIG") or home / ".config" / "gcloud") / "application_default_credentials.json"
    if gcloud.is_file():
        return "ok", f"application default credentials ({gcloud})"
    return "warn", (f"no Google credentials here ($GOOGLE_APPLICATION_CREDENTIALS, {gcloud}): "
                    "`gcloud auth application-default login` (a VM's service account would do too)")


def azure_credentials(env: dict[str, str], home: Path) -> tuple[str, str]:
    """Foundry's key or token variable, else the Azure SDK's chain: a service principal's variables, az login."""
    for var in ("ANTHROPIC_FOUNDRY_API_KEY", "ANTHROPIC_FOUNDRY_AUTH_TOKEN"):
        if env.get(var):
            return "ok", f"${var}"
    if env.get("AZURE_CLIENT_ID") and env.get("AZURE_TENANT_ID") and any(
            env.get(var) for var in ("AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH",
                                     "AZURE_FEDERATED_TOKEN_FILE")):
        return "ok", "a service principal in $AZURE_CLIENT_ID and $AZURE_TENANT_ID"
    azure = Path(env.get("AZURE_CONFIG_DIR") or home / ".azure")
    if any((azure / name).is_file() for name in ("msal_token_cache.json", "msal_token_cache.bin")):
        return "ok", f"the Azure CLI's login ({azure})"
    return "warn", (f"no Azure credentials here ($ANTHROPIC_FOUNDRY_API_KEY, {azure}): export "
                    "ANTHROPIC_FOUNDRY_API_KEY or `az login` (a managed identity would do too)")


CREDENTIALS = {"aws": aws_credentials, "gcp": gcp_credentials, "azure": azure_credentials}
INI_SECTION = re.compile(r"^\s*\[\s*([^\]]+?)\s*\]", re.M)


def ini_sections(path: Path) -> set[str]:
    """The [section] names of an INI file (AWS's credentials and config files); none if it cannot be read."""
    try:
        return set(INI_SECTION.findall(files.read_small(path, 4 * 1024 * 1024) or ""))
    except files.Unreadable:
        return set()


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
        managed = sorted(var for var in settings.env if var in claude.MANAGED or var in claude.NETWORK_VARS)
        if helper:
            managed.append(f"{claude.HELPER} ({helper})")
        if managed:
            found.append(Finding("warn", where, f"sets {', '.join(managed)}: plain `claude` goes there; "
                                                "`ccs run` and the shell integration override it"))
    return found


def claude_version() -> Iterator[Finding]:
    """The claude on PATH and the one the Agent SDK bundles (which its programs start, PATH or not): each
    one's version, and whether it is newer than the newest release ccs was tested with."""
    found = [("claude", program) for program in [shutil.which("claude")] if program]
    if bundled := agent_sdk_claude():
        found.append(("claude (Agent SDK)", bundled))
    if not found:
        yield Finding("fail", "claude", f"not on PATH ({claude.INSTALL_HINT})")
    for check, program in found:
        try:
            done = subprocess.run([program, "--version"], capture_output=True, text=True, timeout=15)
        except (OSError, subprocess.TimeoutExpired) as e:
            yield Finding("fail", check, f"{program} does not start: {e}")
            continue
        version = done.stdout.strip().splitlines()[0] if done.stdout.strip() else f"exit code {done.returncode}"
        if newer_than_tested(version):
            yield Finding("warn", check, f"{program}: {version}, newer than {claude.TESTED_RELEASE}, the newest "
                                         "release ccs was tested with: if a session misbehaves, say so with "
                                         "`ccs doctor`'s output, and `ccs run --direct` shows whether the proxy "
                                         "is involved")
        else:
            yield Finding("ok", check, f"{program}: {version}")


def agent_sdk_claude() -> str | None:
    """The claude that Anthropic's Agent SDK (`claude-agent-sdk`) bundles, in this Python, if installed:
    found without importing the SDK."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("claude_agent_sdk")
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        if (program := Path(folder) / "_bundled" / "claude").is_file():
            return str(program)
    return None


def newer_than_tested(version: str) -> bool:
    """`2.1.333 (Claude Code)` against claude.TESTED_RELEASE; a version that does not parse is not newer."""
    def numbers(text: str) -> tuple[int, ...]:
        head = text.split()[0] if text.split() else ""
        return tuple(int(part) for part in head.split(".") if part.isdigit()) if head[:1].isdigit() else ()

    found = numbers(version)
    return bool(found) and found > numbers(claude.TESTED_RELEASE)


def route_findings(config: Config) -> list[Finding]:
    """Each router's routes and each profile's vision route: what stops them (a missing, login or router target,
    a vision target that takes no images), else where they go. The targets' keys are checked on their own
    lines, as profiles of their own."""
    found = []
    for profile in config.profiles.values():
        if not (profile.is_router or profile.vision):
            continue
        problems = config.route_problems(profile)
        found += [Finding("fail", profile.name, problem) for problem in problems]
        if not problems:
            targets = dict.fromkeys(config.find(split_route(route)[0]).name
                                    for route in route_list(profile._replace(vision=None)))
            where = [f"routes to {', '.join(targets)}"] if targets else []
            where += [f"has its images described by {profile.vision}"] if profile.vision else []
            found.append(Finding("ok", profile.name, "; ".join(where)))
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
