"""Start a command (normally `claude`) with exactly the environment a profile needs.

Everything ccs manages is removed from the inherited environment first, then the profile's
values are set. Claude Code lets `env` in its settings files beat the process environment, so
when one of those files sets a variable we manage (or an `apiKeyHelper`, whose key claude would
send along), the profile's values are passed again with `--settings`, which beats them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import CcsError
from .profiles import Profile, claude_timeout, default_model, is_route, route_list, split_route, tier_model

if TYPE_CHECKING:  # the proxy is imported only when a profile needs it
    from .proxy.lifecycle import Endpoint

TIER_VARS = {
    "opus": "ANTHROPIC_DEFAULT_OPUS_MODEL",
    "sonnet": "ANTHROPIC_DEFAULT_SONNET_MODEL",
    "haiku": "ANTHROPIC_DEFAULT_HAIKU_MODEL",
    "fable": "ANTHROPIC_DEFAULT_FABLE_MODEL",  # claude-fable-5* and claude-mythos-5*
    "subagent": "CLAUDE_CODE_SUBAGENT_MODEL",
}
LABELS = ("_NAME", "_DESCRIPTION", "_SUPPORTED_CAPABILITIES")  # how /model shows a tier, or the custom row
CUSTOM_OPTION = "ANTHROPIC_CUSTOM_MODEL_OPTION"  # one more /model row
# Variables whose inherited values would contradict a profile: where claude sends requests, with
# which key, for which model (every tier, its /model labels, every other model claude picks by
# itself), which cloud it signs in to instead, and the limits that belong to one model.
MANAGED = (
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_CUSTOM_HEADERS",
    "ANTHROPIC_UNIX_SOCKET",  # claude would send its requests over this socket, not to the base URL
    "_CLAUDE_CODE_ASSUME_FIRST_PARTY_BASE_URL",  # takes the base URL for Anthropic's: no tier rows in /model
    "ANTHROPIC_MODEL",
    "ANTHROPIC_DEFAULT_MODEL",
    *(var + label for var in [*TIER_VARS.values(), CUSTOM_OPTION] for label in ("", *LABELS)
      if not (var == TIER_VARS["subagent"] and label)),
    "ANTHROPIC_SMALL_FAST_MODEL",
    "ANTHROPIC_SMALL_FAST_MODEL_AWS_REGION",
    "CLAUDE_CODE_SUBAGENT_MODEL_FORCE",
    "CLAUDE_CODE_WORKFLOW_SUBAGENT_MODEL",
    "CLAUDE_CODE_AUTO_MODE_MODEL",
    "CLAUDE_CODE_BG_CLASSIFIER_MODEL",
    # claude's notes that it wrote a tier's model itself, which let it swap that model for a Claude one
    "CLAUDE_CODE_3P_PROBE_WROTE_OPUS_DEFAULT",
    "CLAUDE_CODE_3P_PROBE_WROTE_SONNET_DEFAULT",
    "CLAUDE_CODE_3P_PROBE_WROTE_HAIKU_DEFAULT",
    "CLAUDE_CODE_3P_SEEDED_OPUS_DEFAULT",
    "CLAUDE_CODE_3P_SEEDED_SONNET_DEFAULT",
    "CLAUDE_CODE_USE_BEDROCK",
    "CLAUDE_CODE_USE_VERTEX",
    "CLAUDE_CODE_USE_FOUNDRY",
    "CLAUDE_CODE_USE_MANTLE",
    "CLAUDE_CODE_USE_ANTHROPIC_AWS",
    "CLAUDE_CODE_USE_ANTHROPIC_GOOGLE_CLOUD",
    "CLAUDE_CODE_USE_GATEWAY",
    "CLAUDE_CODE_MAX_CONTEXT_TOKENS",
    "CLAUDE_CODE_MAX_OUTPUT_TOKENS",
    "CLAUDECODE",
)
# Model and provider variables of claude 2.1.329 that ccs leaves to the user on purpose: they change how
# claude behaves with whatever model it has, not which provider or model a request goes to.
LEFT_ALONE = {
    "features named CLAUDE_CODE_USE_*, not providers": (
        "CLAUDE_CODE_USE_POWERSHELL_TOOL", "CLAUDE_CODE_USE_NATIVE_FILE_SEARCH", "CLAUDE_CODE_USE_CCR_V2",
        "CLAUDE_CODE_USE_COWORK_PLUGINS"),
    "how claude treats models, any provider's": (
        "CLAUDE_CODE_ALLOW_OTHER_MODELS", "CLAUDE_CODE_DISABLE_LEGACY_MODEL_REMAP",
        "CLAUDE_CODE_DISABLE_MODEL_ACCESS_FALLBACK", "CLAUDE_CODE_DISABLE_UNKNOWN_MODEL_WINDOW_ENFORCEMENT",
        "CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY", "CLAUDE_CODE_GATEWAY_MODEL_DISCOVERY_TIMEOUT_MS",
        "CLAUDE_CODE_MODEL_CAPABILITIES", "CLAUDE_CODE_MODEL_CATALOG", "CLAUDE_CODE_MODEL_CATALOG_URL",
        "CLAUDE_CODE_NO_MODEL_FALLBACK", "CLAUDE_CODE_SKIP_MODEL_ACCESS_MEMORY",
        "CLAUDE_CODE_COORDINATOR_FORCE_WORKER_INHERIT_MODEL"),
    "set by the programs that host claude (a runner, a delegated session), not by a user": (
        "CLAUDE_CODE_RUNNER_MODEL_SOCKET", "CLAUDE_CODE_USER_DELEGATED_SESSION_ALLOWED_CHECK_MODELS",
        "CLAUDE_CODE_USER_DELEGATED_SESSION_ANY_CHECK_MODEL"),
}
SECRET_VARS = ("ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_API_KEY")
# Behind the proxy these are the proxy's, never a profile's env: the proxy sends a profile's custom headers
# to that profile's provider only, not to every provider a router reaches.
PROXY_VARS = ("ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_API_KEY", "ANTHROPIC_CUSTOM_HEADERS")
LOOPBACK = "127.0.0.1,localhost"
HELPER = "apiKeyHelper"  # a settings key whose command's output claude sends as a key
MARKER = "CCS_RUN"  # tells the child (and a statusline) which profile it runs under
NO_KEY = "no-key"  # claude insists on some credential even when the provider takes none
INSTALL_HINT = "install it with `npm install -g @anthropic-ai/claude-code`"


class Launch:
    """What to start and how: argv, environment, and the settings forced through --settings."""

    def __init__(self, argv: list[str], env: dict[str, str], overlay: dict | None = None,
                 overridden: list[str] | None = None):
        self.argv = argv
        self.env = env
        self.overlay = overlay or {}  # {"env": ..., "apiKeyHelper": ""}
        self.overridden = overridden or []  # settings files that needed the overlay

    @property
    def overlay_holds_secret(self) -> bool:
        return any(self.overlay.get("env", {}).get(var) for var in SECRET_VARS)


def removed_vars(profile: Profile) -> tuple[str, ...]:
    """What a launch removes from the inherited environment: every managed variable, and the one a
    `key_env` profile reads its key from. The key reaches claude once, as the profile's token (or
    not at all behind the proxy), never again as a variable that every Bash command the model runs sees."""
    return MANAGED + ((profile.key_env,) if profile.key_env else ())


def profile_env(profile: Profile, secret: str | None, endpoint: Endpoint | None = None) -> dict[str, str]:
    """The variables a profile sets ("" = explicitly empty, which cancels a value from elsewhere)."""
    env: dict[str, str] = {}
    if endpoint is not None:
        env.update(ANTHROPIC_BASE_URL=endpoint.url, ANTHROPIC_AUTH_TOKEN=endpoint.token, ANTHROPIC_API_KEY="")
    elif profile.auth == "login":
        pass  # claude's own login: set none of the provider variables
    else:
        if profile.base_url:
            env["ANTHROPIC_BASE_URL"] = profile.base_url
        if profile.auth == "api-key":
            env.update(ANTHROPIC_API_KEY=secret or "", ANTHROPIC_AUTH_TOKEN="")
        else:
            env.update(ANTHROPIC_AUTH_TOKEN=secret or NO_KEY, ANTHROPIC_API_KEY="")
    env.update(model_env(profile))
    if profile.context_window:
        env["CLAUDE_CODE_MAX_CONTEXT_TOKENS"] = str(profile.context_window)
    if profile.max_output_tokens:
        env["CLAUDE_CODE_MAX_OUTPUT_TOKENS"] = str(profile.max_output_tokens)
    if profile.config_dir:
        env["CLAUDE_CONFIG_DIR"] = str(Path(profile.config_dir).expanduser())
    if profile.timeout:  # claude waits a little longer than the proxy does, so it hears the proxy's answer
        env["API_TIMEOUT_MS"] = str(round(claude_timeout(profile, {}) * 1000))
    env.update({k: v for k, v in profile.env.items() if endpoint is None or k not in PROXY_VARS})
    return env


def model_env(profile: Profile) -> dict[str, str]:
    """The model of every tier claude may ask for, and how /model shows it. A profile that names models maps
    them all, so that no tier (fable) reaches its provider as a Claude model name it does not serve."""
    models = profile.models
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
) -> Launch:
    """Work out argv and environment without touching anything."""
    own = profile_env(profile, secret, endpoint)
    removed = removed_vars(profile)
    env = {k: v for k, v in parent_env.items() if k not in removed}
    env.update(own)
    env[MARKER] = profile.name
    if endpoint is not None:  # an HTTP(S)_PROXY from the shell must not capture requests to our loopback proxy
        for var in ("NO_PROXY", "no_proxy"):
            env[var] = ",".join(filter(None, [parent_env.get(var), LOOPBACK]))
    argv = list(command)
    if not _is_claude(argv[0]):
        return Launch(argv, env)
    argv[1:1] = profile.claude_args
    overlay: dict = {}
    overridden = []
    for path, settings in claude_settings_files(env, cwd):
        clashing = [var for var in settings["env"] if var in MANAGED or var in own]
        # an apiKeyHelper (e.g. another profile's, from --claude-settings) would send its key along
        helper = bool(settings.get(HELPER)) and profile.auth != "login"
        if clashing or helper:
            overridden.append(str(path))
        if clashing:
            overlay.setdefault("env", {}).update({var: env.get(var, "") for var in clashing})
        if helper:
            overlay[HELPER] = ""
    return Launch(argv, env, overlay, overridden)


def execute(launch: Launch, *, wait: bool = False) -> int:
    """Replace this process (exec) unless something must outlive the launch: a proxy (`wait`) or a
    settings overlay holding a secret, which lives in a 0600 file until the child exits."""
    argv = _resolve(launch)
    if launch.overridden:
        print(f"ccs: {', '.join(launch.overridden)} sets provider settings; "
              "the profile overrides them with --settings", file=sys.stderr)
    if launch.overlay_holds_secret:
        import time

        from . import files

        overlay_file = files.private_dir("run") / f"settings-{os.getpid()}.json"
        files.write_atomic(overlay_file, json.dumps(launch.overlay), mode=0o600)
        started = time.time()
        try:
            return spawn(_with_settings(argv, str(overlay_file)), launch.env)
        finally:
            overlay_file.unlink(missing_ok=True)
            if hint := resume_hint(launch, started):
                print(hint, file=sys.stderr)
    if launch.overlay:
        argv = _with_settings(argv, json.dumps(launch.overlay))
    return spawn(argv, launch.env) if wait else _exec(argv, launch.env)


def resume_hint(launch: Launch, since: float) -> str | None:
    """claude's own exit hint names the --settings file that ccs has just deleted (it held the key);
    this one works: the newest session claude wrote since `since`, resumed through the same profile."""
    if {"-p", "--print"} & set(launch.argv):
        return None  # claude prints its hint for interactive sessions only
    sessions = [(path.stat().st_mtime, path) for path in claude_config_dir(launch.env).glob("projects/*/*.jsonl")]
    recent = [entry for entry in sessions if entry[0] >= since]
    if not recent:
        return None
    return f"ccs: resume this session with: ccs run {launch.env[MARKER]} -- claude --resume {max(recent)[1].stem}"


def spawn(argv: list[str], env: dict[str, str]) -> int:
    """Run a child and wait: SIGTERM/SIGHUP are forwarded, the terminal's SIGINT reaches it directly.

    Returns the child's exit code, 128+N when a signal N ended it.
    """
    import select
    import signal
    import subprocess

    # Handlers are Python-level (never SIG_IGN, which exec would pass on to the child) and set before
    # the child exists, so no signal finds ccs unprepared; one that comes early is delivered after.
    child: list[subprocess.Popen] = []
    early: list[int] = []

    def forward(signum, _frame):
        if child:
            child[0].send_signal(signum)
        else:
            early.append(signum)

    def nothing(*_):
        pass

    handlers = {signal.SIGINT: nothing, signal.SIGCHLD: nothing, signal.SIGTERM: forward, signal.SIGHUP: forward}
    previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
    # A blocking waitpid sleeps through a signal that lands just before it, or on another thread (the
    # proxy's). Every caught signal, SIGCHLD included, also writes a byte to this pipe, and that cannot be missed.
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    previous_wakeup = signal.set_wakeup_fd(wake_write)
    try:
        try:
            child.append(subprocess.Popen(argv, env=env))
        except OSError as e:
            raise CcsError(f"cannot start {argv[0]}: {e.strerror}") from None
        for signum in early:
            child[0].send_signal(signum)
        while (code := child[0].poll()) is None:
            select.select([wake_read], [], [])
            os.read(wake_read, 512)
    finally:
        signal.set_wakeup_fd(previous_wakeup)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        os.close(wake_read)
        os.close(wake_write)
    return 128 - code if code < 0 else code


def _exec(argv: list[str], env: dict[str, str]) -> int:
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(argv[0], argv, env)
    except OSError as e:
        raise CcsError(f"cannot start {argv[0]}: {e.strerror}") from None
    return 0  # not reached


def _resolve(launch: Launch) -> list[str]:
    """argv with its program found on the child's PATH, or a clear error."""
    program = launch.argv[0]
    found = shutil.which(program, path=launch.env.get("PATH", os.defpath))
    if found is None:
        if _is_claude(program):
            raise CcsError(f"`claude` is not on PATH: {INSTALL_HINT}")
        raise CcsError(f"command not found: {program}")
    return [found, *launch.argv[1:]]


