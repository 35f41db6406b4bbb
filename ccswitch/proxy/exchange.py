"""One request over its targets: translate for the target's kind (or pass through), send (raced
against the client leaving), learn-and-retry once, fall back to the next target before anything
reached the client, relay or translate the answer, and end in one `Outcome` (one log line)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time

import httpx2

from ..usage import Request
from . import errors, jsonio
from .anthropic import PING, InvalidRequest, estimate_tokens, message_as_events
from .dialect import Refusals, max_output
from .errors import ProxyError
from .from_openai import StreamTranslator, translate_response
from .passthrough import Signatures, StreamScan, forwarded_headers, request_body
from .router import Router, Target
from .to_openai import translate_request
from .upstream import TRANSPORT_ERRORS, BodyReader, SSEParser, Upstream, new_client

PING_AFTER = 10.0  # seconds without a byte to the client before a `ping` event
MAX_ANSWER = 64 * 1024 * 1024  # a whole (non-streamed) answer from the provider
CLIENT_LEFT = 499  # the status a request that the client left before its answer ends with, in the log
DRAIN_GRACE = 2.0  # seconds the end of a finished stream's body may take, so its connection can be reused
JSON_CONTENT = {"content-type": "application/json"}
INVALID_SIGNATURE = re.compile(rb"invalid.{0,20}signature", re.I)  # "Invalid `signature` in `thinking` block"
SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
SESSION_HEADER = b"x-claude-code-session-id"

log = logging.getLogger("ccswitch.proxy")


def falls_back(error: ProxyError) -> bool:
    """Worth the next target: rate limited, overloaded, a server error, no connection, no answer in time."""
    return error.hidden is None and (error.status == 429 or error.status >= 500)


class Exchanges:
    """What every request of one proxy shares: the router, a pooled client per provider, what each
    model refused, which provider signed which thinking. `record(request)`: where each request's end goes
    (the usage log), or None."""

    def __init__(self, router: Router, client: httpx2.AsyncClient | None = None, record=None):
        self.router = router
        self.record = record
        self.client = client  # one for every provider (tests), else one each
        self.clients: dict[str, httpx2.AsyncClient] = {}
        self.refusals: dict[tuple[str, str], Refusals] = {}
        self.signatures = Signatures()

    def client_for(self, upstream: Upstream) -> httpx2.AsyncClient:
        if self.client is not None:
            return self.client
        client = self.clients.get(upstream.name)
        if client is None:
            client = self.clients[upstream.name] = new_client(upstream)
        return client

    async def close(self) -> None:
        for client in [*self.clients.values(), *([self.client] if self.client else [])]:
            await client.aclose()

    async def messages(self, req: dict, headers: list, receive, send, reported) -> None:
        """Answer one /v1/messages request, trying its targets in turn. `reported(error)`: an error as the
        client may see it (keys masked), logged."""
        requested = req.get("model") or ""
        if not isinstance(requested, str):
            raise ProxyError(400, "model: must be a string")
        outcome = Outcome(requested, req.get("stream") is True, session_of(headers))
        reply = Reply(send)
        client_left = asyncio.ensure_future(wait_for_disconnect(receive))
        try:
            routes = await self.router.routes(requested)
            outcome.cooling = [r.target for r in routes if self.router.health.cooling(r.target)]
            for number, (target, upstream) in enumerate(routes, 1):
                outcome.target = target
                exchange = Exchange(self, upstream, target.model, req, headers, reply, client_left, outcome,
                                    reported)
                try:
                    await (exchange.chat() if upstream.kind == "openai" else exchange.relay())
                except ProxyError as e:
                    if reply.started or not falls_back(e) or number == len(routes):
                        raise
                    self.router.health.failed(target, e)
                    outcome.skipped.append(f"{target} ({e.status})")
                    log.warning("ccs proxy: %s failed (%s %s); trying %s", target, e.status,
                                self.router.masked(e.message), routes[number].target)
                    continue
                if outcome.complete:  # not when the client left, or the stream broke off
                    self.router.health.succeeded(target)
                return
        except ProxyError as e:
            outcome.status, outcome.error = e.status, e.error_type
            if outcome.target is not None and falls_back(e):
                self.router.health.failed(outcome.target, e)
            raise
        except Exception:  # a bug of ours, answered by the app as a 500
            outcome.status, outcome.error = 500, "api_error"
            raise
        finally:
            client_left.cancel()
            outcome.ended(reply.started_at)
            log.info("%s", outcome)
            if self.record is not None:
                self.record(outcome.request())


def session_of(headers: list) -> str | None:
    for name, value in headers:
        if name == SESSION_HEADER:
            return value[:200].decode("latin-1")
    return None


class Reply:
    """The client's side of the ASGI `send`, knowing whether the answer has begun (then no fallback)."""

    def __init__(self, send):
        self.send = send
        self.started = False
        self.started_at: float | None = None

    async def start(self, status: int, headers: list) -> None:
        self.started, self.started_at = True, time.monotonic()
        await self.send({"type": "http.response.start", "status": status, "headers": headers})


