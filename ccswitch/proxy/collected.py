"""A pipeline's answer collected whole instead of sent to the client: for the layers around the pipelines (web
search) that ask the target's model themselves, through the pipeline of its API kind, and read the answer as
one Anthropic message."""

from __future__ import annotations

import time

from . import jsonio
from .answer_shapes import parse_arguments
from .errors import ERROR_TYPES, ProxyError
from .pipeline import MAX_ANSWER
from .upstream import SSEParser

STATUS_OF = {kind: status for status, kind in ERROR_TYPES.items()}  # an error event's type -> a status


class Collected:
    """Stands in for the client's `Reply`: keeps the status and the bytes a pipeline answers with."""

    def __init__(self) -> None:
        self.status: int | None = None
        self.headers: dict = {}
        self.chunks: list[bytes] = []
        self.size = 0
        self.started_at: float | None = None

    @property
    def started(self) -> bool:
        return self.status is not None

    async def start(self, status: int, headers: dict) -> None:
        self.status, self.headers, self.started_at = status, headers, time.monotonic()

    async def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > MAX_ANSWER:
            raise ProxyError(502, f"the provider's answer is over {MAX_ANSWER // (1024 * 1024)} MiB", retry=False)
        self.chunks.append(data)

    def message(self, where: str) -> dict:
        """The answer as an Anthropic message; a ProxyError for an error the stream ended with, or an answer
        that is not a message (`where`: the provider's URL, for the message)."""
        raw = b"".join(self.chunks)
        if "text/event-stream" in str(self.headers.get("content-type", "")):
            return message_of_events(raw, where)
        try:
            message = jsonio.loads(raw)
        except ValueError:
            message = None
        if not isinstance(message, dict) or not isinstance(message.get("content"), list):
            raise ProxyError(502, f"the answer from {where} is not a message: {raw[:80]!r}", retry=False)
        return message


def message_of_events(raw: bytes, where: str) -> dict:
    """Anthropic's stream events read back into the message they carry, as a client (the SDK) reads them."""
    parser = SSEParser()
    message: dict | None = None
    partial: dict[int, str] = {}  # a tool call's input, as its JSON arrives
    for payload in [*parser.feed(raw), *parser.close()]:
        kind = payload.get("type")
        if kind == "error":
            error = payload.get("error") if isinstance(payload.get("error"), dict) else {}
            raise ProxyError(STATUS_OF.get(error.get("type"), 502), str(error.get("message") or "an error event"))
        if kind == "message_start":
            message = {**payload["message"], "content": []}
        elif message is None:
            continue
        elif kind == "content_block_start":
            message["content"].append(dict(payload["content_block"]))
        elif kind == "content_block_delta":
            _apply(message["content"][-1], payload["delta"], partial, len(message["content"]) - 1)
        elif kind == "message_delta":
            message.update({k: v for k, v in payload.get("delta", {}).items() if k in ("stop_reason", "stop_sequence")})
            message["usage"] = {**(message.get("usage") or {}), **(payload.get("usage") or {})}
    if message is None or message.get("stop_reason") is None:
        raise ProxyError(502, f"the stream from {where} ended before the answer did")
    for index, text in partial.items():
        message["content"][index]["input"] = parse_arguments(text)  # an object, whatever the model wrote
    return message


def _apply(block: dict, delta: dict, partial: dict[int, str], index: int) -> None:
    kind = delta.get("type")
    if kind == "text_delta":
        block["text"] = block.get("text", "") + delta.get("text", "")
    elif kind == "thinking_delta":
        block["thinking"] = block.get("thinking", "") + delta.get("thinking", "")
    elif kind == "signature_delta":
        block["signature"] = delta.get("signature", "")
    elif kind == "input_json_delta":
        partial[index] = partial.get(index, "") + delta.get("partial_json", "")
    elif kind == "citations_delta":
        block["citations"] = [*(block.get("citations") or []), delta.get("citation")]
