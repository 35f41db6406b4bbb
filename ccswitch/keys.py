"""A profile's secret: from `key_env`, from `key_cmd`, or stored (OS keyring, else a 0600 file).

Where `secret_store = "auto"` (the default), keys go to the keyring when it has a usable
backend and to the file store otherwise. Reading looks in the file store first: it is cheap,
and it holds a key only when the keyring was unusable, so a launch on a headless machine never
pays for importing keyring.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

from . import files
from .errors import CcsError
from .profiles import Profile

if TYPE_CHECKING:
    import subprocess

SERVICE = "ccswitch"
KEY_CMD_TIMEOUT = 30
KEY_CMD_NOTICE = 2.0  # seconds of silence before ccs says what it waits for


def mask(secret: str | None) -> str:
    """`sk-…abcd`: enough to recognise a key, never enough to use it."""
    if not secret:
        return "(none)"
    if len(secret) < 12:
        return "…" + secret[-2:]
    prefix = secret[:3] if secret[2:3] == "-" else secret[:2]
    return f"{prefix}…{secret[-4:]}"


def get(profile: Profile, store: str = "auto") -> str | None:
    """The profile's key, or None when nothing is stored. `key_env`/`key_cmd` failures raise."""
    if profile.key_env:
        value = os.environ.get(profile.key_env)
        if not value:
            raise CcsError(f"profile '{profile.name}' reads its key from ${profile.key_env}, which is not set")
        return value
    if profile.key_cmd:
        return _run_key_cmd(profile)
    user = profile.keyring_user
    if store != "keyring" and (value := _file_get(user)):
        return value
    if store == "file":
        return None
    backend = _keyring()
    if backend is None:
        if store == "keyring":
            raise _no_keyring()
        return None
    try:
        return backend.get_password(SERVICE, user)
    except Exception as e:  # a locked or broken keyring: say so instead of a traceback
        raise CcsError(f"cannot read the key of '{profile.name}' from the keyring: {e}") from None


POOL_MAX = 16  # keys a profile may hold: the one `ccs key set` stores, and those `ccs key add` adds


def pool_user(user: str, slot: int) -> str:
    """Where a profile's `slot`th key is stored (the first is the profile's own entry)."""
    return user if slot == 1 else f"{user}#{slot}"


def stored(user: str, store: str = "auto") -> str | None:
    """One stored entry, from the file or the keyring; None when it is not there (or the keyring is locked)."""
    if store != "keyring" and (value := _file_get(user)):
        return value
    backend = None if store == "file" else _keyring()
    if backend is None:
        return None
    try:
        return backend.get_password(SERVICE, user)
    except Exception:  # a locked keyring: as if nothing were there
        return None


def pool(profile: Profile, store: str = "auto", first: str | None = None) -> list[str]:
    """Every key a profile holds, its own first (`first`, when already looked up); those `ccs key add` added
    follow in order. A key from key_env or key_cmd is a pool of one."""
    first = first or get(profile, store)
    if not first:
        return []
    keys = [first]
    if profile.key_env or profile.key_cmd:
        return keys
    if store == "auto":  # the pool is where its first key is (`ccs key add` stores where `set` did)
        store = "file" if _file_get(profile.keyring_user) else "keyring"
    for slot in range(2, POOL_MAX + 1):
        if not (value := stored(pool_user(profile.keyring_user, slot), store)):
            break
        keys.append(value)
    return keys


def delete_pool(user: str, store: str = "auto") -> int:
    """Remove every key stored for `user` (its own and its pool's); how many there were."""
    deleted = 0
    while deleted < POOL_MAX and delete_key(pool_user(user, deleted + 1), store):
        deleted += 1
    return deleted


def move_pool(old: str, new: str, store: str = "auto") -> None:
    """A renamed profile's keys, all of them, under its new name."""
    for slot in range(1, POOL_MAX + 1):
        if not (secret := stored(pool_user(old, slot), store)):
            break
        store_key(pool_user(new, slot), secret, store)
    delete_pool(old, store)


def require(profile: Profile, store: str = "auto") -> str:
    """The key, or an error saying which command stores it."""
    secret = get(profile, store)
    if not secret:
        raise CcsError(f"no key stored for profile '{profile.name}': run `ccs key set {profile.name}`")
    return secret


