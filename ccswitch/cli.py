"""The `ccs` command line: parses words, calls the modules below, renders with Rich."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer._click.exceptions import NoArgsIsHelpError, UsageError  # Typer >= 0.29 vendors Click here
from typer.core import TyperGroup

from . import __version__, claude, files, keys, launch, profiles, state
from .errors import CcsError
from .presets import PRESETS
from .profiles import Profile


def make_console(stderr: bool = False) -> Console:
    """Rich's console, never breaking a line itself (a path or URL stays whole to copy), and with no
    80-column limit on a pipe or a file, where it would otherwise crop tables."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=None if stream.isatty() else 10_000)


console = make_console()
err_console = make_console(stderr=True)


class ErrorBoundary(TyperGroup):
    """The single place where user errors become one line on stderr and exit code 2: ours, and the
    words Click refuses (Typer would draw a box around them). Ctrl-C at a prompt ends the line first."""

    def main(self, *args, standalone_mode: bool = True, **kwargs):  # noqa: ARG002 (always ours, whatever asked)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except NoArgsIsHelpError as e:
            print(e.ctx.get_help() or "", end="")
            code = 0
        except UsageError as e:
            hint = f"; see `{e.ctx.command_path} --help`" if e.ctx else ""
            print(f"ccs: error: {e.format_message().rstrip('.')}{hint}", file=sys.stderr)
            code = 2
        except typer.Abort:  # a confirmation answered no
            print("Aborted.", file=sys.stderr)
            code = 1
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except CcsError as e:
            print(f"ccs: error: {e}", file=sys.stderr)
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
app.add_typer(key_app, name="key")


def complete_profile(incomplete: str) -> list[str]:
    try:
        names = profiles.load().profiles
    except CcsError:
        return []
    return [name for name in names if name.startswith(incomplete)]


def complete_preset(incomplete: str) -> list[str]:
    return [name for name in PRESETS if name.startswith(incomplete)]


ProfileArg = typer.Argument(..., help="Profile name.", autocompletion=complete_profile)


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


# ---------------------------------------------------------------- profiles


@app.command()
def add(
    name: Optional[str] = typer.Argument(None, help="Name of the new profile (asked in a terminal when missing)."),
    preset: Optional[str] = typer.Option(None, "--preset", "-p", help="Provider preset (see `ccs presets`).",
                                         autocompletion=complete_preset),
    base_url: Optional[str] = typer.Option(None, help="Provider base URL."),
    api: Optional[str] = typer.Option(None, help="anthropic (native) or openai (through the proxy)."),
    auth: Optional[str] = typer.Option(None, help="bearer, api-key, login or none."),
    model: Optional[str] = typer.Option(None, help="Main model (ANTHROPIC_MODEL)."),
    opus: Optional[str] = typer.Option(None, help="Model for the opus tier."),
    sonnet: Optional[str] = typer.Option(None, help="Model for the sonnet tier."),
    haiku: Optional[str] = typer.Option(None, help="Model for the haiku tier (background tasks)."),
    context_window: Optional[int] = typer.Option(None, help="The model's context window in tokens "
                                                             "(claude assumes 1M for a model it does not know)."),
    description: Optional[str] = typer.Option(None, help="A note shown in `ccs list`."),
    key_env: Optional[str] = typer.Option(None, help="Read the key from this variable at launch."),
    key_cmd: Optional[str] = typer.Option(None, help="Run this command at launch and use its output as the key."),
    key_stdin: bool = typer.Option(False, help="Read the key from standard input."),
    force: bool = typer.Option(False, "--force", help="Replace an existing profile of that name."),
) -> None:
    """Add a profile; in a terminal it asks for what is missing (the preset, the name, the key hidden;
    for a provider without a preset its models and context window).

    Example: ccs add glm --preset zai; ccs add local --base-url http://localhost:8000/v1 --api openai
    """
    interactive = sys.stdin.isatty()
    from rich.prompt import IntPrompt, Prompt

    if preset is None and base_url is None:
        if not interactive:
            raise CcsError("give --preset P or --base-url URL (see `ccs presets`)")
        presets_table(err_console)
        preset = Prompt.ask("Preset", choices=list(PRESETS), show_choices=False, console=err_console)
    if name is None:
        if not interactive:
            raise CcsError("give the new profile's NAME: `ccs add NAME --preset P`")
        name = Prompt.ask("Profile name", default=preset or "custom", console=err_console)
    tiers = {k: v for k, v in {"opus": opus, "sonnet": sonnet, "haiku": haiku}.items() if v}
    if preset is None and interactive:  # no preset to say which models and window: ask, skippable
        model = model or Prompt.ask("Main model (empty: the provider's default)", default="", show_default=False,
                                    console=err_console) or None
        for tier in ("opus", "sonnet", "haiku"):
            if model and tier not in tiers:
                tiers[tier] = Prompt.ask(f"Model for the {tier} tier", default=model, console=err_console)
        if model and context_window is None:
            context_window = IntPrompt.ask(f"Context window of {model} in tokens (0: skip; claude assumes 1M)",
                                           default=0, console=err_console) or None
    values = {"preset": preset, "description": description, "api": api, "base_url": base_url, "auth": auth,
              "model": model, "key_env": key_env, "key_cmd": key_cmd, "context_window": context_window}
    values = {k: v for k, v in values.items() if v is not None}
    if tiers:
        values["models"] = tiers
    profile = profiles.resolve(name, values)
    config = profiles.load()
    exists = CcsError(f"profile '{name}' exists; use `ccs set {name} ...` or `ccs add {name} --force`")
    if name in config.profiles and not force:
        raise exists
    secret = None
    if profile.needs_key and not (key_env or key_cmd):
        secret = read_secret(name, from_stdin=key_stdin, interactive=interactive)
    with profiles.editing() as doc:
        table = profiles.profiles_table(doc)
        if name in table and not force:  # another ccs added it meanwhile
            raise exists
        table[name] = profiles.new_profile_table(values)
    console.print(f"Added profile [bold]{name}[/] to {config.path}")
    hint_alias_change(config.by_alias())
    if secret:
        where = keys.store_key(profile.keyring_user, secret, config.secret_store)
        console.print(f"Stored its key in the {where if where == 'keyring' else 'file ' + where}")
    elif profile.needs_key and not (key_env or key_cmd):
        console.print(f"No key stored yet: run `ccs key set {name}`")
    if profile.model and not profile.context_window:
        console.print(f"No context window for {profile.model}: claude will assume 1M tokens and compact late; "
                      f"`ccs set {name} context_window=N`", markup=False)