class Exchange:
    """One request to one target."""

    def __init__(self, shared: Exchanges, upstream: Upstream, model: str, req: dict, headers: list, reply: Reply,
                 client_left: asyncio.Future, outcome: Outcome, reported):
        self.shared = shared
        self.reported = reported
        self.upstream = upstream
        self.model = model
        self.req = req
        self.headers = headers
        self.reply = reply
        self.client_left = client_left
        self.outcome = outcome

    # ---------------------------------------------------------------- Anthropic API: pass-through

    async def relay(self) -> None:
        """The provider's answer as it arrives, status and bytes; read on the side for usage and signatures."""
        body = request_body(self.req, self.model, self.upstream.name, self.shared.signatures)
        headers = {**forwarded_headers(self.headers), **JSON_CONTENT, **self.upstream.headers()}
        reader = await self._send(self._content(body), headers)
        if reader is not None and reader.response.status_code == 400:
            raw = await self._whole(reader)
            if raw is None:
                return
            unsigned = request_body(self.req, self.model, self.upstream.name, self.shared.signatures, strict=True)
            if not (INVALID_SIGNATURE.search(raw) and unsigned != body):
                raise self._upstream_error(reader.response, raw, body)
            # thinking signed in a session this proxy never saw (claude --resume): once more without it
            log.warning("ccs proxy: %s refused thinking signed elsewhere; sending it without", self.upstream.name)
            body = unsigned
            reader = await self._send(self._content(body), headers)
        if reader is None:
            return
        response = reader.response
        scan = StreamScan(self.upstream.name, self.shared.signatures)
        try:
            if response.status_code >= 400 or "text/event-stream" not in response.headers.get("content-type", ""):
                raw = await self._whole(reader)
                if raw is None:
                    return
                if response.status_code >= 400:
                    raise self._upstream_error(response, raw, body)
                scan.whole(raw)
                self.outcome.status, self.outcome.usage = response.status_code, scan.usage
                await self.reply.start(response.status_code, [*relayed_headers(response),
                                                              (b"content-length", str(len(raw)).encode())])
                await self.reply.send({"type": "http.response.body", "body": raw})
                self.outcome.complete = True
                return
            await self._relay_stream(reader, scan)
        finally:
            await reader.close()

    async def _relay_stream(self, reader: BodyReader, scan: StreamScan) -> None:
        clock = StreamClock(reader, self.upstream.timeout, pings=False)
        try:  # the usage seen so far counts, however the stream ends (a client that leaves was billed for it)
            while True:
                chunks = await reader.take()
                if self.client_left.done():
                    self.outcome.status = CLIENT_LEFT
                    return
                if not chunks and not reader.ended:
                    continue
                if not self.reply.started:
                    if reader.ended and reader.error is not None and not chunks:
                        raise errors.from_transport(reader.error, self.upstream.url)
                    await self.reply.start(reader.response.status_code, relayed_headers(reader.response))
                    self.outcome.status = reader.response.status_code
                data = b"".join(chunks)
                scan.feed(data)
                if not await clock.write(self.reply.send, data, more=not reader.ended):
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

    # ---------------------------------------------------------------- OpenAI Chat Completions: translated

    async def chat(self) -> None:
        try:
            body, names = translate_request(self.req, self.upstream, self.model)
        except InvalidRequest as e:
            raise ProxyError(400, str(e)) from None
        except RecursionError:
            raise ProxyError(400, "the request is nested too deeply to translate") from None
        except (KeyError, TypeError, AttributeError, ValueError) as e:  # check_request should have said why
            raise ProxyError(400, f"malformed request: {type(e).__name__}: {e}", hidden=e) from None
        key = (self.upstream.name, body["model"])
        refusals = self.shared.refusals.get(key) or self.shared.refusals.setdefault(key, Refusals(body["model"]))
        body = refusals.applied(body)
        # Answer the client only once the provider has: its status decides ours.
        headers = {**JSON_CONTENT, **self.upstream.headers()}
        reader = await self._send(self._content(body), headers)
        if reader is not None and reader.response.status_code in (400, 500):
            error = await self._whole(reader)
            if error is None:
                return
            if not refusals.learn(body, error):
                raise self._upstream_error(reader.response, error, body)
            body = refusals.applied(body)  # retry once as the provider wants; nothing reached the client yet
            reader = await self._send(self._content(body), headers)
        if reader is None:
            return
        try:
            await self._answer(reader, body, names)
        finally:
            await reader.close()

    async def _answer(self, reader: BodyReader, body: dict, names) -> None:
        model = self.outcome.requested
        if body.get("stream") and reader.response.status_code < 400 \
                and "json" not in reader.response.headers.get("content-type", ""):
            translator = StreamTranslator(model, names, lambda: estimate_tokens(self.req))
            return await self._stream(reader, translator)
        raw = await self._whole(reader)
        if raw is None:
            return
        if reader.response.status_code >= 400:
            raise self._upstream_error(reader.response, raw, body)
        try:
            answer = jsonio.loads(raw)
        except ValueError:
            kind = reader.response.headers.get("content-type", "no content type")
            raise ProxyError(502, f"the answer from {self.upstream.url} is not JSON ({kind}: {raw[:80]!r}); "
                                  "is it an OpenAI Chat Completions endpoint?", retry=False) from None
        # asked for in one piece, or from a provider that ignores "stream": true
        message = translate_response(answer, model, names, lambda: estimate_tokens(self.req))
        self.outcome.status, self.outcome.usage = 200, message["usage"]
        if body.get("stream"):
            await self.reply.start(200, SSE_HEADERS)
            await self.reply.send({"type": "http.response.body", "body": message_as_events(message)})
        else:
            data = jsonio.dumps(message)
            await self.reply.start(200, [(b"content-type", b"application/json"),
                                         (b"content-length", str(len(data)).encode())])
            await self.reply.send({"type": "http.response.body", "body": data})
        self.outcome.complete = True

    async def _stream(self, reader: BodyReader, translator: StreamTranslator) -> None:
        """Upstream SSE -> Anthropic SSE, one write to the client per wake-up; a ping when the provider is quiet."""
        parser = SSEParser()
        clock = StreamClock(reader, self.upstream.timeout)
        send, outcome = self.reply.send, self.outcome
        try:
            while True:
                chunks = await reader.take()
                if self.client_left.done():
                    outcome.status = CLIENT_LEFT
                    return
                if not chunks and not reader.ended:  # woken by the clock
                    if not await clock.write(send, PING, more=True):
                        return
                    continue
                try:
                    out = self._translate(chunks, reader, parser, translator)
                except ProxyError as e:
                    if not self.reply.started:
                        raise  # nothing sent yet: still a proper HTTP error (or the next target)
                    outcome.status, outcome.error = e.status, e.error_type
                    await clock.write(send, translator.error_event(self.reported(e)), more=False)
                    return
                if not self.reply.started and (out or translator.finished):
                    await self.reply.start(200, SSE_HEADERS)
                    clock.started = True
                    outcome.status = 200
                if out and not await clock.write(send, out, more=not translator.finished):
                    outcome.status = CLIENT_LEFT
                    return
                if translator.finished:
                    outcome.complete = True
                    await reader.close(grace=DRAIN_GRACE)  # read to its end, the connection serves the next request
                    return
        finally:  # what the answer used so far counts, however it ends (a client that leaves was billed for it)
            if translator.started:
                outcome.usage = translator.usage_so_far()
            clock.stop()

    def _translate(self, chunks: list[bytes], reader: BodyReader, parser: SSEParser,
                   translator: StreamTranslator) -> bytes:
        """Raw reads -> Anthropic SSE bytes; the message is finished at `[DONE]` or at the end of the body."""
        out = [translator.feed(payload) for payload in parser.feed(b"".join(chunks))]  # one parse per wake-up
        if parser.done:
            return self._finish(out, translator)
        if not reader.ended:
            return b"".join(out)
        if reader.error is not None:
            raise errors.from_transport(reader.error, self.upstream.url)
        out.extend(translator.feed(payload) for payload in parser.close())
        if translator.started and translator.finish_reason is None:  # cut off: neither [DONE] nor a finish
            raise ProxyError(502, f"the stream from {self.upstream.url} ended before the answer did "
                                  "(no finish_reason, no [DONE])")
        return self._finish(out, translator)

    def _finish(self, out: list[bytes], translator: StreamTranslator) -> bytes:
        if not translator.started:  # an HTML page, an empty body: no answer, not an empty one
            raise ProxyError(502, f"the provider's streaming answer held no events; is {self.upstream.url} "
                                  "an OpenAI Chat Completions endpoint?", retry=False)
        out.append(translator.finish())
        return b"".join(out)

    # ---------------------------------------------------------------- both

    @staticmethod
    def _content(body: dict) -> bytes:
        try:
            return jsonio.dumps(body)
        except RecursionError:
            raise ProxyError(400, "the request is nested too deeply to send") from None

    async def _send(self, content: bytes, headers: dict) -> BodyReader | None:
        """A reader of the provider's answer (its headers are in), or None when the client left first."""
        client = self.shared.client_for(self.upstream)
        request = client.build_request("POST", self.upstream.url, content=content, headers=headers)
        sending = asyncio.ensure_future(client.send(request, stream=True))
        await asyncio.wait({sending, self.client_left}, return_when=asyncio.FIRST_COMPLETED)
        if not sending.done():
            sending.cancel()  # the client gave up: so do we, at once (httpcore is waiting on the network here)
            with contextlib.suppress(asyncio.CancelledError, httpx2.HTTPError):
                await sending
            return None
        try:
            reader = BodyReader(sending.result())
        except httpx2.HTTPError as e:
            raise errors.from_transport(e, self.upstream.url) from None
        self.client_left.add_done_callback(lambda _: reader.interrupt())
        return reader

    async def _whole(self, reader: BodyReader) -> bytes | None:
        """A whole answer body, closed after reading; None when the client left first."""
        try:
            return await reader.read_all(MAX_ANSWER)
        except TRANSPORT_ERRORS as e:
            raise errors.from_transport(e, self.upstream.url) from None
        finally:
            await reader.close()

    def _upstream_error(self, response: httpx2.Response, raw: bytes, body: dict) -> ProxyError:
        return errors.from_upstream_status(response.status_code, raw, response.headers, self.upstream.name,
                                           max_output(body))


