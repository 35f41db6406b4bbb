"""The proxy's log: a line per request, to a private rotated file under `ccs run`, to stderr (never
blocking) under `ccs proxy`. Imported by the serving thread, off `ccs run`'s way to starting claude."""

from __future__ import annotations

import logging
import os
import sys
from logging.handlers import RotatingFileHandler

LOG_BYTES = 1_000_000  # the proxy log under `ccs run` is rotated at this size, one old file kept


def handler(log_file: str | None, quiet: bool) -> logging.Handler:
    """Where the proxy's log goes (a line per request unless `quiet`): `log_file` under `ccs run`
    (never over claude's screen), rotated; else stderr, never blocking (see StderrLog)."""
    chosen = PrivateLog(log_file, maxBytes=LOG_BYTES, backupCount=1) if log_file else StderrLog()
    chosen.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    ours = logging.getLogger("ccswitch")
    ours.handlers = [chosen]
    ours.propagate = False
    ours.setLevel(logging.WARNING if quiet else logging.INFO)
    return chosen


class PrivateLog(RotatingFileHandler):
    """Its files (the current one and the one rotated away) only this user can read."""

    def _open(self):
        os.close(os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        os.chmod(self.baseFilename, 0o600)  # one an older ccs created 0644
        return super()._open()


class StderrLog(logging.Handler):
    """Log lines straight to stderr's file descriptor, each piece only when it can be taken at once.
    An IDE that starts `ccs proxy` may never read its stderr: once that pipe is full, a plain write
    would stall the event loop, and every request with it. Such lines are dropped instead."""

    def emit(self, record: logging.LogRecord) -> None:
        import select

        text = self.format(record) + "\n"
        try:
            fd = sys.stderr.fileno()
        except (AttributeError, ValueError, OSError):  # replaced by something with no descriptor (a test's)
            sys.stderr.write(text)
            return
        data = text.encode(errors="replace")
        for start in range(0, len(data), select.PIPE_BUF):  # a pipe takes up to PIPE_BUF bytes whole
            if not select.select([], [fd], [], 0)[1]:
                return
            os.write(fd, data[start:start + select.PIPE_BUF])
