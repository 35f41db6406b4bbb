"""What each OpenAI-API provider accepts, in one place: static facts by host, and what a model's
provider refused at run time (`Refusals`), learnt from its errors so later requests avoid it."""

from __future__ import annotations

import logging
import re
from typing import NamedTuple

from ..profiles import on_this_machine
from . import errors

log = logging.getLogger("ccswitch.proxy")


class Dialect(NamedTuple):
    keeps_reasoning: bool = False  # wants a tool-calling history's reasoning back (DeepSeek rejects it dropped)
    gemini: bool = False  # an OpenAPI subset of JSON Schema only, and thought signatures on tool calls
    takes_user: bool = False  # the optional `user` field (strict servers reject it)
    takes_top_k: bool = False  # `top_k` (OpenAI and most hosted APIs reject it)


PLAIN = Dialect()
LOCAL = Dialect(takes_top_k=True)  # local model servers: vLLM, llama.cpp, LM Studio, Ollama
GEMINI = Dialect(gemini=True)
# By host, or a parent domain of it: the longest match wins.
HOSTS = {
    "api.openai.com": Dialect(takes_user=True),
    "openrouter.ai": Dialect(takes_user=True, takes_top_k=True),
    "generativelanguage.googleapis.com": GEMINI,
    "aiplatform.googleapis.com": GEMINI,
    "deepseek.com": Dialect(keeps_reasoning=True),
}


def dialect_for(host: str) -> Dialect:
    if on_this_machine(host):
        return LOCAL
    host = host.lower()
    for name, dialect in sorted(HOSTS.items(), key=lambda item: -len(item[0])):
        if host == name or host.endswith("." + name):
            return dialect
    return PLAIN


# ---------------------------------------------------------------- learnt at run time

# Parameters we add that a provider may not take; a 400 naming one is retried without it.
OPTIONAL_PARAMETERS = ("reasoning_effort", "stream_options", "parallel_tool_calls", "top_k", "user")
# A chat template that wants one system message, first (Qwen's, Gemma's on llama.cpp, vLLM, LM Studio):
# "System message must be at the beginning", "Conversation roles must alternate", "System role not supported".
SYSTEM_PLACEMENT = re.compile(rb"system[^.]{0,60}(beginning|first|position|not supported)|roles must alternate", re.I)
# Mistral's API and templates want an assistant turn between tool results and the user's next words.
USER_AFTER_TOOL = re.compile(rb"unexpected role .?user.? after role .?tool", re.I)
BRIDGE = "OK."


class Refusals:
    """What one model's provider refused, learnt from its errors, so later requests avoid it at once:
    optional parameters (`reasoning_effort` to a model without reasoning, ...), system messages past
    the start (strict chat templates), a user message right after tool results (Mistral), more output
    tokens than the model allows."""

    def __init__(self, model: str):
        self.model = model
        self.parameters: set[str] = set()
        self.system_first = False
        self.bridge_tool_results = False
        self.output_cap: int | None = None

    def applied(self, body: dict) -> dict:
        body = {k: v for k, v in body.items() if k not in self.parameters}
        if self.system_first:
            body["messages"] = system_first(body["messages"])
        if self.bridge_tool_results:
            body["messages"] = bridged(body["messages"])
        if self.output_cap:
            for key in ("max_tokens", "max_completion_tokens"):
                if body.get(key, 0) > self.output_cap:
                    body[key] = self.output_cap
        return body

    def learn(self, body: dict, error: bytes) -> bool:
        """Whether the error named something new to avoid (then the request is worth one retry)."""
        learnt = [name for name in OPTIONAL_PARAMETERS if name in body and name.encode() in error]
        self.parameters.update(learnt)
        if SYSTEM_PLACEMENT.search(error) and body["messages"] != system_first(body["messages"]):
            self.system_first = True
            learnt.append("system messages past the start")
        if USER_AFTER_TOOL.search(error) and not self.bridge_tool_results:
            self.bridge_tool_results = True
            learnt.append("a user message right after tool results")
        cap = errors.output_cap(error)
        if cap and cap < (max_output(body) or 0):
            self.output_cap = cap
            learnt.append(f"over {cap} output tokens")
        if learnt:
            log.warning("ccs proxy: %s refuses %s; leaving them out", self.model, ", ".join(learnt))
        return bool(learnt)


def max_output(body: dict) -> int | None:
    return body.get("max_tokens") or body.get("max_completion_tokens")


def system_first(messages: list[dict]) -> list[dict]:
    """One system message, first, holding all system text in order: the shape strict templates accept."""
    system = [m["content"] for m in messages if m["role"] == "system"]
    rest = [m for m in messages if m["role"] != "system"]
    return [{"role": "system", "content": "\n\n".join(system)}, *rest] if system else rest


def bridged(messages: list[dict]) -> list[dict]:
    """A short assistant turn between tool results and a user message that follows them."""
    out: list[dict] = []
    for message in messages:
        if message["role"] == "user" and out and out[-1]["role"] == "tool":
            out.append({"role": "assistant", "content": BRIDGE})
        out.append(message)
    return out
