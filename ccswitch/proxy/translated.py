"""A pipeline that translates: Anthropic's request into another API's, and that API's answer, whole or
streamed, back into Anthropic's. What the translation is, each API kind says (`chat`, `responses`); the
order of things is the same: translate, add the profile's `extra_body`, apply what the model refused before,
send, learn from a refusal and retry (while each refusal teaches something new) before anything reached the
client, then answer."""

from __future__ import annotations

import logging

from . import jsonio
from .anthropic import PING, InvalidRequest, estimate_tokens, message_as_events
from .refusals import Refusals
from .errors import ProxyError
from .pipeline import CLIENT_LEFT, JSON_CONTENT, SSE_HEADERS, Exchange, StreamClock
from .upstream import BodyReader, SSEParser

RELEARN = 3  # retries of a request after a refusal that taught something new
DRAIN_GRACE = 2.0  # seconds the end of a finished stream's body may take, so its connection can be reused

log = logging.getLogger("ccswitch.proxy")


class Translated(Exchange):
    """The translating pipeline; an API kind fills in `translate`, `translate_whole` and `stream_translator`."""

    endpoint = "an API endpoint"  # what the provider's URL should be, for a message about an answer of another kind

    def translate(self) -> tuple[dict, object]:
        """(the provider's request body, what reading its answer needs: tool names, ...)"""
        raise NotImplementedError

    def translate_whole(self, answer, context) -> dict:
        """A whole answer -> an Anthropic message."""
        raise NotImplementedError

    def stream_translator(self, context):
        """A reader of the provider's stream events that writes Anthropic's (see from_openai.StreamTranslator)."""
        raise NotImplementedError

    def estimate_input(self) -> int:
        return estimate_tokens(self.req)

    async def run(self) -> None:
        try:
            body, context = self.translate()
        except InvalidRequest as e:
            raise ProxyError(400, str(e)) from None
        except RecursionError:
            raise ProxyError(400, "the request is nested too deeply to translate") from None
        except (KeyError, TypeError, AttributeError, ValueError) as e:  # check_request should have said why
            raise ProxyError(400, f"malformed request: {type(e).__name__}: {e}", hidden=e) from None
        body = self.upstream.with_extra_body(body)  # one place for every API kind: after its translation
        key = (self.upstream.name, body["model"])
        refusals = self.shared.refusals.get(key) or self.shared.refusals.setdefault(key, Refusals(body["model"]))
        body = refusals.applied(body)
        # Answer the client only once the provider has: its status decides ours.
        headers = {**JSON_CONTENT, **self.upstream.headers()}
        reader = await self.send(self.content(body), headers)
        for _ in range(RELEARN):  # a refusal may hide the next (`reasoning.effort`, then `reasoning.summary`)
            if reader.status not in (400, 500):
                break
            error = await self.whole(reader)
            if not refusals.learn(body, error):
                raise self.upstream_error(reader, error, body)
            body = refusals.applied(body)  # retried as the provider wants; nothing reached the client yet
            reader = await self.send(self.content(body), headers)
        try:
            await self._answer(reader, body, context)
        finally:
            await reader.close()

    async def _answer(self, reader: BodyReader, body: dict, context) -> None:
        if body.get("stream") and reader.status < 400 and "json" not in reader.response.headers.get("content-type", ""):
            return await self._stream(reader, self.stream_translator(context))
        raw = await self.whole(reader)
        if reader.status >= 400:
            raise self.upstream_error(reader, raw, body)
        try:
            answer = jsonio.loads(raw)
        except ValueError:
            kind = reader.response.headers.get("content-type", "no content type")
            raise ProxyError(502, f"the answer from {self.upstream.url} is not JSON ({kind}: {raw[:80]!r}); "
                                  f"is it {self.endpoint}?", retry=False) from None
        # asked for in one piece, or from a provider that ignores "stream": true
        message = self.translate_whole(answer, context)
        self.outcome.status, self.outcome.usage = 200, message["usage"]
        if self.req.get("stream") is True:
            await self.answer_whole(200, SSE_HEADERS, message_as_events(message))
        else:
            await self.answer_whole(200, JSON_CONTENT, jsonio.dumps(message))

    async def _stream(self, reader: BodyReader, translator) -> None:
        """The provider's events -> Anthropic's, one write to the client per wake-up; a ping when the
        provider is quiet."""
        parser = SSEParser()
        clock = StreamClock(reader, self.upstream.timeout)
        outcome = self.outcome
        try:
            while True:
                chunks = await reader.take()
                if not chunks and not reader.ended:  # woken by the clock
                    if not await clock.write(self.reply, PING):
                        outcome.status = CLIENT_LEFT
                        return
                    continue
                try:
                    out = self._translate(chunks, reader, parser, translator)
                except ProxyError as e:
                    if not self.reply.started:
                        raise  # nothing sent yet: still a proper HTTP error (or the next target)
                    outcome.status, outcome.error = e.status, e.error_type
                    await clock.write(self.reply, translator.error_event(self.reported(e)))
                    return
                if not self.reply.started and (out or translator.finished):
                    await self.reply.start(200, SSE_HEADERS)
                    clock.started = True
                    outcome.status = 200
                if out and not await clock.write(self.reply, out):
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

    def _translate(self, chunks: list[bytes], reader: BodyReader, parser: SSEParser, translator) -> bytes:
        """Raw reads -> Anthropic SSE bytes; the message is finished when the provider says it is done
        (`[DONE]`, a final event), or at the end of the body when the translator saw a finish."""
        out = [translator.feed(payload) for payload in parser.feed(b"".join(chunks))]  # one parse per wake-up
        if parser.done or translator.done:
            return self._finish(out, translator)
        if not reader.ended:
            return b"".join(out)
        if reader.error is not None:
            raise self.transport_error(reader.error)
        out.extend(translator.feed(payload) for payload in parser.close())
        if translator.started and not translator.done and translator.finish_reason is None:  # cut off
            raise ProxyError(502, f"the stream from {self.upstream.url} ended before the answer did")
        return self._finish(out, translator)

    def _finish(self, out: list[bytes], translator) -> bytes:
        if not translator.started:  # an HTML page, an empty body: no answer, not an empty one
            raise ProxyError(502, f"the provider's streaming answer held no events; is {self.upstream.url} "
                                  f"{self.endpoint}?", retry=False)
        out.append(translator.finish())
        return b"".join(out)
