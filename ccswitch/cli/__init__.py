"""The `ccs` command line: a thin Typer layer that parses words, calls the modules below and renders with
Rich; a module per group of commands, in the order `ccs --help` lists them."""

from __future__ import annotations

import typer

from .. import __version__
from .base import app, console, key_app

app.add_typer(key_app, name="key")


def version_callback(value: bool) -> None:
    if value:
        console.print(f"ccs {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(False, "--version", callback=version_callback, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Run Claude Code against any model provider. Profiles in TOML, keys in the OS keyring."""


# each registers its commands, in this order
from . import profile_commands, sharing_commands, key_commands, scope_commands  # noqa: E402,F401
from . import check_commands, run_commands  # noqa: E402,F401

__all__ = ["app"]
