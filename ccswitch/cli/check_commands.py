"""`ccs doctor`, `test`, `models`: does a setup, a profile, a provider work."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table
from rich.text import Text

from .. import profiles
from ..errors import CcsError
from .base import MARKS, app, bold, complete_profile, console, line


@app.command()
def doctor(
    offline: bool = typer.Option(False, "--offline", help="Do not ask the providers whether they take the keys."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Check the setup: profiles, routers' routes, keys (asking each provider), claude, its settings files, the shell.
    Each check is shown as soon as it is done.

    Exit code 1 when something will not work; warnings (worth knowing) do not count.
    """
    from .. import doctor as checks

    found = []
    status = console.status("asking the providers...") if console.is_terminal and not as_json else None
    if status is not None:
        status.start()
    try:
        for finding in checks.run(offline, dict(os.environ), Path.cwd()):
            found.append(finding)
            if not as_json:
                console.print(line(MARKS[finding.level], f"  {finding.check}: {finding.detail}"))
                sys.stdout.flush()
    finally:
        if status is not None:
            status.stop()
    if as_json:
        print(json.dumps([finding.__dict__ for finding in found], indent=2))
    raise typer.Exit(1 if any(finding.level == "fail" for finding in found) else 0)


@app.command("test")
def profile_test(
    name: Optional[str] = typer.Argument(None, help="Profile to test (default: the one that applies here).",
                                         autocompletion=complete_profile),
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
    from .. import trial as trials

    if all_profiles and name is not None:
        raise CcsError("give a profile name or --all, not both")
    config = profiles.load()
    chosen = list(config.profiles.values()) if all_profiles else [config.get(name or applying(config, " or --all"))]
    if not chosen:
        raise CcsError(f"no profiles in {config.path} yet: add one with `ccs add NAME --preset P`")
    results = trials.try_profiles(config, chosen, model)
    if not all_profiles and results[0].result == "skipped":
        raise CcsError(results[0].diagnosis)
    if as_json:
        rows = [result.__dict__ for result in results]
        print(json.dumps(rows if all_profiles else rows[0], indent=2))
    else:
        show_trials(results)
    raise typer.Exit(1 if any(result.result == "failed" for result in results) else 0)


def applying(config: profiles.Config, alternative: str = "") -> str:
    """The profile that applies here (as `ccs run` without a name), for a command given none."""
    from .. import state

    name, why = state.current()
    if name is None:
        raise CcsError(f"give a profile name{alternative}: none applies here (`ccs use NAME` sets one)")
    if name not in config.profiles:
        raise CcsError(f"{why} names profile '{name}', which does not exist (see `ccs list`)")
    return name


def show_trials(results) -> None:
    """A row per trial, then each diagnosis on a line of its own, whole (it may hold a command to copy)."""
    def mark(trial):
        if trial.result == "ok":
            return MARKS["warn" if trial.diagnosis else "ok"]
        return MARKS["fail" if trial.result == "failed" else "skipped"]

    def ms(value: int | None) -> str:
        return "-" if value is None else f"{value} ms"

    table = Table(box=None, pad_edge=False)
    for column in ("", "profile", "via", "model", "status", "answered by", "first token", "total", "tool call"):
        table.add_column(column)
    for trial in results:
        tool = "-" if trial.tool_use is None else "yes" if trial.tool_use else "no"
        status = str(trial.status) if trial.status else "skipped" if trial.result == "skipped" else "-"
        table.add_row(mark(trial), line(trial.profile), trial.via or "-", line(trial.model), status,
                      line(trial.answered_by or "-"), ms(trial.first_token_ms), ms(trial.total_ms), tool)
    console.print(table)
    for trial in results:
        if trial.diagnosis:
            console.print(line(mark(trial), f"  {trial.profile}: {trial.diagnosis}"))
    for log in {trial.log for trial in results if trial.log and trial.result == "failed"}:
        console.print(line(f"The proxy's log: {log}"))


@app.command()
def models(
    name: Optional[str] = typer.Argument(None, help="Profile (default: the one that applies here).",
                                         autocompletion=complete_profile),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List the models the profile's provider offers, marking those the profile uses (its model, tiers and
    fallbacks); for a router, each of its target profiles' providers in turn.

    Exit code 1 when a provider could not be asked. A used model that its provider does not list is marked `!`.

    Example: ccs models glm; ccs models gpt --json
    """
    from .. import model_list
    from ..trial import SIGNED

    config = profiles.load()
    profile = config.get(name or applying(config))
    if profile.signed_with and profile.own_provider:
        raise CcsError(SIGNED.format(name=profile.name, how=profile.signed_with, what="ask for its models with"))
    lists = model_list.model_lists(config, profile)
    if as_json:
        print(json.dumps([listing.__dict__ for listing in lists], indent=2))
    else:
        for listing in lists:
            if listing.problem:
                console.print(line(MARKS["fail"], f"  {listing.profile}: {listing.problem}"))
                continue
            listed = sum(model["listed"] for model in listing.models)
            console.print(line(bold(listing.profile), f": {listing.url} ({listed} model{'' if listed == 1 else 's'})"))
            table = Table(box=None, pad_edge=False)
            for column in ("", "model", "used as"):
                table.add_column(column)
            for model in listing.models:
                used = ", ".join(model["used_as"])
                mark = ("*" if used else "") if model["listed"] else Text("!", "yellow")
                table.add_row(mark, line(model["id"]), used if model["listed"] else f"{used} (not listed)")
            console.print(table)
    raise typer.Exit(1 if any(listing.problem for listing in lists) else 0)

