"""`ccs run`, `proxy`, `env`, `usage`, `statusline`: a profile at work."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .. import claude, keys, launch, profiles
from ..errors import CcsError
from .base import ProfileArg, app, complete_profile, console, line


@app.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
def run(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Say which profile, why, and where the proxy logs."),
    direct: bool = typer.Option(False, "--direct", help="This once, claude talks to the provider itself, holding "
                                                       "its key (no proxy: no usage log, no fallback)."),
    observe: bool = typer.Option(False, "--observe", hidden=True, help="No longer needed: every profile is behind "
                                                                      "the proxy."),
    name: Optional[str] = typer.Argument(None, help="Profile (default: the one that applies here).",
                                         autocompletion=complete_profile),
    words: Optional[list[str]] = typer.Argument(None, help="claude's arguments, or a command and its arguments."),
) -> None:
    """Run claude (or a command) with a profile: ccs run [-v] [--direct] [NAME] [ARGS...] or [NAME] -- CMD ARGS...

    What follows NAME is claude's arguments unless it begins with a command; after `--` it is the
    command. `ccs NAME ARGS...` is short for `ccs run NAME ARGS...`.

    Example: ccs run glm --print "review this diff"; ccs run gpt -- python bench.py
    """
    words = words or []
    explicit = bool(words) and words[0] == "--"
    raise typer.Exit(launch.run_profile(name, words[1:] if explicit else words, explicit, verbose, direct))


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
    from ..proxy.lifecycle import serve_profile

    serve_profile(name, port, as_json, quiet)


@app.command()
def usage(
    since: str = typer.Option("7d", "--since", help="30m, 12h, 7d, 2w, a date (2026-11-30) or all."),
    by: Optional[str] = typer.Option(None, "--by", help="profile (the default), model, day, session or class (what claude said each request was for)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    as_csv: bool = typer.Option(False, "--csv", help="One CSV row per group."),
    tests: bool = typer.Option(False, "--tests", help="Count `ccs test`'s own requests too."),
    live: bool = typer.Option(False, "--live", help="Follow requests as they happen, until Ctrl-C."),
) -> None:
    """Requests, tokens and cost from the local usage log, at the providers' prices.

    Every request through the ccs proxy is logged. Example: ccs usage --since 30d --by model; ccs usage --live
    """
    import time

    from .. import usage as usage_log
    from .. import usage_report

    if by is not None and by not in usage_log.GROUPS:
        raise CcsError(f"--by {by!r}: one of {', '.join(usage_log.GROUPS)}")
    if as_json and as_csv:
        raise CcsError("--json or --csv, not both")
    if live and (as_json or as_csv or by):
        raise CcsError("--live shows the latest requests as they come: it goes with --since and --tests only")
    period = usage_log.Period(usage_report.since_time(since, time.time()), tests)
    if live:
        usage_report.live(period, console)
    else:
        usage_report.show(period, by or "profile", "json" if as_json else "csv" if as_csv else "table", console)


@app.command()
def statusline() -> None:
    """One line for Claude Code's status bar: the profile, its provider, the model in use.

    Enable it in ~/.claude/settings.json: {"statusLine": {"type": "command", "command": "ccs statusline"}}
    """
    from ..statusline import print_statusline

    print_statusline()


@app.command("env")
def env_command(
    name: str = ProfileArg,
    shell: str = typer.Option("bash", "--shell", help="bash, zsh, fish, powershell or json."),
    reveal: bool = typer.Option(False, "--reveal", help="Print the key itself instead of its masked form."),
) -> None:
    """Print what `ccs run --direct` would set and unset, as shell code or JSON: the variables that point
    claude at the provider itself, with its key (masked unless --reveal)."""
    config = profiles.load()
    profile = config.get(name)
    if profile.needs_proxy:
        raise CcsError(f"profile '{name}' {profile.why_proxied}, so it needs the proxy: "
                       f"`ccs run {name}` or `ccs proxy {name}`")
    secret = keys.lookup(profile, config.secret_store)
    values = launch.profile_env(profile, secret)
    masked = set() if reveal else {k for k in claude.SECRET_VARS if values.get(k) and values[k] == secret}
    values = {k: keys.mask(v) if k in masked else v for k, v in values.items()}
    from .. import shell as shell_code

    unset = [var for var in launch.removed_vars(profile) if var not in values]
    notes = [] if profile.direct or not profile.needs_key else [
        f"these give claude the key of '{name}' itself; `ccs run {name}` keeps it in ccs, behind the proxy"]
    if profile.key_env:
        notes.append(f"{profile.key_env} is unset: the key reaches claude once, as the profile's token")
    print(shell_code.env_code(values, unset, shell, notes, masked), end="")


@app.command()
def logs(
    lines: int = typer.Option(40, "--lines", "-n", help="How many of the last lines to show."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep showing new lines as the proxy writes them."),
) -> None:
    """Show the proxy's log (`ccs run` and `ccs test` write it): a line per request, and every error with
    what the provider said.

    Example: ccs logs; ccs logs -f
    """
    from ..proxy.lifecycle import log_path
    from ..tail import follow_lines, last_lines

    path = Path(log_path())
    if not path.exists() and not follow:
        console.print(line(f"No proxy log yet ({path}): the proxy writes one when a session starts"))
        return
    for text in last_lines(path, lines):
        console.print(line(text))
    if follow:
        try:
            for text in follow_lines(path):
                console.print(line(text))
        except KeyboardInterrupt:
            pass
