"""What a model's provider refused at run time, learnt from its errors so later requests avoid it at once."""

from __future__ import annotations

import logging
import re

from . import errors

log = logging.getLogger("ccswitch.proxy")

# Parameters we add that a provider may not take; a 400 naming one is retried without it.
OPTIONAL_PARAMETERS = ("reasoning_effort", "stream_options", "parallel_tool_calls", "top_k", "user")
# Parameters a model may refuse, as OpenAI names them (both APIs): in the error's `param`, or after "Unsupported
# parameter:" / "Unsupported value:". A nested one (`reasoning.summary`: an organization not verified for
# summaries; `text.verbosity`: codex models) goes alone; `stream` refused gets a whole answer, streamed to claude.
REFUSABLE = frozenset({"reasoning", "include", "text", "temperature", "top_p", "prompt_cache_key",
                       "parallel_tool_calls", "max_output_tokens", "stream", "store", "verbosity", "reasoning_effort"})
REFUSED = re.compile(rb"Unsupported (?:parameter|value):\s*'?([\w.]+)|\"param\":\s*\"([\w.]+)\"")
# A chat template that wants one system message, first (Qwen's, Gemma's on llama.cpp, vLLM, LM Studio):
# "System message must be at the beginning", "Conversation roles must alternate", "System role not supported".
SYSTEM_PLACEMENT = re.compile(rb"system[^.]{0,60}(beginning|first|position|not supported)|roles must alternate", re.I)
# Mistral's API and templates want an assistant turn between tool results and the user's next words.
USER_AFTER_TOOL = re.compile(rb"unexpected role .?user.? after role .?tool", re.I)
BRIDGE = "OK."
OUTPUT_CAPS = ("max_tokens", "max_completion_tokens", "max_output_tokens")


class Refusals:
    """What one model's provider refused: optional parameters (`reasoning_effort` to a model without
    reasoning, `reasoning.summary` to an organization not verified for it, ...), more output tokens
    than the model allows, and for APIs with a `messages` list,
    system messages past the start (strict chat templates) and a user message right after tool results
    (Mistral)."""

    def __init__(self, model: str):
        self.model = model
        self.parameters: set[str] = set()
        self.nested: set[str] = set()  # `reasoning.summary`: one key of an object parameter
        self.system_first = False
        self.bridge_tool_results = False
        self.output_cap: int | None = None

    def applied(self, body: dict) -> dict:
        body = {k: v for k, v in body.items() if k not in self.parameters}
        for path in self.nested:
            parent, _, child = path.partition(".")
            if isinstance(body.get(parent), dict) and child in body[parent]:
                body[parent] = {k: v for k, v in body[parent].items() if k != child}
                if not body[parent]:
                    del body[parent]
        if self.system_first:
            body["messages"] = system_first(body["messages"])
        if self.bridge_tool_results:
            body["messages"] = bridged(body["messages"])
        if self.output_cap:
            for key in OUTPUT_CAPS:
                if body.get(key, 0) > self.output_cap:
                    body[key] = self.output_cap
        return body

    def learn(self, body: dict, error: bytes) -> bool:
        """Whether the error named something new to avoid (then the request is worth one retry)."""
        cap = errors.output_cap(error)
        learnt = [name for name in OPTIONAL_PARAMETERS if name in body and name.encode() in error]
        self.parameters.update(learnt)
        for path in refused(body, error):
            if path in OUTPUT_CAPS and cap:
                continue  # a cap too high: lowered below, not dropped
            (self.nested if "." in path else self.parameters).add(path)
            learnt.append(path)
        messages = body.get("messages")
        if messages is not None and SYSTEM_PLACEMENT.search(error) and messages != system_first(messages):
            self.system_first = True
            learnt.append("system messages past the start")
        if messages is not None and USER_AFTER_TOOL.search(error) and not self.bridge_tool_results:
            self.bridge_tool_results = True
            learnt.append("a user message right after tool results")
        if cap and cap < (max_output(body) or 0):
            self.output_cap = cap
            learnt.append(f"over {cap} output tokens")
        if learnt:
            log.warning("ccs proxy: %s refuses %s; leaving them out", self.model, ", ".join(learnt))
        return bool(learnt)


def refused(body: dict, error: bytes) -> list[str]:
    """The parameters of `body` an error says the model refuses, as paths (`temperature`, `reasoning.summary`)."""
    paths = []
    for found in REFUSED.finditer(error):
        path = (found[1] or found[2]).decode()
        parent, _, child = path.partition(".")
        if parent not in REFUSABLE or parent not in body or path in paths:
            continue
        if child and not (isinstance(body[parent], dict) and child in body[parent]):
            continue
        paths.append(path)
    return paths


def max_output(body: dict) -> int | None:
    return next((body[key] for key in OUTPUT_CAPS if body.get(key)), None)


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
