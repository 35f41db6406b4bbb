"""Shell integration: `eval "$(ccs shell-init zsh)"` makes plain `claude` honour the active profile.

The generated code defines three things, none of which runs Python when the shell starts:
- `claude`: `ccs run -- claude` when a profile applies ($CCS_PROFILE, a `.ccs-profile` of yours in this
  directory or above, or the default file exists), else the real claude untouched. `command` skips
  functions, so it never calls itself.
- one function per profile alias: `cc-cheap ARGS` is `ccs run cheap -- claude ARGS`.
- `ccs`: passes everything through, except what must change this shell itself
  (`ccs use --shell NAME`, `ccs shell NAME`, `ccs reload`).
Keys never enter the shell: only `ccs run`'s child ever sees one.
"""

from __future__ import annotations

import json
import os
import shlex

from . import state
from .errors import CcsError
from .state import HERE_FILE

SHELLS = ("bash", "zsh", "fish")
INTEGRATION_VAR = "CCS_SHELL_INTEGRATION"  # set by the `ccs` wrapper for the commands it runs


def detect_shell() -> str:
    """The shell that runs us (shellingham), else $SHELL's name."""
    try:
        import shellingham

        name = shellingham.detect_shell()[0]
    except Exception:  # shellingham raises its own error types when it cannot tell
        name = os.path.basename(os.environ.get("SHELL", ""))
    if name not in SHELLS:
        raise CcsError(f"cannot tell which shell this is ({name or 'unknown'}): name it, e.g. `ccs shell-init zsh`")
    return name


def init_script(shell: str, aliases: dict[str, str]) -> str:
    """The code for the user's rc file. `aliases` maps alias -> profile name."""
    active = str(state.default_file())
    if shell == "fish":
        return _fish(active, aliases)
    if shell in ("bash", "zsh"):
        return _posix(shell, active, aliases)
    raise CcsError(f"unsupported shell '{shell}': use one of {', '.join(SHELLS)}")


def init_for(shell: str | None) -> str:
    """`ccs shell-init`: the script with every profile's aliases. A broken profiles file must not
    break the user's shell start-up: the script then comes without aliases and says why once."""
    from . import profiles

    shell = shell or detect_shell()
    try:
        aliases = {alias: p.name for alias, p in profiles.load().by_alias().items()}
    except CcsError as e:
        import sys

        print(f"ccs: shell-init without aliases: {e}", file=sys.stderr)
        aliases = {}
    return init_script(shell, aliases)


def _posix(shell: str, active: str, aliases: dict[str, str]) -> str:
    q = shlex.quote
    split = "${=CCS_ALIASES}" if shell == "zsh" else "${CCS_ALIASES-}"
    lines = [
        f"# ccswitch shell integration ({shell}); from `ccs shell-init {shell}`",
        f"for __ccs_f in {split}; do unset -f \"$__ccs_f\" 2>/dev/null; done; unset __ccs_f",
        "claude() {",
        f"  if [ -n \"${{CCS_PROFILE-}}\" ] || __ccs_here || [ -f {q(active)} ]; then",
        "    command ccs run -- claude \"$@\"",
        "  else",
        "    command claude \"$@\"",
        "  fi",
        "}",
        f"__ccs_here() {{  # a {HERE_FILE} in this directory or one above",
        "  local __ccs_d=\"$PWD\"",
        "  while [ -n \"$__ccs_d\" ]; do",
        f"    [ -f \"$__ccs_d/{HERE_FILE}\" ] && [ -O \"$__ccs_d/{HERE_FILE}\" ] && return 0",
        "    __ccs_d=\"${__ccs_d%/*}\"",
        "  done",
        f"  [ -f /{HERE_FILE} ] && [ -O /{HERE_FILE} ]",
        "}",
        "ccs() {",
        "  case \"${1-}\" in",
        "    reload) eval \"$(command ccs shell-init " + shell + ")\" ;;",
        "    shell) shift; __ccs_eval use --shell \"$@\" ;;",
        "    use) if __ccs_has_shell_flag \"$@\"; then __ccs_eval \"$@\"; else "
        f"{INTEGRATION_VAR}={shell} command ccs \"$@\"; fi ;;",
        f"    *) {INTEGRATION_VAR}={shell} command ccs \"$@\" ;;",
        "  esac",
        "}",
        "__ccs_has_shell_flag() {  # `ccs use ... --shell ...`, the option anywhere",
        "  local __ccs_a",
        "  for __ccs_a in \"$@\"; do [ \"$__ccs_a\" = --shell ] && return 0; done",
        "  return 1",
        "}",
        "__ccs_eval() {",
        f"  local __ccs_code; __ccs_code=\"$({INTEGRATION_VAR}={shell} command ccs \"$@\" --emit {shell})\" "
        "&& eval \"$__ccs_code\"",
        "}",
    ]
    for alias, profile in aliases.items():
        lines.append(f"{alias}() {{ command ccs run {q(profile)} -- claude \"$@\"; }}")
    lines.append(f"CCS_ALIASES={q(' '.join(aliases))}")
    return "\n".join(lines) + "\n"


