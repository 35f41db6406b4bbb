"""Start a command (normally `claude`) with exactly the environment a profile needs.

Everything ccs manages is removed from the inherited environment first, then the profile's values
are set. claude lets `env` in its settings files beat the process environment, so every variable ccs
manages is passed again with `claude --settings FILE`, which beats them, whatever those files say (a
file ccs cannot read is no reason to trust it): `plan` works it out, `execute` starts it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from . import spawn
from .apis import key_variables
from .claude import CUSTOM_OPTION, HELPER, INSTALL_HINT, MANAGED, MARKER, NETWORK_VARS, PRINT_MODE, TIER_VARS, \
    UNRECOGNIZED_MODEL, config_dir, is_claude, settings_files
from .errors import CcsError
from .profiles import TIERS, Profile, claude_timeout, default_model, is_route, route_list, split_route, tier_model

if TYPE_CHECKING:  # the proxy is imported only when a profile needs it
    from .proxy.lifecycle import Endpoint

# Behind the proxy these are the proxy's, never a profile's env: the proxy sends a profile's custom headers
# to that profile's provider only, not to every provider a router reaches.
PROXY_VARS = ("ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_API_KEY", "ANTHROPIC_CUSTOM_HEADERS")
LOOPBACK = "127.0.0.1,localhost"
NO_KEY = "no-key"  # claude insists on some credential even when the provider takes none
SETTINGS_VAR = "CCS_CLAUDE_SETTINGS"  # the overlay's file, for a program that starts claude itself


class Launch(NamedTuple):
    """What to start and how: argv, environment, the settings that beat claude's settings files, and what to
    tell the user about those files. claude gets the overlay with --settings; another program (one that
    starts claude itself, like the Agent SDK) gets it as a file named in its environment (`export`)."""

    argv: list[str]
    env: dict[str, str]
    overlay: dict | None = None  # {"env": ..., "apiKeyHelper": ""}
    notes: tuple[str, ...] = ()
    export: bool = False


def removed_vars(profile: Profile, hidden=()) -> tuple[str, ...]:
    """What a launch removes from the inherited environment: every managed variable, and those the profile
    (and, `hidden`, the other profiles and the search backend its proxy may use) read their keys from. A key
    reaches claude once, as the profile's token (or not at all behind the proxy), never again as a variable
    that every Bash command the model runs sees."""
    return MANAGED + tuple(dict.fromkeys(var for var in (profile.key_env, *hidden) if var))


def profile_env(profile: Profile, secret: str | None, endpoint: Endpoint | None = None) -> dict[str, str]:
    """The variables a profile sets ("" = explicitly empty, which cancels a value from elsewhere)."""
    env: dict[str, str] = {}
    if endpoint is not None:  # the proxy's address, and its token as a bearer; each request's purpose
        env.update(ANTHROPIC_BASE_URL=endpoint.url, **key_variables("bearer", endpoint.token))
        env["CLAUDE_CODE_GATEWAY_HINT_HEADERS"] = "1"
    elif profile.cloud:  # claude signs in to the cloud itself
        env.update(cloud_env(profile))
    elif profile.auth != "login":  # (claude's own login: none of the provider variables)
        if profile.base_url:
            env["ANTHROPIC_BASE_URL"] = profile.base_url
        env.update(key_variables(profile.auth, secret or NO_KEY))
    env.update(model_env(profile))
    if profile.context_window:
        env["CLAUDE_CODE_MAX_CONTEXT_TOKENS"] = str(profile.context_window)
    elif "ANTHROPIC_DEFAULT_MODEL" in env:  # models claude does not know, of a window nobody wrote down
        env["CLAUDE_CODE_DISABLE_UNKNOWN_MODEL_WINDOW_ENFORCEMENT"] = "1"
    if profile.max_output_tokens:
        env["CLAUDE_CODE_MAX_OUTPUT_TOKENS"] = str(profile.max_output_tokens)
    if profile.config_dir:
        env["CLAUDE_CONFIG_DIR"] = str(Path(profile.config_dir).expanduser())
    if profile.timeout:  # claude waits a little longer than the proxy does, so it hears the proxy's answer
        env["API_TIMEOUT_MS"] = str(round(claude_timeout(profile, {}) * 1000))
    env.update({k: v for k, v in profile.env.items() if endpoint is None or k not in PROXY_VARS})
    if endpoint is None and profile.headers:  # without the proxy, claude sends the profile's headers itself
        env["ANTHROPIC_CUSTOM_HEADERS"] = custom_headers(profile)
    return env


def cloud_env(profile: Profile) -> dict[str, str]:
    """The variables that send claude to the profile's cloud: its switch, the fields it reads, its endpoint."""
    cloud = profile.cloud
    env = {cloud.switch: "1"}
    env.update({field.var: getattr(profile, name) for name, field in cloud.fields.items() if getattr(profile, name)})
    if profile.base_url:
        env[cloud.endpoint] = profile.base_url
    return env


