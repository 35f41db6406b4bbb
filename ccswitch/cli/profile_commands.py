"""`ccs add`, `list`, `show`, `set`, `edit`, `rm`, `rename`: the profiles themselves."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from .. import edits, files, keys, profiles, state
from ..errors import CcsError
from ..presets import PRESETS
from ..profiles import Profile
from .base import ProfileArg, app, bold, complete_preset, confirm_or_yes, console, err_console, line, \
    read_secret, shown


@app.command()
def add(
    name: Optional[str] = typer.Argument(None, help="Name of the new profile (asked in a terminal when missing)."),
    preset: Optional[str] = typer.Option(None, "--preset", "-p", help="Provider preset (see `ccs presets`).",
                                         autocompletion=complete_preset),
    base_url: Optional[str] = typer.Option(None, help="Provider base URL."),
    api: Optional[str] = typer.Option(None, help="anthropic (native); openai (Chat Completions) or openai-responses "
                                                 "(translated)."),
    auth: Optional[str] = typer.Option(None, help="bearer, api-key, login, none (a server that takes no key), or "
                                                   "claude's own cloud: bedrock, mantle, vertex, foundry."),
    model: Optional[str] = typer.Option(None, help="Main model (ANTHROPIC_MODEL); a route `profile,model` in a router."),
    opus: Optional[str] = typer.Option(None, help="Model (or route) for the opus tier."),
    sonnet: Optional[str] = typer.Option(None, help="Model (or route) for the sonnet tier."),
    haiku: Optional[str] = typer.Option(None, help="Model (or route) for the haiku tier (background tasks)."),
    subagent: Optional[str] = typer.Option(None, help="Model (or route) for subagents."),
    router: bool = typer.Option(False, "--router", help="A router: its models are routes `profile,model` to other "
                                                         "profiles (no provider or key of its own)."),
    fallback: Optional[list[str]] = typer.Option(None, "--fallback", help="A route tried when a request's own fails "
                                                                          "(repeatable)."),
    alias: Optional[list[str]] = typer.Option(None, "--alias", help="A shell command for this profile, e.g. cc-cheap "
                                                                    "(repeatable; needs the shell integration)."),
    context_window: Optional[int] = typer.Option(None, help="The model's context window in tokens "
                                                             "(claude assumes 1M for a model it does not know)."),
    description: Optional[str] = typer.Option(None, help="A note shown in `ccs list`."),
    region: Optional[str] = typer.Option(None, help="A cloud's region (bedrock, mantle, vertex)."),
    aws_profile: Optional[str] = typer.Option(None, help="The AWS profile claude signs Bedrock's requests with."),
    project: Optional[str] = typer.Option(None, help="The Google Cloud project (vertex)."),
    resource: Optional[str] = typer.Option(None, help="The Microsoft Foundry resource's name (foundry)."),
    key_env: Optional[str] = typer.Option(None, help="Read the key from this variable at launch."),
    key_cmd: Optional[str] = typer.Option(None, help="Run this command at launch and use its output as the key."),
    key_stdin: bool = typer.Option(False, help="Read the key from standard input."),
    force: bool = typer.Option(False, "--force", help="Replace an existing profile of that name."),
) -> None:
    """Add a profile; in a terminal it asks for what is missing (the preset, the name, the key hidden, the
    model of a server on this machine from those it serves; for a provider without a preset its models and
    context window).

    Example: ccs add glm --preset zai; ccs add local --preset vllm; ccs add mix --router --opus glm,glm-4.6
    --sonnet gpt,gpt-5 --fallback glm,glm-4.5-air; ccs add work --preset vertex --project my-gcp-project
    """
    interactive = sys.stdin.isatty()
    from rich.prompt import IntPrompt, Prompt

    tiers = {k: v for k, v in {"opus": opus, "sonnet": sonnet, "haiku": haiku, "subagent": subagent}.items() if v}
    router = router or (preset is None and base_url is None and
                        any(profiles.is_route(m) for m in [model, *tiers.values(), *(fallback or [])] if m))
    if preset is None and base_url is None and not router:
        if not interactive:
            raise CcsError("give --preset P or --base-url URL (see `ccs presets`), or --router with routes")
        from .sharing_commands import presets_table

        presets_table(err_console)
        preset = Prompt.ask("Preset", choices=list(PRESETS), show_choices=False, console=err_console)
    if name is None:
        if not interactive:
            raise CcsError("give the new profile's NAME: `ccs add NAME --preset P`")
        name = Prompt.ask("Profile name", default=preset or "custom", console=err_console)
    values = {"preset": preset, "description": description, "api": api, "base_url": base_url, "auth": auth,
              "model": model, "key_env": key_env, "key_cmd": key_cmd, "context_window": context_window,
              "region": region, "aws_profile": aws_profile, "project": project, "resource": resource}
    values = {k: v for k, v in values.items() if v is not None}
    if tiers:
        values["models"] = tiers
    if fallback:
        values["fallback"] = list(fallback)
    if alias:
        values["aliases"] = list(alias)
    config = profiles.load()
    exists = CcsError(f"profile '{name}' exists; use `ccs set {name} ...` or `ccs add {name} --force`")
    if name in config.profiles and not force:
        raise exists
    profile = profiles.resolve(name, values)
    if router:
        if not profile.is_router:
            raise CcsError("a router names its models as routes: --opus glm,glm-4.6 (profile,model), or --fallback")
        if problems := config.route_problems(profile):
            raise CcsError(f"profile '{name}': {problems[0]}")
    elif profile.local and not (profile.model or tiers):
        values.update(local_model(profile, interactive))
    elif preset is None and interactive:  # no preset to say which models and window: ask, skippable
        values.update(asked_models(values, tiers, Prompt, IntPrompt))
    secret = None
    if profile.needs_key and not (key_env or key_cmd):
        secret = read_secret(name, from_stdin=key_stdin, interactive=interactive,
                             keyless=profile.local and auth is None)
        if secret is None and profile.local and auth is None:
            values["auth"] = "none"  # a server on this machine that takes no key (Enter at the prompt, or no terminal)
    if not force:
        refuse_shadowing_aliases(values.get("aliases", []), config.by_alias())
    profile = profiles.resolve(name, values)
    with profiles.editing() as doc:
        table = profiles.profiles_table(doc)
        if name in table and not force:  # another ccs added it meanwhile
            raise exists
        table[name] = profiles.new_profile_table(values)
    console.print(line("Added profile ", bold(name), f" to {config.path}"))
    hint_alias_change(config.by_alias())
    if secret:
        where = keys.store_key(profile.keyring_user, secret, config.secret_store)
        console.print(line(f"Stored its key in the {where if where == 'keyring' else 'file ' + where}"))
    elif profile.needs_key and not (key_env or key_cmd):
        console.print(line(f"No key stored yet: run `ccs key set {name}`"))
    elif values.get("auth") == "none" and auth is None:
        console.print(line(f"No key: a server on this machine that takes none (if it needs one: `ccs set {name} "
                           f"auth=bearer`, then `ccs key set {name}`)"))
    if profile.model and not profile.context_window and not profile.model.startswith("claude"):
        console.print(line(f"No context window for {profile.model}: claude will assume 1M tokens and compact late; "
                           f"`ccs set {name} context_window=N`"))


def local_model(profile: Profile, interactive: bool) -> dict:
    """The model for a server on this machine, from those it serves: asked in a terminal (the first by
    default), else the only one it serves; its context window when the server tells it (vLLM does)."""
    from rich.prompt import IntPrompt, Prompt

    from .. import model_list

    listing = model_list.served(profile, None)
    served = {model["id"]: model["context"] for model in listing.models}
    if len(served) == 1:
        chosen = next(iter(served))
        err_console.print(line("Model: ", bold(chosen), f" (the one {profile.url} serves)"))
    elif served and interactive:
        err_console.print(line(f"{profile.url} serves: {', '.join(served)}"))
        chosen = Prompt.ask("Model", choices=list(served), default=next(iter(served)), show_choices=False,
                            console=err_console)
    elif served:
        raise CcsError(f"which model? {profile.url} serves {', '.join(served)}: add --model NAME")
    elif interactive:
        chosen = Prompt.ask(f"Model ({profile.url} did not list its models: {listing.problem or 'none listed'})",
                            console=err_console)
    else:
        raise CcsError(f"which model? {profile.url} did not say ({listing.problem or 'none listed'}): add --model NAME")
    window = served.get(chosen) or profile.context_window
    if not window and interactive:
        window = IntPrompt.ask(f"Context window of {chosen} in tokens, as the server runs it (0: skip; claude "
                               "assumes 1M)", default=0, console=err_console)
    return {"model": chosen, **({"context_window": window} if window and not profile.context_window else {})}


def asked_models(values: dict, tiers: dict, Prompt, IntPrompt) -> dict:  # noqa: N803 (Rich's prompt classes)
    """A provider without a preset: its main model, tiers and window, each skippable."""
    model = values.get("model") or Prompt.ask("Main model (empty: the provider's default)", default="",
                                              show_default=False, console=err_console) or None
    answers: dict = {"model": model} if model else {}
    for tier in ("opus", "sonnet", "haiku"):
        if model and tier not in tiers:
            tiers[tier] = Prompt.ask(f"Model for the {tier} tier", default=model, console=err_console)
    if tiers:
        answers["models"] = tiers
    if model and values.get("context_window") is None:
        window = IntPrompt.ask(f"Context window of {model} in tokens (0: skip; claude assumes 1M)", default=0,
                               console=err_console)
        if window:
            answers["context_window"] = window
    return answers


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
        console.print(line(f"No profiles in {config.path} yet. Add one: `ccs add glm --preset zai`"))
        return
    table = Table(box=None, pad_edge=False)
    for column in ("", "name", "provider", "api", "model", "key", "aliases", "description"):
        table.add_column(column)
    for row in rows:
        mark = {True: ("yes", "green"), False: ("missing", "red"), None: ("", "")}[row["key_present"]]
        table.add_row("*" if row["active"] else "", shown(row["name"]), shown(row["provider"]), shown(row["api"]),
                      shown(row["model"] or "-"), line(f"{row['key_source']} ", mark), shown(", ".join(row["aliases"])),
                      shown(row["description"]))
    console.print(table)


def describe(profile: Profile, config: profiles.Config, active: str | None) -> dict:
    source, present = keys.status(profile, config.secret_store)
    return {"name": profile.name, "active": profile.name == active, "provider": profile.provider,
            "api": api_words(profile), "model": profile.model, "key_source": source, "key_present": present,
            "aliases": profile.aliases, "description": profile.description}


def runs(profile: Profile) -> str:
    """How `ccs run` starts claude for this profile, and what that means for its key."""
    from ..doctor import DIRECT

    if profile.uses_proxy:
        return "behind the ccs proxy: claude holds a session token, the key stays in ccs"
    if profile.cloud:
        from ..launch import cloud_env

        variables = " ".join(f"{var}={value}" for var, value in cloud_env(profile).items())
        return (f"claude talks to {profile.cloud.title} itself, signed with {profile.signed_with}; ccs holds no key "
                f"and runs no proxy (not in `ccs usage`); it sets {variables}")
    if profile.auth == "login":
        return "claude signs in itself (its own login)"
    return DIRECT


def api_words(profile: Profile) -> str:
    """How a profile reaches its models: its provider's API, routes to other profiles, or both."""
    if not profile.is_router:
        return profile.api
    return f"{profile.api} + routes" if profile.own_provider else "routes"