def _with_settings(argv: list[str], settings: str) -> list[str]:
    return [argv[0], "--settings", settings, *argv[1:]]


def _is_claude(program: str) -> bool:
    return Path(program).name == "claude"


def claude_config_dir(env) -> Path:
    """Where claude keeps its settings and sessions, for the environment it runs in."""
    if env.get("CLAUDE_CONFIG_DIR"):
        return Path(env["CLAUDE_CONFIG_DIR"])
    return Path(env.get("HOME") or os.path.expanduser("~")) / ".claude"


@contextlib.contextmanager
def routed_pick_undone(env):
    """claude saves a `/model` pick in its user settings (`model`). One made through the proxy may be a
    route (`glm,glm-4.6`) that plain `claude` later sends to a provider that has no such model: after the
    session the value from before is put back, and the user told."""
    path = claude_config_dir(env) / "settings.json"
    before = saved_model(path)
    try:
        yield
    finally:
        after = saved_model(path)
        if after != before and isinstance(after, str) and is_route(after):
            _put_back_model(path, before, after, env[MARKER])


def _put_back_model(path: Path, before, after: str, profile: str) -> None:
    """Put `model` back as it was, everything else as claude left it; a failure is a warning, never a
    change to claude's exit code."""
    from . import files

    try:
        with files.locked(path):
            settings = json.loads(path.read_text(encoding="utf-8"))
            if settings.get("model") != after:
                return  # changed again meanwhile (another claude): not ours to undo
            if before is None:
                settings.pop("model", None)
            else:
                settings["model"] = before
            files.write_atomic(path, json.dumps(settings, indent=2, ensure_ascii=False) + "\n",
                               mode=files.existing_mode(path, 0o600))
    except (OSError, ValueError, AttributeError, CcsError) as e:
        print(f"ccs: warning: claude saved the /model pick {after!r} in {path}, which only works through the ccs "
              f"proxy, and ccs could not put back what was there ({e}); set `model` there yourself", file=sys.stderr)
        return
    print(f"ccs: claude saved the /model pick {after!r} in {path}; it only works through the ccs proxy, so "
          f"{'the model from before is back' if before else 'it is removed'} (start it again with "
          f"`ccs run {profile} -- claude --model {after}`)", file=sys.stderr)


