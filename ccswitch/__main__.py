"""Entry point of `ccs` and `python -m ccswitch`.

`ccs run [NAME] [-- CMD ...]` and `ccs shell-init [SHELL]` are hot paths (every claude start,
every new shell): they skip Typer, Rich and the proxy. Everything else goes to the Typer app.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["run"] and (parsed := split_run_args(args[1:])) is not None:
        from .errors import CcsError
        from .launch import run_profile

        try:
            sys.exit(run_profile(*parsed))
        except CcsError as e:
            print(f"ccs: error: {e}", file=sys.stderr)
            sys.exit(e.exit_code)
    if args[:1] == ["shell-init"] and len(args) <= 2 and not any(a.startswith("-") for a in args[1:]):
        # runs in every new shell: keep it as light as `ccs run`
        from .errors import CcsError
        from .shell import init_for

        try:
            sys.stdout.write(init_for(args[1] if len(args) == 2 else None))
        except CcsError as e:
            print(f"ccs: error: {e}", file=sys.stderr)
            sys.exit(e.exit_code)
        return
    from .cli import app

    app(args=args, prog_name="ccs")


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


if __name__ == "__main__":
    main()
