"""The provider side: who the upstream is (a value handed to each request), its HTTP client, reading
its answers (the body reader and the SSE parser)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import urlsplit

from .. import http_client
from ..apis import APIS, DEFAULT_API, RESERVED_BODY, RESERVED_HEADERS, key_headers
from ..profiles import default_model, on_this_machine, proxy_timeout, tier_model
from . import jsonio
from .dialect import Options, dialect_for
from .errors import ProxyError

TIERS = ("opus", "sonnet", "haiku", "fable")
BUFFER_LIMIT = 1024 * 1024  # bytes read from a provider and not yet taken by the writer
CLOSE_WAIT = 5.0  # seconds a closed response may take to end its reading task
TRANSPORT_ERRORS = http_client.errors()  # how a provider's connection fails under a request or a reader


@dataclass(frozen=True)
class Upstream:
    """One provider behind the proxy: where it is, which API it speaks (apis.APIS: "anthropic" is passed
    through, the others translated), its key and how it takes it, and how Claude's model names map onto
    its models."""

    name: str  # the profile's
    base_url: str
    key: str | None = field(default=None, repr=False)
    model: str | None = None
    models: dict[str, str] = field(default_factory=dict)
    max_output_tokens: int | None = None
    reasoning_effort: str | None = None
    reasoning_summary: str | None = None
    verbosity: str | None = None
    reasoning: dict = field(default_factory=dict)  # the profile's `reasoning` table
    timeout: float = 590.0  # seconds without a byte from the provider (or room at the client) before giving up
    api: str = DEFAULT_API
    auth: str = "bearer"  # how the key is sent: "bearer", "api-key" (x-api-key) or "none"
    # the profile's `headers` (and its ANTHROPIC_CUSTOM_HEADERS), for every request
    custom_headers: dict[str, str] = field(default_factory=dict, repr=False)
    extra_body: dict = field(default_factory=dict)  # the profile's, merged into every request body
    keys: tuple[str, ...] = field(default=(), repr=False)  # every key of its pool (`ccs key add`), `key` first
    vision: str | None = None  # the profile's `vision`: its models take no images, this route describes them

    @classmethod
    def from_profile(cls, profile, secret: str | None, environ, pool: list[str] = ()) -> Upstream:
        """`pool`: every key the profile holds, `secret` first (when it holds more than one)."""
        return cls(name=profile.name, base_url=profile.url.rstrip("/"), key=secret, keys=tuple(pool),
                   model=profile.model, models=dict(profile.models), max_output_tokens=profile.max_output_tokens,
                   reasoning_effort=profile.reasoning_effort, reasoning_summary=profile.reasoning_summary,
                   verbosity=profile.verbosity, reasoning=dict(profile.reasoning),
                   timeout=proxy_timeout(profile, environ),
                   api=profile.api, auth=profile.auth,
                   custom_headers={**parse_headers(profile.env.get("ANTHROPIC_CUSTOM_HEADERS", "")),
                                   **profile.headers},
                   extra_body=dict(profile.extra_body), vision=profile.vision)

    @property
    def url(self) -> str:
        """Where requests go: its API's endpoint under the base URL."""
        return self.base_url + APIS[self.api].messages

    @property
    def models_url(self) -> str:
        return self.base_url + APIS[self.api].models

    @cached_property
    def host(self) -> str:
        """The provider's host name, asked for per tool and per message: parsed once."""
        return urlsplit(self.base_url).hostname or ""

    def options(self, model: str) -> Options:
        """What a translator needs to send `model` (the provider's name for it) to this provider."""
        return Options(model, dialect_for(self.host, model), self.max_output_tokens, self.reasoning_effort,
                       self.reasoning_summary, self.verbosity, self.reasoning)

    @property
    def on_loopback(self) -> bool:
        return on_this_machine(self.host)

    def headers(self) -> dict[str, str]:
        """What this provider gets beside the body: its own custom headers (never one that carries a key or
        belongs to the connection) and its key, as the profile sends it."""
        own = {name: value for name, value in self.custom_headers.items() if name.lower() not in RESERVED_HEADERS}
        return {**own, **key_headers(self.api, self.auth, self.key)}

    def with_extra_body(self, body: dict) -> dict:
        """A request body with the profile's `extra_body` merged in (tables key by key); what the request is
        (RESERVED_BODY) stays as it is."""
        return merged(body, {key: value for key, value in self.extra_body.items() if key not in RESERVED_BODY}) \
            if self.extra_body else body

    def model_for(self, requested: str) -> str:
        """Real model names pass through; a `claude-*` name (or none) maps by its tier word to the profile's model."""
        if requested and not requested.startswith("claude"):
            return requested
        tier = tier_of(requested)
        return (tier_model(self.model, self.models, tier) if tier else default_model(self.model, self.models)) \
            or requested

    def listed_models(self) -> list[str]:
        return list(dict.fromkeys(m for m in (self.model, *self.models.values()) if m))


def merged(base: dict, extra: dict) -> dict:
    """`base` with `extra` on top: a table in both merges key by key, anything else from `extra` wins."""
    out = dict(base)
    for key, value in extra.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def parse_headers(text: str) -> dict[str, str]:
    """`ANTHROPIC_CUSTOM_HEADERS` as claude reads it: `Name: value` lines."""
    pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {name.strip(): value.strip() for name, value in pairs if name.strip()}