def custom_headers(profile: Profile) -> str:
    """ANTHROPIC_CUSTOM_HEADERS for claude: the profile's env's lines, then its `headers`."""
    lines = [line for line in profile.env.get("ANTHROPIC_CUSTOM_HEADERS", "").splitlines() if line.strip()]
    return "\n".join([*lines, *(f"{name}: {value}" for name, value in profile.headers.items())])


def model_env(profile: Profile) -> dict[str, str]:
    """The model of every tier claude may ask for, and how /model shows it. A profile that names models maps
    them all, so that no tier (fable) reaches its provider as a Claude model name it does not serve."""
    models = {tier: model for tier, model in profile.models.items() if tier in TIERS}  # not what routes by purpose
    env = {"ANTHROPIC_MODEL": profile.model} if profile.model else {}
    if not (profile.model or models):
        return env  # Anthropic itself, a gateway: claude's own names are right
    # what /model's "Default" row (and `--model default`) runs; without it claude 2.1.329 runs the sonnet
    # tier's model as "glm-4.6[1m]", assumes a 1M window and sends the provider the 1M-context beta
    env["ANTHROPIC_DEFAULT_MODEL"] = default_model(profile.model, models)
    tiers = {tier: tier_model(profile.model, models, tier) for tier in ("opus", "sonnet", "haiku", "fable")}
    for tier, model in tiers.items():  # /model shows NAME as a row's label, DESCRIPTION beside it
        env[TIER_VARS[tier]] = model
        env[TIER_VARS[tier] + "_NAME"] = model
        env[TIER_VARS[tier] + "_DESCRIPTION"] = f"{tier.title()} tier: {described(profile, model)}"
    if "subagent" in models:
        env[TIER_VARS["subagent"]] = models["subagent"]
    if profile.model and profile.model not in tiers.values():
        env[CUSTOM_OPTION], env[CUSTOM_OPTION + "_NAME"] = profile.model, profile.model
        env[CUSTOM_OPTION + "_DESCRIPTION"] = described(profile, profile.model)
    return env


def described(profile: Profile, model: str) -> str:
    """What /model says of a model: which provider serves it, through which profile."""
    if is_route(model):
        target, name = split_route(model)
        return f"{name or 'its default model'} via profile {target} (routed by ccs)"
    from .presets import PRESETS

    provider = PRESETS[profile.preset].title if profile.preset in PRESETS else profile.provider
    return f"{model} via {provider} (ccs profile {profile.name})"


def plan(
    profile: Profile,
    secret: str | None,
    command: list[str],
    parent_env: dict[str, str],
    cwd: Path,
    endpoint: Endpoint | None = None,
    hidden=(),
) -> Launch:
    """Work out argv, environment and overlay without touching anything. `hidden`: variables that hold keys
    of other profiles this launch uses (a router's targets)."""
    own = profile_env(profile, secret, endpoint)
    removed = removed_vars(profile, hidden)
    env = {k: v for k, v in parent_env.items() if k not in removed}
    env.update(own)
    env[MARKER] = profile.name
    if endpoint is not None:  # an HTTP(S)_PROXY from the shell must not capture requests to our loopback proxy
        for var in ("NO_PROXY", "no_proxy"):
            env[var] = ",".join(filter(None, [parent_env.get(var), LOOPBACK]))
    argv = list(command)
    overlay: dict = {"env": {var: env.get(var, "") for var in dict.fromkeys([*MANAGED, *NETWORK_VARS, *own])}}
    if profile.auth != "login":  # a helper's key (another profile's, from --claude-settings) would go along
        overlay[HELPER] = ""
    if is_claude(argv[0]):
        argv[1:1] = profile.claude_args
        return Launch(argv, env, overlay, settings_notes(env, cwd, overlay, "the profile overrides them with "
                                                                            "--settings"))
    if endpoint is None:  # a program started directly: its own claude on its own, as the user set it up
        return Launch(argv, env, notes=settings_notes(env, cwd, overlay, FOR_DIRECT_PROGRAMS))
    return Launch(argv, env, overlay, settings_notes(env, cwd, overlay, FOR_PROGRAMS), export=True)


