"""The one error type a user can cause: printed as one line, exit code 2, no traceback."""

from __future__ import annotations


class CcsError(Exception):
    """Something the user can fix; the message says what is wrong and what to do."""

    exit_code = 2
