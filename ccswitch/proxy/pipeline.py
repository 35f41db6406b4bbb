"""What every API kind's pipeline shares: one request to one target (sending it, reading an answer whole,
an upstream error in Anthropic's words), the client's side of the answer (`Reply`), the one timer of a
stream (`StreamClock`), and how the request ended (`Outcome`, one log line and one usage row)."""

from __future__ import annotations

import asyncio
import logging
import time

from ..errors import printable
from ..http_client import web
from ..usage import Request
from . import errors, jsonio
from .refusals import max_output
from .errors import ProxyError
from .router import Purpose, Target
from .upstream import TRANSPORT_ERRORS, BodyReader, Upstream

PING_AFTER = 10.0  # seconds without a byte to the client before a `ping` event
MAX_ANSWER = 64 * 1024 * 1024  # a whole (non-streamed) answer from the provider
CLIENT_LEFT = 499  # the status a request that the client left before its answer ends with, in the log
JSON_CONTENT = {"content-type": "application/json"}
SSE_HEADERS = {"content-type": "text/event-stream", "cache-control": "no-cache"}
SESSION_HEADER = "x-claude-code-session-id"  # claude's conversation, on each of its requests

log = logging.getLogger("ccswitch.proxy")


class Exchange:
    """One request to one target. A pipeline (relay, chat, ...) subclasses it with `run`."""

    def __init__(self, shared, upstream: Upstream, model: str, req: dict, headers, reply: Reply, outcome: Outcome,
                 reported):
        self.shared = shared  # the proxy's Exchanges: clients, refusals, signatures
        self.reported = reported  # an error as the client may see it (keys masked), logged
        self.upstream = upstream
        self.model = model
        self.req = req
        self.headers = headers  # the client's request headers
        self.reply = reply
        self.outcome = outcome

    async def run(self) -> None:
        raise NotImplementedError

    @staticmethod
    def content(body: dict) -> bytes:
        try:
            return jsonio.dumps(body)
        except RecursionError:
            raise ProxyError(400, "the request is nested too deeply to send") from None

    async def send(self, content: bytes, headers: dict) -> BodyReader:
        """A reader of the provider's answer, once its headers are in."""
        client = self.shared.client_for(self.upstream)
        try:
            response = await client.post(self.upstream.url, data=content, headers=headers, allow_redirects=False)
        except TRANSPORT_ERRORS as e:
            raise self.transport_error(e) from None
        return BodyReader(response)

    async def whole(self, reader: BodyReader) -> bytes:
        """A whole answer body, closed after reading."""
        try:
            return await reader.read_all(MAX_ANSWER)
        except TRANSPORT_ERRORS as e:
            raise self.transport_error(e) from None
        finally:
            await reader.close()

    def transport_error(self, error: BaseException) -> ProxyError:
        return errors.from_transport(error, self.upstream.url, self.upstream.name)

    def upstream_error(self, reader: BodyReader, raw: bytes, body: dict) -> ProxyError:
        return errors.from_upstream_status(reader.status, raw, reader.response.headers, self.upstream.name,
                                           max_output(body))

    async def answer_whole(self, status: int, headers: dict, data: bytes) -> None:
        """A whole answer to the client, with its length."""
        await self.reply.start(status, {**headers, "content-length": str(len(data))})
        await self.reply.write(data)
        self.outcome.complete = True


class Reply:
    """The client's side of the answer, knowing whether it has begun (then no fallback). On aiohttp's
    StreamResponse: a stream is sent chunked, a whole answer with its length. aiohttp ends it once the
    handler has returned it (so a client that leaves as the last bytes arrive has had them all)."""

    def __init__(self, request):
        self.request = request
        self.response = None
        self.started_at: float | None = None

    @property
    def started(self) -> bool:
        return self.response is not None

    async def start(self, status: int, headers: dict) -> None:
        self.started_at = time.monotonic()
        self.response = web().StreamResponse(status=status, headers=headers)
        await self.response.prepare(self.request)

    async def write(self, data: bytes) -> None:
        await self.response.write(data)


REPLY = web().RequestKey("ccs-reply", Reply)  # where a request keeps the answer an exchange began


