"""`ccs key set`, `add`, `list`, `print`, `rm`: a profile's stored key, the pool of keys the proxy rotates
through (on a rate limit or an exhausted quota), or the web search backend's key (`search`: the `[search]`
table's, unless a profile has that name)."""

from __future__ import annotations

import sys

import typer

from .. import keys, profiles
from ..errors import CcsError
from .base import ProfileArg, bold, confirm_or_yes, console, key_app, line, read_secret

SEARCH = "search"  # the name `ccs key` knows the [search] backend's key by


def key_owner(config: profiles.Config, name: str):
    """The profile named `name`, or for `search` (when no profile is named so) the `[search]` table. With both,
    neither: a profile a shared file named `search` would take the search backend's key without a word."""
    if name == SEARCH and name in config.profiles and config.search is not None:
        raise CcsError(f"both profile '{SEARCH}' and the [search] backend are named so: rename the profile first "
                       f"(`ccs rename {SEARCH} NEW`)")
    if name == SEARCH and name not in config.profiles:
        if config.search is None:
            raise CcsError(f"no [search] table in {config.path}: add one first (see docs/profiles.md, \"Web search\"), "
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
    config, profile = _storing(name)
    secret = _read(name, stdin)
    where = keys.store_key(profile.keyring_user, secret, config.secret_store)
    console.print(line("Stored the key of ", bold(name),
                       f" ({keys.mask(secret)}) in the {where if where == 'keyring' else 'file ' + where}"))


@key_app.command("add")
def key_add(
    name: str = ProfileArg,
    stdin: bool = typer.Option(False, "--stdin", help="Read the key from standard input."),
) -> None:
    """Add another key to a profile's pool: the proxy moves to the next key when one is rate limited or out of
    quota, and sets aside one the provider rejects. Example: ccs key add glm"""
    config, profile = _storing(name)
    if profile is config.search:
        raise CcsError("the search backend takes one key: `ccs key set search`")
    held = keys.pool(profile, config.secret_store)
    if len(held) >= keys.POOL_MAX:
        raise CcsError(f"profile '{name}' holds {keys.POOL_MAX} keys, the most a pool takes")
    secret = _read(name, stdin)
    if secret in held:
        raise CcsError(f"profile '{name}' holds that key already ({keys.mask(secret)})")
    slot = len(held) + 1
    keys.store_key(keys.pool_user(profile.keyring_user, slot), secret, config.secret_store)
    console.print(line("Added key ", bold(str(slot)), f" ({keys.mask(secret)}) to ", bold(name),
                       f": {slot} key{'s' if slot > 1 else ''}"))


@key_app.command("list")
def key_list(name: str = ProfileArg) -> None:
    """The keys a profile holds, masked, in the order the proxy uses them. Example: ccs key list glm"""
    config = profiles.load()
    profile = config.get(name)
    held = keys.pool(profile, config.secret_store) if profile.needs_key else []
    if not held:
        raise CcsError(f"profile '{name}' holds no key" + (f": `ccs key set {name}`" if profile.needs_key else ""))
    for slot, secret in enumerate(held, 1):
        console.print(line(f"{slot}  {keys.mask(secret)}", "  (its own)" if slot == 1 else ""))


def _storing(name: str):
    """The config and a profile (or [search]) whose key ccs stores (not a cloud's, not from key_env or key_cmd)."""
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
    return config, profile


def _read(name: str, stdin: bool) -> str:
    secret = read_secret(name, from_stdin=stdin, interactive=sys.stdin.isatty())
    if not secret:
        raise CcsError("no key given: type it at the prompt or pipe it with --stdin")
    return secret


@key_app.command("print")
def key_print(name: str = ProfileArg) -> None:
    """Print a profile's key to stdout (for Claude Code's apiKeyHelper); nothing else ever prints it."""
    config = profiles.load()
    owner = key_owner(config, name)
    print(keys.search_key(owner, config.secret_store) if owner is config.search else
          keys.require(owner, config.secret_store))


@key_app.command("rm")
def key_rm(name: str = ProfileArg, yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask.")) -> None:
    """Delete a profile's stored key (and every key `ccs key add` added)."""
    config = profiles.load()
    profile = key_owner(config, name)
    confirm_or_yes(yes, f"Delete the stored key of '{name}'?", f"deleting the key of '{name}' needs confirmation")
    deleted = keys.delete_pool(profile.keyring_user, config.secret_store)
    if not deleted:
        raise CcsError(f"no stored key for '{name}'")
    console.print(line("Deleted the key" + (f"s ({deleted})" if deleted > 1 else ""), " of ", bold(name)))