def lookup(profile: Profile, store: str = "auto") -> str | None:
    """The key a profile sends (an error when it is missing), or None for one that sends none (claude's login,
    a keyless server, a router without a provider of its own)."""
    return require(profile, store) if profile.needs_key else None


def search_key(settings, store: str = "auto") -> str | None:
    """The `[search]` backend's key (profiles.SearchSettings: read where a profile's is), None for one that takes
    none; an error saying how to store it when it is missing."""
    if not settings.needs_key:
        return None
    secret = get(settings, store)
    if not secret:
        raise CcsError(f"no key stored for the {settings.provider} search backend: run `ccs key set search` (or "
                       "set key_env / key_cmd in [search])")
    return secret


def status(profile: Profile, store: str = "auto") -> tuple[str, bool | None]:
    """(where the key comes from, whether it is there); None when only running key_cmd would tell."""
    return key_info(profile, store)[:2]


def key_info(profile: Profile, store: str = "auto") -> tuple[str, bool | None, str | None]:
    """`status` plus the key itself when looking for it already read it (never runs key_cmd)."""
    if not profile.needs_key:
        return ("routes' profiles" if not profile.own_provider else "none needed" if profile.auth == "none"
                else profile.signed_with), None, None
    if profile.key_env:
        value = os.environ.get(profile.key_env) or None
        return f"${profile.key_env}", value is not None, value
    if profile.key_cmd:
        return "key_cmd", None, None
    user = profile.keyring_user
    if store != "keyring" and (value := _file_get(user)):
        return "file", True, value
    backend = None if store == "file" else _keyring()
    if backend is None:
        return ("keyring (unavailable)" if store == "keyring" else "file"), False, None
    try:
        value = backend.get_password(SERVICE, user)
    except Exception:  # locked keyring: unknown rather than a traceback in `ccs list`
        return "keyring", None, None
    return "keyring", value is not None, value


def store_key(user: str, secret: str, store: str = "auto") -> str:
    """Save a key; returns where it went ("keyring" or the file path)."""
    if store != "file":
        backend = _keyring()
        refused = None
        if backend is not None:
            try:
                backend.set_password(SERVICE, user, secret)
                if backend.get_password(SERVICE, user) != secret:  # keyring's null backend takes and keeps nothing
                    raise RuntimeError(f"{type(backend).__name__} kept nothing")
            except Exception as e:  # a backend that exists but cannot work here (no daemon, locked)
                refused = e
            else:
                _file_delete(user)  # a stale file copy would otherwise shadow the new key
                return "keyring"
        if store == "keyring":
            raise CcsError(f"the keyring refused to store the key: {refused}") if refused else _no_keyring()
        _notice_file_store_once(f" (the keyring said: {refused})" if refused else "")
    _file_set(user, secret)
    return str(_file_path())


def delete_key(user: str, store: str = "auto") -> bool:
    """Remove a stored key from every store; True if one was there."""
    found = _file_delete(user)
    if store != "file" and (backend := _keyring()) is not None:
        import keyring.errors

        try:
            backend.delete_password(SERVICE, user)
            found = True
        except keyring.errors.PasswordDeleteError:
            pass
    return found


def _run_key_cmd(profile: Profile) -> str:
    """The key_cmd's output. It runs in a process group of its own, so that on time-out the whole
    group goes (a shell and whatever it started). Run by ccs itself it may prompt in the terminal (a password
    manager's unlock): the terminal is handed to that group while it runs. Run by the proxy's thread (a
    profile first reached mid-session) the terminal is claude's: the key_cmd gets none, and no stdin."""
    import subprocess  # here, not at the top: most launches run no key_cmd
    import threading

    ours = threading.current_thread() is threading.main_thread()
    process = subprocess.Popen(profile.key_cmd, shell=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               stdin=None if ours else subprocess.DEVNULL, text=True, process_group=0)
    with _terminal_for(process.pid) if ours else contextlib.nullcontext():
        try:
            out, err = process.communicate(timeout=KEY_CMD_NOTICE)
        except subprocess.TimeoutExpired:
            if ours:
                print(f"ccs: waiting for the key_cmd of '{profile.name}' ({profile.key_cmd}), up to "
                      f"{KEY_CMD_TIMEOUT} s", file=sys.stderr, flush=True)
            try:
                out, err = process.communicate(timeout=max(0.0, KEY_CMD_TIMEOUT - KEY_CMD_NOTICE))
            except subprocess.TimeoutExpired:
                _kill_group(process)
                raise CcsError(f"key_cmd of '{profile.name}' did not finish in {KEY_CMD_TIMEOUT} s "
                               "(stopped, with everything it started)") from None
    if process.returncode != 0:
        why = (err.strip().splitlines() or ["no error output"])[-1]
        raise CcsError(f"key_cmd of '{profile.name}' failed with exit code {process.returncode}: {why}")
    secret = out.strip()
    if not secret:
        raise CcsError(f"key_cmd of '{profile.name}' printed nothing")
    return secret


