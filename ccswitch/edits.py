"""The changes commands make to profiles: fields set from the command line, a profile renamed (its routes
and its stored key follow it) or removed (not while a router still routes to it). Each goes through
`profiles.editing`, so the user's comments and layout survive and nothing invalid is written."""

from __future__ import annotations

import re
import shlex

from . import keys, profiles, state
from .errors import CcsError
from .profiles import Config, ConfigError, is_route, split_route

# How a list field is typed on the command line when it is not written as a TOML list.
LIST_WORDS = {
    "aliases": lambda raw: [word for word in re.split(r"[\s,]+", raw) if word],  # cc-a,cc-b
    "reach": lambda raw: [word for word in re.split(r"[\s,]+", raw) if word],  # kimi,gpt
    "fallback": lambda raw: [word for word in re.split(r"[\s;]+", raw) if word],  # a route holds a comma
    "claude_args": shlex.split,  # as on a command line
}
STRING_TABLES = ("models", "env")  # `models.opus=X`, `env.X=Y`: the value is text as typed
EXAMPLES = {"context_window": "context_window=200000", "max_output_tokens": "max_output_tokens=32000",
            "timeout": "timeout=900", "max_request_mb": "max_request_mb=128", "cooldown": "cooldown=60",
            "observe": "observe=true", "aliases": "aliases=cc-cheap,cc-fast", "fallback": "fallback=glm,glm-4.6", "reach": "reach=kimi,gpt",
            "claude_args": "claude_args='--verbose --add-dir ../lib'",
            "prices": 'prices.glm-4.6="{ input = 0.6, output = 2.2 }"', "budget": "budget.day=5"}


def field_value(key: str, raw: str):
    """A value typed after `key=`: text for text fields (and inside `models` and `env`), a list for list
    fields (TOML's `["a", "b"]`, or words), else TOML (numbers, true/false, tables)."""
    head, _, tail = key.partition(".")
    kind = profiles.FIELDS.get(head)
    if kind is str or (tail and head in STRING_TABLES):
        return raw
    value = profiles.parse_value(raw)
    if kind is list and not isinstance(value, list):
        return LIST_WORDS[head](raw)
    return value


def set_fields(name: str, assignments: list[str], unsets: list[str]) -> list[str]:
    """Apply `key=value` assignments (dotted keys go into table fields) and remove `unsets`; returns the keys
    to remove that were not set. A value that does not fit says so with the words typed, not a file line."""
    import tomlkit

    parsed = []
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        if not sep or not key:
            raise CcsError(f"'{assignment}' is not key=value")
        _require_field(key)
        parsed.append((assignment, key, field_value(key, raw)))
    for key in unsets:
        _require_field(key)
    not_set = []
    try:
        with profiles.editing() as doc:
            table = existing_table(doc, name)
            for _, key, value in parsed:
                head, _, tail = key.partition(".")
                if tail:
                    if head not in table:
                        table[head] = tomlkit.inline_table()
                    table[head][tail] = value
                else:
                    table[key] = value
            for key in unsets:
                head, _, tail = key.partition(".")
                container = table[head] if tail and head in table else table
                if container.pop(tail or key, None) is None:
                    not_set.append(key)
    except ConfigError as e:
        typed = " ".join(shlex.quote(a) for a, key, _ in parsed if _names(key, e.reason)) or \
            " ".join(shlex.quote(a) for a, _, _ in parsed)
        example = next((EXAMPLES[key.partition(".")[0]] for _, key, _ in parsed
                        if _names(key, e.reason) and key.partition(".")[0] in EXAMPLES), None)
        raise CcsError(f"`ccs set {name} {typed}`: {e.reason}"
                       + (f" (for example `ccs set {name} {example}`)" if example else "")) from None
    return not_set


def _names(key: str, reason: str) -> bool:
    return key.partition(".")[0] in reason


def _require_field(key: str) -> None:
    head, _, tail = key.partition(".")
    if head not in profiles.FIELDS:
        raise CcsError(f"unknown field '{head}'{profiles.suggest(head, profiles.FIELDS)}; see `ccs show NAME` for the fields")
    if tail and profiles.FIELDS[head] is not dict:
        tables = ", ".join(field for field, kind in profiles.FIELDS.items() if kind is dict)
        raise CcsError(f"'{head}' is not a table: dotted keys go into {tables}")


