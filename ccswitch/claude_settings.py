"""ccs's edits of Claude Code's own settings.json.

`ccs use NAME --claude-settings` writes a native profile there, for people who start Claude Code from an
IDE where no `ccs run` is in between. Only the `env` keys ccs manages and `apiKeyHelper` are touched;
hooks, permissions, plugins and everything else stay as they are. The key is never written: `apiKeyHelper`
runs `ccs key print NAME`. What was there before is recorded once, so `ccs use --off --claude-settings`
puts back exactly that.

After a session through the proxy, a `/model` pick that only the proxy understands is taken back out.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import sys
from pathlib import Path

from . import claude, files
from .claude import HELPER
from .errors import CcsError
from .profiles import Profile, is_route

# How ccs runs itself from a helper: -E ignores PYTHON* variables (a settings file's `env` may set
# PYTHONPATH), -P leaves the working directory off sys.path. claude runs the helper in the project's
# directory, and there `-m ccswitch` alone would import a `ccswitch/` folder of the repository instead.
SAFE_FLAGS = ("-E", "-P")


def key_print_command(name: str) -> str:
    """`ccs key print NAME` with this very interpreter's path (an IDE rarely has ccs's venv on its PATH),
    importing nothing from the directory claude runs it in."""
    return shlex.join([sys.executable, *SAFE_FLAGS, "-m", "ccswitch", "key", "print", name])


def unsafe_helper(command) -> str | None:
    """The profile whose key an `apiKeyHelper` written by an older ccs prints (`python -m ccswitch key print
    NAME`, which imports from claude's working directory), when `command` is one; else None."""
    try:
        words = shlex.split(command) if isinstance(command, str) else []
    except ValueError:
        return None
    if len(words) == 6 and "python" in Path(words[0]).name and words[1:5] == ["-m", "ccswitch", "key", "print"]:
        return words[5]
    return None


def settings_path() -> Path:
    return claude.config_dir(os.environ) / "settings.json"


def backup_path() -> Path:
    return files.state_dir() / "claude-settings-backup.json"


def apply(profile: Profile) -> Path:
    from .launch import profile_env

    if profile.needs_proxy:
        raise CcsError(f"profile '{profile.name}' {profile.why_proxied}, so it needs the ccs proxy running "
                       "beside claude, which a settings file cannot start; use `ccs run` or `ccs proxy`")
    path = settings_path()
    with files.locked(path):
        settings = _read(path)
        env = settings.get("env", {})
        if not isinstance(env, dict):
            raise CcsError(f"{path}: `env` is not an object; fix it first")
        wanted = profile_env(profile, None)
        for var in claude.SECRET_VARS:
            if profile.needs_key:
                wanted.pop(var, None)  # the key comes from apiKeyHelper, never from this file
        touched = set(claude.MANAGED) | set(wanted)
        _record_originals(path, settings, env, touched)
        for var in touched:
            env.pop(var, None)
        env.update(wanted)
        settings["env"] = env
        if profile.needs_key:
            settings[HELPER] = key_print_command(profile.name)
        else:
            settings.pop(HELPER, None)
        write(path, settings)
    return path


def restore() -> Path | None:
    """Put back what was there before the first `--claude-settings`; None when there is nothing to undo."""
    try:
        backup = json.loads(backup_path().read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    path = Path(backup["path"])
    with files.locked(path):
        settings = _read(path)
        env = settings.get("env", {})
        for var, value in backup["env"].items():
            if value is None:
                env.pop(var, None)
            else:
                env[var] = value
        if backup["had_env"] or env:
            settings["env"] = env
        else:
            settings.pop("env", None)
        if backup[HELPER] is None:
            settings.pop(HELPER, None)
        else:
            settings[HELPER] = backup[HELPER]
        if settings or backup.get("existed", True):
            write(path, settings)
        else:  # ccs created the file: it goes again, rather than staying behind as `{}`
            path.unlink(missing_ok=True)
    backup_path().unlink()
    return path


def _record_originals(path: Path, settings: dict, env: dict, touched: set[str]) -> None:
    """The first time: the original values (None = absent). Later: add only keys not recorded yet."""
    try:
        backup = json.loads(backup_path().read_text(encoding="utf-8"))
    except FileNotFoundError:
        backup = {"path": str(path), "existed": path.exists(), "had_env": "env" in settings,
                  HELPER: settings.get(HELPER), "env": {}}
        if path.exists():
            files.write_atomic(path.with_name(path.name + ".ccs-backup"), path.read_text(encoding="utf-8"),
                               mode=files.existing_mode(path, 0o600))
    for var in touched:
        backup["env"].setdefault(var, env.get(var))
    files.write_atomic(backup_path(), json.dumps(backup, indent=2), mode=0o600)


def _read(path: Path) -> dict:
    try:
        text = files.read_small(path, claude.SETTINGS_BYTES)
    except files.Unreadable as e:
        raise CcsError(f"{path} {e}; ccs leaves it alone") from None
    try:
        settings = json.loads(text or "{}")
    except ValueError as e:
        raise CcsError(f"{path} is not valid JSON ({e}); fix it before ccs edits it") from None
    if not isinstance(settings, dict):
        raise CcsError(f"{path} is not a JSON object")
    return settings


def write(path: Path, settings: dict) -> None:
    """Write claude's settings as claude does; an `apiKeyHelper` of an older ccs becomes the safe form."""
    if name := unsafe_helper(settings.get(HELPER)):
        settings[HELPER] = key_print_command(name)
    files.write_atomic(path, json.dumps(settings, indent=2, ensure_ascii=False) + "\n",
                       mode=files.existing_mode(path, 0o600))


# ---------------------------------------------------------------- a /model pick that only the proxy understands


@contextlib.contextmanager
def routed_pick_undone(env):
    """claude saves a `/model` pick in its user settings (`model`). One made through the proxy may be a
    route (`glm,glm-4.6`) that plain `claude` later sends to a provider that has no such model: after the
    session the value from before is put back, and the user told."""
    path = claude.config_dir(env) / "settings.json"
    before = claude.saved_model(path)
    try:
        yield
    finally:
        after = claude.saved_model(path)
        if after != before and isinstance(after, str) and is_route(after):
            _put_back_model(path, before, after, env[claude.MARKER])


def _put_back_model(path: Path, before, after: str, profile: str) -> None:
    """Put `model` back as it was, everything else as claude left it; a failure is a warning, never a
    change to claude's exit code."""
    try:
        with files.locked(path):
            settings = _read(path)
            if settings.get("model") != after:
                return  # changed again meanwhile (another claude): not ours to undo
            if before is None:
                settings.pop("model", None)
            else:
                settings["model"] = before
            write(path, settings)
    except (OSError, CcsError) as e:
        print(f"ccs: warning: claude saved the /model pick {after!r} in {path}, which only works through the ccs "
              f"proxy, and ccs could not put back what was there ({e}); set `model` there yourself", file=sys.stderr)
        return
    print(f"ccs: claude saved the /model pick {after!r} in {path}; it only works through the ccs proxy, so "
          f"{'the model from before is back' if before else 'it is removed'} (start it again with "
          f"`ccs run {profile} -- claude --model {after}`)", file=sys.stderr)