def _kill_group(process: subprocess.Popen) -> None:
    import signal
    import subprocess

    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.communicate(timeout=1)
            break
        except subprocess.TimeoutExpired:
            continue


@contextlib.contextmanager
def _terminal_for(group: int) -> Iterator[None]:
    """Make `group` the terminal's foreground while it runs (as a shell does for a job), if ccs has one."""
    import signal

    try:
        tty = os.open("/dev/tty", os.O_RDWR)
        ours = os.tcgetpgrp(tty) == os.getpgrp()
    except OSError:  # no controlling terminal: nothing to hand over
        yield
        return
    try:
        if ours:
            os.tcsetpgrp(tty, group)
            os.killpg(group, signal.SIGCONT)  # in case it touched the terminal a moment too early
        yield
    finally:
        if ours:
            previous = signal.signal(signal.SIGTTOU, signal.SIG_IGN)  # taking it back from the background
            try:
                os.tcsetpgrp(tty, os.getpgrp())
            finally:
                signal.signal(signal.SIGTTOU, previous)
        os.close(tty)


def where_keys_go(store: str = "auto") -> str:
    """Where `ccs key set` puts a key, said for people: the keyring backend's name, or the file."""
    backend = None if store == "file" else _keyring()
    if backend is not None:
        return f"the keyring ({type(backend).__module__}.{type(backend).__name__})"
    if store == "keyring":
        return "nowhere: secret_store = \"keyring\" but no usable keyring backend was found"
    return f"the file {_file_path()} (mode 0600; no usable keyring)" if store == "auto" else f"the file {_file_path()}"


def _keyring():
    """The keyring backend, or None when there is no usable one (headless Linux, containers)."""
    try:
        import keyring
        from keyring.backends import chainer, fail, null
    except ImportError:
        return None
    backend = keyring.get_keyring()
    if isinstance(backend, (fail.Keyring, null.Keyring)):  # null keeps nothing: as good as none
        return None
    if isinstance(backend, chainer.ChainerBackend) and not backend.backends:
        return None
    return backend


def _no_keyring() -> CcsError:
    return CcsError("secret_store = \"keyring\" but no usable keyring backend was found; "
                    "install one (e.g. gnome-keyring) or set secret_store = \"file\"")


# ---------------------------------------------------------------- the 0600 file store


def _file_path():
    return files.data_dir() / "secrets.json"


def _file_read() -> dict[str, str]:
    try:
        return json.loads(_file_path().read_text(encoding="utf-8")).get("secrets", {})
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise CcsError(f"cannot read the secret file {_file_path()}: {e}") from None


def _file_get(user: str) -> str | None:
    return _file_read().get(user)


def _file_set(user: str, secret: str) -> None:
    path = _file_path()
    files.own_dir(path.parent)
    with files.locked(path):
        secrets = _file_read()
        secrets[user] = secret
        _file_write(secrets)


def _file_delete(user: str) -> bool:
    path = _file_path()
    if not path.exists():
        return False
    with files.locked(path):
        secrets = _file_read()
        if secrets.pop(user, None) is None:
            return False
        _file_write(secrets)
        return True


def _file_write(secrets: dict[str, str]) -> None:
    files.write_atomic(_file_path(), json.dumps({"version": 1, "secrets": secrets}, indent=1), mode=0o600)


def _notice_file_store_once(why: str = "") -> None:
    from .state import say_once

    say_once("file-store", f"ccs: no usable OS keyring{why}; keys are kept in {_file_path()} (mode 0600). "
                           "Set secret_store = \"keyring\" to require a keyring.")
