"""`ccs use NAME --claude-settings`: write a native profile into Claude Code's own settings.json, for
people who start Claude Code from an IDE where no `ccs run` is in between.

Only the `env` keys ccs manages and `apiKeyHelper` are touched; hooks, permissions, plugins and
everything else stay as they are. The key is never written: `apiKeyHelper` runs `ccs key print
NAME` (as `/path/to/python -m ccswitch key print NAME`). What was there before is recorded once,
so `ccs use --off --claude-settings` puts back exactly that.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

from . import files, launch
from .errors import CcsError
from .profiles import Profile

HELPER = launch.HELPER


def key_print_command(name: str) -> str:
    """`ccs key print NAME` with this very interpreter's path: an IDE rarely has ccs's venv on its PATH."""
    return shlex.join([sys.executable, "-m", "ccswitch", "key", "print", name])


def settings_path() -> Path:
    return launch.claude_config_dir(os.environ) / "settings.json"


def backup_path() -> Path:
    return files.state_dir() / "claude-settings-backup.json"


def apply(profile: Profile) -> Path:
    if profile.uses_proxy:
        raise CcsError(f"profile '{profile.name}' {profile.why_proxied}, so it needs the ccs proxy running "
                       "beside claude, which a settings file cannot start; use `ccs run` or `ccs proxy`")
    path = settings_path()
    with files.locked(path):
        settings = _read(path)
        env = settings.get("env", {})
        if not isinstance(env, dict):
            raise CcsError(f"{path}: `env` is not an object; fix it first")
        wanted = launch.profile_env(profile, None)
        for var in launch.SECRET_VARS:
            if profile.needs_key:
                wanted.pop(var, None)  # the key comes from apiKeyHelper, never from this file
        touched = set(launch.MANAGED) | set(wanted)
        _record_originals(path, settings, env, touched)
        for var in touched:
            env.pop(var, None)
        env.update(wanted)
        settings["env"] = env
        if profile.needs_key:
            settings[HELPER] = key_print_command(profile.name)
        else:
            settings.pop(HELPER, None)
        _write(path, settings)
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
        _write(path, settings)
    backup_path().unlink()
    return path


def _record_originals(path: Path, settings: dict, env: dict, touched: set[str]) -> None:
    """The first time: the original values (None = absent). Later: add only keys not recorded yet."""
    try:
        backup = json.loads(backup_path().read_text(encoding="utf-8"))
    except FileNotFoundError:
        backup = {"path": str(path), "had_env": "env" in settings, HELPER: settings.get(HELPER), "env": {}}
        if path.exists():
            files.write_atomic(path.with_name(path.name + ".ccs-backup"), path.read_text(encoding="utf-8"),
                               mode=files.existing_mode(path, 0o600))
    for var in touched:
        backup["env"].setdefault(var, env.get(var))
    files.write_atomic(backup_path(), json.dumps(backup, indent=2), mode=0o600)


def _read(path: Path) -> dict:
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError as e:
        raise CcsError(f"{path} is not valid JSON ({e}); fix it before ccs edits it") from None
    if not isinstance(settings, dict):
        raise CcsError(f"{path} is not a JSON object")
    return settings


def _write(path: Path, settings: dict) -> None:
    files.write_atomic(path, json.dumps(settings, indent=2) + "\n", mode=files.existing_mode(path, 0o600))
