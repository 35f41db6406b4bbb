"""Starting a program: as a child that ccs waits for (signals forwarded, its exit code returned), or in
ccs's place (exec) when nothing of ccs has to outlive the start."""

from __future__ import annotations

import os
import stat
import sys

from .errors import CcsError


def find(program: str, env: dict[str, str]) -> str | None:
    """`program` on the child's PATH. Relative entries ("" or "." for the working directory, which may be a
    cloned repository holding a `claude` of its own) are left out."""
    if os.name == "nt":  # PATHEXT and its other rules: shutil's
        import shutil

        path = os.pathsep.join(e for e in env.get("PATH", os.defpath).split(os.pathsep) if os.path.isabs(e))
        return shutil.which(program, path=path) if os.sep not in program else shutil.which(program)
    if os.sep in program:
        return program if _runnable(program) else None
    for entry in env.get("PATH", os.defpath).split(os.pathsep):
        if os.path.isabs(entry) and _runnable(candidate := os.path.join(entry, program)):
            return candidate
    return None


def _runnable(path: str) -> bool:
    """What shutil.which accepts on POSIX (shutil itself, with the compression modules it imports, costs a
    launch ~2 ms)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode) and os.access(path, os.X_OK)
    except (OSError, ValueError):
        return False


def spawn(argv: list[str], env: dict[str, str], started=None, hidden: tuple[bytes, ...] = ()) -> int:
    """Run a child and wait: SIGTERM/SIGHUP are forwarded, the terminal's SIGINT reaches it directly.
    `started()` runs once the child exists (what ccs serves it then starts). `hidden`: the beginnings of
    lines of its stderr that are left out (the rest passes as it comes).

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
            child.append(subprocess.Popen(argv, env=env, stderr=subprocess.PIPE if hidden else None))
        except OSError as e:
            raise CcsError(f"cannot start {argv[0]}: {e.strerror}") from None
        for signum in early:
            child[0].send_signal(signum)
        relay = _relayed(child[0].stderr, hidden) if hidden else None
        if started is not None:
            started()
        while (code := child[0].poll()) is None:
            select.select([wake_read], [], [])
            os.read(wake_read, 512)
        if relay is not None:  # the rest of its stderr; a process it left behind may hold the pipe open
            relay.join(RELAY_GRACE)
    finally:
        signal.set_wakeup_fd(previous_wakeup)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        os.close(wake_read)
        os.close(wake_write)
    return 128 - code if code < 0 else code


RELAY_GRACE = 2.0  # seconds the end of a finished child's stderr may take to arrive


def _relayed(pipe, hidden: tuple[bytes, ...]):
    """A thread copying the child's stderr to ours line by line, leaving out lines that begin `hidden`."""
    import threading

    def relay() -> None:
        with pipe:
            for line in iter(pipe.readline, b""):
                if line.startswith(hidden):
                    continue
                try:
                    while line:
                        line = line[os.write(2, line):]
                except OSError:  # our stderr is gone: the child's is still read, so it never blocks on it
                    pass

    thread = threading.Thread(target=relay, name="ccs-stderr", daemon=True)
    thread.start()
    return thread


def replace(argv: list[str], env: dict[str, str]) -> int:
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(argv[0], argv, env)
    except OSError as e:
        raise CcsError(f"cannot start {argv[0]}: {e.strerror}") from None
    return 0  # not reached
