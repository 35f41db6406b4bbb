"""Fake providers on real sockets: they speak the provider's HTTP/1.1 exactly as a real one sends it,
each body piece its own write (an SSE event per write, token by token), scripted per test.

The server runs on its own event loop in a thread, so a test may drive it from plain blocking code.
It counts the TCP connections it accepted (keep-alive reuse shows as a small number) and notices a
client that goes away while it is thinking or writing.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
import time
import zlib
from dataclasses import dataclass, field


@dataclass
class Reply:
    """What the fake answers: after `wait` seconds, a status, headers and body pieces sent one write each."""

    status: int = 200
    headers: dict = field(default_factory=dict)
    chunks: list = field(default_factory=list)  # bytes, or a float = sleep that long
    close_early: bool = False  # drop the connection after the chunks (a reset mid-stream)
    wait: float = 0.0  # thinking time before the status line; the fake notices a client leaving meanwhile
    reset: bool = False  # reset the connection instead of answering (a reset before headers)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict
    body: dict | None


class FakeServer:
    """An HTTP/1.1 server on 127.0.0.1:0. `script(seen) -> Reply` decides each answer."""

    def __init__(self, script, *, tls=None):
        self.script = script
        self.tls = tls  # an ssl.SSLContext: serve HTTPS
        self.requests: list[Seen] = []
        self.sent: list[int] = []  # body bytes written for each answer, as far as the client took them
        self.connections = 0  # TCP connections accepted
        self.open_connections = 0  # of those, still open
        self.writers: set[asyncio.StreamWriter] = set()
        self.disconnected = threading.Event()  # a client left before its answer was complete
        self.disconnect_times: list[float] = []  # monotonic times at which that was noticed
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True, name="fake-provider")
        self.thread.start()
        ready.wait(10)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(asyncio.start_server(self._connection, "127.0.0.1", 0, backlog=512,
                                                                        ssl=self.tls))
        self.port = self.server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()

    def close(self) -> None:
        async def stop():
            self.server.close()
            for writer in list(self.writers):
                writer.transport.abort()  # each connection's handler sees the end and returns
            others = asyncio.all_tasks() - {asyncio.current_task()}
            if others:
                await asyncio.wait(others, timeout=5)

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def _left(self) -> None:
        self.disconnect_times.append(time.monotonic())
        self.disconnected.set()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_connections += 1
        self.writers.add(writer)
        incoming = _Incoming(reader)
        try:
            while await self._exchange(incoming, writer):
                pass
        except ConnectionError:
            pass
        finally:
            self.open_connections -= 1
            self.writers.discard(writer)
            incoming.task.cancel()
            writer.close()

    async def _exchange(self, incoming: _Incoming, writer: asyncio.StreamWriter) -> bool:
        """One request and its answer; False when the connection is over."""
        if await incoming.peek() == b"\x16":  # a TLS hello to a plain HTTP server
            writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return False
        head = await incoming.until(b"\r\n\r\n")
        if head is None:
            return False
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, path, _ = request_line.split(" ", 2)
        headers = {}
        for line in header_lines:
            if ":" in line:
                name, value = line.split(":", 1)
                name, value = name.strip().lower(), value.strip()
                headers[name] = f"{headers[name]}, {value}" if name in headers else value  # a repeated one shows
        raw = await incoming.exactly(int(headers.get("content-length") or 0))
        if raw is None:
            return False
        seen = Seen(method, path, headers, json.loads(raw) if raw else None)
        self.requests.append(seen)
        reply = self.script(seen)
        if reply.wait and await incoming.left_within(reply.wait):
            self._left()
            return False
        if reply.reset:
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
            writer.transport.abort()
            return False
        streamed = "content-length" not in {name.lower() for name in reply.headers}
        lines = [f"HTTP/1.1 {reply.status} {'OK' if reply.status < 400 else 'Error'}"]
        lines += [f"{name}: {value}" for name, value in reply.headers.items()]
        if streamed:
            lines.append("Transfer-Encoding: chunked")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        answer = len(self.sent)
        self.sent.append(0)
        try:
            await writer.drain()
            for chunk in [] if method == "HEAD" else reply.chunks:
                if isinstance(chunk, float):
                    if await incoming.left_within(chunk):
                        raise ConnectionResetError
                    continue
                if incoming.gone.done():
                    raise ConnectionResetError
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if streamed else chunk)
                await writer.drain()
                self.sent[answer] += len(chunk)
            if reply.close_early:
                writer.transport.abort()
                return False
            if streamed and method != "HEAD":
                writer.write(b"0\r\n\r\n")
                await writer.drain()
        except ConnectionError:
            self._left()
            return False
        return True


class _Incoming:
    """What a client sends, read ahead as it arrives, so the fake notices at once when the client leaves."""

    def __init__(self, reader: asyncio.StreamReader):
        self.data = bytearray()
        self.arrived = asyncio.Event()
        self.gone = asyncio.get_running_loop().create_future()
        self.task = asyncio.ensure_future(self._pump(reader))

    async def _pump(self, reader: asyncio.StreamReader) -> None:
        try:
            while chunk := await reader.read(65536):
                self.data += chunk
                self.arrived.set()
        except ConnectionError:
            pass
        self.gone.set_result(None)
        self.arrived.set()

    async def _wait_for(self, enough) -> int | None:
        while (size := enough()) is None:
            if self.gone.done():
                return None
            self.arrived.clear()
            await self.arrived.wait()
        return size

    async def until(self, marker: bytes) -> bytes | None:
        size = await self._wait_for(lambda: None if (at := self.data.find(marker)) < 0 else at + len(marker))
        return None if size is None else self._take(size)

    async def peek(self) -> bytes:
        """The next byte, left in place (b"" once the client is gone)."""
        await self._wait_for(lambda: 1 if self.data else None)
        return bytes(self.data[:1])

    async def exactly(self, count: int) -> bytes | None:
        size = await self._wait_for(lambda: count if len(self.data) >= count else None)
        return None if size is None else self._take(size)

    def _take(self, size: int) -> bytes:
        taken = bytes(self.data[:size])
        del self.data[:size]
        return taken

    async def left_within(self, seconds: float) -> bool:
        await asyncio.wait({self.gone}, timeout=seconds)
        return self.gone.done()


def json_reply(data, status: int = 200, headers: dict | None = None) -> Reply:
    body = json.dumps(data).encode()
    return Reply(status, {"Content-Type": "application/json", "Content-Length": str(len(body)), **(headers or {})},
                 [body])


def sse(events: list, *, done: bool = True) -> list[bytes]:
    """OpenAI-style `data:` lines, one piece (one write) per event."""
    lines = [b"data: " + json.dumps(e).encode() + b"\n\n" for e in events]
    return lines + ([b"data: [DONE]\n\n"] if done else [])


def png(rgb: tuple[int, int, int], size: int = 4) -> bytes:
    """A real PNG image, `size` pixels square, of one colour."""
    def part(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\0" + bytes(rgb) * size for _ in range(size))
    return (b"\x89PNG\r\n\x1a\n" + part(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0))
            + part(b"IDAT", zlib.compress(rows)) + part(b"IEND", b""))


def anthropic_sse(events: list) -> Reply:
    """An Anthropic Messages SSE answer, as a real Anthropic-API provider sends it: each event (a dict,
    named by its type) its own write; a float is a pause of that many seconds."""
    chunks = [e if isinstance(e, float) else f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events]
    return Reply(200, {"Content-Type": "text/event-stream"}, chunks)


def message_start(model: str, input_tokens: int = 10, message_id: str = "msg_fake") -> dict:
    return {"type": "message_start", "message": {
        "id": message_id, "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": input_tokens, "output_tokens": 1}}}


def block(index: int, content_block: dict, *deltas) -> list:
    """One content block: its start, its deltas (a float among them: a pause), its stop."""
    return [{"type": "content_block_start", "index": index, "content_block": content_block},
            *(d if isinstance(d, float) else {"type": "content_block_delta", "index": index, "delta": d}
              for d in deltas),
            {"type": "content_block_stop", "index": index}]


def message_end(stop_reason: str, output_tokens: int) -> list[dict]:
    return [{"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None},
             "usage": {"output_tokens": output_tokens}}, {"type": "message_stop"}]


def anthropic_text_stream(text: str, model: str) -> Reply:
    return anthropic_sse([message_start(model), *block(0, {"type": "text", "text": ""},
                                                       {"type": "text_delta", "text": text}),
                          *message_end("end_turn", 5)])


# ---------------------------------------------------------------- OpenAI's Responses API
# As OpenAI documents its stream (openai-python's response_*_event types): an `event:` line naming the type
# and a `data:` object carrying it and a sequence_number, each event its own write, no `[DONE]`; items
# announced by response.output_item.added, their deltas, then response.output_item.done with the whole item.

RESPONSES_USAGE = {"input_tokens": 1200, "input_tokens_details": {"cached_tokens": 1024}, "output_tokens": 310,
                   "output_tokens_details": {"reasoning_tokens": 256}, "total_tokens": 1510}


def _pieces(text: str) -> list[str]:
    """Text as a model streams it: a few words a delta."""
    words = text.split(" ")
    return [" ".join(words[i:i + 2]) + (" " if i + 2 < len(words) else "") for i in range(0, len(words), 2)] or [""]


def r_reasoning(*summary: str, encrypted: str | None = "gAAAAABencrypted-reasoning==", item_id: str = "rs_1"):
    """A reasoning item: its summary parts streamed, its encrypted content only in output_item.done."""
    final = {"id": item_id, "type": "reasoning", "summary": [{"type": "summary_text", "text": t} for t in summary]}
    if encrypted is not None:
        final["encrypted_content"] = encrypted

    def events(index: int) -> list[dict]:
        at = {"item_id": item_id, "output_index": index}
        out = [{"type": "response.output_item.added", "output_index": index,
                "item": {"id": item_id, "type": "reasoning", "summary": []}}]
        for number, text in enumerate(summary):
            part = {**at, "summary_index": number}
            out.append({"type": "response.reasoning_summary_part.added", **part, "part": {"type": "summary_text",
                                                                                           "text": ""}})
            out += [{"type": "response.reasoning_summary_text.delta", **part, "delta": p} for p in _pieces(text)]
            out.append({"type": "response.reasoning_summary_text.done", **part, "text": text})
            out.append({"type": "response.reasoning_summary_part.done", **part,
                        "part": {"type": "summary_text", "text": text}})
        return out + [{"type": "response.output_item.done", "output_index": index, "item": final}]

    return final, events


def r_message(text: str, item_id: str = "msg_1", deltas: bool = True):
    """An assistant message item; `deltas=False`: its text only in the .done events."""
    part = {"type": "output_text", "text": text, "annotations": []}
    final = {"id": item_id, "type": "message", "status": "completed", "role": "assistant", "content": [part]}

    def events(index: int) -> list[dict]:
        at = {"item_id": item_id, "output_index": index, "content_index": 0}
        out = [{"type": "response.output_item.added", "output_index": index,
                "item": {"id": item_id, "type": "message", "status": "in_progress", "role": "assistant",
                         "content": []}},
               {"type": "response.content_part.added", **at, "part": {**part, "text": ""}}]
        if deltas:
            out += [{"type": "response.output_text.delta", **at, "delta": p, "logprobs": [], "obfuscation": "x9Qz"}
                    for p in _pieces(text)]
        out += [{"type": "response.output_text.done", **at, "text": text, "logprobs": []},
                {"type": "response.content_part.done", **at, "part": part}]
        return out + [{"type": "response.output_item.done", "output_index": index, "item": final}]

    return final, events


def r_call(name: str, arguments: str, call_id: str = "call_1", item_id: str = "fc_1", deltas: bool = True):
    """A function_call item: its arguments in deltas (`deltas=False`: only whole, in the .done events)."""
    final = {"id": item_id, "type": "function_call", "status": "completed", "call_id": call_id, "name": name,
             "arguments": arguments}

    def events(index: int) -> list[dict]:
        at = {"item_id": item_id, "output_index": index}
        out = [{"type": "response.output_item.added", "output_index": index,
                "item": {**final, "status": "in_progress", "arguments": ""}}]
        if deltas:
            out += [{"type": "response.function_call_arguments.delta", **at, "delta": arguments[i:i + 7]}
                    for i in range(0, len(arguments), 7)]
        out.append({"type": "response.function_call_arguments.done", **at, "name": name, "arguments": arguments})
        return out + [{"type": "response.output_item.done", "output_index": index, "item": final}]

    return final, events


def response_object(*items, status: str = "completed", reason: str | None = None, usage: dict | None = RESPONSES_USAGE,
                    model: str = "gpt-fake-2026", error: dict | None = None) -> dict:
    """The Response object, as a whole answer or in the final event (`items` from r_reasoning, r_message, r_call)."""
    return {"id": "resp_fake", "object": "response", "created_at": 1751642570, "status": status, "model": model,
            "output": [final for final, _ in items], "usage": usage, "error": error, "store": False,
            "incomplete_details": {"reason": reason} if reason else None, "parallel_tool_calls": True}


def responses_events(*items, final: str = "response.completed", **response) -> list[dict]:
    """A whole stream: created, in_progress, each item's events in order, then the final event."""
    snapshot = {**response_object(**response), "status": "in_progress", "output": [], "usage": None}
    out = [{"type": "response.created", "response": snapshot}, {"type": "response.in_progress", "response": snapshot}]
    for index, (_, events) in enumerate(items):
        out += events(index)
    return out + [{"type": final, "response": response_object(*items, **response)}]


def responses_sse(events: list) -> Reply:
    """A Responses API stream: each event (a dict; a float is a pause) its own write, numbered in order."""
    chunks, number = [], 0
    for e in events:
        if isinstance(e, float):
            chunks.append(e)
            continue
        chunks.append(f"event: {e['type']}\ndata: {json.dumps({**e, 'sequence_number': number})}\n\n".encode())
        number += 1
    return Reply(200, {"Content-Type": "text/event-stream"}, chunks)
