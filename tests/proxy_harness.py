"""The embedded proxy in a thread of the test process, in front of a fake provider on a real socket."""

from __future__ import annotations

import logging

import anthropic
import httpx2

from ccswitch.proxy import lifecycle
from ccswitch.proxy.router import Router
from ccswitch.proxy.upstream import Upstream
from fakes import FakeServer

def completion(content="Hello!", tool_calls=None, finish="stop") -> dict:
    message = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-main",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 3}}


def chunk(delta=None, finish=None, usage=None):
    data = {"choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}]}
    if usage:
        data["usage"] = usage
    return data


class Harness:
    """`with Harness(script) as h`: a fake provider answering by `script`, the proxy in front of it, an
    SDK client. `h.bugs` holds what the proxy logged as a bug of its own (tests expect none)."""

    def __init__(self, script, *, client=None, max_request_mb: int = 64, router=None, search=None, **upstream):
        self.upstream_server = FakeServer(script)
        upstream = {"model": "gpt-main", "models": {"opus": "gpt-big", "haiku": "gpt-small"}, **upstream}
        self.upstream = Upstream(**{"api": "openai", "name": "gpt", "base_url": self.upstream_server.url + "/v1",
                                    "key": "sk-upstream-key", **upstream})
        self.client = client
        self.router = router  # upstream -> the Router in front of it, when not Router.single
        self.max_request_mb = max_request_mb
        self.search = search  # the web search backend (search_backends.Searcher)
        self.log = _Records()

    def __enter__(self):
        router = (self.router or Router.single)(self.upstream)
        self._running = lifecycle.running(router, client=self.client, max_request_mb=self.max_request_mb,
                                          search=self.search)
        self.endpoint = self._running.__enter__()
        logging.getLogger("ccswitch.proxy").addHandler(self.log)  # after uvicorn's logging config, which clears it
        self.sdk = anthropic.Anthropic(base_url=self.endpoint.url, auth_token=self.endpoint.token, api_key=None,
                                       max_retries=0, timeout=20)
        return self

    def __exit__(self, *exc):
        self._running.__exit__(*exc)
        self.upstream_server.close()
        logging.getLogger("ccswitch.proxy").removeHandler(self.log)

    @property
    def bugs(self) -> list[str]:
        return [record.getMessage() for record in self.log.records if record.exc_info]

    @property
    def requests(self):
        return self.upstream_server.requests

    def post(self, path="/v1/messages", body=None, headers=None, **kwargs):
        headers = {"authorization": f"Bearer {self.endpoint.token}", **(headers or {})}
        kwargs.setdefault("timeout", 20)
        return httpx2.post(self.endpoint.url + path, json=body, headers=headers, **kwargs)


SIMPLE = {"model": "claude-opus-5-5", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}


class _Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
