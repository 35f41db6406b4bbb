"""Fake providers on real sockets: they speak the provider's HTTP protocol, scripted per test."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    """What the fake answers: a status, headers and body pieces sent one write (and flush) each."""

    status: int = 200
    headers: dict = field(default_factory=dict)
    chunks: list = field(default_factory=list)  # bytes, or a float = sleep that long
    close_early: bool = False  # drop the connection after the chunks (a reset mid-stream)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict
    body: dict | None


class FakeServer:
    """A threaded HTTP/1.1 server on 127.0.0.1:0. `script(seen) -> Reply` decides each answer."""

    def __init__(self, script):
        self.script = script
        self.requests: list[Seen] = []
        self.disconnected = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def handle_any(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                seen = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                server.requests.append(seen)
                reply = server.script(seen)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                streamed = not reply.headers.get("Content-Length")
                if streamed:
                    self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    for chunk in reply.chunks:
                        if isinstance(chunk, float):
                            time.sleep(chunk)
                            continue
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if streamed else chunk)
                        self.wfile.flush()
                    if reply.close_early:
                        self.close_connection = True
                        return
                    if streamed:
                        self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    server.disconnected.set()

            do_GET = do_POST = do_HEAD = handle_any

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def json_reply(data: dict, status: int = 200, headers: dict | None = None) -> Reply:
    body = json.dumps(data).encode()
    return Reply(status, {"Content-Type": "application/json", "Content-Length": str(len(body)), **(headers or {})},
                 [body])


def sse(events: list, *, done: bool = True) -> list[bytes]:
    """OpenAI-style `data:` lines."""
    lines = [b"data: " + json.dumps(e).encode() + b"\n\n" for e in events]
    return lines + ([b"data: [DONE]\n\n"] if done else [])


def anthropic_text_stream(text: str, model: str) -> Reply:
    """An Anthropic Messages SSE answer, as a real Anthropic-API provider sends it."""
    events = [
        ("message_start", {"type": "message_start", "message": {
            "id": "msg_fake", "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 10, "output_tokens": 1}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": text}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                           "usage": {"output_tokens": 5}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    chunks = [f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events]
    return Reply(200, {"Content-Type": "text/event-stream"}, chunks)