def confirm_or_yes(yes: bool, question: str, why: str) -> None:
    """Ask in a terminal (no means stop); a script has to say --yes."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise CcsError(f"{why}: add --yes")
    typer.confirm(question, abort=True)


def read_secret(name: str, *, from_stdin: bool, interactive: bool) -> str | None:
    """A key from stdin or a hidden prompt; never from the command line."""
    if from_stdin:
        secret = sys.stdin.read().strip()
        if not secret:
            raise CcsError("--key-stdin given but standard input was empty")
        return secret
    if not interactive:
        return None
    import getpass

    secret = getpass.getpass(f"Key for {name} (hidden, empty to skip): ").strip()
    return secret or None


@app.command("list")
def list_profiles(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """List profiles: provider, API, model, where the key lives and whether it is there."""
    config = profiles.load()
    active, _ = state.current()
    rows = [describe(p, config, active) for p in config.profiles.values()]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        console.print(f"No profiles in {config.path} yet. Add one: `ccs add glm --preset zai`")
        return
    table = Table(box=None, pad_edge=False)
    for column in ("", "name", "provider", "api", "model", "key", "aliases", "description"):
        table.add_column(column)
    for row in rows:
        mark = {True: "[green]yes[/]", False: "[red]missing[/]", None: ""}[row["key_present"]]
        table.add_row("*" if row["active"] else "", row["name"], row["provider"], row["api"], row["model"] or "-",
                      f"{row['key_source']} {mark}".strip(), ", ".join(row["aliases"]), escape(row["description"]))
    console.print(table)


def describe(profile: Profile, config: profiles.Config, active: str | None) -> dict:
    source, present = keys.status(profile, config.secret_store)
    return {"name": profile.name, "active": profile.name == active, "provider": profile.provider,
            "api": profile.api, "model": profile.model, "key_source": source, "key_present": present,
            "aliases": profile.aliases, "description": profile.description}


@app.command()
def show(
    name: str = ProfileArg,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Show every resolved value of a profile (presets merged, key masked)."""
    config = profiles.load()
    profile = config.get(name)
    values = {field: getattr(profile, field) for field in ("name", *profiles.FIELDS)}
    source, present, secret = keys.key_info(profile, config.secret_store)
    values["key"] = {"source": source, "present": present, "masked": keys.mask(secret) if present else None}
    if as_json:
        print(json.dumps(values, indent=2))
        return
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for field, value in values.items():
        if value in (None, "", [], {}):
            continue
        if field == "key":
            value = f"{value['masked'] or 'missing'} ({value['source']})"
        elif isinstance(value, (dict, list)):
            value = json.dumps(value)
        table.add_row(field, str(value))
    console.print(table)


