"""Profiles that travel between machines and people: `ccs export` leaves every secret behind, and an
imported profile never gets to use a key stored here for another profile, or for another provider,
without the user saying so by name."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from . import keys, profiles
from .profiles import Config, Profile, split_route

MASKED = "<masked by ccs export>"
# Variables whose values are credentials by their name; ANTHROPIC_CUSTOM_HEADERS holds header values
# (a gateway's key) and is masked value by value, as a profile's `headers` are.
SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH)", re.I)
HEADERS_VAR = "ANTHROPIC_CUSTOM_HEADERS"
# Fields of an imported profile that decide where a key goes or what runs: shown one by one before saving.
TELLING = ("base_url", "key_cmd", "key_name", "key_env", "env", "claude_args", "config_dir", "headers", "extra_body",
           "direct", "auth")
# Variables of a profile's `env` that only tune claude (time-outs, limits, models, what it sends home): every
# other variable a file sets may decide what claude runs, where its traffic goes or what it trusts (HOME,
# GIT_SSH_COMMAND, CLAUDE_CODE_SHELL_PREFIX, NODE_OPTIONS, HTTPS_PROXY, CLAUDE_CODE_DISABLE_REDIRECT_CHECK,
# ...), so it is asked about. Named one by one: claude has DISABLE_ variables that turn its own checks off.
TUNING_VARS = re.compile(r"(API_TIMEOUT_MS|MAX_THINKING_TOKENS|MAX_MCP_OUTPUT_TOKENS|BASH_(DEFAULT|MAX)_TIMEOUT_MS"
                         r"|CLAUDE_CODE_MAX_OUTPUT_TOKENS|CLAUDE_CODE_EFFORT_LEVEL|CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"
                         r"|DISABLE_(TELEMETRY|ERROR_REPORTING|AUTOUPDATER|PROMPT_CACHING|COST_WARNINGS"
                         r"|NON_ESSENTIAL_MODEL_CALLS)"
                         r"|ANTHROPIC_(DEFAULT_[A-Z]+_MODEL|MODEL|SMALL_FAST_MODEL)|CLAUDE_CODE_SUBAGENT_MODEL)\Z")


def masked_env(env: dict) -> tuple[dict, list[str]]:
    """(a profile's env with credential-like values masked, the names masked)."""
    out, masked = {}, []
    for var, value in env.items():
        if var == HEADERS_VAR and isinstance(value, str):
            lines = [f"{name.strip()}: {MASKED}" for name, sep, _ in (h.partition(":") for h in value.splitlines())
                     if sep and name.strip()]
            out[var] = "\n".join(lines)
            masked += [f"{var} ({name.split(':')[0]})" for name in lines]
        elif SECRET_NAME.search(var) and value:
            out[var] = MASKED
            masked.append(var)
        else:
            out[var] = value
    return out, masked


def export_text(config: Config, names: list[str]) -> tuple[str, list[str]]:
    """The TOML of the named profiles as the user wrote them (comments kept), without any secret: stored keys
    stay here, and credential-like `env` values are masked. Returns (text, "profile: VAR" of each masked)."""
    import tomlkit

    source = profiles.profiles_table(tomlkit.parse(config.text or profiles.NEW_FILE_HEADER))
    doc = tomlkit.parse("# ccswitch profiles, without keys: `ccs import --from-file FILE` reads them\n"
                        "version = 1\n")
    exported = profiles.profiles_table(doc)
    masked_all = []
    for name in names:
        table = source[name]
        if isinstance(table.get("env"), dict):
            env, masked = masked_env(dict(table["env"]))
            for var in masked:
                masked_all.append(f"{name}: env.{var}")
            for var, value in env.items():
                table["env"][var] = value
        if isinstance(table.get("headers"), dict):
            for header in table["headers"]:
                table["headers"][header] = MASKED
                masked_all.append(f"{name}: headers.{header}")
        exported[name] = table
    return tomlkit.dumps(doc), masked_all


def key_dangers(config: Config, incoming: list[Profile]) -> list[str]:
    """What saving `incoming` would do with keys stored here, said by name: a profile that would send the key
    stored for another profile, or the key of the profile it replaces to another provider. Empty: nothing."""
    stored_for = {p.keyring_user: p for p in config.profiles.values() if p.needs_key}
    found = []
    for profile in incoming:
        if not profile.needs_key or profile.key_env or profile.key_cmd:
            continue
        owner = stored_for.get(profile.keyring_user)
        if owner is None and profile.key_name is None:
            continue
        if not keys.key_info(owner or profile, config.secret_store)[1]:
            continue  # nothing stored to take
        if owner is None:
            found.append(f"profile '{profile.name}' would use the key stored under '{profile.key_name}' and send it "
                         f"to {where(profile)}")
        elif owner.name != profile.name:
            found.append(f"profile '{profile.name}' would use the key stored for profile '{owner.name}' "
                         f"({where(owner)}) and send it to {where(profile)}")
        elif _origin(owner) != _origin(profile):
            found.append(f"profile '{profile.name}' replaces the one of that name: its stored key, for "
                         f"{where(owner)}, would go to {where(profile)}")
    return found


def risks(config: Config, profile: Profile, fields: dict) -> list[str]:
    """What an imported profile would do beyond sending its own key to its own provider, said so that a
    `--yes` alone does not accept it: commands it runs, credentials of this machine or keys of other profiles
    it sends elsewhere, what it changes in how claude runs, what it adds to every request. `fields`: what
    the file itself says (a preset's own settings are ccs's, not the file's)."""
    found = []
    if profile.key_cmd:
        found.append(f"runs `{profile.key_cmd}` (its key_cmd) as you at every launch")
    if profile.signed_with and fields.get("base_url"):
        found.append(f"has claude sign in with {profile.signed_with} and send them to {fields['base_url']}")
    env = fields.get("env") or {}
    if risky := [var for var in env if not TUNING_VARS.match(var)]:
        found.append(f"gives claude {', '.join(f'{var}={env[var]}' for var in risky)}: what it and its commands "
                     "run, where its traffic goes or what it trusts")
    if fields.get("claude_args"):
        found.append(f"starts claude with {' '.join(map(str, fields['claude_args']))}")
    if fields.get("config_dir"):
        found.append(f"has claude read its settings, hooks and MCP servers from {fields['config_dir']}")
    if fields.get("extra_body"):
        found.append(f"adds {', '.join(fields['extra_body'])} to every request body its provider gets")
    if reach := fields.get("reach"):
        found.append("lets a repository's agents and settings send its sessions to "
                     + ("any of your profiles" if "*" in reach else f"your profiles {', '.join(map(str, reach))}"))
    routed = {split_route(route)[0].lower() for route in profiles.route_list(profile)}
    if theirs := sorted(p.name for p in config.profiles.values() if p.name.lower() in routed and p.name != profile.name):
        found.append(f"sends requests to your profile{'s' if len(theirs) > 1 else ''} {', '.join(theirs)} (with "
                     "their keys, on their bills)")
    return [f"profile '{profile.name}' {risk}" for risk in found]


def where(profile: Profile) -> str:
    return profile.url


def _origin(profile: Profile) -> str:
    """Scheme, host and port: where a key goes (another path on the same server is the same provider)."""
    parts = urlsplit(where(profile))
    return f"{parts.scheme}://{parts.netloc}".lower()
