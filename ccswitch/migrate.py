"""Turn what people already have into profiles: provider variables from the environment, the `env`
block of a Claude Code settings file, or a shell file of exports and `set_model`-style functions.

Everything here is pure: variables in, (profile fields, key) out. The CLI shows the result and
saves it; keys go to the keyring, never into the TOML.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .errors import CcsError
from .claude import MANAGED, TIER_VARS
from .presets import PRESETS

KEY_VARS = ("ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_API_KEY")
# Variables that describe a provider setup; anything else in the environment is not ours to take.
RELEVANT = re.compile(r"^(ANTHROPIC_|CLAUDE_CODE_|CLAUDE_CONFIG_DIR$|API_TIMEOUT_MS$|DISABLE_|MAX_THINKING_TOKENS$)")
NOT_CARRIED = {"CLAUDECODE", "CLAUDE_CODE_ENTRYPOINT", "CLAUDE_CODE_SSE_PORT"}  # set by claude itself


@dataclass
class Found:
    """One profile to be: its fields, its key (or where the key comes from), and where we found it."""

    name: str
    fields: dict = field(default_factory=dict)
    key: str | None = None
    origin: str = ""


def from_variables(name: str, variables: dict[str, str], origin: str) -> Found:
    """Provider variables -> profile fields. A key given as `$VAR` becomes `key_env = "VAR"`."""
    variables = {k: v for k, v in variables.items() if RELEVANT.match(k) and k not in NOT_CARRIED}
    if not {"ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_API_KEY", "ANTHROPIC_MODEL"} & set(variables):
        raise CcsError(f"nothing to import from {origin}: no ANTHROPIC_BASE_URL, key or model "
                       "(ANTHROPIC_AUTH_TOKEN, ANTHROPIC_API_KEY, ANTHROPIC_MODEL)")
    fields: dict = {}
    found = Found(name, fields, origin=origin)
    base_url = variables.pop("ANTHROPIC_BASE_URL", "")
    preset = next((p.name for p in PRESETS.values()
                   if base_url and p.fields.get("base_url", "").rstrip("/") == base_url.rstrip("/")), None)
    if preset:
        fields["preset"] = preset
    elif base_url:
        fields["base_url"] = base_url
        fields["api"] = "anthropic"
    token, api_key = variables.pop("ANTHROPIC_AUTH_TOKEN", ""), variables.pop("ANTHROPIC_API_KEY", "")
    key = token or api_key
    if key:
        # how claude sent it matters to a provider claude talks to; a preset says how its provider takes it
        fields["auth"] = PRESETS[preset].fields.get("auth", "bearer") if preset else "bearer" if token else "api-key"
        if reference := re.fullmatch(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", key):
            fields["key_env"] = reference.group(1)
        else:
            found.key = key
    elif not base_url:
        fields["auth"] = "login"
    else:
        fields["auth"] = "none"
    model, default = variables.pop("ANTHROPIC_MODEL", ""), variables.pop("ANTHROPIC_DEFAULT_MODEL", "")
    if model or default:  # claude runs ANTHROPIC_MODEL, else ANTHROPIC_DEFAULT_MODEL
        fields["model"] = model or default
    models = {tier: variables.pop(var) for tier, var in TIER_VARS.items() if variables.get(var)}
    small = variables.pop("ANTHROPIC_SMALL_FAST_MODEL", "")
    if small and "haiku" not in models:
        models["haiku"] = small
    if models:
        fields["models"] = models
    for var, key_name in (("CLAUDE_CODE_MAX_CONTEXT_TOKENS", "context_window"),
                          ("CLAUDE_CODE_MAX_OUTPUT_TOKENS", "max_output_tokens")):
        if variables.get(var, "").isdigit():
            fields[key_name] = int(variables.pop(var))
    if config_dir := variables.pop("CLAUDE_CONFIG_DIR", ""):
        fields["config_dir"] = config_dir
    for var in MANAGED:  # ccs sets these itself from the fields above (the labels of /model included)
        variables.pop(var, None)
    if variables:
        fields["env"] = dict(sorted(variables.items()))
    if preset:  # keep only what differs from the preset, but the models: they stay what ran, whatever it says later
        for key_name, value in list(fields.items()):
            if key_name not in ("preset", "model", "models") and PRESETS[preset].fields.get(key_name) == value:
                del fields[key_name]
    return found


def from_file(path: Path) -> list[Found]:
    """The profiles of a file `ccs export` wrote (or any profiles TOML), validated, without keys."""
    from . import profiles

    try:
        text = path.expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise CcsError(f"cannot read {path}: {e}") from None
    config = profiles.parse(text, path)
    raw = tomllib.loads(text).get("profiles", {})
    if not config.profiles:
        raise CcsError(f"{path} holds no profiles")
    return [Found(name, raw[name], origin=str(path)) for name in config.profiles]


def from_settings(name: str, path: Path) -> Found:
    try:
        settings = json.loads(path.expanduser().read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CcsError(f"cannot read {path}: {e}") from None
    env = settings.get("env") if isinstance(settings, dict) else None
    if not isinstance(env, dict):
        raise CcsError(f"{path} has no `env` block")
    return from_variables(name, {k: str(v) for k, v in env.items()}, str(path))


_FUNCTION = re.compile(r"^\s*(?:function\s+)?([A-Za-z_][\w.-]*)\s*(?:\(\s*\))?\s*\{\s*$")
_BRANCH = re.compile(r"^\s*\(?\s*([\w.|*-]+)\s*\)\s*(.*)$")
_ASSIGN = re.compile(r"(?:^|[\s;])(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=((?:\"[^\"]*\"|'[^']*'|[^\s;]*))")
_ALIAS = re.compile(r"^\s*alias\s+([\w.-]+)=(['\"])(.*)\2\s*$")


def from_shell(path: Path, default_name: str) -> list[Found]:
    """Best effort over a shell file: `case` branches of a function (`set_model cheap`), functions
    full of exports, `alias x='VAR=... claude'`, and top-level exports. One profile per group; an alias
    that calls a function with a branch's name (`alias cc-glm="cc glm"`) becomes that profile's alias."""
    try:
        lines = path.expanduser().read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise CcsError(f"cannot read {path}: {e}") from None
    groups: dict[str, dict[str, str]] = {}
    aliases: set[str] = set()
    calls: dict[str, list[str]] = {}  # alias -> the words it runs, when it sets no variable itself
    function = branch = None
    depth = 0
    for line in lines:
        stripped = line.split("#", 1)[0] if not line.lstrip().startswith(("'", '"')) else line
        if alias := _ALIAS.match(stripped):
            if assigns := _assignments(alias.group(3)):
                groups.setdefault(alias.group(1), {}).update(assigns)
                aliases.add(alias.group(1))
            else:
                calls[alias.group(1)] = _words(alias.group(3))
            continue
        if function is None and (match := _FUNCTION.match(stripped)):
            function, depth = match.group(1), 1
            continue
        if function is not None:
            depth += stripped.count("{") - stripped.count("}")
            if depth <= 0:
                function = branch = None
                continue
            if (match := _BRANCH.match(stripped)) and not stripped.strip().startswith(("case", "esac")) \
                    and "=" not in match.group(1):
                branch = match.group(1).split("|")[0].strip("*") or None
                stripped = match.group(2)
            target = branch or function
        else:
            target = default_name
        assigns = _assignments(stripped)
        if assigns:
            groups.setdefault(target, {}).update(assigns)
        if ";;" in stripped:
            branch = None
    found = []
    for name, variables in groups.items():
        profile = name.removeprefix("cc-") if name in aliases else name
        safe = re.sub(r"[^A-Za-z0-9_.-]", "-", profile).strip("-.") or default_name
        try:
            item = from_variables(safe, variables, f"{path} ({name})")
        except CcsError:
            continue  # a group without provider variables is not a profile
        named = [name] if name in aliases else [alias for alias, words in calls.items() if name in words[1:]]
        if named:
            item.fields["aliases"] = named  # the command keeps working, now through ccs
        found.append(item)
    if not found:
        raise CcsError(f"no provider variables (ANTHROPIC_*) found in {path}")
    return found


def _words(text: str) -> list[str]:
    try:
        return shlex.split(text.replace("&&", " ").replace(";", " "))
    except ValueError:
        return text.split()


def _assignments(text: str) -> dict[str, str]:
    values = {}
    for var, raw in _ASSIGN.findall(text):
        try:
            parts = shlex.split(raw) if raw else [""]
        except ValueError:
            parts = [raw]
        values[var] = parts[0] if parts else ""
    return values