class StreamClock:
    """The times of one stream, on one timer that ticks a few times per PING_AFTER, rather than a
    timeout around every read and write (each costs as much as translating an event): a `ping` once
    the client has had nothing for PING_AFTER seconds (translated streams only: a relayed one has the
    provider's own), and giving up on a client that takes nothing of a write for `limit` seconds (it
    stopped reading: the stream's task is cancelled, which `write` turns into False, and the caller's
    return closes both connections)."""

    def __init__(self, reader: BodyReader, limit: float, pings: bool = True):
        self.loop = asyncio.get_running_loop()
        self.task = asyncio.current_task()
        self.reader = reader
        self.limit = limit
        self.pings = pings
        self.tick = min(PING_AFTER, limit) / 4
        self.started = False  # the response has begun (pings only then)
        self.writing = False
        self.since = self.loop.time()  # when the write under way began, else when the last one ended
        self.stalled = False
        self.timer = self.loop.call_later(self.tick, self._check)

    def _check(self) -> None:
        now = self.loop.time()
        next_check = now + self.tick
        if self.writing and now - self.since >= self.limit:
            self.stalled = True
            self.task.cancel()
            return
        if not self.writing and self.pings:
            due = self.since + PING_AFTER
            if now < due:
                next_check = min(next_check, due)  # a ping on time, not up to a tick late
            elif self.started:
                self.reader.wake()  # `take` returns nothing: the loop sends a ping
        self.timer = self.loop.call_at(next_check, self._check)

    async def write(self, reply: Reply, body: bytes) -> bool:
        """Send a piece of the stream; False when the client took none of it for `limit` seconds, or went away."""
        self.writing, self.since = True, self.loop.time()
        try:
            await reply.write(body)
        except asyncio.CancelledError:
            if self.stalled and self.task.uncancel() == 0:
                log.warning("ccs proxy: the client read nothing for %s s; closing its stream", self.limit)
                return False
            raise
        except ConnectionError:  # the client left mid-write (aiohttp says so on the next write)
            return False
        finally:
            self.writing, self.since = False, self.loop.time()
        return True

    def stop(self) -> None:
        self.timer.cancel()


class Outcome:
    """How one request ended, one line in the proxy log and one row in the usage log: what was asked, which
    target answered (and which were skipped), how, how long."""

    def __init__(self, requested: str, stream: bool, session: str | None = None, purpose: Purpose = Purpose()):
        self.requested = requested
        self.stream = stream
        self.session = session
        self.purpose = purpose
        self.key: str | None = None  # which of the target's keys served it (masked), for a profile with a pool
        self.target: Target | None = None
        self.skipped: list[str] = []  # tried and failed
        self.cooling: list[Target] = []  # put last for failing lately
        self.status = CLIENT_LEFT  # until an answer is sent
        self.error: str | None = None  # the Anthropic error type claude got
        self.complete = False  # the whole answer reached the client
        self.usage: dict | None = None
        self.at = time.time()
        self.started = time.monotonic()
        self.first_byte: float | None = None  # seconds until the answer began
        self.duration = 0.0

    def ended(self, first_byte_at: float | None) -> None:
        self.duration = time.monotonic() - self.started
        self.first_byte = None if first_byte_at is None else first_byte_at - self.started
        if self.error is None and not self.complete:
            self.error = "client_left" if self.status == CLIENT_LEFT else "incomplete"

    def request(self) -> Request:
        target = self.target
        return Request(self.at, self.session, target and target.profile, target and target.model, self.requested,
                       self.stream, self.status, self.usage, self.first_byte, self.duration, self.error,
                       tuple(self.skipped), self.purpose.request_class, self.key)

    def __str__(self) -> str:
        usage = self.usage or {}
        tokens = (f" in {usage.get('input_tokens', 0)} (+{usage.get('cache_read_input_tokens', 0)} cached) "
                  f"out {usage.get('output_tokens', 0)}" if self.usage else "")
        failed = f" after {', '.join(self.skipped)} failed" if self.skipped else ""
        untried = [str(t) for t in self.cooling if t != self.target and not any(s.startswith(f"{t} (")
                                                                                 for s in self.skipped)]
        cooling = f"; {', '.join(untried)} cooling down" if untried else ""
        kind, agent = self.purpose
        purpose = f" [{kind}{f' {agent}' if agent else ''}]" if kind or agent else ""
        line = (f"{self.requested}{purpose} -> {self.target or '-'} {'stream' if self.stream else 'whole'} "
                f"{self.status}{tokens} {self.duration * 1000:.0f} ms{failed}{cooling}")
        return printable(line)  # a client names the model and the purpose: never a line of its own in the log
