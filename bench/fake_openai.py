"""A fast fake OpenAI Chat Completions server for benchmarks (raw asyncio, keep-alive, no framework).

    python bench/fake_openai.py [--chunks N] [--burst]

Prints its port, then serves until killed: a canned completion, or an N-chunk stream (200 by
default) when the request says "stream": true. A stream goes the way providers send one: each SSE
event its own write, with the event loop free between events (other streams go on meanwhile);
`--burst` writes the whole stream at once instead, for comparison. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json

COMPLETION = json.dumps({"id": "chatcmpl-b", "object": "chat.completion", "model": "gpt-bench", "choices": [
    {"index": 0, "message": {"role": "assistant", "content": "Hello from the benchmark."}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 5000, "completion_tokens": 7}}).encode()
STREAM_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


def _chunk(data: dict | str) -> bytes:
    line = b"data: " + (data if isinstance(data, str) else json.dumps(data)).encode() + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(line), line)


def stream_events(chunks: int) -> list[bytes]:
    """The body of a streamed answer, an HTTP chunk per SSE event, the end of the body in the last one."""
    base = {"id": "chatcmpl-b", "object": "chat.completion.chunk", "model": "gpt-bench"}
    events = [_chunk({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                           "finish_reason": None}]})]
    events += [_chunk({**base, "choices": [{"index": 0, "delta": {"content": f"word{i} "}, "finish_reason": None}]})
               for i in range(chunks)]
    events.append(_chunk({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                          "usage": {"prompt_tokens": 5000, "completion_tokens": chunks}}))
    events.append(_chunk("[DONE]") + b"0\r\n\r\n")
    return events


def answer_for(events: list[bytes], burst: bool, whole: bytes = COMPLETION):
    def answer(head: bytes, body: bytes) -> tuple[list[bytes], float | None]:
        if not streamed(body):
            return [b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                    % (len(whole), whole)], None
        return [STREAM_HEAD, *events], None if burst else 0.0

    return answer


def streamed(body: bytes) -> bool:
    return b'"stream":true' in body or b'"stream": true' in body


def header(head: bytes, name: bytes) -> bytes | None:
    """A header's value in a request head (`name` in lower case, with its colon)."""
    return next((line.split(b":", 1)[1].strip() for line in head.split(b"\r\n") if line.lower().startswith(name)), None)


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, answer) -> None:
    """Keep-alive HTTP/1.1. `answer(head, body)` gives the pieces to write and the seconds between them
    (None: all in one write; 0: each its own write, the event loop free between them)."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            body = await reader.readexactly(int(header(head, b"content-length:") or 0))
            pieces, gap = answer(head, body)
            if gap is None:
                writer.write(b"".join(pieces))
            else:
                for index, piece in enumerate(pieces):
                    if index:
                        await asyncio.sleep(gap)
                    writer.write(piece)  # sent at once: asyncio writes straight to a socket with nothing queued
                    await writer.drain()
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


async def serve(make_answer) -> None:
    """`--chunks N` (200) text events a stream, `--burst`; prints the port, serves until killed."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=200)
    parser.add_argument("--burst", action="store_true")
    args = parser.parse_args()
    answer = make_answer(args.chunks, args.burst)
    server = await asyncio.start_server(lambda r, w: handle(r, w, answer), "127.0.0.1", 0, backlog=512)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(lambda chunks, burst: answer_for(stream_events(chunks), burst)))