RELAYED = ("content-type", "request-id", "anthropic-ratelimit-requests-remaining",
           "anthropic-ratelimit-tokens-remaining", "retry-after", "x-should-retry")


def relayed_headers(response: httpx2.Response) -> list[tuple[bytes, bytes]]:
    """The provider's response headers claude reads; the rest describe its connection, not ours."""
    return [(name.encode(), response.headers[name].encode("latin-1")) for name in RELAYED if name in response.headers]


async def wait_for_disconnect(receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


class StreamClock:
    """The times of one stream, on one timer that ticks a few times per PING_AFTER, rather than a
    timeout around every read and write (each costs as much as translating the event): a `ping` once
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

    async def write(self, send, body: bytes, *, more: bool) -> bool:
        """Send a piece of the stream; False when the client took none of it for `limit` seconds."""
        self.writing, self.since = True, self.loop.time()
        try:
            await send({"type": "http.response.body", "body": body, "more_body": more})
        except asyncio.CancelledError:
            if self.stalled and self.task.uncancel() == 0:
                log.warning("ccs proxy: the client read nothing for %s s; closing its stream", self.limit)
                return False
            raise
        finally:
            self.writing, self.since = False, self.loop.time()
        return True

    def stop(self) -> None:
        self.timer.cancel()


class Outcome:
    """How one request ended, one line in the proxy log and one row in the usage log: what was asked, which
    target answered (and which were skipped), how, how long."""

    def __init__(self, requested: str, stream: bool, session: str | None = None):
        self.requested = requested
        self.stream = stream
        self.session = session
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
                       tuple(self.skipped))

    def __str__(self) -> str:
        usage = self.usage or {}
        tokens = (f" in {usage.get('input_tokens', 0)} (+{usage.get('cache_read_input_tokens', 0)} cached) "
                  f"out {usage.get('output_tokens', 0)}" if self.usage else "")
        failed = f" after {', '.join(self.skipped)} failed" if self.skipped else ""
        untried = [str(t) for t in self.cooling if t != self.target and not any(s.startswith(f"{t} (")
                                                                                 for s in self.skipped)]
        cooling = f"; {', '.join(untried)} cooling down" if untried else ""
        return (f"{self.requested} -> {self.target or '-'} {'stream' if self.stream else 'whole'} "
                f"{self.status}{tokens} {self.duration * 1000:.0f} ms{failed}{cooling}")