def saved_model(path: Path):
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return settings.get("model") if isinstance(settings, dict) else None


def claude_settings_files(env: dict[str, str], cwd: Path):
    """(path, settings) of each Claude Code settings file: user, project, local."""
    for path in (claude_config_dir(env) / "settings.json", cwd / ".claude" / "settings.json",
                 cwd / ".claude" / "settings.local.json"):
        try:
            settings = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # missing or unreadable: claude reports broken files itself
        if isinstance(settings, dict):
            if not isinstance(settings.get("env"), dict):
                settings["env"] = {}
            yield path, settings


def command_for(words: list[str], explicit: bool, path: str) -> list[str]:
    """What `ccs run` starts: claude with `words` as its arguments, unless they begin with a command (a
    program on PATH, a path, or anything after `--` that is not an option)."""
    if words and not words[0].startswith("-") and (explicit or os.sep in words[0] or shutil.which(words[0], path=path)):
        return list(words)
    return ["claude", *words]


def run_profile(name: str | None, words: list[str], explicit: bool = False, verbose: bool = False,
                observe: bool = False) -> int:
    """`ccs run`: resolve the profile and its key, start the proxy if the API needs one (or `observe`: to
    record a native profile's usage), launch."""
    from . import launches, profiles, secrets, state

    config = profiles.load()
    why = "named on the command line"
    if name is None:
        name, why = state.current()
        if name is None:
            raise CcsError("no profile given and none active: `ccs run NAME` or `ccs use NAME`")
        if name not in config.profiles:
            raise CcsError(f"{why} names profile '{name}', which does not exist (see `ccs list`)")
    profile = config.get(name)
    if observe and not profile.observe:
        if profile.auth == "login":
            raise CcsError(f"profile '{name}' uses claude's own login, which cannot go through the proxy (claude "
                           "would send the proxy's token instead of its login): it cannot be observed")
        profile = profile._replace(observe=True)
    command = command_for(words, explicit, os.environ.get("PATH", os.defpath))
    cwd = Path.cwd()
    if not profile.uses_proxy:
        secret = secrets.require(profile, config.secret_store) if profile.needs_key else None
        if verbose:
            print(f"ccs: profile '{name}' ({why}): {command[0]} talks to "
                  f"{profile.base_url or 'Anthropic'} directly, no proxy (not in the usage log)", file=sys.stderr)
        launches.note(profile.name)
        return execute(plan(profile, secret, command, dict(os.environ), cwd))
    from .proxy.lifecycle import keys_for, serve_in_background

    keys = keys_for(config, profile)
    with serve_in_background(config, profile, keys) as endpoint:
        if verbose:
            behind = profile.base_url or ", ".join(route_list(profile)) or "Anthropic"
            print(f"ccs: profile '{name}' ({why}): the proxy on {endpoint.url} serves {command[0]}, "
                  f"{behind} behind it; its log: {endpoint.log}", file=sys.stderr)
        launched = plan(profile, None, command, dict(os.environ), cwd, endpoint)
        with routed_pick_undone(launched.env):
            return execute(launched, wait=True)