@app.command("set")
def set_values(
    name: str = ProfileArg,
    assignments: Optional[list[str]] = typer.Argument(None, help="key=value pairs; dotted keys such as models.opus=M."),
    unset: Optional[list[str]] = typer.Option(None, "--unset", help="Remove a key (repeatable)."),
    force: bool = typer.Option(False, "--force", help="Allow an alias that hides a command of the same name."),
) -> None:
    """Change profile fields; the file's comments and layout are kept.

    Example: ccs set glm model=glm-4.6 models.haiku=glm-4.5-air env.API_TIMEOUT_MS=600000
    """
    if not assignments and not unset:
        raise CcsError("nothing to set: give key=value pairs or --unset KEY")
    import tomlkit

    aliases = profiles.load().by_alias()
    not_set = []
    with profiles.editing() as doc:
        table = existing_table(doc, name)
        for assignment in assignments or []:
            key, sep, raw = assignment.partition("=")
            if not sep or not key:
                raise CcsError(f"'{assignment}' is not key=value")
            head, _, tail = key.partition(".")
            if tail:
                require_table(head)
            # env and models hold strings; so do string fields: only lists and numbers are parsed
            value = raw if tail or profiles.FIELDS.get(key) is str else profiles.parse_value(raw)
            if tail:
                if head not in table:
                    table[head] = tomlkit.inline_table()
                table[head][tail] = value
            else:
                table[key] = value
        for key in unset or []:
            head, _, tail = key.partition(".")
            if tail:
                require_table(head)
            container = table[head] if tail and head in table else table
            if container.pop(tail or key, None) is None:
                not_set.append(key)
        if not force:
            refuse_shadowing_aliases(table.get("aliases", []), aliases)
    unchanged = f" ({', '.join(not_set)}: not set)" if not_set else ""
    if not assignments and len(not_set) == len(unset):
        console.print(f"Nothing changed in profile [bold]{name}[/]{escape(unchanged)}")
        return
    console.print(f"Updated profile [bold]{name}[/]{escape(unchanged)}")
    hint_alias_change(aliases)


def refuse_shadowing_aliases(new: list, before: dict[str, Profile]) -> None:
    """An alias is a shell function: named like a command (`cc`, `ls`), it hides that command."""
    import shutil

    for alias in new:
        if alias not in before and (found := shutil.which(str(alias))):
            raise CcsError(f"alias '{alias}' would hide {found} in your shells; choose another name, or add --force")


def require_table(field: str) -> None:
    """Dotted keys (`models.opus`, `env.X`) only go into the fields that are tables."""
    if profiles.FIELDS.get(field) is not dict:
        tables = ", ".join(name for name, kind in profiles.FIELDS.items() if kind is dict)
        raise CcsError(f"'{field}' is not a table: dotted keys go into {tables}")


def hint_alias_change(before: dict[str, Profile]) -> None:
    """Shells hold aliases from their last `shell-init`; say how to refresh them when they change."""
    after = profiles.load().by_alias()
    if {a: p.name for a, p in before.items()} != {a: p.name for a, p in after.items()}:
        console.print("Aliases changed: `ccs reload` updates this shell (new shells pick them up)")


def existing_table(doc, name: str):
    table = profiles.profiles_table(doc)
    if name not in table:
        raise CcsError(f"no profile named '{name}' (see `ccs list`)")
    return table[name]


@app.command()
def edit() -> None:
    """Open the profiles file in $EDITOR; it is validated before it replaces the original."""
    import shutil
    import tempfile

    path = files.config_file()
    original = path.read_text(encoding="utf-8") if path.exists() else profiles.NEW_FILE_HEADER
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or shutil.which("nano") or "vi"
    fd, tmp_name = tempfile.mkstemp(prefix="profiles-", suffix=".toml")
    draft = Path(tmp_name)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(original)
    while True:
        try:
            subprocess.run([*shlex.split(editor), str(draft)], check=False)
        except OSError as e:
            draft.unlink()
            raise CcsError(f"cannot start the editor {editor!r}: {e.strerror}; set $VISUAL or $EDITOR") from None
        text = draft.read_text(encoding="utf-8")
        try:
            profiles.parse(text, path)
            break
        except CcsError as e:
            err_console.print(f"ccs: {e}", markup=False)
            if not (sys.stdin.isatty() and typer.confirm("Edit again?", default=True)):
                raise CcsError(f"{path} was left unchanged; your edit is kept in {draft}") from None
    if text != original:
        try:
            with files.locked(path):
                now = path.read_text(encoding="utf-8") if path.exists() else profiles.NEW_FILE_HEADER
                if now != original:  # another ccs changed it while the editor was open: never overwrite that
                    raise CcsError(f"{path} changed while you were editing it")
                files.write_atomic(path, text, mode=files.existing_mode(path, 0o600))
        except CcsError as e:
            raise CcsError(f"{e}; your edit is kept in {draft}") from None
        console.print(f"Saved {path}")
    draft.unlink()


