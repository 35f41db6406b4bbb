"""A fast fake Anthropic Messages API server for benchmarks (raw asyncio, keep-alive, no framework).

    python bench/fake_anthropic.py [--chunks N] [--burst]

Prints its port, then serves until killed: a canned message, or a Messages SSE stream when the
request says "stream": true (message_start, content_block_start, N content_block_delta text events,
200 by default, content_block_stop, message_delta with the usage, message_stop). A stream goes the
way providers send one: each SSE event its own write, with the event loop free between events
(other streams go on meanwhile); `--burst` writes the whole stream at once instead, for comparison.
A request with the header `x-bench-pace: MS,N` gets N text events instead, each event after the
first two MS milliseconds after the one before, the way a model streams its tokens (the proxy
forwards the client's headers, so this reaches the fake through it too).
The same server as `fake_openai.py` (its serving loop), other answers. Loopback only.
"""

from __future__ import annotations

import asyncio
import json

from fake_openai import header, serve, streamed  # the same server; bench/ is on sys.path when run as a script

USAGE = {"input_tokens": 5000, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 4000, "output_tokens": 7}
MESSAGE = json.dumps({"id": "msg_bench", "type": "message", "role": "assistant", "model": "claude-bench",
                      "content": [{"type": "text", "text": "Hello from the benchmark."}], "stop_reason": "end_turn",
                      "stop_sequence": None, "usage": USAGE}).encode()
HEADERS = b"request-id: req_bench\r\nanthropic-ratelimit-requests-remaining: 999\r\n"
STREAM_HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ncache-control: no-cache\r\n"
               + HEADERS + b"transfer-encoding: chunked\r\n\r\n")


def _chunk(event: str, data: dict) -> bytes:
    line = b"event: %s\ndata: %s\n\n" % (event.encode(), json.dumps(data, separators=(",", ":")).encode())
    return b"%x\r\n%s\r\n" % (len(line), line)


def stream_events(chunks: int) -> list[bytes]:
    """The body of a streamed answer, an HTTP chunk per SSE event, the end of the body in the last one."""
    start = {"id": "msg_bench", "type": "message", "role": "assistant", "model": "claude-bench", "content": [],
             "stop_reason": None, "stop_sequence": None, "usage": {**USAGE, "output_tokens": 1}}
    events = [_chunk("message_start", {"type": "message_start", "message": start}),
              _chunk("content_block_start", {"type": "content_block_start", "index": 0,
                                             "content_block": {"type": "text", "text": ""}})]
    events += [_chunk("content_block_delta", {"type": "content_block_delta", "index": 0,
                                              "delta": {"type": "text_delta", "text": f"word{i} "}})
               for i in range(chunks)]
    events.append(_chunk("content_block_stop", {"type": "content_block_stop", "index": 0}))
    events.append(_chunk("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn",
                                                                              "stop_sequence": None},
                                           "usage": {"output_tokens": chunks}}))
    events.append(_chunk("message_stop", {"type": "message_stop"}) + b"0\r\n\r\n")
    return events


PACED: dict[int, list[bytes]] = {}  # the events of a paced stream, by its number of text events


def answer_for(events: list[bytes], burst: bool):
    def answer(head: bytes, body: bytes) -> tuple[list[bytes], float | None]:
        if not streamed(body):
            return [b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n%scontent-length: %d\r\n\r\n%s"
                    % (HEADERS, len(MESSAGE), MESSAGE)], None
        if pace := header(head, b"x-bench-pace:"):
            gap, chunks = pace.split(b",")
            paced = PACED.get(int(chunks)) or PACED.setdefault(int(chunks), stream_events(int(chunks)))
            return [STREAM_HEAD + paced[0] + paced[1], *paced[2:]], float(gap) / 1000
        return [STREAM_HEAD, *events], None if burst else 0.0

    return answer


if __name__ == "__main__":
    asyncio.run(serve(lambda chunks, burst: answer_for(stream_events(chunks), burst)))
