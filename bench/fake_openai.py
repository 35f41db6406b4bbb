"""A fast fake OpenAI Chat Completions server for benchmarks (raw asyncio, keep-alive, no framework).

Prints its port, then serves until killed: a canned completion, or a 200-chunk stream when the
request says "stream": true. Loopback only.
"""

from __future__ import annotations

import asyncio
import json
import sys

CHUNKS = int(sys.argv[1]) if len(sys.argv) > 1 else 200
COMPLETION = json.dumps({"id": "chatcmpl-b", "object": "chat.completion", "model": "gpt-bench", "choices": [
    {"index": 0, "message": {"role": "assistant", "content": "Hello from the benchmark."}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 5000, "completion_tokens": 7}}).encode()


def _chunk(data: dict) -> bytes:
    line = b"data: " + json.dumps(data).encode() + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(line), line)


STREAM = [_chunk({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]})]
STREAM += [_chunk({"choices": [{"index": 0, "delta": {"content": f"word{i} "}, "finish_reason": None}]})
           for i in range(CHUNKS)]
STREAM += [_chunk({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                   "usage": {"prompt_tokens": 5000, "completion_tokens": CHUNKS}}), b""]
STREAM[-1] = b"e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n"


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            body = await reader.readexactly(length)
            if b'"stream": true' in body or b'"stream":true' in body:
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
                for piece in STREAM:
                    writer.write(piece)
            else:
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                             % (len(COMPLETION), COMPLETION))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


async def main() -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=512)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