@app.command("rm")
def remove(
    name: str = ProfileArg,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask."),
) -> None:
    """Remove a profile and its stored key."""
    config = profiles.load()
    profile = config.get(name)
    confirm_or_yes(yes, f"Remove profile '{name}' and its stored key?", f"removing '{name}' needs confirmation")
    with profiles.editing() as doc:
        existing_table(doc, name)  # still there: another ccs may have removed it meanwhile
        del profiles.profiles_table(doc)[name]
    shared = any(p.keyring_user == profile.keyring_user for p in config.profiles.values() if p.name != name)
    if not shared and not (profile.key_env or profile.key_cmd):
        keys.delete_key(profile.keyring_user, config.secret_store)
    if state.default() == name:
        state.set_default(None)
    console.print(f"Removed profile [bold]{name}[/]")
    hint_alias_change(config.by_alias())


@app.command()
def rename(old: str = ProfileArg, new: str = typer.Argument(..., help="New name.")) -> None:
    """Rename a profile, moving its stored key along."""
    config = profiles.load()
    profile = config.get(old)
    if new in config.profiles:
        raise CcsError(f"profile '{new}' exists already")
    with profiles.editing() as doc:
        table = profiles.profiles_table(doc)
        if new in table:
            raise CcsError(f"profile '{new}' exists already")
        table[new] = existing_table(doc, old)
        del table[old]
    if profile.key_name is None and not (profile.key_env or profile.key_cmd):
        secret = keys.get(profile, config.secret_store)
        if secret:
            keys.store_key(new, secret, config.secret_store)
            keys.delete_key(old, config.secret_store)
    if state.default() == old:
        state.set_default(new)
    console.print(f"Renamed [bold]{old}[/] to [bold]{new}[/]")
    hint_alias_change(config.by_alias())


