"""`ccs key set`, `print`, `rm`: a profile's stored key."""

from __future__ import annotations

import sys

import typer

from .. import keys, profiles
from ..errors import CcsError
from .base import ProfileArg, bold, confirm_or_yes, console, key_app, line, read_secret


@key_app.command("set")
def key_set(
    name: str = ProfileArg,
    stdin: bool = typer.Option(False, "--stdin", help="Read the key from standard input."),
) -> None:
    """Store a profile's key (hidden prompt, or --stdin); never as an argument."""
    config = profiles.load()
    profile = config.get(name)
    if profile.cloud:
        raise CcsError(f"profile '{name}' is signed in by claude itself, with {profile.signed_with}: ccs keeps no "
                       f"key for it (`ccs doctor` says whether claude will find them)")
    if profile.key_env or profile.key_cmd:
        raise CcsError(f"profile '{name}' reads its key from {keys.status(profile, config.secret_store)[0]}; "
                       f"`ccs set {name} --unset key_env --unset key_cmd` to store one instead")
    secret = read_secret(name, from_stdin=stdin, interactive=sys.stdin.isatty())
    if not secret:
        raise CcsError("no key given: type it at the prompt or pipe it with --stdin")
    where = keys.store_key(profile.keyring_user, secret, config.secret_store)
    console.print(line("Stored the key of ", bold(name),
                       f" ({keys.mask(secret)}) in the {where if where == 'keyring' else 'file ' + where}"))


@key_app.command("print")
def key_print(name: str = ProfileArg) -> None:
    """Print a profile's key to stdout (for Claude Code's apiKeyHelper); nothing else ever prints it."""
    config = profiles.load()
    print(keys.require(config.get(name), config.secret_store))


@key_app.command("rm")
def key_rm(name: str = ProfileArg, yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask.")) -> None:
    """Delete a profile's stored key."""
    config = profiles.load()
    profile = config.get(name)
    confirm_or_yes(yes, f"Delete the stored key of '{name}'?", f"deleting the key of '{name}' needs confirmation")
    if not keys.delete_key(profile.keyring_user, config.secret_store):
        raise CcsError(f"no stored key for '{name}'")
    console.print(line("Deleted the key of ", bold(name)))
