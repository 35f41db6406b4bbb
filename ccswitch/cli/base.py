"""What every command shares: the Typer app and its one error boundary, the consoles, and how a value that
came from a file, a provider or a profile is shown: as text, never as Rich markup or terminal control codes."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.text import Text
from typer._click.exceptions import NoArgsIsHelpError, UsageError  # Typer >= 0.29 vendors Click here
from typer.core import TyperGroup

from .. import profiles
from ..errors import CcsError, fail
from ..errors import printable as shown
from ..presets import PRESETS


def make_console(stderr: bool = False) -> Console:
    """Rich's console, never breaking a line itself (a path or URL stays whole to copy), and with no
    80-column limit on a pipe or a file, where it would otherwise crop tables. No markup, emoji codes or
    highlighting: a shared profile's `[conceal]` or `:warning:` is shown as written (styles are `Text`)."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, markup=False, emoji=False, highlight=False, soft_wrap=True,
                   width=None if stream.isatty() else 10_000)


console = make_console()
err_console = make_console(stderr=True)

def line(*parts) -> Text:
    """One line of output: plain strings, and (text, style) pairs; every piece shown as text."""
    return Text.assemble(*((shown(part[0]), part[1]) if isinstance(part, tuple) else shown(part) for part in parts))


def bold(value) -> tuple[str, str]:
    return str(value), "bold"


MARKS = {"ok": Text("ok", "green"), "warn": Text("! ", "yellow"), "fail": Text("!!", "red"), "skipped": Text("- ")}


class ErrorBoundary(TyperGroup):
    """The single place where user errors become one line on stderr and exit code 2: ours, and the
    words Click refuses (Typer would draw a box around them). Ctrl-C at a prompt ends the line first."""

    def main(self, *args, standalone_mode: bool = True, **kwargs):  # noqa: ARG002 (always ours, whatever asked)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except NoArgsIsHelpError as e:  # building it printed Typer's help already, unless that came as text
            print(e.format_message(), end="")
            code = 0
        except UsageError as e:
            hint = f"; see `{e.ctx.command_path} --help`" if e.ctx else ""
            fail(f"{e.format_message().rstrip('.')}{hint}")
            code = 2
        except typer.Abort:  # a confirmation answered no
            print("Aborted.", file=sys.stderr)
            code = 1
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except CcsError as e:
            fail(str(e))
            raise typer.Exit(e.exit_code) from None
        except (KeyboardInterrupt, EOFError, typer.Abort) as e:
            if isinstance(e, typer.Abort) and not isinstance(e.__context__, (KeyboardInterrupt, EOFError)):
                raise
            print(file=sys.stderr)  # the shell's prompt starts on a line of its own
            raise typer.Exit(130) from None


app = typer.Typer(
    cls=ErrorBoundary,
    help="Run Claude Code against any model provider. Profiles in TOML, keys in the OS keyring.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # a traceback must never print a key
    context_settings={"help_option_names": ["-h", "--help"]},
)
key_app = typer.Typer(cls=ErrorBoundary, help="Store, remove or print a profile's key.", no_args_is_help=True)


def complete_profile(incomplete: str) -> list[str]:
    try:
        names = profiles.load().profiles
    except CcsError:
        return []
    return [name for name in names if name.startswith(incomplete)]


def complete_preset(incomplete: str) -> list[str]:
    return [name for name in PRESETS if name.startswith(incomplete)]


ProfileArg = typer.Argument(..., help="Profile name.", autocompletion=complete_profile)


def confirm_or_yes(yes: bool, question: str, why: str) -> None:
    """Ask in a terminal (no means stop); a script has to say --yes."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise CcsError(f"{why}: add --yes")
    typer.confirm(question, abort=True)


def read_secret(name: str, *, from_stdin: bool, interactive: bool, keyless: bool = False) -> str | None:
    """A key from stdin or a hidden prompt; never from the command line. `keyless`: a server that may take
    none, which Enter says."""
    if from_stdin:
        secret = sys.stdin.read().strip()
        if not secret:
            raise CcsError("--key-stdin given but standard input was empty")
        return secret
    if not interactive:
        return None
    import getpass

    empty = "empty: it takes none" if keyless else "empty to skip"
    secret = getpass.getpass(f"Key for {name} (hidden, {empty}): ").strip()
    return secret or None