# Where settings files would win over what ccs gives a program that starts claude itself (the Agent SDK).
FOR_PROGRAMS = (f"a claude that this program starts obeys them over its environment: give it `--settings "
                f"${SETTINGS_VAR}` (the Agent SDK: ClaudeAgentOptions(settings=os.environ['{SETTINGS_VAR}']))")
FOR_DIRECT_PROGRAMS = (f"a claude that this program starts obeys them over its environment (behind the proxy, "
                       f"without `direct`, ccs names settings that beat them in ${SETTINGS_VAR})")


def settings_notes(env: dict[str, str], cwd: Path, overlay: dict, remedy: str) -> tuple[str, ...]:
    """What to say about claude's settings files: those that set what the overlay overrides, those ccs could
    not read (claude may obey them all the same, so the overlay overrides everything either way)."""
    notes, overridden = [], []
    for settings in settings_files(env, cwd):
        if settings.problem:
            notes.append(f"ccs: {settings.path} {settings.problem}; claude may obey it: {remedy}")
        elif set(settings.env) & set(overlay["env"]) or (HELPER in overlay and settings.get(HELPER)):
            overridden.append(str(settings.path))
    if overridden:
        notes.append(f"ccs: {', '.join(overridden)} sets provider settings; {remedy}")
    return tuple(notes)


def execute(launch: Launch, *, wait: bool = False, started=None) -> int:
    """Start the command. claude gets its overlay in a 0600 file (never on its command line, which every
    local user can read), and ccs waits for it to remove the file after; another command replaces this
    process (exec) unless something must outlive the launch (the proxy: `wait`). `started()` runs once the
    command has been started."""
    argv = _resolved(launch)
    for note in launch.notes:
        print(note, file=sys.stderr)
    if launch.overlay is None:
        return spawn.spawn(argv, launch.env, started) if wait else spawn.replace(argv, launch.env)
    import time

    overlay_file = write_overlay(launch.overlay)
    began = time.time()
    try:
        if launch.export:
            return spawn.spawn(argv, {**launch.env, SETTINGS_VAR: str(overlay_file)}, started)
        hidden = (UNRECOGNIZED_MODEL,) if set(PRINT_MODE) & set(argv) else ()
        return spawn.spawn([argv[0], "--settings", str(overlay_file), *argv[1:]], launch.env, started, hidden)
    finally:
        overlay_file.unlink(missing_ok=True)
        if not launch.export and (hint := resume_hint(launch, began)):
            print(hint, file=sys.stderr)


OVERLAY_PREFIX = "settings-"


def write_overlay(overlay: dict) -> Path:
    """The overlay as a 0600 file in a private directory, named by this process; files that processes killed
    before they could remove theirs (SIGKILL) left behind are removed first."""
    from . import files

    folder = files.private_dir("run")
    for stale in folder.glob(OVERLAY_PREFIX + "*.json"):
        pid = stale.stem.removeprefix(OVERLAY_PREFIX)
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            stale.unlink(missing_ok=True)
    path = folder / f"{OVERLAY_PREFIX}{os.getpid()}.json"
    files.write_ephemeral(path, json.dumps(overlay))
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, as another user's
        return True
    return True


def resume_hint(launch: Launch, since: float) -> str | None:
    """claude's own exit hint names the --settings file that ccs has just deleted; this one works: the newest
    session claude wrote since `since`, resumed through the same profile."""
    if set(PRINT_MODE) & set(launch.argv):
        return None  # claude prints its hint for interactive sessions only
    sessions = [(path.stat().st_mtime, path) for path in config_dir(launch.env).glob("projects/*/*.jsonl")]
    recent = [entry for entry in sessions if entry[0] >= since]
    if not recent:
        return None
    return f"ccs: resume this session with: ccs run {launch.env[MARKER]} -- claude --resume {max(recent)[1].stem}"


