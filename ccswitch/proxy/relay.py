"""The relay: Anthropic-API providers behind the proxy. The request goes as claude sent it with only the
model rewritten (and thinking another provider signed left out), the answer comes back as it arrives,
read on the side for its usage and for which provider signed its thinking."""

from __future__ import annotations

import logging
import re
from collections import OrderedDict

from ..apis import RESERVED_HEADERS
from . import jsonio
from .pipeline import CLIENT_LEFT, JSON_CONTENT, Exchange, StreamClock
from .tool_ids import ours
from .upstream import BodyReader

# Never forwarded: the session token (the provider gets its own key), what belongs to one connection or body,
# and the encodings claude accepts (the proxy's client asks for its own).
NOT_FORWARDED = RESERVED_HEADERS | {"accept-encoding"}
MAX_LINE = 1024 * 1024  # a stream line longer than this is not read for usage (no event we read is)
INVALID_SIGNATURE = re.compile(rb"invalid.{0,20}signature", re.I)  # "Invalid `signature` in `thinking` block"
# The provider's response headers claude reads; the rest describe its connection, not ours.
RELAYED = ("content-type", "request-id", "anthropic-ratelimit-requests-remaining",
           "anthropic-ratelimit-tokens-remaining", "retry-after", "x-should-retry")

log = logging.getLogger("ccswitch.proxy")


class Relay(Exchange):
    """The provider's answer as it arrives, status and bytes; read on the side for usage and signatures."""

    async def run(self) -> None:
        upstream = self.upstream
        body = upstream.with_extra_body(request_body(self.req, self.model, upstream.name, self.shared.signatures))
        own = upstream.headers()
        headers = {**forwarded_headers(self.headers, replaced=own), **JSON_CONTENT, **own}
        reader = await self.send(self.content(body), headers)
        if reader.status == 400:
            raw = await self.whole(reader)
            unsigned = upstream.with_extra_body(request_body(self.req, self.model, upstream.name,
                                                             self.shared.signatures, strict=True))
            if not (INVALID_SIGNATURE.search(raw) and unsigned != body):
                raise self.upstream_error(reader, raw, body)
            # thinking signed in a session this proxy never saw (claude --resume): once more without it
            log.warning("ccs proxy: %s refused thinking signed elsewhere; sending it without", self.upstream.name)
            body = unsigned
            reader = await self.send(self.content(body), headers)
        scan = StreamScan(self.upstream.name, self.shared.signatures)
        try:
            if reader.status >= 400 or "text/event-stream" not in reader.response.headers.get("content-type", ""):
                raw = await self.whole(reader)
                if reader.status >= 400:
                    raise self.upstream_error(reader, raw, body)
                scan.whole(raw)
                self.outcome.status, self.outcome.usage = reader.status, scan.usage
                await self.answer_whole(reader.status, relayed_headers(reader), raw)
                return
            await self._stream(reader, scan)
        finally:
            await reader.close()

    async def _stream(self, reader: BodyReader, scan: StreamScan) -> None:
        clock = StreamClock(reader, self.upstream.timeout, pings=False)
        try:  # the usage seen so far counts, however the stream ends (a client that leaves was billed for it)
            while True:
                chunks = await reader.take()
                if not chunks and not reader.ended:
                    continue
                if not self.reply.started:
                    if reader.ended and reader.error is not None and not chunks:
                        raise self.transport_error(reader.error)
                    await self.reply.start(reader.status, relayed_headers(reader))
                    self.outcome.status = reader.status
                data = b"".join(chunks)
                scan.feed(data)
                if not await clock.write(self.reply, data):
                    self.outcome.status = CLIENT_LEFT
                    return
                if reader.ended:
                    self.outcome.complete = reader.error is None
                    if reader.error is not None:
                        log.warning("ccs proxy: the stream from %s broke off: %s", self.upstream.url, reader.error)
                    return
        finally:
            self.outcome.usage = scan.usage
            clock.stop()


def relayed_headers(reader: BodyReader) -> dict[str, str]:
    return {name: reader.response.headers[name] for name in RELAYED if name in reader.response.headers}


def forwarded_headers(headers, replaced=()) -> dict[str, str]:
    """claude's own headers (anthropic-version, anthropic-beta, its session id, user agent) for the provider,
    but those the profile sends itself (`replaced`, any spelling); a client that sends no anthropic-version
    gets the one every Anthropic-API provider takes."""
    dropped = NOT_FORWARDED | {name.lower() for name in replaced}
    forwarded = {name: value for name, value in headers.items() if name.lower() not in dropped}
    if not any(name.lower() == "anthropic-version" for name in forwarded):
        forwarded["anthropic-version"] = "2023-06-01"
    return forwarded


