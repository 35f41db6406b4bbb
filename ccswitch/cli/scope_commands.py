"""`ccs use`, `shell`, `current`, `shell-init`, `reload`, `completions`: which profile applies where."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer

from .. import profiles, state
from ..errors import CcsError
from .base import app, bold, complete_profile, console, err_console, line


NEEDS_INTEGRATION = ("changing only this shell needs the shell integration: "
                     'add `eval "$(ccs shell-init)"` to your shell\'s rc file (see `ccs shell-init --help`)')


@app.command()
def use(
    name: Optional[str] = typer.Argument(None, help="Profile to make the default.", autocompletion=complete_profile),
    off: bool = typer.Option(False, "--off", help="No profile: plain `claude` runs untouched."),
    this_shell: bool = typer.Option(False, "--shell", help="Only this shell (needs `ccs shell-init`)."),
    here: bool = typer.Option(False, "--here", help=f"This directory and those below it: writes {state.HERE_FILE}."),
    emit: Optional[str] = typer.Option(None, "--emit", hidden=True, help="Shell code for the integration to eval."),
    claude_settings: bool = typer.Option(False, "--claude-settings",
                                         help="Also write it into ~/.claude/settings.json (for IDEs); "
                                              "with --off, restore that file."),
) -> None:
    """Make a profile the default for plain `claude`: in every shell, (--shell) this one only, or
    (--here) in this directory and below.

    Example: ccs use glm; ccs use --shell gpt; ccs use --here kimi; ccs use --off
    """
    if off == (name is not None):
        raise CcsError("give a profile name or --off")
    if here and (this_shell or claude_settings):
        raise CcsError("--here is a scope of its own: it goes with neither --shell nor --claude-settings")
    profile = profiles.load().get(name) if name is not None else None
    if here:
        existed = (Path.cwd() / state.HERE_FILE).exists()
        path = state.set_here(Path.cwd(), name)
        console.print(line(f"{path}: {name}" if name else f"Removed {path}" if existed else f"No {path} to remove"))
        return
    if claude_settings:
        from .. import claude_settings as settings_file

        if profile is None:
            restored = settings_file.restore()
            console.print(line(f"Restored {restored}" if restored else "Nothing to restore: ccs never wrote settings.json"))
        else:
            console.print(line("Wrote profile ", bold(name), f" into {settings_file.apply(profile)} "
                               "(key through apiKeyHelper; undo with `ccs use --off --claude-settings`)"))
    if this_shell:
        if emit is None:
            raise CcsError(NEEDS_INTEGRATION)
        from .. import shell

        sys.stdout.write(shell.scope_code(emit, name))
        err_console.print(line(f"This shell: {name or 'no profile (the default applies again)'}"))
        return
    state.set_default(name)
    if off:
        console.print(line("No default profile: plain `claude` runs untouched"))
    else:
        console.print(line("Default profile: ", bold(name)))
    if not os.environ.get("CCS_SHELL_INTEGRATION"):
        err_console.print(line('Plain `claude` follows this once your shell runs `eval "$(ccs shell-init)"`; '
                               f"until then use `ccs run{' ' + name if name else ''}`."))


@app.command("shell")
def shell_scope(
    name: Optional[str] = typer.Argument(None, help="Profile for this shell only.", autocompletion=complete_profile),
    off: bool = typer.Option(False, "--off", help="Stop overriding the default in this shell."),
) -> None:
    """Use a profile in this shell only (the same as `ccs use --shell`; needs the shell integration)."""
    raise CcsError(NEEDS_INTEGRATION)


@app.command()
def current(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Say which profile applies here and why, and whether the shell integration is active."""
    from .. import shell

    name, why = state.current()
    active = shell.integration_active()
    if as_json:
        print(json.dumps({"profile": name, "why": why, "shell_integration": active}))
        return
    console.print(line(f"{name or '-'}  ({why})"))
    console.print(line(f"shell integration: {'active (' + active + ')' if active else 'not active in this shell'}"))


@app.command("shell-init")
def shell_init(shell_name: Optional[str] = typer.Argument(None, metavar="SHELL", help="bash, zsh or fish.")) -> None:
    """Print the shell integration; add the matching line to your rc file:

    bash (~/.bashrc): eval "$(ccs shell-init bash)"

    zsh (~/.zshrc): eval "$(ccs shell-init zsh)"

    fish (~/.config/fish/config.fish): ccs shell-init fish | source

    It defines `claude` (the active profile, or untouched when none) and one command per alias.

    It lets `ccs use --shell NAME` and `ccs reload` change the current shell.
    """
    from .. import shell

    sys.stdout.write(shell.init_for(shell_name))


@app.command()
def reload() -> None:
    """Re-read aliases into this shell (handled by the shell integration)."""
    raise CcsError('reloading happens inside your shell: with the integration active `ccs reload` does it; '
                   'otherwise run eval "$(ccs shell-init)"')


@app.command()
def completions(shell_name: str = typer.Argument(..., metavar="SHELL", help="bash, zsh or fish.")) -> None:
    """Print the completion script for `ccs` (the files in completions/ are this output)."""
    from .. import shell

    sys.stdout.write(shell.completion_script(shell_name))
