"""Entry point of `ccs` and `python -m ccswitch`.

Three commands are hot paths: `ccs run` (every claude start), `ccs shell-init` (every new shell)
and `ccs proxy` (a long-lived server whose memory and start-up count). They skip Typer and Rich;
their words are simple enough to read here. Anything else, `--help` included, goes to Typer.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    command = fast_path(args)
    if command is None:
        from .cli import app

        app(args=args, prog_name="ccs")
        return
    from .errors import CcsError

    try:
        code = command()
    except CcsError as e:
        print(f"ccs: error: {e}", file=sys.stderr)
        code = e.exit_code
    sys.exit(code or 0)


def fast_path(args: list[str]) -> Callable[[], int | None] | None:
    """The command to run without Typer, or None when Typer must read the words."""
    name, rest = (args[0], args[1:]) if args else ("", [])
    if name == "run" and (parsed := split_run_args(rest)) is not None:
        from .launch import run_profile

        return lambda: run_profile(*parsed)
    if name == "shell-init" and len(rest) <= 1 and not any(word.startswith("-") for word in rest):
        from .shell import init_for

        return lambda: print(init_for(rest[0] if rest else None), end="")
    if name == "proxy" and (parsed := split_proxy_args(rest)) is not None:
        from .proxy.server import serve_profile

        return lambda: serve_profile(*parsed)
    return None


def split_run_args(args: list[str]) -> tuple[str | None, list[str]] | None:
    """(NAME, command) of `run [NAME] [-- CMD ...]`, or None when Typer must parse the words."""
    if "--" in args:
        cut = args.index("--")
        head, command = args[:cut], args[cut + 1:]
    else:
        head, command = args, []
    if len(head) > 1 or any(word.startswith("-") for word in head):
        return None
    return (head[0] if head else None), command


def split_proxy_args(args: list[str]) -> tuple[str, int, bool] | None:
    """(NAME, port, json) of `proxy NAME [--port N] [--json]`, or None when Typer must parse the words."""
    name, port, as_json = None, "0", False
    words = iter(args)
    for word in words:
        if word == "--json":
            as_json = True
        elif word == "--port":
            port = next(words, "")
        elif word.startswith("--port="):
            port = word.removeprefix("--port=")
        elif not word.startswith("-") and name is None:
            name = word
        else:
            return None
    if name is None or not port.isdigit():
        return None
    return name, int(port), as_json


if __name__ == "__main__":
    main()
