"""`ccs key set`, `print`, `rm`: a profile's stored key, or the web search backend's (`search`: the `[search]`
table's, unless a profile has that name)."""

from __future__ import annotations

import sys

import typer

from .. import keys, profiles
from ..errors import CcsError
from .base import ProfileArg, bold, confirm_or_yes, console, key_app, line, read_secret


SEARCH = "search"  # the name `ccs key` knows the [search] backend's key by


def key_owner(config: profiles.Config, name: str):
    """The profile named `name`, or for `search` (when no profile is named so) the `[search]` table."""
    if name == SEARCH and name not in config.profiles:
        if config.search is None:
            raise CcsError(f"no [search] table in {config.path}: add one first (see the README's \"Web search\"), "
                           "or name a profile (see `ccs list`)")
        if not config.search.needs_key:
            raise CcsError(f"the {config.search.provider} search backend takes no key")
        return config.search
    return config.get(name)


@key_app.command("set")
def key_set(
    name: str = ProfileArg,
    stdin: bool = typer.Option(False, "--stdin", help="Read the key from standard input."),
) -> None:
    """Store a profile's key (hidden prompt, or --stdin); never as an argument. `search`: the web search
    backend's."""
    config = profiles.load()
    profile = key_owner(config, name)
    if profile.cloud:
        raise CcsError(f"profile '{name}' is signed in by claude itself, with {profile.signed_with}: ccs keeps no "
                       f"key for it (`ccs doctor` says whether claude will find them)")
    if profile.key_env or profile.key_cmd:
        source = keys.status(profile, config.secret_store)[0]
        if profile is config.search:
            raise CcsError(f"[search] reads its key from {source}; remove key_env / key_cmd from [search] (`ccs edit`) "
                           "to store one instead")
        raise CcsError(f"profile '{name}' reads its key from {source}; "
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
    owner = key_owner(config, name)
    print(keys.search_key(owner, config.secret_store) if owner is config.search else
          keys.require(owner, config.secret_store))


@key_app.command("rm")
def key_rm(name: str = ProfileArg, yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask.")) -> None:
    """Delete a profile's stored key."""
    config = profiles.load()
    profile = key_owner(config, name)
    confirm_or_yes(yes, f"Delete the stored key of '{name}'?", f"deleting the key of '{name}' needs confirmation")
    if not keys.delete_key(profile.keyring_user, config.secret_store):
        raise CcsError(f"no stored key for '{name}'")
    console.print(line("Deleted the key of ", bold(name)))
