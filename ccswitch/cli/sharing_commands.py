"""`ccs import`, `export`, `presets`: profiles in and out, and the built-in providers."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from .. import files, keys, profiles, sharing
from ..errors import CcsError
from ..presets import PRESETS
from .base import app, bold, complete_profile, confirm_or_yes, console, err_console, line, read_secret
from .profile_commands import hint_alias_change


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
    reuse_keys: bool = typer.Option(False, "--reuse-keys", help="Let imported profiles use keys stored here for "
                                                                "other profiles or providers (asked in a terminal)."),
    trust: bool = typer.Option(False, "--trust", help="Save imported profiles that run commands, change how claude "
                                                      "runs or what requests carry (each shown with '!'; asked in a "
                                                      "terminal)."),
) -> None:
    """Turn an existing setup into profiles, moving every key into the keyring. What each profile would do
    is shown first: where its key goes, commands it runs, variables and arguments it gives claude.

    Example: ccs import --from-settings ~/.claude/settings.json --name glm; ccs import --from-file team.toml
    """
    from .. import migrate

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
    resolved = {item.name: profiles.resolve(item.name, item.fields) for item in found}  # refuse before asking
    for item in found:
        preview(item, resolved[item.name], item.name in config.profiles, force)
    new = [item for item in found if force or item.name not in config.profiles]
    if not new:
        raise CcsError("every profile found exists already; rename or remove them first, or add --force")
    dangers = sharing.key_dangers(config, [resolved[item.name] for item in new if not item.key])
    _agreed(dangers, reuse_keys, f"Let {'it' if len(dangers) == 1 else 'them'} use those keys?",
            "an imported profile would use a key stored here (see above): add --reuse-keys if that is what you "
            "want, or give it a key_env, a key_cmd or a key of its own")
    risks = [risk for item in new for risk in sharing.risks(config, resolved[item.name], item.fields)]
    _agreed(risks, trust, "Trust the file with that?",
            "an imported profile would do more than send its own key to its own provider (see above): add --trust "
            "if you trust the file, or remove those fields from it")
    confirm_or_yes(yes, f"Save {len(new)} profile(s)?", "saving needs confirmation")
    with profiles.editing() as doc:
        for item in new:
            profiles.profiles_table(doc)[item.name] = profiles.new_profile_table(item.fields)
    hint_alias_change(config.by_alias())
    stores = {keys.store_key(resolved[item.name].keyring_user, item.key, config.secret_store)
              for item in new if item.key}
    console.print(line(f"Saved {', '.join(item.name for item in new)}"
                       + (f"; keys stored in {' and '.join(sorted(stores))}, never in the TOML" if stores else "")))
    saved = profiles.load()
    for item in new:
        profile = saved.get(item.name)
        if item.key or not profile.needs_key or profile.key_env or profile.key_cmd:
            continue
        if keys.status(profile, saved.secret_store)[1]:
            continue  # a key is stored already (a shared key_name the user let it use, or an import again)
        secret = read_secret(item.name, from_stdin=False, interactive=sys.stdin.isatty())
        if secret:
            keys.store_key(profile.keyring_user, secret, saved.secret_store)
            console.print(line("Stored the key of ", bold(item.name)))
        else:
            console.print(line(f"No key stored for {item.name} yet: `ccs key set {item.name}`"))


def _agreed(warnings: list[str], given: bool, question: str, refusal: str) -> None:
    """Each warning on a line of its own; then the flag that accepts them, or a terminal's yes (without a
    terminal and the flag: refused)."""
    for warning in warnings:
        err_console.print(line(("! ", "yellow"), warning))
    if warnings and not given:
        if not sys.stdin.isatty():
            raise CcsError(refusal)
        typer.confirm(question, abort=True)


def preview(item, profile, exists: bool, force: bool) -> None:
    """One imported profile, each field that decides where a key goes or what runs on a line of its own."""
    state = (" (replaces the existing one)" if force else " (exists: skipped)") if exists else ""
    console.print(line(bold(item.name), f"  from {item.origin}{state}"))
    for field, value in item.fields.items():
        note = ""
        if field == "key_cmd":
            note = "  (ccs runs this command at every launch)"
        elif field == "key_name":
            note = f"  (the key stored under '{value}')"
        elif field == "env" and any(sharing.MASKED in str(v) for v in value.values()):
            note = "  (values masked by the export: set them with `ccs set NAME env.VAR=...`)"
        shown_value = json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else value
        style = "bold" if field in sharing.TELLING else ""
        console.print(line("    ", (f"{field}: ", style), str(shown_value), note))
    if profile.needs_key and not (profile.key_env or profile.key_cmd):
        console.print(line("    key: ", keys.mask(item.key) if item.key else f"stored under '{profile.keyring_user}'"))


@app.command("export")
def export_profiles(
    names: Optional[list[str]] = typer.Argument(None, help="Profiles to export (default: all).",
                                                autocompletion=complete_profile),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout."),
) -> None:
    """Write profiles as TOML for another machine or a teammate, without any secret: stored keys stay
    behind, `key_env` / `key_cmd` references go along, credential-like `env` values (`*_KEY`, `*_TOKEN`,
    `*_SECRET`, custom header values) are masked. Read it back with `ccs import --from-file`.

    Example: ccs export glm gpt -o team.toml
    """
    config = profiles.load()
    chosen = [config.get(name).name for name in names] if names else list(config.profiles)
    targets = {target.name: router for router in chosen for target in config.route_targets(config.get(router))
               if target.name not in chosen}
    if targets:  # a router without its targets would load elsewhere and fail at its first request
        chosen += list(targets)
        err_console.print(line("Also exported, as routes go there: " + ", ".join(
            f"{target} (from {router})" for target, router in targets.items())))
    text, masked = sharing.export_text(config, chosen)
    profiles.parse(text, output or Path("export"))
    if masked:
        err_console.print(line(f"Masked (credentials): {', '.join(masked)}; the importer sets them again"))
    if output is None:
        sys.stdout.write(text)
        return
    files.write_atomic(output, text, mode=0o600)
    console.print(line(f"Wrote {len(chosen)} profile(s) to {output}, without keys"))


@app.command("presets")
def list_presets(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """List the built-in provider presets."""
    if as_json:
        print(json.dumps({p.name: {"title": p.title, "docs": p.docs, "checked": p.checked, **p.fields,
                                   **({"needs": p.needs} if p.needs else {})} for p in PRESETS.values()}, indent=2))
        return
    presets_table(console)


def presets_table(target: Console) -> None:
    """A table where it fits whole; in a narrower terminal two lines a preset, so no URL is ever cut."""
    columns = ("preset", "api", "auth", "base url", "model", "provider")
    rows = [(p.name, p.fields.get("api", ""), p.fields.get("auth", ""),  # yours, where only you know it
             p.fields.get("base_url") or (p.needs or {}).get("base_url", "-"), p.fields.get("model", "-"), p.title)
            for p in PRESETS.values()]
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
        target.print(line(bold(name), f"  {title}"))
        target.print(line("    " + ", ".join(part for part in (api, auth, url, model) if part != "-")))