def tier_of(model: str) -> str | None:
    """The tier a Claude model name stands for: `claude-opus-4-5` -> "opus"; mythos is fable's tier."""
    model = model.lower()
    for tier in TIERS:
        if tier in model:
            return tier
    return "fable" if "mythos" in model else None


def new_client(upstream: Upstream, socket_factory=None):
    """One pooled client per provider: connections to it are reused across requests (see http_client)."""
    return http_client.session(upstream.base_url, read_timeout=upstream.timeout, socket_factory=socket_factory)


class BodyReader:
    """Reads a provider's response body in a task of its own, ahead of the writer: each time the writer
    wakes it takes everything that arrived meanwhile, so the client gets one write per network read
    rather than one per chunk. Reading pauses while `BUFFER_LIMIT` bytes wait to be taken (a client that
    stops reading must not make the proxy hold the provider's whole answer in memory).

    The task ends when the body does (the connection then goes back to the pool), or when `close` closes
    the response under it; it is cancelled only as a last resort.
    """

    def __init__(self, response):  # an aiohttp ClientResponse, its headers in
        self.response = response
        self.status: int = response.status
        self.error: Exception | None = None  # why the body broke off, if it did
        self.ended = False
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._closing = False
        self._waiting: asyncio.Future | None = None  # the writer, waiting for bytes
        self._room: asyncio.Future | None = None  # the reading task, waiting for the writer to take some
        self._task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            while chunk := await self.response.content.readany():  # decoded, if a provider compresses anyway
                if self._closing:  # what was still buffered, after `close`: nobody will take it
                    break
                self._chunks.append(chunk)
                self._buffered += len(chunk)
                self._wake()
                if self._buffered >= BUFFER_LIMIT:
                    self._room = asyncio.get_running_loop().create_future()
                    await self._room
        except TRANSPORT_ERRORS as e:
            self.error = e
        finally:
            self.ended = True
            self._wake()

    def _wake(self) -> None:
        if self._waiting is not None and not self._waiting.done():
            self._waiting.set_result(None)

    def wake(self) -> None:
        """Make a waiting `take` return now, with whatever there is (perhaps nothing: time for a ping)."""
        self._wake()

    async def take(self) -> list[bytes]:
        """What arrived since the last call, waiting until something did (or `wake`, the end)."""
        if not self._chunks and not self.ended:
            self._waiting = asyncio.get_running_loop().create_future()
            try:
                await self._waiting
            finally:
                self._waiting = None
        chunks, self._chunks, self._buffered = self._chunks, [], 0
        self._make_room()
        return chunks

    def _make_room(self) -> None:
        """Let a reading task that paused on a full buffer go on."""
        if self._room is not None and not self._room.done():
            self._room.set_result(None)

    async def read_all(self, limit: int) -> bytes:
        """The whole body; an error past `limit` bytes or when the body broke off."""
        pieces: list[bytes] = []
        size = 0
        while True:
            for chunk in await self.take():
                pieces.append(chunk)
                size += len(chunk)
            if size > limit:
                raise ProxyError(502, f"the provider's answer is over {limit // (1024 * 1024)} MiB", retry=False)
            if self.ended:
                if self.error is not None:
                    raise self.error
                return b"".join(pieces)

    async def close(self, grace: float = 0.0) -> None:
        """Let the body end by itself for up to `grace` seconds (a connection read to its end goes back to
        the pool for the next request), else close the response (and a connection that broke or timed out)
        under the reading task; then wait for it."""
        if grace and not self.ended:
            await asyncio.wait({self._task}, timeout=grace)
        self._closing = True
        self.response.close()  # a body read to its end has given its connection back; else it is closed too
        self._make_room()
        if self._task.done():  # the usual case (a whole answer, a finished stream): no timer, no loop turn
            return
        await asyncio.wait({self._task}, timeout=CLOSE_WAIT)
        if not self._task.done():  # a transport that would not let go: the last resort, and never seen so far
            self._task.cancel()


class SSEParser:
    """Server-sent events from raw bytes: any read boundary, CRLF or LF, comments, `event:`/`id:` lines.

    Lines are split as bytes, so a UTF-8 character cut across two reads is decoded whole.
    `feed` returns the JSON payloads of the complete events; `[DONE]` ends the stream.
    """

    def __init__(self) -> None:
        self.buffer = b""
        self.data: list[bytes] = []
        self.done = False

    def feed(self, chunk: bytes) -> list[dict]:
        *lines, self.buffer = (self.buffer + chunk).split(b"\n")
        payloads: list[dict] = []
        for line in lines:  # one loop, no call per line: this runs for every token of every stream
            if line.startswith(b"data:"):
                value = line[5:].rstrip(b"\r")
                self.data.append(value[1:] if value[:1] == b" " else value)
            elif self.data and not line.rstrip(b"\r"):
                self._event(payloads)
            # comments (":"), event:, id:, retry: carry nothing we need
        return payloads

    def close(self) -> list[dict]:
        """The last event, when the stream ended without a blank line."""
        return self.feed(b"\n\n")

    def _event(self, payloads: list[dict]) -> None:
        raw = b"\n".join(self.data).strip()
        self.data = []
        if raw == b"[DONE]":
            self.done = True
        elif raw and not self.done:
            try:
                payloads.append(jsonio.loads(raw))
            except ValueError:
                raise ProxyError(502, f"the provider sent malformed stream data: {raw[:200]!r}", retry=False) from None