def _resolved(launch: Launch) -> list[str]:
    """argv with its program found on the child's PATH, or a clear error."""
    program = launch.argv[0]
    found = spawn.find(program, launch.env)
    if found is None:
        if is_claude(program):
            raise CcsError(f"`claude` is not on PATH: {INSTALL_HINT}")
        raise CcsError(f"command not found: {program}")
    return [found, *launch.argv[1:]]


def command_for(words: list[str], explicit: bool, env: dict[str, str]) -> list[str]:
    """What `ccs run` starts: claude with `words` as its arguments, unless they begin with a command (a
    program on PATH, a path, or anything after `--` that is not an option)."""
    if words and not words[0].startswith("-") and (explicit or os.sep in words[0] or spawn.find(words[0], env)):
        return list(words)
    return ["claude", *words]


def model_profiles(command: list[str]) -> list[str]:
    """The profiles a `--model profile,model` on claude's command line names: the user's own choice, so the
    session reaches it (see `Config.reachable`)."""
    values = [value for option, value in zip(command, command[1:]) if option == "--model"]
    values += [word.removeprefix("--model=") for word in command if word.startswith("--model=")]
    return [split_route(value)[0] for value in values if is_route(value)]


def run_profile(name: str | None, words: list[str], explicit: bool = False, verbose: bool = False,
                direct: bool = False) -> int:
    """`ccs run`: resolve the profile, start its proxy (which holds the key) unless claude signs in itself
    or the profile (or `direct`) says so, launch."""
    from . import keys, launches, profiles, state

    config = profiles.load()
    why = "named on the command line"
    if name is None:
        name, why = state.current()
        if name is None:
            raise CcsError("no profile given and none active: `ccs run NAME` or `ccs use NAME`")
        if name not in config.profiles:
            raise CcsError(f"{why} names profile '{name}', which does not exist (see `ccs list`)")
    profile = config.get(name)
    if direct and not profile.direct:
        if profile.needs_proxy:
            raise CcsError(f"profile '{name}' {profile.why_proxied}, which only the proxy can do: it cannot run "
                           "direct")
        profile = profile._replace(direct=True)
    if profile.observe:
        state.say_once("observe", f"ccs: `observe = true` (profile '{name}') is no longer needed: every profile "
                                  "whose key ccs holds runs behind the proxy, and is in `ccs usage`")
    command = command_for(words, explicit, dict(os.environ))
    if asked := model_profiles(command):
        profile = profile._replace(reach=[*profile.reach, *asked])
    cwd = Path.cwd()
    # the variables other keys the proxy may use are read from: claude, and what it runs, need none of them
    search_key = config.search.key_env if config.search else None
    hidden = [*(target.key_env for target in config.reachable(profile) if target.key_env), *filter(None, [search_key])]
    if not profile.uses_proxy:
        secret = keys.lookup(profile, config.secret_store)
        if verbose:
            print(f"ccs: profile '{name}' ({why}): {command[0]} talks to {profile.url} directly, holding "
                  "its key; no proxy (not in the usage log)", file=sys.stderr)
        launches.note(profile.name)
        return execute(plan(profile, secret, command, dict(os.environ), cwd, hidden=hidden))
    from .claude_settings import routed_pick_undone
    from .proxy.lifecycle import keys_for, serve_in_background

    known = keys_for(config, profile)
    with serve_in_background(config, profile, known) as (endpoint, serve):
        if verbose:
            behind = profile.base_url or ", ".join(route_list(profile)) or "Anthropic"
            print(f"ccs: profile '{name}' ({why}): the proxy on {endpoint.url} serves {command[0]}, "
                  f"{behind} behind it; its log: {endpoint.log}", file=sys.stderr)
        launched = plan(profile, None, command, dict(os.environ), cwd, endpoint, hidden)
        with routed_pick_undone(launched.env):
            return execute(launched, wait=True, started=serve)