def _fish(active: str, aliases: dict[str, str]) -> str:
    q = _fish_quote
    lines = [
        "# ccswitch shell integration (fish); from `ccs shell-init fish`",
        "for __ccs_f in $CCS_ALIASES; functions -e $__ccs_f; end",
        "function claude --wraps claude --description 'claude with the active ccs profile'",
        f"    if test -n \"$CCS_PROFILE\"; or __ccs_here; or test -f {q(active)}",
        "        command ccs run -- claude $argv",
        "    else",
        "        command claude $argv",
        "    end",
        "end",
        f"function __ccs_here --description 'a {HERE_FILE} in this directory or one above'",
        "    set -l d $PWD",
        "    while test -n \"$d\"",
        f"        test -f \"$d/{HERE_FILE}\"; and test -O \"$d/{HERE_FILE}\"; and return 0",
        "        set d (string replace -r '/[^/]*$' '' -- $d)",
        "    end",
        f"    test -f /{HERE_FILE}; and test -O /{HERE_FILE}",
        "end",
        "function ccs --wraps ccs --description 'ccswitch'",
        "    if test \"$argv[1]\" = reload",
        "        command ccs shell-init fish | source",
        "    else if test \"$argv[1]\" = shell",
        f"        set -l code ({INTEGRATION_VAR}=fish command ccs use --shell $argv[2..-1] --emit fish); "
        "and eval (string join '; ' $code)",
        "    else if test \"$argv[1]\" = use; and contains -- --shell $argv[2..-1]",
        f"        set -l code ({INTEGRATION_VAR}=fish command ccs $argv --emit fish); "
        "and eval (string join '; ' $code)",
        "    else",
        f"        {INTEGRATION_VAR}=fish command ccs $argv",
        "    end",
        "end",
    ]
    for alias, profile in aliases.items():
        lines.append(f"function {alias} --wraps claude; command ccs run {q(profile)} -- claude $argv; end")
    lines.append(f"set -g CCS_ALIASES {' '.join(aliases)}".rstrip())
    return "\n".join(lines) + "\n"


def _fish_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def scope_code(shell: str, name: str | None) -> str:
    """What `ccs use --shell` hands the wrapper to eval: set or clear $CCS_PROFILE in this shell only."""
    if shell == "fish":
        return f"set -gx {state.SHELL_VAR} {_fish_quote(name)}\n" if name else f"set -e {state.SHELL_VAR}\n"
    return f"export {state.SHELL_VAR}={shlex.quote(name)}\n" if name else f"unset {state.SHELL_VAR}\n"


def integration_active() -> str | None:
    """The shell whose integration ran this command, if any."""
    return os.environ.get(INTEGRATION_VAR) or None


# Commands whose first argument is a profile name (and `key set|rm|print NAME`).
PROFILE_FIRST = ("run", "use", "show", "set", "rm", "rename", "env", "proxy", "export", "shell", "test", "models")


