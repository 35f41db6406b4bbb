"""The proxy's ASGI app and its lifecycle: loopback only, a per-session token, uvicorn in a thread.

`serve_forever` is `ccs proxy`; `ccs run` starts `running_for` through `listen.serve_in_background`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import math
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Iterator

import httpx2

from ..launch import Endpoint
from ..secrets import mask
from . import errors, jsonio
from .anthropic import InvalidRequest, check_request, estimate_tokens
from .errors import ProxyError
from .from_openai import PING, StreamTranslator, message_as_events, translate_response
from .listen import bind, new_token, url_of
from .to_openai import translate_request
from .upstream import TRANSPORT_ERRORS, BodyReader, SSEParser, Upstream, new_client

ALLOWED_HOSTS = {"127.0.0.1", "localhost", "[::1]"}
HOST_HEADER = re.compile(r"(?P<name>\[[0-9a-fA-F:.]*\]|[^:\[\]]*)(?::\d+)?")
PING_AFTER = 10.0  # seconds without a byte to the client before a `ping` event
MAX_REQUEST_MB = 64  # the default limit on a request body; `max_request_mb` in a profile
MAX_ANSWER = 64 * 1024 * 1024  # a whole (non-streamed) answer from the provider
CLIENT_LEFT = 499  # the status a request that the client left before its answer ends with, in the log
DRAIN_GRACE = 2.0  # seconds the end of a finished stream's body may take, so its connection can be reused
LOG_BYTES = 1_000_000  # the proxy log under `ccs run` is rotated at this size, one old file kept
# Parameters we add that a provider may not take; a 400 naming one is retried without it.
OPTIONAL_PARAMETERS = ("reasoning_effort", "stream_options", "parallel_tool_calls", "top_k", "user")
# A chat template that wants one system message, first (Qwen's, Gemma's on llama.cpp, vLLM, LM Studio):
# "System message must be at the beginning", "Conversation roles must alternate", "System role not supported".
SYSTEM_PLACEMENT = re.compile(rb"system[^.]{0,60}(beginning|first|position|not supported)|roles must alternate", re.I)
# Mistral's API and templates want an assistant turn between tool results and the user's next words.
USER_AFTER_TOOL = re.compile(rb"unexpected role .?user.? after role .?tool", re.I)
BRIDGE = "OK."
JSON_HEADERS = [(b"content-type", b"application/json")]
JSON_CONTENT = {"content-type": "application/json"}
SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


log = logging.getLogger("ccswitch.proxy")


class ProxyApp:
    """Anthropic Messages API in front, one OpenAI Chat Completions upstream behind."""

    def __init__(self, upstream: Upstream, token: str, client: httpx2.AsyncClient | None = None,
                 max_request_mb: int = MAX_REQUEST_MB):
        self.upstream = upstream
        self.token = token.encode()
        self.client = client
        self.max_body = max_request_mb * 1024 * 1024
        self.refusals: dict[str, Refusals] = {}  # per upstream model

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            try:
                await self._route(scope, receive, send)
            except ProxyError as e:
                await respond_error(send, self._reported(e))
            except Exception as e:  # a bug of ours: log it, and still answer in Anthropic's shape
                error = ProxyError(500, f"internal error in the ccs proxy: {type(e).__name__}", retry=False, hidden=e)
                with contextlib.suppress(Exception):  # unless the response had already begun
                    await respond_error(send, self._reported(error))

    def _reported(self, error: ProxyError) -> ProxyError:
        """The error as the client gets it, and one line in the log (with the traceback when an exception of
        ours is behind it). A provider that echoes the key in its error message gets it masked."""
        if self.upstream.key and self.upstream.key in error.message:
            error.message = error.message.replace(self.upstream.key, mask(self.upstream.key))
        if error.hidden is not None:
            log.error("ccs proxy: a bug in ccs, answered as %s %s", error.status, error.message, exc_info=error.hidden)
        else:
            log.warning("ccs proxy: answered %s %s", error.status, error.message)
        return error

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.client = self.client or new_client(self.upstream)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.client is not None:
                    await self.client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _route(self, scope, receive, send) -> None:
        headers = dict(scope["headers"])
        host = host_name(headers.get(b"host", b"").decode("latin-1"))
        if host not in ALLOWED_HOSTS:  # a browser tricked by DNS rebinding sends another Host
            raise ProxyError(403, f"host {host or '(none)'!r} is not allowed; use 127.0.0.1")
        method, path = scope["method"], scope["path"]
        if path in ("/", "/api/hello", "/health") and method in ("GET", "HEAD"):
            return await respond_json(send, 200, {"status": "ok"}, head=method == "HEAD")
        if not self._authorized(headers):
            raise ProxyError(401, "missing or wrong session token: this proxy only serves the `claude` that "
                                  "`ccs run` started (or the token `ccs proxy` printed)")
        if path == "/v1/messages" and method == "POST":
            return await self.messages(await read_json(receive, headers, self.max_body), receive, send)
        if path == "/v1/messages/count_tokens" and method == "POST":
            req = await read_json(receive, headers, self.max_body)
            try:
                check_request(req, counting=True)
            except InvalidRequest as e:
                raise ProxyError(400, str(e)) from None
            return await respond_json(send, 200, {"input_tokens": estimate_tokens(req)})
        if path == "/v1/models" and method == "GET":
            return await respond_json(send, 200, models_page(self.upstream))
        raise ProxyError(404, f"{method} {path} is not served by the ccs proxy")

    def _authorized(self, headers: dict) -> bool:
        offered = headers.get(b"x-api-key") or b""
        authorization = headers.get(b"authorization") or b""
        if authorization[:7].lower() == b"bearer ":
            offered = offered or authorization[7:].strip()
        return hmac.compare_digest(offered, self.token)

    async def messages(self, req: dict, receive, send) -> None:
        try:
            body, names = translate_request(req, self.upstream)
        except InvalidRequest as e:
            raise ProxyError(400, str(e)) from None
        except RecursionError:
            raise ProxyError(400, "the request is nested too deeply to translate") from None
        except (KeyError, TypeError, AttributeError, ValueError) as e:  # check_request should have said why
            raise ProxyError(400, f"malformed request: {type(e).__name__}: {e}", hidden=e) from None
        model = req.get("model") or body["model"]
        refusals = self.refusals.setdefault(body["model"], Refusals(body["model"]))
        body = refusals.applied(body)
        outcome = Outcome(model, body["model"], bool(body.get("stream")))
        # Answer the client only once the provider has: its status decides ours.
        client_left = asyncio.ensure_future(wait_for_disconnect(receive))
        try:
            reader = await self._send_upstream(body, client_left)
            if reader is not None and reader.response.status_code in (400, 500):
                error = await self._whole(reader)
                if error is None:
                    return
                if not refusals.learn(body, error):
                    raise self._upstream_error(reader.response, error, body)
                body = refusals.applied(body)  # retry once as the provider wants; nothing reached the client yet
                reader = await self._send_upstream(body, client_left)
            if reader is None:
                return
            try:
                await self._answer(reader, req, body, outcome, names, send, client_left)
            finally:
                await reader.close()
        except ProxyError as e:
            outcome.status = e.status
            raise
        finally:
            client_left.cancel()
            log.info("%s", outcome)

    async def _answer(self, reader: BodyReader, req: dict, body: dict, outcome: Outcome, names, send,
                      client_left: asyncio.Future) -> None:
        model = outcome.requested
        if body.get("stream") and reader.response.status_code < 400 \
                and "json" not in reader.response.headers.get("content-type", ""):
            translator = StreamTranslator(model, names, lambda: estimate_tokens(req))
            return await self._stream(reader, translator, send, client_left, outcome)
        raw = await self._whole(reader)
        if raw is None:
            return
        if reader.response.status_code >= 400:
            raise self._upstream_error(reader.response, raw, body)
        try:
            answer = jsonio.loads(raw)
        except ValueError:
            kind = reader.response.headers.get("content-type", "no content type")
            raise ProxyError(502, f"the answer from {self.upstream.chat_url} is not JSON ({kind}: {raw[:80]!r}); "
                                  "is it an OpenAI Chat Completions endpoint?", retry=False) from None
        # asked for in one piece, or from a provider that ignores "stream": true
        message = translate_response(answer, model, names, lambda: estimate_tokens(req))
        outcome.status, outcome.usage = 200, message["usage"]
        if body.get("stream"):
            await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
            await send({"type": "http.response.body", "body": message_as_events(message)})
        else:
            await respond_json(send, 200, message)

    async def _whole(self, reader: BodyReader) -> bytes | None:
        """A whole answer body, closed after reading; None when the client left first."""
        try:
            return await reader.read_all(MAX_ANSWER)
        except TRANSPORT_ERRORS as e:
            raise errors.from_transport(e, self.upstream.chat_url) from None
        finally:
            await reader.close()

    def _upstream_error(self, response: httpx2.Response, raw: bytes, body: dict) -> ProxyError:
        return errors.from_upstream_status(response.status_code, raw, response.headers, self.upstream.name,
                                           max_output(body))

    async def _send_upstream(self, body: dict, client_left: asyncio.Future) -> BodyReader | None:
        """A reader of the provider's answer (its headers are in), or None when the client left first."""
        try:
            content = jsonio.dumps(body)
        except RecursionError:
            raise ProxyError(400, "the request is nested too deeply to send") from None
        request = self.client.build_request("POST", self.upstream.chat_url, content=content,
                                            headers={**JSON_CONTENT, **self.upstream.headers()})
        sending = asyncio.ensure_future(self.client.send(request, stream=True))
        await asyncio.wait({sending, client_left}, return_when=asyncio.FIRST_COMPLETED)
        if not sending.done():
            sending.cancel()  # the client gave up: so do we, at once (httpcore is waiting on the network here)
            with contextlib.suppress(asyncio.CancelledError, httpx2.HTTPError):
                await sending
            return None
        try:
            reader = BodyReader(sending.result())
        except httpx2.HTTPError as e:
            raise errors.from_transport(e, self.upstream.chat_url) from None
        client_left.add_done_callback(lambda _: reader.interrupt())
        return reader

    async def _stream(self, reader: BodyReader, translator: StreamTranslator, send,
                      client_left: asyncio.Future, outcome: Outcome) -> None:
        """Upstream SSE -> Anthropic SSE, one write to the client per wake-up; a ping when the provider is quiet."""
        parser = SSEParser()
        clock = StreamClock(reader, self.upstream.timeout)
        try:
            while True:
                chunks = await reader.take()
                if client_left.done():
                    outcome.status = CLIENT_LEFT
                    return
                if not chunks and not reader.ended:  # woken by the clock
                    if not await clock.write(send, PING, more=True):
                        return
                    continue
                try:
                    out = self._translate(chunks, reader, parser, translator)
                except ProxyError as e:
                    if not clock.started:
                        raise  # nothing sent yet: still a proper HTTP error
                    outcome.status = e.status
                    await clock.write(send, translator.error_event(self._reported(e)), more=False)
                    return
                if not clock.started and (out or translator.finished):
                    await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
                    clock.started = True
                    outcome.status = 200
                if out and not await clock.write(send, out, more=not translator.finished):
                    outcome.status = CLIENT_LEFT
                    return
                if translator.finished:
                    outcome.usage = translator.final_usage
                    await reader.close(grace=DRAIN_GRACE)  # read to its end, the connection serves the next request
                    return
        finally:
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
            raise errors.from_transport(reader.error, self.upstream.chat_url)
        out.extend(translator.feed(payload) for payload in parser.close())
        if translator.started and translator.finish_reason is None:  # cut off: neither [DONE] nor a finish
            raise ProxyError(502, f"the stream from {self.upstream.chat_url} ended before the answer did "
                                  "(no finish_reason, no [DONE])")
        return self._finish(out, translator)

    def _finish(self, out: list[bytes], translator: StreamTranslator) -> bytes:
        if not translator.started:  # an HTML page, an empty body: no answer, not an empty one
            raise ProxyError(502, f"the provider's streaming answer held no events; is {self.upstream.chat_url} "
                                  "an OpenAI Chat Completions endpoint?", retry=False)
        out.append(translator.finish())
        return b"".join(out)


