"""What each provider and model family accepts beyond the API it speaks, as one table, and the small
options value a translator gets: the translators read traits, never a provider's name.

Traits come from the provider's host (or a parent domain of it: the longest match wins) and then from
the model's family (its name, wherever it is served: Gemini through OpenRouter still wants OpenAPI
schemas); a server on this machine is a local model server."""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

from ..profiles import on_this_machine


class Dialect(NamedTuple):
    keeps_reasoning: bool = False  # wants a tool-calling history's reasoning back (DeepSeek rejects it dropped)
    openapi_schemas: bool = False  # tool schemas in the OpenAPI 3.0 subset only (Gemini's function declarations)
    thought_signatures: bool = False  # wants each step's thought signature back on its first tool call (Gemini 3)
    takes_user: bool = False  # the optional `user` field (strict servers reject it)
    takes_top_k: bool = False  # `top_k` (OpenAI and most hosted APIs reject it)
    completion_tokens: bool = False  # the output cap is `max_completion_tokens` (OpenAI's reasoning models)
    reasons: bool = False  # reasons before it answers, whatever is asked: a tiny output cap is all spent on that
    reasoning_object: bool = False  # reasoning asked for as a `reasoning` object (effort, max_tokens, exclude)


LOCAL = {"takes_top_k": True}  # vLLM, llama.cpp, LM Studio, Ollama
HOSTS = {
    "api.openai.com": {"takes_user": True},
    "openai.azure.com": {"takes_user": True},
    "cognitiveservices.azure.com": {"takes_user": True},  # Azure OpenAI on a resource created in Foundry
    "openrouter.ai": {"takes_user": True, "takes_top_k": True, "reasoning_object": True},
    "deepseek.com": {"keeps_reasoning": True},
}
GEMINI = {"openapi_schemas": True, "thought_signatures": True}
# By the model's name, after an optional `vendor/` prefix.
FAMILIES = (
    (re.compile(r"(?:.*/)?(o\d|gpt-5)"), {"completion_tokens": True, "reasons": True}),
    (re.compile(r"(?:.*/)?gemini"), GEMINI),
    (re.compile(r"(?:.*/)?deepseek"), {"keeps_reasoning": True}),
)
# Google's own hosts serve Gemini whatever the model is called (a tuned model, a Vertex endpoint id).
HOSTS.update({"generativelanguage.googleapis.com": GEMINI, "aiplatform.googleapis.com": GEMINI})


@functools.lru_cache(maxsize=256)
def dialect_for(host: str, model: str = "") -> Dialect:
    traits = dict(LOCAL) if on_this_machine(host) else dict(_by_host(host.lower()))
    model = model.lower()
    for pattern, family in FAMILIES:
        if pattern.match(model):
            traits.update(family)
    return Dialect(**traits)


def _by_host(host: str) -> dict:
    for name in sorted(HOSTS, key=len, reverse=True):
        if host == name or host.endswith("." + name):
            return HOSTS[name]
    return {}


class Options(NamedTuple):
    """What a translator needs from the profile for one request: the provider's model, its limits and
    settings, its dialect; a value, so translators stay functions of their input."""

    model: str
    dialect: Dialect = Dialect()
    max_output_tokens: int | None = None
    reasoning_effort: str | None = None
    reasoning_summary: str | None = None  # Responses: how the reasoning is summarised; "off": not at all
    verbosity: str | None = None  # GPT-5's: "low", "medium", "high"
    reasoning: dict | None = None  # the profile's `reasoning` table
