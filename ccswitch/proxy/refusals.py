"""What a model's provider refused at run time, learnt from its errors so later requests avoid it at once."""

from __future__ import annotations

import logging
import re

from . import errors

log = logging.getLogger("ccswitch.proxy")

# Parameters we add that a provider may not take; a 400 naming one is retried without it.
OPTIONAL_PARAMETERS = ("reasoning_effort", "reasoning", "stream_options", "parallel_tool_calls", "top_k", "user")
# A chat template that wants one system message, first (Qwen's, Gemma's on llama.cpp, vLLM, LM Studio):
# "System message must be at the beginning", "Conversation roles must alternate", "System role not supported".
SYSTEM_PLACEMENT = re.compile(rb"system[^.]{0,60}(beginning|first|position|not supported)|roles must alternate", re.I)
# Mistral's API and templates want an assistant turn between tool results and the user's next words.
USER_AFTER_TOOL = re.compile(rb"unexpected role .?user.? after role .?tool", re.I)
BRIDGE = "OK."
OUTPUT_CAPS = ("max_tokens", "max_completion_tokens", "max_output_tokens")


class Refusals:
    """What one model's provider refused: optional parameters (`reasoning_effort` to a model without
    reasoning, ...), more output tokens than the model allows, and for APIs with a `messages` list,
    system messages past the start (strict chat templates) and a user message right after tool results
    (Mistral)."""

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
            for key in OUTPUT_CAPS:
                if body.get(key, 0) > self.output_cap:
                    body[key] = self.output_cap
        return body

    def learn(self, body: dict, error: bytes) -> bool:
        """Whether the error named something new to avoid (then the request is worth one retry)."""
        learnt = [name for name in OPTIONAL_PARAMETERS if name in body and name.encode() in error]
        self.parameters.update(learnt)
        messages = body.get("messages")
        if messages is not None and SYSTEM_PLACEMENT.search(error) and messages != system_first(messages):
            self.system_first = True
            learnt.append("system messages past the start")
        if messages is not None and USER_AFTER_TOOL.search(error) and not self.bridge_tool_results:
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