class StreamClock:
    """The times of one stream, on one timer that ticks a few times per PING_AFTER, rather than a
    timeout around every read and write (each costs as much as translating the event): a `ping` once
    the client has had nothing for PING_AFTER seconds, and giving up on a client that takes nothing
    of a write for `limit` seconds (it stopped reading: the stream's task is cancelled, which `write`
    turns into False, and the caller's return closes both connections)."""

    def __init__(self, reader: BodyReader, limit: float):
        self.loop = asyncio.get_running_loop()
        self.task = asyncio.current_task()
        self.reader = reader
        self.limit = limit
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
        if not self.writing:
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
    """How one request ended, one line in the proxy log: what was asked, what answered, how, how long."""

    def __init__(self, requested: str, upstream_model: str, stream: bool):
        self.requested = requested
        self.upstream_model = upstream_model
        self.stream = stream
        self.status = CLIENT_LEFT  # until an answer is sent
        self.usage: dict | None = None
        self.started = time.monotonic()

    def __str__(self) -> str:
        usage = self.usage or {}
        tokens = (f" in {usage.get('input_tokens', 0)} (+{usage.get('cache_read_input_tokens', 0)} cached) "
                  f"out {usage.get('output_tokens', 0)}" if self.usage else "")
        return (f"{self.requested} -> {self.upstream_model} {'stream' if self.stream else 'whole'} "
                f"{self.status}{tokens} {(time.monotonic() - self.started) * 1000:.0f} ms")


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