@app.command()
def show(
    name: str = ProfileArg,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Show every resolved value of a profile (presets merged, key masked)."""
    config = profiles.load()
    profile = config.get(name)
    values = {field: getattr(profile, field) for field in ("name", *profiles.FIELDS)}
    if not profile.own_provider:  # a router: no API, auth or key of its own to speak of
        for field in ("api", "auth"):
            values.pop(field)
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
            value = {True: f"{value['masked']} ({source})", False: f"missing ({source})"}.get(present, source)
        elif isinstance(value, (dict, list)):
            value = json.dumps(value, ensure_ascii=False)
        table.add_row(field, shown(value))
    if profile.is_router:
        targets = ", ".join(target.name for target in config.route_targets(profile))
        table.add_row("routes to", shown(targets or "-"))
    table.add_row("runs", shown(runs(profile)))
    console.print(table)


@app.command("set")
def set_values(
    name: str = ProfileArg,
    assignments: Optional[list[str]] = typer.Argument(None, help="key=value pairs; dotted keys such as models.opus=M."),
    unset: Optional[list[str]] = typer.Option(None, "--unset", help="Remove a key (repeatable)."),
    force: bool = typer.Option(False, "--force", help="Allow an alias that hides a command of the same name."),
) -> None:
    """Change profile fields; the file's comments and layout are kept.

    Example: ccs set glm model=glm-4.6 models.haiku=glm-4.5-air env.API_TIMEOUT_MS=600000 aliases=cc-glm
    """
    if not assignments and not unset:
        raise CcsError("nothing to set: give key=value pairs or --unset KEY")
    config = profiles.load()
    aliases = config.by_alias()
    if not force:
        new = [a for item in assignments or [] if item.startswith("aliases=")
               for a in edits.field_value("aliases", item.partition("=")[2])]
        refuse_shadowing_aliases(new, aliases)
    not_set = edits.set_fields(name, assignments or [], unset or [])
    unchanged = f" ({', '.join(not_set)}: not set)" if not_set else ""
    if not assignments and len(not_set) == len(unset):
        console.print(line("Nothing changed in profile ", bold(name), unchanged))
        return
    console.print(line("Updated profile ", bold(name), unchanged))
    hint_alias_change(aliases)


def refuse_shadowing_aliases(new: list, before: dict[str, Profile]) -> None:
    """An alias is a shell function: named like a command (`cc`, `ls`), it hides that command."""
    import shutil

    for alias in new:
        if alias not in before and (found := shutil.which(str(alias))):
            raise CcsError(f"alias '{alias}' would hide {found} in your shells; choose another name, or add --force")


def hint_alias_change(before: dict[str, Profile]) -> None:
    """Shells hold aliases from their last `shell-init`; say how to refresh them when they change."""
    after = profiles.load().by_alias()
    if {a: p.name for a, p in before.items()} != {a: p.name for a, p in after.items()}:
        console.print(line("Aliases changed: `ccs reload` updates this shell (new shells pick them up)"))


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
            err_console.print(line(f"ccs: {e}"))
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
        console.print(line(f"Saved {path}"))
    draft.unlink()


@app.command("rm")
def remove(
    name: str = ProfileArg,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask."),
    force: bool = typer.Option(False, "--force", help="Remove it even though routers route to it."),
) -> None:
    """Remove a profile and its stored key."""
    config = profiles.load()
    config.get(name)
    confirm_or_yes(yes, f"Remove profile '{name}' and its stored key?", f"removing '{name}' needs confirmation")
    edits.remove(config, name, force)
    console.print(line("Removed profile ", bold(name)))
    hint_alias_change(config.by_alias())


@app.command()
def rename(old: str = ProfileArg, new: str = typer.Argument(..., help="New name.")) -> None:
    """Rename a profile where it stands in the file, moving its stored key, the default and routers' routes to it."""
    config = profiles.load()
    routers = edits.rename(config, old, new)
    console.print(line("Renamed ", bold(old), " to ", bold(new),
                       f"; routes to it renamed in {', '.join(routers)}" if routers else ""))
    hint_alias_change(config.by_alias())