class Signatures:
    """Which provider (profile) signed each thinking block this proxy relayed, for the last few thousand.
    After `/model` moves a conversation to another Anthropic-API provider, thinking signed elsewhere is
    left out of what it is sent: Anthropic answers "Invalid signature in thinking block" otherwise."""

    LIMIT = 4096

    def __init__(self) -> None:
        self.signer: OrderedDict[int, str] = OrderedDict()

    def record(self, signature: str, profile: str) -> None:
        self.signer[hash(signature)] = profile.lower()
        if len(self.signer) > self.LIMIT:
            self.signer.popitem(last=False)

    def foreign(self, signature: str, profile: str, strict: bool = False) -> bool:
        """Signed by another provider: empty or ours (our own translation's), or one we saw another profile sign
        (`strict`: or one we never saw)."""
        if not signature or ours(signature):
            return True
        signer = self.signer.get(hash(signature))
        if signer is not None:
            self.signer.move_to_end(hash(signature))  # in use: kept longest
        return signer != profile.lower() if strict or signer is not None else False


def request_body(req: dict, model: str, profile: str, signatures: Signatures, strict: bool = False) -> dict:
    """What the provider gets: the request with its model, without thinking another provider signed (`strict`:
    nor thinking of unknown origin). A message left empty is left out; a tool turn whose thinking went
    goes without `thinking` (and claude's edits that need it): Anthropic wants a tool turn's thinking back."""
    body = {**req, "model": model}
    messages = req.get("messages")
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        return body  # the provider says what is wrong with it
    kept = [_without_foreign_thinking(m, profile, signatures, strict) for m in messages]
    if all(k is m for k, m in zip(kept, messages)):
        return body
    last = next((i for i in range(len(kept) - 1, -1, -1) if kept[i].get("role") == "assistant"), None)
    if last is not None and kept[last] is not messages[last] and _uses_tools(kept[last]) and not _thinks(kept[last]):
        body.pop("thinking", None)
        edits = (body.get("context_management") or {}).get("edits")
        if isinstance(edits, list):
            edits = [e for e in edits if not (isinstance(e, dict) and str(e.get("type", "")).startswith(
                "clear_thinking"))]
            body["context_management"] = {**body["context_management"], "edits": edits}
            if not edits and len(body["context_management"]) == 1:
                del body["context_management"]
    body["messages"] = [m for m in kept if m.get("content") != []]
    return body


def _without_foreign_thinking(message: dict, profile: str, signatures: Signatures, strict: bool) -> dict:
    content = message.get("content")
    if message.get("role") != "assistant" or not isinstance(content, list):
        return message
    kept = [b for b in content if not (isinstance(b, dict) and b.get("type") == "thinking"
                                       and signatures.foreign(str(b.get("signature") or ""), profile, strict))]
    return message if len(kept) == len(content) else {**message, "content": kept}


def _uses_tools(message: dict) -> bool:
    return any(isinstance(b, dict) and b.get("type") == "tool_use" for b in message["content"])


def _thinks(message: dict) -> bool:
    return any(isinstance(b, dict) and b.get("type") in ("thinking", "redacted_thinking")
               for b in message["content"])


class StreamScan:
    """Reads a relayed Anthropic stream on the side, without holding it up: the usage (message_start's,
    then message_delta's) and the signatures of its thinking. Only the few lines that can hold those are parsed."""

    def __init__(self, profile: str, signatures: Signatures):
        self.profile = profile
        self.signatures = signatures
        self.usage: dict | None = None
        self.buffer = b""

    def feed(self, chunk: bytes) -> None:
        data = self.buffer + chunk if self.buffer else chunk
        end = data.rfind(b"\n") + 1  # whole lines up to here; the rest waits for the next chunk
        self.buffer = data[end:]
        if len(self.buffer) > MAX_LINE:
            self.buffer = b""
        # most reads hold only text deltas: one search of the whole read, no split into lines
        if data.find(b'"message_', 0, end) < 0 and data.find(b"signature_delta", 0, end) < 0:
            return
        for line in data[:end].split(b"\n"):
            if line.startswith(b"data:") and (b'"message_' in line or b"signature_delta" in line):
                self._event(line[5:])

    def _event(self, data: bytes) -> None:
        payload = _json_object(data)
        kind = payload.get("type")
        if kind == "message_start":
            self._usage(_object(payload.get("message")).get("usage"))
        elif kind == "message_delta":
            self._usage(payload.get("usage"))
        elif kind == "content_block_delta":
            signature = _object(payload.get("delta")).get("signature")
            if isinstance(signature, str) and signature:
                self.signatures.record(signature, self.profile)

    def whole(self, raw: bytes) -> None:
        """A whole (non-streamed) message."""
        message = _json_object(raw)
        self._usage(message.get("usage"))
        content = message.get("content")
        for block in content if isinstance(content, list) else []:
            if isinstance(block, dict) and block.get("type") == "thinking" and block.get("signature"):
                self.signatures.record(str(block["signature"]), self.profile)

    def _usage(self, usage) -> None:  # read, never trusted: an odd shape only means no usage
        if isinstance(usage, dict):
            self.usage = {**(self.usage or {}), **{k: v for k, v in usage.items() if isinstance(v, int)}}


def _object(value) -> dict:
    return value if isinstance(value, dict) else {}


def _json_object(raw: bytes) -> dict:
    """A JSON object read on the side; anything else reads as empty."""
    try:
        return _object(jsonio.loads(raw))
    except ValueError:
        return {}