def existing_table(doc, name: str):
    table = profiles.profiles_table(doc)
    if name not in table:
        raise CcsError(f"no profile named '{name}' (see `ccs list`)")
    return table[name]


# ---------------------------------------------------------------- routes between profiles


def routers_of(config: Config, name: str) -> dict[str, list[str]]:
    """router name -> the routes (`name,model`) it has to profile `name`."""
    found: dict[str, list[str]] = {}
    for profile in config.profiles.values():
        routes = [r for r in profiles.route_list(profile) if split_route(r)[0].lower() == name.lower()]
        if routes and profile.name != name:
            found[profile.name] = routes
    return found


def _renamed_route(value, old: str, new: str):
    """`old,model` -> `new,model` (any case, the model kept); anything else as it is."""
    if isinstance(value, str) and is_route(value) and split_route(value)[0].lower() == old.lower():
        return f"{new},{split_route(value)[1]}"
    return value


def rename(config: Config, old: str, new: str) -> list[str]:
    """Rename a profile where it stands in the file, point every route to it at the new name, and move its
    stored key and the default along. Returns the routers whose routes were rewritten."""
    profile = config.get(old)
    if new in config.profiles:
        raise CcsError(f"profile '{new}' exists already")
    if not profiles.NAME_RE.match(new):
        raise CcsError(f"invalid profile name {new!r}: use letters, digits, '.', '_' or '-'")
    routers = routers_of(config, old)
    with profiles.editing() as doc:
        table = profiles.profiles_table(doc)
        if new in table:
            raise CcsError(f"profile '{new}' exists already")
        section = existing_table(doc, old)
        if getattr(section, "display_name", None):  # a [profiles.OLD] section: its header changes in place
            _rename_headers(section, f"profiles.{old}", f"profiles.{new}")
        else:  # an inline table or dotted keys: it moves to the end, under its new name
            table[new] = section
            del table[old]
        for other in table:
            if other not in (old, new):
                _rewrite_routes(table[other], old, new)
    if profile.key_name is None and not (profile.key_env or profile.key_cmd):
        keys.move_pool(old, new, config.secret_store)
    if state.default() == old:
        state.set_default(new)
    return list(routers)


def _rename_headers(section, old: str, new: str) -> None:
    """`[profiles.old]` and its sub-tables' headers (`[profiles.old.models]`) under the new name."""
    import tomlkit

    if section.display_name and (section.display_name == old or section.display_name.startswith(old + ".")):
        section.display_name = new + section.display_name[len(old):]
    for _, item in section.value.body:
        if isinstance(item, tomlkit.items.Table):
            _rename_headers(item, old, new)


def _rewrite_routes(router, old: str, new: str) -> None:
    """A profile's model, tiers, fallbacks, vision and reach that name `old`, renamed in place (only those: the
    rest, and comments, untouched)."""
    def route(value: str) -> str:
        return _renamed_route(value, old, new)

    def name(value: str) -> str:
        return new if value.lower() == old.lower() else value

    places = [(router, key, route) for key in ("model", "vision") if key in router]
    places += [(router["models"], tier, route) for tier in router.get("models", {})]
    places += [(router[key], index, rename) for key, rename in (("fallback", route), ("reach", name))
               for index in range(len(router.get(key, [])))]
    for table, key, rename in places:
        if (value := rename(str(table[key]))) != str(table[key]):
            table[key] = value


def remove(config: Config, name: str, force: bool = False) -> None:
    """Remove a profile and its stored key (unless another profile shares it). A profile that routers route
    to is kept unless `force`: they would fail at their next request."""
    profile = config.get(name)
    routers = routers_of(config, name)
    if routers and not force:
        named = "; ".join(f"{router} ({', '.join(routes)})" for router, routes in routers.items())
        raise CcsError(f"profile '{name}' is routed to by {named}: change those routes first, or add --force")
    with profiles.editing() as doc:
        existing_table(doc, name)  # still there: another ccs may have removed it meanwhile
        del profiles.profiles_table(doc)[name]
    shared = any(p.keyring_user == profile.keyring_user for p in config.profiles.values() if p.name != name)
    if not shared and not (profile.key_env or profile.key_cmd):
        keys.delete_pool(profile.keyring_user, config.secret_store)
    if state.default() == name:
        state.set_default(None)