@app.command("import")
def import_profiles(
    from_env: Optional[str] = typer.Option(None, "--from-env", metavar="NAME",
                                           help="A profile NAME from the provider variables of this environment."),
    from_settings: Optional[Path] = typer.Option(None, "--from-settings", metavar="PATH",
                                                 help="From the `env` block of a Claude Code settings file."),
    from_shell: Optional[Path] = typer.Option(None, "--from-shell", metavar="FILE",
                                              help="From exports and set_model-style functions in a shell file."),
    from_file: Optional[Path] = typer.Option(None, "--from-file", metavar="FILE",
                                             help="From a profiles file, such as `ccs export` writes."),
    name: Optional[str] = typer.Option(None, "--name", help="Profile name for --from-settings / --from-shell."),
    force: bool = typer.Option(False, "--force", help="Replace profiles of the same name instead of skipping them."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Save without asking."),
) -> None:
    """Turn an existing setup into profiles, moving every key into the keyring.

    Example: ccs import --from-settings ~/.claude/settings.json --name glm; ccs import --from-file team.toml
    """
    from . import migrate

    if sum(x is not None for x in (from_env, from_settings, from_shell, from_file)) != 1:
        raise CcsError("give exactly one of --from-env NAME, --from-settings PATH, --from-shell FILE, --from-file FILE")
    if from_env:
        found = [migrate.from_variables(from_env, dict(os.environ), "the environment")]
    elif from_settings:
        found = [migrate.from_settings(name or "imported", from_settings)]
    elif from_shell:
        found = migrate.from_shell(from_shell, name or "imported")
    else:
        found = migrate.from_file(from_file)
    config = profiles.load()
    table = Table(box=None, pad_edge=False)
    for column in ("profile", "from", "fields", "key"):
        table.add_column(column)
    for item in found:
        profiles.resolve(item.name, item.fields)  # refuse before asking
        clash = item.name in config.profiles
        table.add_row(item.name + ((" [red](replaced)[/]" if force else " [red](exists, skipped)[/]") if clash else ""),
                      item.origin, json.dumps(item.fields), keys.mask(item.key) if item.key else "-")
    console.print(table)
    new = [item for item in found if force or item.name not in config.profiles]
    if not new:
        raise CcsError("every profile found exists already; rename or remove them first, or add --force")
    confirm_or_yes(yes, f"Save {len(new)} profile(s)?", "saving needs confirmation")
    with profiles.editing() as doc:
        for item in new:
            profiles.profiles_table(doc)[item.name] = profiles.new_profile_table(item.fields)
    hint_alias_change(config.by_alias())
    stores = {keys.store_key(item.name, item.key, config.secret_store) for item in new if item.key}
    console.print(f"Saved {', '.join(item.name for item in new)}"
                  + (f"; keys stored in {' and '.join(sorted(stores))}, never in the TOML" if stores else ""))
    saved = profiles.load()
    for item in new:
        profile = saved.get(item.name)
        if item.key or not profile.needs_key or profile.key_env or profile.key_cmd:
            continue
        if keys.status(profile, saved.secret_store)[1]:
            continue  # a key is stored already (a shared key_name, or a profile imported again)
        secret = read_secret(item.name, from_stdin=False, interactive=sys.stdin.isatty())
        if secret:
            keys.store_key(profile.keyring_user, secret, saved.secret_store)
            console.print(f"Stored the key of [bold]{item.name}[/]")
        else:
            console.print(f"No key stored for {item.name} yet: `ccs key set {item.name}`", markup=False)


@app.command("export")
def export_profiles(
    names: Optional[list[str]] = typer.Argument(None, help="Profiles to export (default: all).",
                                                autocompletion=complete_profile),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout."),
) -> None:
    """Write profiles as TOML for another machine or a teammate, without any key: stored keys stay
    behind, `key_env` / `key_cmd` references go along. Read it back with `ccs import --from-file`.

    Example: ccs export glm gpt -o team.toml
    """
    import tomlkit

    config = profiles.load()
    chosen = names or list(config.profiles)
    for name in chosen:
        config.get(name)  # an unknown name is an error, with a suggestion
    source = profiles.profiles_table(tomlkit.parse(config.text or profiles.NEW_FILE_HEADER))
    doc = tomlkit.parse("# ccswitch profiles, without keys: `ccs import --from-file FILE` reads them\n"
                        "version = 1\n")
    exported = profiles.profiles_table(doc)
    for name in chosen:
        exported[name] = source[name]
    text = tomlkit.dumps(doc)
    profiles.parse(text, output or Path("export"))
    if output is None:
        sys.stdout.write(text)
        return
    files.write_atomic(output, text, mode=0o644)
    console.print(f"Wrote {len(chosen)} profile(s) to {output}, without keys", markup=False)


@app.command("presets")
def list_presets(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """List the built-in provider presets."""
    if as_json:
        print(json.dumps({p.name: {"title": p.title, "docs": p.docs, **p.fields} for p in PRESETS.values()},
                         indent=2))
        return
    presets_table(console)


def presets_table(target: Console) -> None:
    """A table where it fits whole; in a narrower terminal two lines a preset, so no URL is ever cut."""
    columns = ("preset", "api", "auth", "base url", "model", "provider")
    rows = [(p.name, p.fields.get("api", ""), p.fields.get("auth", ""), p.fields.get("base_url", "-"),
             p.fields.get("model", "-"), p.title) for p in PRESETS.values()]
    natural = sum(max(len(cell) for cell in cells) for cells in zip(columns, *rows)) + 2 * (len(columns) - 1)
    if natural <= target.width:
        table = Table(box=None, pad_edge=False)
        for column in columns:
            table.add_column(column, no_wrap=True)
        for row in rows:
            table.add_row(*row)
        target.print(table)
        return
    for name, api, auth, url, model, title in rows:
        target.print(f"[bold]{name}[/]  {title}")
        target.print("    " + ", ".join(part for part in (api, auth, url, model) if part != "-"), markup=False)


# ---------------------------------------------------------------- keys


@key_app.command("set")
def key_set(
    name: str = ProfileArg,
    stdin: bool = typer.Option(False, "--stdin", help="Read the key from standard input."),
) -> None:
    """Store a profile's key (hidden prompt, or --stdin); never as an argument."""
    config = profiles.load()
    profile = config.get(name)
    if profile.key_env or profile.key_cmd:
        raise CcsError(f"profile '{name}' reads its key from {keys.status(profile, config.secret_store)[0]}; "
                       f"`ccs set {name} --unset key_env --unset key_cmd` to store one instead")
    secret = read_secret(name, from_stdin=stdin, interactive=sys.stdin.isatty())
    if not secret:
        raise CcsError("no key given: type it at the prompt or pipe it with --stdin")
    where = keys.store_key(profile.keyring_user, secret, config.secret_store)
    console.print(f"Stored the key of [bold]{name}[/] ({keys.mask(secret)}) in the "
                  f"{where if where == 'keyring' else 'file ' + where}")


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
    console.print(f"Deleted the key of [bold]{name}[/]")


# ---------------------------------------------------------------- using profiles


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
        console.print(f"{path}: {name}" if name else f"Removed {path}" if existed else f"No {path} to remove",
                      markup=False)
        return
    if claude_settings:
        from . import claude_settings as settings_file

        if profile is None:
            restored = settings_file.restore()
            console.print(f"Restored {restored}" if restored else "Nothing to restore: ccs never wrote settings.json")
        else:
            console.print(f"Wrote profile [bold]{name}[/] into {settings_file.apply(profile)} "
                          f"(key through apiKeyHelper; undo with `ccs use --off --claude-settings`)")
    if this_shell:
        if emit is None:
            raise CcsError(NEEDS_INTEGRATION)
        from . import shell

        sys.stdout.write(shell.scope_code(emit, name))
        err_console.print(f"This shell: {name or 'no profile (the default applies again)'}", markup=False)
        return
    state.set_default(name)
    if off:
        console.print("No default profile: plain `claude` runs untouched")
    else:
        console.print(f"Default profile: [bold]{name}[/]")
    if not os.environ.get("CCS_SHELL_INTEGRATION"):
        err_console.print('Plain `claude` follows this once your shell runs `eval "$(ccs shell-init)"`; '
                          f"until then use `ccs run{' ' + name if name else ''}`.", markup=False)


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
    from . import shell

    name, why = state.current()
    active = shell.integration_active()
    if as_json:
        print(json.dumps({"profile": name, "why": why, "shell_integration": active}))
        return
    console.print(f"{name or '-'}  ({why})", markup=False)
    console.print(f"shell integration: {'active (' + active + ')' if active else 'not active in this shell'}",
                  markup=False)


@app.command("shell-init")
def shell_init(shell_name: Optional[str] = typer.Argument(None, metavar="SHELL", help="bash, zsh or fish.")) -> None:
    """Print the shell integration; add the matching line to your rc file:

    bash (~/.bashrc): eval "$(ccs shell-init bash)"

    zsh (~/.zshrc): eval "$(ccs shell-init zsh)"

    fish (~/.config/fish/config.fish): ccs shell-init fish | source

    It defines `claude` (the active profile, or untouched when none) and one command per alias.

    It lets `ccs use --shell NAME` and `ccs reload` change the current shell.
    """
    from . import shell

    sys.stdout.write(shell.init_for(shell_name))


@app.command()
def reload() -> None:
    """Re-read aliases into this shell (handled by the shell integration)."""
    raise CcsError('reloading happens inside your shell: with the integration active `ccs reload` does it; '
                   'otherwise run eval "$(ccs shell-init)"')


@app.command()
def completions(shell_name: str = typer.Argument(..., metavar="SHELL", help="bash, zsh or fish.")) -> None:
    """Print the completion script for `ccs` (the files in completions/ are this output)."""
    from . import shell

    sys.stdout.write(shell.completion_script(shell_name))


MARKS = {"ok": "[green]ok[/]", "warn": "[yellow]![/] ", "fail": "[red]!![/]", "skipped": "- "}


@app.command()
def doctor(
    offline: bool = typer.Option(False, "--offline", help="Do not ask the providers whether they take the keys."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Check the setup: profiles, routers' routes, keys (asking each provider), claude, its settings files, the shell.

    Exit code 1 when something will not work; warnings (worth knowing) do not count.
    """
    from . import checks, shell
    from .checks import Finding

    findings: list[Finding] = []
    try:
        config = profiles.load()
        findings.append(Finding("ok", "profiles", f"{config.path}: {len(config.profiles)} profile(s)"))
    except CcsError as e:
        config = None
        findings.append(Finding("fail", "profiles", str(e)))
    if config is not None:
        findings.append(Finding("ok", "keys", f"stored in {keys.where_keys_go(config.secret_store)}"))
        findings += checks.route_findings(config)
        to_probe = []
        for profile in config.profiles.values():
            if profile.auth == "login" or not profile.own_provider:
                continue  # a router's targets are profiles of their own, each checked on its own line
            source, present, secret = keys.key_info(profile, config.secret_store)
            if profile.needs_key and present is False:
                findings.append(Finding("fail", profile.name, f"no key ({source}): `ccs key set {profile.name}`"))
                continue
            if profile.key_cmd and not offline:
                try:
                    secret = keys.get(profile, config.secret_store)
                except CcsError as e:
                    findings.append(Finding("fail", profile.name, str(e)))
                    continue
            to_probe.append((profile, secret))
        if not offline:
            findings += checks.probe_keys(to_probe)
        name, why = state.current()
        if name is not None and name not in config.profiles:
            findings.append(Finding("fail", "active profile", f"{why} names profile '{name}', which does not exist"))
        else:
            findings.append(Finding("ok", "active profile", f"{name or '-'} ({why})"))
    findings.append(checks.claude_version())
    findings += checks.settings_overrides(dict(os.environ), Path.cwd())
    findings += checks.saved_route_models(dict(os.environ), Path.cwd())
    active = shell.integration_active()
    findings.append(Finding("ok", "shell integration", f"active ({active})") if active else
                    Finding("warn", "shell integration", 'not active: add `eval "$(ccs shell-init)"` to your rc file'))
    if as_json:
        print(json.dumps([finding.__dict__ for finding in findings], indent=2))
    else:
        for finding in findings:
            console.print(f"{MARKS[finding.level]}  {finding.check}: {escape(finding.detail)}")
    raise typer.Exit(1 if any(finding.level == "fail" for finding in findings) else 0)


@app.command("test")
def profile_test(
    name: Optional[str] = typer.Argument(None, help="Profile to test.", autocompletion=complete_profile),
    all_profiles: bool = typer.Option(False, "--all", help="Test every profile, all at once."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="The model to ask for (default: the "
                                                                   "profile's main model, else its sonnet tier)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Send one small streamed request with a tool, the way claude reaches the profile (through its proxy when
    it has one), and report the status, the model that answered, the time to the first token and in all,
    whether the tool was called, and for a failure what to fix.

    Exit code 1 when a tested profile failed. A profile on claude's own login cannot be tested (--all skips it).

    Example: ccs test glm; ccs test gpt --model gpt-5-mini; ccs test --all
    """
    from . import checks

    if all_profiles == (name is not None):
        raise CcsError("give a profile name or --all")
    config = profiles.load()
    chosen = list(config.profiles.values()) if all_profiles else [config.get(name)]
    if not chosen:
        raise CcsError(f"no profiles in {config.path} yet: add one with `ccs add NAME --preset P`")
    trials = checks.try_profiles(config, chosen, model)
    if not all_profiles and trials[0].result == "skipped":
        raise CcsError(trials[0].diagnosis)
    if as_json:
        rows = [trial.__dict__ for trial in trials]
        print(json.dumps(rows if all_profiles else rows[0], indent=2))
    else:
        show_trials(trials)
    raise typer.Exit(1 if any(trial.result == "failed" for trial in trials) else 0)


def show_trials(trials) -> None:
    """A row per trial, then each diagnosis on a line of its own, whole (it may hold a command to copy)."""
    def mark(trial) -> str:
        if trial.result == "ok":
            return MARKS["warn" if trial.diagnosis else "ok"]
        return MARKS["fail" if trial.result == "failed" else "skipped"]

    def ms(value: int | None) -> str:
        return "-" if value is None else f"{value} ms"

    table = Table(box=None, pad_edge=False)
    for column in ("", "profile", "via", "model", "status", "answered by", "first token", "total", "tool call"):
        table.add_column(column)
    for trial in trials:
        tool = "-" if trial.tool_use is None else "yes" if trial.tool_use else "no"
        status = str(trial.status) if trial.status else "skipped" if trial.result == "skipped" else "-"
        table.add_row(mark(trial), trial.profile, trial.via or "-", escape(trial.model), status,
                      escape(trial.answered_by or "-"), ms(trial.first_token_ms), ms(trial.total_ms), tool)
    console.print(table)
    for trial in trials:
        if trial.diagnosis:
            console.print(f"{mark(trial)}  {trial.profile}: {escape(trial.diagnosis)}")
    logs = {trial.log for trial in trials if trial.log and trial.result == "failed"}
    for log in logs:
        console.print(f"The proxy's log: {log}", markup=False)


@app.command()
def models(
    name: str = ProfileArg,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List the models the profile's provider offers, marking those the profile uses (its model, tiers and
    fallbacks); for a router, each of its target profiles' providers in turn.

    Exit code 1 when a provider could not be asked. A used model that its provider does not list is marked `!`.

    Example: ccs models glm; ccs models gpt --json
    """
    from . import checks

    config = profiles.load()
    profile = config.get(name)
    if profile.auth == "login" and profile.own_provider:
        raise CcsError(checks.LOGIN.format(name=name, what="ask for its models with"))
    lists = checks.model_lists(config, profile)
    if as_json:
        print(json.dumps([listing.__dict__ for listing in lists], indent=2))
    else:
        for listing in lists:
            if listing.problem:
                console.print(f"{MARKS['fail']}  {listing.profile}: {escape(listing.problem)}")
                continue
            listed = sum(model["listed"] for model in listing.models)
            plural = "" if listed == 1 else "s"
            console.print(f"[bold]{listing.profile}[/]: {escape(listing.url)} ({listed} model{plural})")
            table = Table(box=None, pad_edge=False)
            for column in ("", "model", "used as"):
                table.add_column(column)
            for model in listing.models:
                used = ", ".join(model["used_as"])
                mark = ("*" if used else "") if model["listed"] else "[yellow]![/]"
                table.add_row(mark, escape(model["id"]), used if model["listed"] else f"{used} (not listed)")
            console.print(table)
    raise typer.Exit(1 if any(listing.problem for listing in lists) else 0)


@app.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
def run(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Say which profile, why, and where the proxy logs."),
    observe: bool = typer.Option(False, "--observe", help="Send a native profile through the pass-through proxy, "
                                                        "so its requests are in `ccs usage`."),
    name: Optional[str] = typer.Argument(None, help="Profile (default: the one that applies here).",
                                         autocompletion=complete_profile),
    words: Optional[list[str]] = typer.Argument(None, help="claude's arguments, or a command and its arguments."),
) -> None:
    """Run claude (or a command) with a profile: ccs run [-v] [--observe] [NAME] [ARGS...] or [NAME] -- CMD ARGS...

    What follows NAME is claude's arguments unless it begins with a command; after `--` it is the
    command. `ccs NAME ARGS...` is short for `ccs run NAME ARGS...`.

    Example: ccs run glm --print "review this diff"; ccs run gpt -- python bench.py
    """
    words = words or []
    explicit = bool(words) and words[0] == "--"
    raise typer.Exit(launch.run_profile(name, words[1:] if explicit else words, explicit, verbose, observe))


@app.command()
def proxy(
    name: str = ProfileArg,
    port: int = typer.Option(0, "--port", help="Port on 127.0.0.1 (0: a free one)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON line {base_url, token}."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No line per request on stderr, only errors."),
) -> None:
    """Serve a profile's translation proxy in the foreground for other clients (an IDE, the SDK).
    It prints a line per request (model, status, tokens, time) on stderr unless --quiet.

    Example: ccs proxy gpt --port 8082
    """
    from .proxy.lifecycle import serve_profile

    serve_profile(name, port, as_json, quiet)


@app.command()
def usage(
    since: str = typer.Option("7d", "--since", help="30m, 12h, 7d, 2w, a date (2026-11-30) or all."),
    by: str = typer.Option("profile", "--by", help="profile, model, day or session."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    as_csv: bool = typer.Option(False, "--csv", help="One CSV row per group."),
    live: bool = typer.Option(False, "--live", help="Follow requests as they happen, until Ctrl-C."),
) -> None:
    """Requests, tokens and cost from the local usage log, at the providers' prices.

    Every request through the ccs proxy is logged (OpenAI-API, router and observed profiles; `ccs run
    --observe NAME` for a native one). Example: ccs usage --since 30d --by model; ccs usage --live
    """
    import time

    from . import usage as usage_log
    from . import usage_report

    if by not in usage_log.GROUPS:
        raise CcsError(f"--by {by!r}: one of {', '.join(usage_log.GROUPS)}")
    if as_json and as_csv:
        raise CcsError("--json or --csv, not both")
    start = usage_report.since_time(since, time.time())
    if live:
        usage_report.live(start, console)
    else:
        usage_report.show(start, by, "json" if as_json else "csv" if as_csv else "table", console)


@app.command()
def statusline() -> None:
    """One line for Claude Code's status bar: the profile, its provider, the model in use.

    Enable it in ~/.claude/settings.json: {"statusLine": {"type": "command", "command": "ccs statusline"}}
    """
    from .statusline import print_statusline

    print_statusline()


@app.command("env")
def env_command(
    name: str = ProfileArg,
    shell: str = typer.Option("bash", "--shell", help="bash, zsh, fish, powershell or json."),
    reveal: bool = typer.Option(False, "--reveal", help="Print the key itself instead of its masked form."),
) -> None:
    """Print what `ccs run` would set and unset, as shell code or JSON."""
    config = profiles.load()
    profile = config.get(name)
    if profile.uses_proxy:
        raise CcsError(f"profile '{name}' {profile.why_proxied}, so it needs the proxy: "
                       f"`ccs run {name}` or `ccs proxy {name}`")
    secret = keys.lookup(profile, config.secret_store)
    values = launch.profile_env(profile, secret)
    masked = set() if reveal else {k for k in claude.SECRET_VARS if values.get(k) and values[k] == secret}
    values = {k: keys.mask(v) if k in masked else v for k, v in values.items()}
    from . import shell as shell_code

    unset = [var for var in launch.removed_vars(profile) if var not in values]
    notes = []
    if profile.key_env:
        notes.append(f"{profile.key_env} is unset: the key reaches claude once, as the profile's token")
    print(shell_code.env_code(values, unset, shell, notes, masked), end="")
