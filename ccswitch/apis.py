"""The APIs a provider may speak and the ways it may take a key, as data: profiles validate against these
tables, the proxy and the checks send by them, launch hands claude its variables by them.

An API kind is how the proxy reaches a provider: Anthropic's Messages API is passed through as it is,
the others are translated. An auth kind is how the key travels: to claude in a variable (when it talks
to the provider itself), and from the proxy in a header.
"""

from __future__ import annotations

from typing import NamedTuple


class Api(NamedTuple):
    name: str
    messages: str  # the path of a request, under the base URL
    models: str  # the path of the model list
    list_params: dict  # what the model list is asked with
    key_header: str  # where an `api-key` profile's key goes
    title: str  # for people
    claude_speaks: bool = False  # claude can talk to it itself (direct, its own login); else only through the proxy


APIS: dict[str, Api] = {api.name: api for api in (
    # Anthropic's pages hold 20 models unless asked for more
    Api("anthropic", "/v1/messages", "/v1/models", {"limit": "1000"}, "x-api-key", "Anthropic Messages API",
        claude_speaks=True),
    # Azure takes its keys in an `api-key` header; every other OpenAI-API provider a bearer token
    Api("openai", "/chat/completions", "/models", {}, "api-key", "OpenAI Chat Completions"),
    Api("openai-responses", "/responses", "/models", {}, "api-key", "OpenAI Responses"),
)}
DEFAULT_API = "anthropic"


def translated(api: str) -> bool:
    """Only the proxy can serve a provider of this API: claude speaks Anthropic's alone."""
    return not APIS[api].claude_speaks


class Auth(NamedTuple):
    name: str
    claude_var: str | None  # the variable claude sends the key from, when it talks to the provider itself
    scheme: str | None  # the proxy sends `Authorization: <scheme> KEY`; None: the API's key_header instead
    needs_key: bool
    signed_with: str | None = None  # claude signs its own requests with this: no key in ccs, never the proxy


AUTHS: dict[str, Auth] = {auth.name: auth for auth in (
    Auth("bearer", "ANTHROPIC_AUTH_TOKEN", "Bearer", True),
    Auth("api-key", "ANTHROPIC_API_KEY", None, True),
    Auth("none", "ANTHROPIC_AUTH_TOKEN", None, False),  # claude insists on some credential all the same
    Auth("login", None, None, False, "claude's own login"),
    # claude's clouds (claude.CLOUDS: their variables)
    Auth("bedrock", None, None, False, "your AWS credentials"),
    Auth("mantle", None, None, False, "your AWS credentials"),
    Auth("vertex", None, None, False, "your Google Cloud credentials"),
    Auth("foundry", None, None, False, "your Azure credentials"),
)}
DEFAULT_AUTH = "bearer"
KEY_VARS = ("ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_API_KEY")  # the variables claude sends a key from
# What a profile's own `headers` never set: the headers that carry a key (the profile's key goes as its auth
# says) and those that describe one connection or one body.
RESERVED_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key",
                              "host", "content-length", "content-type", "transfer-encoding", "connection",
                              "keep-alive", "te", "upgrade", "proxy-connection"})
# What a profile's `extra_body` never sets: what the request is (its model, conversation, claude's system prompt
# and tools, under any API's name for them) and how it is read.
RESERVED_BODY = ("model", "messages", "input", "stream", "system", "instructions", "tools", "tool_choice",
                 "functions", "function_call", "mcp_servers", "prompt", "conversation", "previous_response_id")


def key_headers(api: str, auth: str, key: str | None) -> dict[str, str]:
    """The header that carries `key` to a provider of API `api`, as the profile's auth says."""
    kind = AUTHS[auth]
    if not key or not kind.needs_key:
        return {}
    if kind.scheme:
        return {"Authorization": f"{kind.scheme} {key}"}
    return {APIS[api].key_header: key}


def key_variables(auth: str, key: str) -> dict[str, str]:
    """What claude gets to send `key` itself: the auth's variable, and the other one explicitly empty (both
    set, claude sends both headers)."""
    var = AUTHS[auth].claude_var
    return {name: key if name == var else "" for name in KEY_VARS} if var else {}
