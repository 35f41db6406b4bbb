"""Reading an Anthropic request for another API: its system text, the text of its blocks, its tools' schemas
and tool choice, the output cap and the reasoning effort it asks for. Shared by every translator; pure
functions."""

from __future__ import annotations

from .anthropic import InvalidRequest
from .dialect import Options

BILLING_HEADER = "x-anthropic-billing-header"
NO_RESULT = "Error: the tool call returned no result"
TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}  # Anthropic's tool_choice types, OpenAI's words
NO_OUTPUT = "(no output)"


# claude checks a model with a one-token request (at start-up, and /model before it takes a name). A model that
# reasons first spends so small a cap on reasoning and says nothing (or is refused: the Responses API takes no
# cap below 16): such a model gets room for a short answer, and a probe gets no reasoning effort of ours.
PROBE_BELOW = 16  # a cap under this holds no real answer: the request is a probe
REASONING_FLOOR = 1024  # the least output a model that reasons first is given


def probe(req: dict) -> bool:
    """claude's one-token availability check, not a conversation."""
    return (req.get("max_tokens") or PROBE_BELOW) < PROBE_BELOW


def output_cap(req: dict, options: Options, least: int = 1) -> int | None:
    """The request's max_tokens, within the profile's max_output_tokens; at least REASONING_FLOOR for a model
    that reasons first (or the profile's cap, when lower), and never below `least` (what the API takes)."""
    cap = req.get("max_tokens")
    if options.max_output_tokens and (cap is None or cap > options.max_output_tokens):
        cap = options.max_output_tokens
    if cap is None:
        return None
    if options.dialect.reasons:
        cap = max(cap, min(REASONING_FLOOR, options.max_output_tokens or REASONING_FLOOR))
    return max(cap, least)


def reasoning_effort(req: dict, configured: str | None) -> str | None:
    """The profile's setting wins; else derived from `thinking` (and `output_config.effort` when adaptive).
    None for a probe: the model's own default answers it soonest."""
    if configured == "off" or probe(req):
        return None
    thinking = req.get("thinking") or {}
    kind = thinking.get("type")
    if kind not in ("enabled", "adaptive"):
        return None
    if configured:
        return configured
    if kind == "enabled":
        budget = thinking.get("budget_tokens") or 0
        return "low" if budget <= 4096 else "medium" if budget <= 16384 else "high"
    effort = (req.get("output_config") or {}).get("effort") or "medium"
    return effort if effort in ("low", "medium", "high") else "high" if effort in ("max", "xhigh") else "medium"


def tool_choice(choice: dict, named) -> dict:
    """Anthropic's `tool_choice` for either OpenAI API; `named(name)`: how that API names one function."""
    kind = choice.get("type")
    if kind in TOOL_CHOICES:
        result: dict = {"tool_choice": TOOL_CHOICES[kind]}
    elif kind == "tool" and choice.get("name"):
        result = {"tool_choice": named(choice["name"])}
    else:
        raise InvalidRequest(f"tool_choice: unknown type {kind!r}, or a `tool` choice without its name")
    if choice.get("disable_parallel_tool_use"):
        result["parallel_tool_calls"] = False
    return result


def tool_schema(tool: dict, options: Options) -> dict:
    """A tool's input schema as a function's parameters: an object, in the subset the provider accepts."""
    schema = {k: v for k, v in (tool.get("input_schema") or {}).items() if k != "$schema"}
    schema.setdefault("type", "object")
    return openapi_schema(schema) if options.dialect.openapi_schemas else schema


# What Gemini's function declarations accept (an OpenAPI 3.0 Schema subset); anything else is a 400.
_OPENAPI_KEYS = {"type", "format", "title", "description", "nullable", "enum", "items", "properties", "required",
                 "minItems", "maxItems", "minProperties", "maxProperties", "minLength", "maxLength", "pattern",
                 "minimum", "maximum", "anyOf", "default", "example", "propertyOrdering"}
_OPENAPI_FORMATS = {"enum", "date-time", "int32", "int64", "float", "double"}


def openapi_schema(schema):
    """JSON Schema -> the subset Gemini accepts: unknown keywords dropped, `const` as a one-value enum,
    `type: [T, "null"]` as `nullable`, formats it does not know removed. Recursive."""
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: openapi_schema(sub) for name, sub in value.items()}
        elif key == "items":
            out[key] = openapi_schema(value)
        elif key in ("anyOf", "oneOf") and isinstance(value, list):
            out["anyOf"] = [openapi_schema(sub) for sub in value]
        elif key == "const":
            out["enum"] = [value]
        elif key == "type" and isinstance(value, list):
            kinds = [kind for kind in value if kind != "null"]
            out["type"] = kinds[0] if kinds else "string"
            if "null" in value:
                out["nullable"] = True
        elif key == "format" and value not in _OPENAPI_FORMATS:
            continue
        elif key in _OPENAPI_KEYS:
            out[key] = value
    if "enum" in out and out.get("type") in (None, "string"):
        out["type"] = "string"
        out["enum"] = [str(v) for v in out["enum"]]
    return out


def system_text(system) -> str:
    """System blocks joined; the billing header is dropped (it changes every request, defeating caches)."""
    if system is None:
        return ""
    if isinstance(system, str):
        return system
    return "\n\n".join(block["text"] for block in system
                       if block.get("type") == "text" and not block.get("text", "").startswith(BILLING_HEADER))


def blocks_text(content) -> str:
    if isinstance(content, str):
        return content
    return "\n\n".join(text for block in content if (text := block_text(block)) is not None)


def block_text(block: dict) -> str | None:
    kind = block.get("type")
    if kind == "text":
        return block["text"]
    if kind == "tool_reference":
        return f"Tool loaded: {block.get('tool_name')}"
    if kind == "document":
        return document_text(block)
    if kind == "search_result":
        return "\n".join([block.get("title") or "", block.get("source") or "", blocks_text(block.get("content") or [])])
    return None


def document_text(block: dict) -> str:
    source = block.get("source") or {}
    kind = source.get("type")
    if kind == "text":
        text = source["data"]
    elif kind == "content":
        text = blocks_text(source["content"])
    else:
        raise InvalidRequest(f"document blocks with a {kind!r} source cannot be sent to an OpenAI-API provider; "
                             "only text documents can")
    title = block.get("title")
    return f"{title}\n\n{text}" if title else text
