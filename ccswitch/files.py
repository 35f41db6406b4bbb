"""Where ccs keeps its files, and how it writes them without ever leaving a half-written one."""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

from .errors import CcsError

APP = "ccswitch"
UID = os.getuid() if hasattr(os, "getuid") else None  # None on Windows, where files have no owner uid


def config_file() -> Path:
    """The profiles TOML: `CCS_CONFIG`, else the platform's config dir."""
    if env := os.environ.get("CCS_CONFIG"):
        return Path(env).expanduser()
    return user_dir("config") / "profiles.toml"


def state_dir() -> Path:
    """Small state such as the active profile: `CCS_HOME/state`, else the platform's state dir."""
    if home := os.environ.get("CCS_HOME"):
        return Path(home).expanduser() / "state"
    return user_dir("state")


def data_dir() -> Path:
    """The usage log and the fallback secret store: `CCS_HOME/data`, else the platform's data dir."""
    if home := os.environ.get("CCS_HOME"):
        return Path(home).expanduser() / "data"
    return user_dir("data")


# On Linux, platformdirs' dirs are these variables, else these defaults (a blank variable counts as unset)
XDG = {"config": ("XDG_CONFIG_HOME", "~/.config"), "state": ("XDG_STATE_HOME", "~/.local/state"),
       "data": ("XDG_DATA_HOME", "~/.local/share")}


def user_dir(kind: str) -> Path:
    """platformdirs' user_<kind>_dir for ccs; on Linux read as platformdirs reads it, without importing it
    (4 ms off every launch, 1 MB off every proxy)."""
    if sys.platform.startswith("linux"):
        var, default = XDG[kind]
        return Path(os.environ.get(var, "").strip() or os.path.expanduser(default)) / APP
    import platformdirs

    return Path(getattr(platformdirs, f"user_{kind}_dir")(APP))


def private_dir(name: str) -> Path:
    """A 0700 directory for short-lived files holding secrets (settings overlays)."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    return own_dir(Path(base) / APP / name if base and Path(base).is_dir() else state_dir() / name)


def own_dir(path: Path) -> Path:
    """`path`, created if need be, and ccs's own directories in it (0700): what ccs keeps there (logs quoting
    prompts, keys in the file store, the usage log) is for this user alone."""
    with refused(path):
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        ours = [path, *(directory for directory in path.parents if directory.name == APP)]  # not $HOME or /tmp
        for directory in ours:
            info = directory.stat()
            if info.st_uid == UID and info.st_mode & 0o077:
                os.chmod(directory, 0o700)
    return path


class Unreadable(Exception):
    """Something at a path ccs reads that it must not read: a FIFO (which would hang), a device (`/dev/zero`,
    which never ends), a file of another user, a file larger than makes sense."""


def read_small(path: Path, limit: int, *, owned: bool = False) -> str | None:
    """The text of a small regular file (UTF-8, a BOM allowed), or None when there is none. `owned`: only one
    this user owns counts, since another may have put it where ccs looks (`/tmp/.ccs-profile`)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        raise Unreadable(f"cannot be read ({e.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Unreadable("is not a regular file")
        if owned and UID is not None and info.st_uid != UID:
            raise Unreadable(f"belongs to another user (uid {info.st_uid})")
        if info.st_size > limit:
            raise Unreadable(f"is larger than {limit} bytes")
        data = os.read(fd, limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise Unreadable(f"is larger than {limit} bytes")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Unreadable("is not UTF-8 text") from None


@contextlib.contextmanager
def refused(path: Path) -> Iterator[None]:
    """A file system that refuses a write (read-only, full, no permission) is the user's to fix: one line."""
    try:
        yield
    except OSError as e:
        raise CcsError(f"cannot write {path}: {e.strerror or e}; nothing was changed") from None


def write_atomic(path: Path, text: str, *, mode: int = 0o600) -> None:
    """Write via a temp file in the same directory and `os.replace`, so readers see old or new, never half."""
    import tempfile  # here, not at the top: a launch writes nothing

    with refused(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), dir=path.parent)
        try:
            os.fchmod(fd, mode)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


def write_ephemeral(path: Path, text: str) -> None:
    """A 0600 file that lives only as long as this process (a launch's settings overlay), in a directory only
    this user may write: no temp file, no fsync (nothing survives a crash that needs it)."""
    with refused(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(fd, 0o600)  # one left by a process of the same number, long gone
            f.write(text)


def _temp_prefix(path: Path) -> str:
    return f".{path.name}."


def existing_mode(path: Path, default: int) -> int:
    """Keep the permissions a user gave their file; new files get `default`."""
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        return default


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock beside `path` so two `ccs` processes never interleave an edit.

    Holding it, no other writer is half-way through, so temp files beside `path` are what a killed
    writer left behind, and are removed."""
    lock_path = path.with_name(path.name + ".lock")
    with refused(lock_path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; atomic replace still protects the file
            yield
            return
        fcntl.flock(fd, fcntl.LOCK_EX)
        import glob

        for leftover in path.parent.glob(glob.escape(_temp_prefix(path)) + "*"):
            leftover.unlink(missing_ok=True)
        yield
    finally:
        os.close(fd)