def host_name(host: str) -> str:
    """The name in a Host header without its port (`127.0.0.1:8080`, `[::1]:8080`, `LOCALHOST`); "" if malformed."""
    found = HOST_HEADER.fullmatch(host)
    return found["name"].lower() if found else ""


async def wait_for_disconnect(receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def read_json(receive, headers: dict, limit: int) -> dict:
    """The request body as a JSON object; what JSON allows but no provider's wire carries is a 400."""
    too_large = ProxyError(413, f"request body over {limit // (1024 * 1024)} MiB (the proxy's limit: raise "
                                "`max_request_mb` in the profile)")
    declared = headers.get(b"content-length", b"0")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ProxyError(400, "the client disconnected while sending the request")
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > limit:
            raise too_large
        if not message.get("more_body"):
            break
    try:
        data = jsonio.loads(b"".join(chunks), parse_constant=_not_a_number, parse_float=_finite)
    except RecursionError:
        raise ProxyError(400, "the request body is nested too deeply") from None
    except ValueError as e:
        raise ProxyError(400, f"the request body is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise ProxyError(400, "the request body must be a JSON object")
    return data


def _not_a_number(word: str):
    raise ValueError(f"{word} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range for a number")
    return value


async def respond_json(send, status: int, data: dict, headers: dict | None = None, head: bool = False) -> None:
    body = jsonio.dumps(data)
    extra = [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status,
                "headers": [*JSON_HEADERS, (b"content-length", str(len(body)).encode()), *extra]})
    await send({"type": "http.response.body", "body": b"" if head else body})


async def respond_error(send, error: ProxyError) -> None:
    await respond_json(send, error.status, error.body(), error.response_headers)


def models_page(upstream: Upstream) -> dict:
    data = [{"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"}
            for m in upstream.listed_models()]
    return {"data": data, "has_more": False, "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None}


# ---------------------------------------------------------------- lifecycle


def make_server(app: ProxyApp, log: logging.Handler):
    """uvicorn for our app, logging through `log` (see `log_handler`)."""
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=2,
                            server_header=False, date_header=False, log_config=None)
    logging.getLogger("uvicorn").handlers = [log]
    logging.getLogger("uvicorn").propagate = False
    return uvicorn.Server(config)


def log_handler(log_file: str | None, quiet: bool) -> logging.Handler:
    """Where uvicorn's log and ours go (a line per request unless `quiet`): `log_file` under `ccs run`
    (never over claude's screen), rotated; else stderr, never blocking (see StderrLog)."""
    if log_file:
        from logging.handlers import RotatingFileHandler

        handler: logging.Handler = RotatingFileHandler(log_file, maxBytes=LOG_BYTES, backupCount=1)
    else:
        handler = StderrLog()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    ours = logging.getLogger("ccswitch")
    ours.handlers = [handler]
    ours.propagate = False
    ours.setLevel(logging.WARNING if quiet else logging.INFO)
    return handler


class StderrLog(logging.Handler):
    """Log lines straight to stderr's file descriptor, each piece only when it can be taken at once.
    An IDE that starts `ccs proxy` may never read its stderr: once that pipe is full, a plain write
    would stall the event loop, and every request with it. Such lines are dropped instead."""

    def emit(self, record: logging.LogRecord) -> None:
        import select

        text = self.format(record) + "\n"
        try:
            fd = sys.stderr.fileno()
        except (AttributeError, ValueError, OSError):  # replaced by something with no descriptor (a test's)
            sys.stderr.write(text)
            return
        data = text.encode(errors="replace")
        for start in range(0, len(data), select.PIPE_BUF):  # a pipe takes up to PIPE_BUF bytes whole
            if not select.select([], [fd], [], 0)[1]:
                return
            os.write(fd, data[start:start + select.PIPE_BUF])


@contextlib.contextmanager
def running(upstream: Upstream, port: int = 0, client: httpx2.AsyncClient | None = None,
            log_file: str | None = None, max_request_mb: int = MAX_REQUEST_MB,
            quiet: bool = False, sock: socket.socket | None = None, token: str | None = None) -> Iterator[Endpoint]:
    """Serve in a thread for as long as the `with` block; yields where clients connect, with their token.
    `sock` and `token`: a socket already listening (see `listen`), else one is bound on `port`."""
    token = token or new_token()
    sock = sock or bind(port)
    log = log_handler(log_file, quiet)
    server = make_server(ProxyApp(upstream, token, client, max_request_mb), log)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="ccs-proxy", daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        thread.join(0.002)
    try:
        if not server.started:
            raise RuntimeError("the proxy failed to start")
        yield Endpoint(url_of(sock), token, log_file)
    finally:
        server.should_exit = True
        thread.join(5)
        sock.close()
        log.close()


def running_for(profile, secret: str | None, **options):
    """`running` with what the profile says: its provider, timeout and request limit."""
    return running(Upstream.from_profile(profile, secret, os.environ),
                   max_request_mb=profile.max_request_mb or MAX_REQUEST_MB, **options)


def serve_forever(profile, secret: str | None, port: int, announce, quiet: bool = False) -> None:
    """`ccs proxy`: serve until SIGINT/SIGTERM, then shut down cleanly. `announce(url, token)` runs once bound."""
    import signal

    # Blocked before the server thread starts (it inherits the mask), the signals stay pending until
    # sigwait takes them: none can land on the server thread or slip in before the wait.
    stopping = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stopping)
    with running_for(profile, secret, port=port, quiet=quiet) as endpoint:
        announce(endpoint.url, endpoint.token)
        signal.sigwait(stopping)


def serve_profile(name: str, port: int = 0, as_json: bool = False, quiet: bool = False) -> None:
    """`ccs proxy NAME`: a profile's proxy in the foreground for other clients; prints where and the token."""
    from .. import profiles, secrets
    from ..errors import CcsError

    config = profiles.load()
    profile = config.get(name)
    if not profile.uses_proxy:
        raise CcsError(f"profile '{name}' speaks the Anthropic API already: point clients at {profile.base_url}")
    secret = secrets.require(profile, config.secret_store) if profile.needs_key else None

    def announce(url: str, token: str) -> None:
        if as_json:
            print(json.dumps({"base_url": url, "token": token}), flush=True)
        else:
            print(f"ccs proxy for '{name}' on {url}\n  ANTHROPIC_BASE_URL={url}\n  ANTHROPIC_AUTH_TOKEN={token}\n"
                  "Ctrl-C stops it.", flush=True)

    serve_forever(profile, secret, port, announce, quiet)
