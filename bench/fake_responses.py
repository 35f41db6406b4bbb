"""A fast fake OpenAI Responses API server for benchmarks (raw asyncio, keep-alive, no framework).

    python bench/fake_responses.py [--chunks N] [--burst]

Prints its port, then serves until killed: a canned response, or a Responses stream when the request says
"stream": true, as OpenAI documents it (response.created, .in_progress, output_item.added, content_part.added,
N response.output_text.delta events, 200 by default, each with its item_id, indices, logprobs, obfuscation and
sequence_number, then the .done events and response.completed with the usage). Each event its own write, as
`fake_openai.py` sends a chat stream (the same server, other answers); `--burst` all at once. Loopback only.
"""

from __future__ import annotations

import asyncio
import json

from fake_openai import answer_for, serve  # the same server; bench/ is on sys.path when run as a script

USAGE = {"input_tokens": 5000, "input_tokens_details": {"cached_tokens": 4096}, "output_tokens": 7,
         "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 5007}
TEXT = {"type": "output_text", "text": "Hello from the benchmark.", "annotations": []}
MESSAGE = {"id": "msg_b", "type": "message", "status": "completed", "role": "assistant", "content": [TEXT]}
RESPONSE = {"id": "resp_b", "object": "response", "created_at": 1751642570, "status": "completed",
            "model": "gpt-bench", "output": [MESSAGE], "usage": USAGE, "error": None, "incomplete_details": None,
            "store": False}
WHOLE = json.dumps(RESPONSE).encode()


def _event(number: int, data: dict) -> bytes:
    line = f"event: {data['type']}\ndata: {json.dumps({**data, 'sequence_number': number})}\n\n".encode()
    return b"%x\r\n%s\r\n" % (len(line), line)


def stream_events(chunks: int) -> list[bytes]:
    """The body of a streamed answer, an HTTP chunk per SSE event, the end of the body in the last one."""
    at = {"item_id": "msg_b", "output_index": 0, "content_index": 0}
    snapshot = {**RESPONSE, "status": "in_progress", "output": [], "usage": None}
    text = "".join(f"word{i} " for i in range(chunks))
    data = [{"type": "response.created", "response": snapshot}, {"type": "response.in_progress", "response": snapshot},
            {"type": "response.output_item.added", "output_index": 0,
             "item": {**MESSAGE, "status": "in_progress", "content": []}},
            {"type": "response.content_part.added", **at, "part": {**TEXT, "text": ""}}]
    data += [{"type": "response.output_text.delta", **at, "delta": f"word{i} ", "logprobs": [],
              "obfuscation": "x9Qz"} for i in range(chunks)]
    done = {**MESSAGE, "content": [{**TEXT, "text": text}]}
    data += [{"type": "response.output_text.done", **at, "text": text, "logprobs": []},
             {"type": "response.content_part.done", **at, "part": {**TEXT, "text": text}},
             {"type": "response.output_item.done", "output_index": 0, "item": done},
             {"type": "response.completed", "response": {**RESPONSE, "output": [done],
                                                         "usage": {**USAGE, "output_tokens": chunks}}}]
    events = [_event(number, item) for number, item in enumerate(data)]
    events[-1] += b"0\r\n\r\n"
    return events


if __name__ == "__main__":
    asyncio.run(serve(lambda chunks, burst: answer_for(stream_events(chunks), burst, WHOLE)))
