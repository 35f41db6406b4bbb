"""Entry point of `ccs` and `python -m ccswitch`.

Some commands are hot paths: `ccs run` (every claude start, also as `ccs NAME`), `ccs shell-init`
(every new shell), `ccs statusline` (claude runs it after every message) and `ccs proxy` (a
long-lived server whose memory and start-up count). They skip Typer and Rich; their words are
simple enough to read here. Anything else, `--help` included, goes to Typer.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable


def main(argv: list[str] | None = None) -> None:
    from .errors import CcsError, fail

    args = sys.argv[1:] if argv is None else argv
    if "_CCS_COMPLETE" in os.environ:  # a TAB in the user's shell
        from .shell import quick_completion

        if (answer := quick_completion(os.environ)) is not None:
            print(answer[0])
            sys.exit(answer[1])
    try:
        command = fast_path(args)
        if command is not None:
            sys.exit(command() or 0)
    except CcsError as e:
        fail(e)
        sys.exit(e.exit_code)
    from .cli import app

    app(args=args, prog_name="ccs")


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
        from .proxy.lifecycle import serve_profile

        return lambda: serve_profile(*parsed)
    if name == "statusline" and not rest:
        from .statusline import print_statusline

        return print_statusline
    if not args:
        from .profiles import load

        return first_steps if not load().profiles else None
    if name not in COMMANDS and not name.startswith("-") and (parsed := split_run_args(args)) is not None:
        from .errors import CcsError
        from .profiles import load, suggest

        known = load().profiles
        if name in known:  # `ccs glm --print hi` is `ccs run glm --print hi`
            from .launch import run_profile

            return lambda: run_profile(*parsed)
        raise CcsError(f"'{name}' is neither a command nor a profile{suggest(name, [*COMMANDS, *known])}; "
                       "`ccs --help` lists the commands, `ccs list` the profiles")
    return None


# The commands of the Typer app (a test keeps this in step): any other first word may be a profile name.
COMMANDS = ("add", "list", "show", "set", "edit", "rm", "rename", "import", "export", "presets", "key", "use",
            "shell", "current", "shell-init", "reload", "completions", "doctor", "test", "models", "run", "proxy", "env",
            "statusline", "usage", "logs")


def first_steps() -> int:
    print("No profiles yet. Three commands to start:\n"
          "  ccs presets                  the providers ccs knows\n"
          "  ccs add NAME --preset P      a profile (asks for the key, keeps it in the keyring)\n"
          "  ccs run NAME                 claude on that profile\n"
          "`ccs --help` lists every command.")
    return 0


def split_run_args(args: list[str]) -> tuple[str | None, list[str], bool, bool, bool] | None:
    """(NAME, words, explicit, verbose, direct) of `run [-v] [--direct] [NAME] [WORDS...]`, or None for
    Typer (`--help`).

    Options before NAME are ccs's; what follows NAME is claude's arguments unless it begins with a
    command, or comes after `--` (then it is the command itself). `--observe` is taken and means nothing
    now (every profile whose key ccs holds is behind the proxy)."""
    verbose = direct = False
    words = list(args)
    while words and words[0] in ("-v", "--verbose", "--direct", "--observe"):
        option = words.pop(0)
        if option == "--direct":
            direct = True
        elif option in ("-v", "--verbose"):
            verbose = True
    if words and words[0] in ("-h", "--help"):
        return None
    name = None
    if words and not words[0].startswith("-"):
        name = words.pop(0)
    explicit = bool(words) and words[0] == "--"
    return name, words[1:] if explicit else words, explicit, verbose, direct


def split_proxy_args(args: list[str]) -> tuple[str, int, bool, bool] | None:
    """(NAME, port, json, quiet) of `proxy NAME [--port N] [--json] [--quiet]`, or None for Typer."""
    name, port, as_json, quiet = None, "0", False, False
    words = iter(args)
    for word in words:
        if word == "--json":
            as_json = True
        elif word in ("--quiet", "-q"):
            quiet = True
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
    return name, int(port), as_json, quiet


if __name__ == "__main__":
    main()