def quick_completion(environ) -> tuple[str, int] | None:
    """(output, exit code) for a TAB after a command that takes a profile, answered from the profiles
    file without Typer (most of a TAB's 0.3-0.7 s); None when Typer must answer. Same protocol and
    formats as Typer's completion (`_CCS_COMPLETE=complete_bash|complete_zsh|complete_fish`)."""
    mode = environ.get("_CCS_COMPLETE")
    if mode == "complete_bash":
        words = _split(environ.get("COMP_WORDS", ""))
        current = int(environ.get("COMP_CWORD") or 0)
        args, incomplete = words[1:current], words[current] if current < len(words) else ""
    elif mode in ("complete_zsh", "complete_fish"):
        line = environ.get("_TYPER_COMPLETE_ARGS", "")
        args = _split(line)[1:]
        incomplete = args.pop() if args and not line.endswith(" ") else ""
    else:
        return None
    takes_profile = (len(args) == 1 and args[0] in PROFILE_FIRST) or (
        len(args) == 2 and args[0] == "key" and args[1] in ("set", "rm", "print"))
    if not takes_profile or incomplete.startswith("-"):
        return None
    from . import profiles

    try:
        names = [name for name in profiles.load().profiles if name.startswith(incomplete)]
    except CcsError:
        names = []
    if mode == "complete_bash":
        return "\n".join(names), 0
    if mode == "complete_zsh":
        return ("_arguments '*: :((" + "\n".join(f'"{name}"' for name in names) + "))'" if names else "_files"), 0
    if environ.get("_TYPER_COMPLETE_FISH_ACTION") == "is-args":
        return "", 0 if names else 1
    return "\n".join(names), 0


def _split(line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError:  # an unfinished quote while typing
        return line.split()


def completion_script(shell: str) -> str:
    """The completion script for `ccs` itself; it asks `ccs` for profile and preset names as you type."""
    from typer.completion import get_completion_script

    if shell not in SHELLS:
        raise CcsError(f"unsupported shell '{shell}': use one of {', '.join(SHELLS)}")
    return get_completion_script(prog_name="ccs", complete_var="_CCS_COMPLETE", shell=shell).strip() + "\n"


def env_code(values: dict[str, str], unset: list[str], shell: str, notes: list[str] = (),
             masked: set[str] = frozenset()) -> str:
    """`ccs env`: set and unset variables, as code for a shell (or JSON), after `notes` as comments.
    A `masked` variable (a key shown as `sk-…abcd`) is unset, its line a comment: as code it would set a wrong
    key, and left alone a key from before (`ccs env OTHER --reveal`) would go to this profile's provider."""
    if shell == "json":
        return json.dumps({"set": values, "unset": unset, "masked": sorted(masked)}, indent=2) + "\n"
    if shell in ("bash", "zsh", "sh"):
        unset_line, set_line = "unset {}".format, lambda k, v: f"export {k}={shlex.quote(v)}"
    elif shell == "fish":
        unset_line, set_line = "set -e {}".format, lambda k, v: f"set -gx {k} {_fish_quote(v)}"
    elif shell == "powershell":
        unset_line = "Remove-Item Env:{} -ErrorAction SilentlyContinue".format
        set_line = lambda k, v: f"$Env:{k} = {_powershell_quote(v)}"  # noqa: E731
    else:
        raise CcsError(f"unknown shell '{shell}': use bash, zsh, fish, powershell or json")
    lines = [f"# {note}" for note in notes] + [unset_line(var) for var in unset]
    for var, value in values.items():
        if var in masked:
            lines += [unset_line(var), f"# {set_line(var, value)}  (masked: --reveal prints the key)"]
        else:
            lines.append(set_line(var, value))
    return "\n".join(lines) + "\n"


POWERSHELL_QUOTES = "'\u2018\u2019\u201a\u201b"  # each ends a single-quoted string in PowerShell


def _powershell_quote(value: str) -> str:
    """A single-quoted PowerShell string: every quote character it knows is doubled."""
    return "'" + "".join(c * 2 if c in POWERSHELL_QUOTES else c for c in value) + "'"
