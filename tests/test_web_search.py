"""Web search for every provider: claude's `web_search` server tool run by the proxy against the `[search]`
backend, for targets of each API kind (relay to a non-Anthropic host, Chat, Responses), through the real proxy
with the official SDK as the client, fake providers and fake search backends on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest

from ccswitch import profiles
from ccswitch.proxy import web_search
from ccswitch.proxy.search_backends import SearchFailed, Searcher, searcher_for, within
from ccswitch.proxy.upstream import Upstream
from conftest import ccs, write_config
from fakes import (FakeServer, Reply, anthropic_sse, block, json_reply, message_end, message_start, r_call, r_message,
                   responses_events, responses_sse, sse)
from proxy_harness import Harness, chunk
from streams import assert_grammar, blocks_of, parse_anthropic_sse

SEARCH_TOOL = {"type": "web_search_20250305", "name": "web_search", "max_uses": 8}
# What claude's WebSearch tool sends (claude 2.1.332): its own request, with only the server tool.
CLAUDES_SEARCH = {"model": "claude-haiku-4-5", "max_tokens": 4096, "stream": True,
                  "system": [{"type": "text", "text": "You run a web search for another Claude model, which is waiting "
                                                      "on the result and can search again. Search once, then reply "
                                                      "with a brief summary of the results."}],
                  "messages": [{"role": "user", "content": "Perform a web search for the query: ccswitch release"}],
                  "tools": [SEARCH_TOOL]}
RESULTS = [{"title": "ccswitch 2.0 released", "url": "https://example.com/news/ccswitch-2", "engine": "duckduckgo",
            "content": "ccswitch 2.0 runs Claude Code against any provider.", "publishedDate": "2026-11-20T00:00:00"},
           {"title": "ccswitch on <b>PyPI</b>", "url": "https://pypi.example.org/project/ccswitch/",
            "content": "Install with pip &amp; go.", "publishedDate": None}]


def searxng(results=RESULTS, status: int = 200, wait: float = 0.0) -> FakeServer:
    """A SearXNG server: `GET /search?q=...&format=json` (JSON output enabled)."""
    def script(seen):
        if not seen.path.startswith("/search"):
            return Reply(404, {"Content-Length": "0"})
        if status != 200:
            return Reply(status, {"Content-Length": "0"}, wait=wait)
        query = parse_qs(urlsplit(seen.path).query)
        reply = json_reply({"query": query["q"][0], "number_of_results": len(results), "results": results})
        reply.wait = wait
        return reply

    return FakeServer(script)


def searched(fake: FakeServer) -> list[str]:
    return [parse_qs(urlsplit(r.path).query)["q"][0] for r in fake.requests]


@contextlib.contextmanager
def searching(model_script, backend: FakeServer, **options):
    """The proxy in front of a fake model (`model_script`), searching on `backend` (closed after); `options`:
    the Searcher's settings, and the Harness's upstream (`api`, ...)."""
    settings = {k: options.pop(k) for k in ("timeout", "max_results") if k in options}
    try:
        with Harness(model_script, search=searcher(backend.url, **settings), **options) as h:
            yield h, backend
    finally:
        backend.close()


def searcher(fake_url: str, provider: str = "searxng", key: str | None = None, **settings) -> Searcher:
    return Searcher(profiles.SearchSettings(provider, fake_url, **settings), lambda: key)


# ---------------------------------------------------------------- a model of each API kind that searches

def decide(tool_names: list[str], results: list[str], always: bool) -> tuple[str, str]:
    """("call", query) while the model wants to search, else ("text", its answer, quoting what it read)."""
    if "web_search" in tool_names and (always or not results):
        return "call", f"ccswitch release {len(results) + 1}" if always else "ccswitch release"
    return "text", f"Found: {results[-1][:300]}" if results else "I could not search."


def chat_model(always: bool = False):
    def script(seen):
        body = seen.body
        kind, value = decide([t["function"]["name"] for t in body.get("tools", [])],
                             [m["content"] for m in body["messages"] if m["role"] == "tool"], always)
        if kind == "call":
            call = {"index": 0, "id": f"call_{len(seen.body['messages'])}", "type": "function",
                    "function": {"name": "web_search", "arguments": json.dumps({"query": value})}}
            chunks = [chunk({"role": "assistant", "content": "Searching."}), chunk({"tool_calls": [call]}),
                      chunk(finish="tool_calls")]
        else:
            chunks = [chunk({"role": "assistant", "content": value}), chunk(finish="stop")]
        chunks.append({"choices": [], "usage": {"prompt_tokens": 100, "completion_tokens": 10}})
        return Reply(200, {"Content-Type": "text/event-stream"}, sse(chunks))
    return script


def responses_model(always: bool = False):
    def script(seen):
        body = seen.body
        kind, value = decide([t["name"] for t in body.get("tools", [])],
                             [i["output"] for i in body["input"] if i["type"] == "function_call_output"], always)
        if kind == "call":
            number = len(body["input"])
            items = (r_message("Searching.", item_id=f"msg_{number}"),
                     r_call("web_search", json.dumps({"query": value}), call_id=f"call_{number}",
                            item_id=f"fc_{number}"))
        else:
            items = (r_message(value),)
        return responses_sse(responses_events(*items))
    return script


def native_model(always: bool = False):
    """An Anthropic-API provider that is not Anthropic (GLM, Kimi, MiniMax...): tool_use blocks."""
    def script(seen):
        body = seen.body
        results = [b["content"] for m in body["messages"] if isinstance(m["content"], list) for b in m["content"]
                   if b.get("type") == "tool_result"]
        kind, value = decide([t["name"] for t in body.get("tools", [])], results, always)
        model = body["model"]
        if kind == "call":
            events = [message_start(model, 100), *block(0, {"type": "text", "text": ""},
                                                         {"type": "text_delta", "text": "Searching."}),
                      *block(1, {"type": "tool_use", "id": f"toolu_{len(body['messages'])}", "name": "web_search",
                                 "input": {}}, {"type": "input_json_delta", "partial_json": json.dumps({"query": value})}),
                      *message_end("tool_use", 10)]
        else:
            events = [message_start(model, 100), *block(0, {"type": "text", "text": ""},
                                                         {"type": "text_delta", "text": value}),
                      *message_end("end_turn", 10)]
        return anthropic_sse(events)
    return script


KINDS = {"chat": ({"api": "openai"}, chat_model), "responses": ({"api": "openai-responses"}, responses_model),
         "native": ({"api": "anthropic", "auth": "bearer"}, native_model)}
OUTPUT_TOKENS = {"chat": 10, "responses": 310, "native": 10}  # what each kind's fake reports per answer


def model_requests(h: Harness) -> list[dict]:
    return [r.body for r in h.requests if r.method == "POST"]


def offered_tools(body: dict) -> list[str]:
    """The names of the tools a request to the model offers, whatever its API."""
    return [t["function"]["name"] if "function" in t else t["name"] for t in body.get("tools") or []]


def sees_no_server_tool(h: Harness) -> None:
    for body in model_requests(h):
        text = json.dumps(body)
        assert "web_search_20250305" not in text and "server_tool_use" not in text, text[:500]


def stream_events(h: Harness, body: dict) -> list[tuple[str, dict]]:
    response = h.post("/v1/messages", body)
    assert response.status_code == 200, response.text
    events = parse_anthropic_sse(response.content)
    assert_grammar(events)
    return events


@pytest.mark.parametrize("kind", KINDS)
def test_claudes_search_request_is_answered_as_anthropic_would_for_every_api_kind(kind):
    api, model = KINDS[kind]
    with searching(model(), searxng(), **api) as (h, backend):
        events = stream_events(h, CLAUDES_SEARCH)
        blocks = blocks_of(events)
        assert [b["type"] for b in blocks] == ["text", "server_tool_use", "web_search_tool_result", "text"]
        use, result = blocks[1], blocks[2]
        assert use["id"].startswith("srvtoolu_") and use["name"] == "web_search"
        assert use["input"] == {"query": "ccswitch release"}
        assert result["tool_use_id"] == use["id"]
        first, second = result["content"]
        assert set(first) == {"type", "title", "url", "encrypted_content", "page_age"}
        assert first["type"] == "web_search_result" and first["title"] == "ccswitch 2.0 released"
        assert first["url"] == "https://example.com/news/ccswitch-2" and first["page_age"] == "2026-11-20T00:00:00"
        assert web_search.decrypted(first["encrypted_content"]) == RESULTS[0]["content"]
        assert second["title"] == "ccswitch on PyPI" and second["page_age"] is None  # tags and entities gone
        assert web_search.decrypted(second["encrypted_content"]) == "Install with pip & go."
        assert blocks[3]["text"].startswith("Found: Web search results for 'ccswitch release':")
        assert "https://example.com/news/ccswitch-2" in blocks[3]["text"]  # the model read the results
        delta = next(data for name, data in events if name == "message_delta")
        assert delta["delta"]["stop_reason"] == "end_turn"
        assert delta["usage"]["server_tool_use"] == {"web_search_requests": 1}
        assert delta["usage"]["output_tokens"] == 2 * OUTPUT_TOKENS[kind]  # both requests to the model, summed
        assert searched(backend) == ["ccswitch release"]
        bodies = model_requests(h)
        assert len(bodies) == 2
        assert offered_tools(bodies[0]) == ["web_search"]
        sees_no_server_tool(h)
        assert not h.bugs


def test_the_sdk_reads_the_blocks_whole_and_streamed():
    with searching(chat_model(), searxng()) as (h, _):
        request = {**CLAUDES_SEARCH, "stream": False}
        message = h.sdk.messages.create(**{k: v for k, v in request.items() if k != "stream"})
        assert [b.type for b in message.content] == ["text", "server_tool_use", "web_search_tool_result", "text"]
        assert message.content[2].content[0].url == RESULTS[0]["url"]
        assert message.usage.server_tool_use.web_search_requests == 1
        assert message.usage.input_tokens == 200 and message.stop_reason == "end_turn"
        with h.sdk.messages.stream(**{k: v for k, v in request.items() if k != "stream"}) as stream:
            streamed = stream.get_final_message()
        assert [b.type for b in streamed.content] == [b.type for b in message.content]
        assert streamed.content[1].input == {"query": "ccswitch release"}
        assert streamed.usage.server_tool_use.web_search_requests == 1
        rows = [r.getMessage() for r in h.log.records if " -> gpt," in r.getMessage()]
        assert rows and all(" in 200 " in row and " out 20" in row for row in rows)  # one row, tokens summed


def test_max_uses_is_respected_and_then_the_tool_is_withdrawn():
    with searching(chat_model(always=True), searxng()) as (h, backend):
        events = stream_events(h, {**CLAUDES_SEARCH, "tools": [{**SEARCH_TOOL, "max_uses": 2}]})
        blocks = blocks_of(events)
        kinds = [b["type"] for b in blocks if b["type"] != "text"]
        assert kinds == ["server_tool_use", "web_search_tool_result"] * 2
        assert searched(backend) == ["ccswitch release 1", "ccswitch release 2"]
        bodies = model_requests(h)
        assert len(bodies) == 3 and not offered_tools(bodies[2])  # no search left: the model must answer
        assert "tool_choice" not in bodies[2]
        delta = next(data for name, data in events if name == "message_delta")
        assert delta["usage"]["server_tool_use"] == {"web_search_requests": 2}


def test_a_call_past_max_uses_is_an_error_result():
    """A model that calls the function in parallel past the budget: the calls past it are refused."""
    def script(seen):
        if any(m["role"] == "tool" for m in seen.body["messages"]):
            return Reply(200, {"Content-Type": "text/event-stream"}, sse([chunk({"content": "done"}, finish="stop")]))
        calls = [{"index": i, "id": f"call_{i}", "type": "function", "function": {
            "name": "web_search", "arguments": json.dumps({"query": f"q{i}"})}} for i in range(3)]
        return Reply(200, {"Content-Type": "text/event-stream"},
                     sse([chunk({"tool_calls": calls}), chunk(finish="tool_calls")]))

    with searching(script, searxng()) as (h, backend):
        blocks = blocks_of(stream_events(h, {**CLAUDES_SEARCH, "tools": [{**SEARCH_TOOL, "max_uses": 2}]}))
        results = [b["content"] for b in blocks if b["type"] == "web_search_tool_result"]
        assert isinstance(results[0], list) and isinstance(results[1], list)
        assert results[2] == {"type": "web_search_tool_result_error", "error_code": "max_uses_exceeded"}
        assert sorted(searched(backend)) == ["q0", "q1"]
        tool_messages = [m for m in model_requests(h)[1]["messages"] if m["role"] == "tool"]
        assert "max_uses_exceeded" in tool_messages[2]["content"]


def test_without_a_search_backend_one_clear_error_result_and_how_to_set_one_up():
    with Harness(chat_model()) as h:
        events = stream_events(h, CLAUDES_SEARCH)
        blocks = blocks_of(events)
        assert [b["type"] for b in blocks] == ["text", "server_tool_use", "web_search_tool_result", "text"]
        assert blocks[2]["content"] == {"type": "web_search_tool_result_error", "error_code": "unavailable"}
        assert "[search]" in blocks[3]["text"] and "ccs key set search" in blocks[3]["text"]
        assert len(model_requests(h)) == 1  # searching again cannot help: the turn ends there
        sees_no_server_tool(h)
        delta = next(data for name, data in events if name == "message_delta")
        assert delta["delta"]["stop_reason"] == "end_turn"
        assert delta["usage"]["server_tool_use"] == {"web_search_requests": 0}


def test_a_missing_key_says_how_to_store_it():
    def missing():
        from ccswitch.errors import CcsError
        raise CcsError("no key stored for the brave search backend: run `ccs key set search`")

    brave = Searcher(profiles.SearchSettings("brave", "http://127.0.0.1:9"), missing)
    with Harness(chat_model(), search=brave) as h:
        blocks = blocks_of(stream_events(h, CLAUDES_SEARCH))
        assert blocks[2]["content"]["error_code"] == "unavailable"
        assert "ccs key set search" in blocks[3]["text"] and len(model_requests(h)) == 1


def closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


@pytest.mark.parametrize("down", ["refused", "slow", "403", "429", "not json"])
def test_a_backend_that_fails_is_an_error_result_and_the_model_still_answers(down):
    backend = {"refused": None, "slow": searxng(wait=3.0), "403": searxng(status=403),
               "429": searxng(status=429), "not json": FakeServer(lambda seen: Reply(
                   200, {"Content-Type": "text/html", "Content-Length": "6"}, [b"<html>"]))}[down]
    url = backend.url if backend else f"http://127.0.0.1:{closed_port()}"
    try:
        with Harness(chat_model(), search=searcher(url, timeout=0.5)) as h:
            blocks = blocks_of(stream_events(h, CLAUDES_SEARCH))
            assert [b["type"] for b in blocks] == ["text", "server_tool_use", "web_search_tool_result", "text"]
            code = "too_many_requests" if down == "429" else "unavailable"
            assert blocks[2]["content"] == {"type": "web_search_tool_result_error", "error_code": code}
            told = [m for m in model_requests(h)[1]["messages"] if m["role"] == "tool"][0]["content"]
            assert told.startswith(f"Error: The web search failed ({code})")
            if down == "403":
                assert "settings.yml" in told  # SearXNG without JSON output: what to change
            assert blocks[3]["text"].startswith("Found: Error: The web search failed")
            assert not h.bugs
    finally:
        if backend:
            backend.close()


def test_a_model_that_fails_after_the_stream_began_ends_it_with_an_error_event():
    answers = iter([chat_model()])

    def script(seen):
        if any(m["role"] == "tool" for m in seen.body["messages"]):
            return Reply(400, {"Content-Type": "application/json"},
                         [json.dumps({"error": {"message": "context too long for us"}}).encode()])
        return next(answers)(seen)

    with searching(script, searxng()) as (h, _):
        response = h.post("/v1/messages", CLAUDES_SEARCH)
        events = parse_anthropic_sse(response.content)
        assert [name for name, _ in events][0] == "message_start"
        assert events[-1][0] == "error" and "context too long for us" in events[-1][1]["error"]["message"]


def test_a_failure_before_anything_was_sent_is_a_plain_error():
    with Harness(lambda seen: Reply(401, {"Content-Type": "application/json"},
                                    [b'{"error": {"message": "bad key"}}']), search=None) as h:
        response = h.post("/v1/messages", CLAUDES_SEARCH)
        assert response.status_code == 401 and "ccs key set gpt" in response.text


def test_pings_while_a_search_takes_its_time(monkeypatch):
    monkeypatch.setattr(web_search, "PING_AFTER", 0.2)
    with searching(chat_model(), searxng(wait=1.0)) as (h, _):
        events = stream_events(h, CLAUDES_SEARCH)
        kinds = [name for name, _ in events]
        assert "ping" in kinds[kinds.index("message_start"):]


def test_a_client_that_leaves_during_a_search_ends_it_and_the_backends_request():
    with searching(chat_model(), searxng(wait=10.0), timeout=30) as (h, backend):
        with httpx2.stream("POST", h.endpoint.url + "/v1/messages", json=CLAUDES_SEARCH,
                           headers={"x-api-key": h.endpoint.token}) as response:
            pieces = response.iter_raw()  # kept: a generator dropped closes the stream
            assert b"message_start" in next(pieces)
            deadline = time.monotonic() + 5
            while not backend.requests:  # the search is under way
                assert time.monotonic() < deadline
                time.sleep(0.02)
        gave_up = time.monotonic()
        assert backend.disconnected.wait(3) and backend.disconnect_times[0] - gave_up < 2
        deadline = time.monotonic() + 5
        while not (lines := [r.getMessage() for r in h.log.records if " -> " in r.getMessage()]):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert " stream 499 " in lines[0] and len(model_requests(h)) == 1
        assert not h.bugs


def test_client_tools_beside_the_search_tool_end_the_turn_for_the_client():
    def script(seen):
        calls = [{"index": 0, "id": "call_s", "type": "function", "function": {"name": "web_search",
                                                                               "arguments": '{"query": "x"}'}},
                 {"index": 1, "id": "call_b", "type": "function", "function": {"name": "Bash",
                                                                               "arguments": '{"command": "ls"}'}}]
        return Reply(200, {"Content-Type": "text/event-stream"},
                     sse([chunk({"tool_calls": calls}), chunk(finish="tool_calls")]))

    bash = {"name": "Bash", "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}
    with searching(script, searxng()) as (h, _):
        events = stream_events(h, {**CLAUDES_SEARCH, "tools": [bash, SEARCH_TOOL],
                                   "tool_choice": {"type": "any"}})
        blocks = blocks_of(events)
        assert [b["type"] for b in blocks] == ["server_tool_use", "web_search_tool_result", "tool_use"]
        assert blocks[2]["name"] == "Bash" and blocks[2]["input"] == {"command": "ls"}
        assert events[-2][1]["delta"]["stop_reason"] == "tool_use"
        (body,) = model_requests(h)
        assert offered_tools(body) == ["Bash", "web_search"]
        assert body["tool_choice"] == "required"  # the first request keeps the client's choice


def test_a_forced_search_is_forced_once():
    with searching(chat_model(), searxng()) as (h, _):
        stream_events(h, {**CLAUDES_SEARCH, "tool_choice": {"type": "tool", "name": "web_search"}})
        first, second = model_requests(h)
        assert first["tool_choice"] == {"type": "function", "function": {"name": "web_search"}}
        assert second["tool_choice"] == "auto"


def test_allowed_and_blocked_domains_filter_the_results():
    tool = {**SEARCH_TOOL, "blocked_domains": ["pypi.example.org"]}
    with searching(chat_model(), searxng()) as (h, _):
        blocks = blocks_of(stream_events(h, {**CLAUDES_SEARCH, "tools": [tool]}))
        assert [r["url"] for r in blocks[2]["content"]] == [RESULTS[0]["url"]]
    assert within("https://docs.example.com/a", ["example.com"]) and not within("https://example.org", ["example.com"])
    assert within("https://example.com/blog/1", ["example.com/blog"]) and not within("https://example.com/x",
                                                                                      ["example.com/blog"])
    assert not within("https://www.spam.com/", [], ["spam.com"])


# ---------------------------------------------------------------- past searches in a later turn

PAST = {"role": "assistant", "content": [
    {"type": "text", "text": "Let me look."},
    {"type": "server_tool_use", "id": "srvtoolu_ccs0123", "name": "web_search", "input": {"query": "ccswitch"}},
    {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_ccs0123", "content": [
        {"type": "web_search_result", "title": "ccswitch", "url": "https://example.com/c",
         "encrypted_content": web_search.encrypted("Runs claude anywhere."), "page_age": "May 1, 2026"}]},
    {"type": "server_tool_use", "id": "srvtoolu_01Anthropic", "name": "web_search", "input": {"query": "other"}},
    {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_01Anthropic", "content": [
        {"type": "web_search_result", "title": "Other", "url": "https://example.org/o",
         "encrypted_content": "EqgfCioIARgBIiQ3YTAw", "page_age": None}]},
    {"type": "text", "text": "It runs claude anywhere."}]}
LATER = {"model": "claude-sonnet-4-5", "max_tokens": 100,
         "messages": [{"role": "user", "content": "what is ccswitch?"}, PAST, {"role": "user", "content": "more?"}]}


def test_a_later_turn_with_past_searches_reaches_a_model_as_text():
    with Harness(lambda seen: json_reply({"id": "c", "object": "chat.completion", "model": "m", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]})) as h:
        response = h.post("/v1/messages", LATER)
        assert response.status_code == 200, response.text
        (body,) = model_requests(h)
        said = body["messages"][1]["content"]
        assert said.startswith("Let me look.") and said.endswith("It runs claude anywhere.")
        assert "Web search results for 'ccswitch':" in said and "https://example.com/c" in said
        assert "(May 1, 2026)" in said and "Runs claude anywhere." in said
        assert "Web search results for 'other':" in said and "https://example.org/o" in said
        assert "EqgfCioIARgBIiQ3YTAw" not in said and "tools" not in body
        sees_no_server_tool(h)


def test_for_anthropic_only_the_proxys_own_searches_become_text():
    kept = web_search.readable(LATER, ours_only=True)["messages"][1]["content"]
    assert [b["type"] for b in kept] == ["text", "text", "server_tool_use", "web_search_tool_result", "text"]
    assert "Runs claude anywhere." in kept[1]["text"] and kept[2]["id"] == "srvtoolu_01Anthropic"
    anthropic = Upstream("anthropic", "https://api.anthropic.com", api="anthropic")
    glm = Upstream("glm", "https://api.z.ai/api/anthropic", api="anthropic")
    relay = object()
    assert web_search.with_web_search(relay, CLAUDES_SEARCH, anthropic) is relay  # Anthropic runs its own tool
    assert web_search.with_web_search(relay, LATER, anthropic) is not relay
    assert web_search.with_web_search(relay, CLAUDES_SEARCH, glm) is not relay
    assert web_search.with_web_search(relay, {"messages": [{"role": "user", "content": "hi"}]}, glm) is relay


# ---------------------------------------------------------------- the backends, each as its docs say


def test_brave_is_asked_with_its_token_and_read_from_web_results(caplog):
    answer = {"type": "search", "query": {"original": "q"}, "web": {"type": "search", "results": [
        {"title": "Brave <strong>Search</strong> API", "url": "https://brave.com/search/api/",
         "description": "The <strong>independent</strong> index.", "page_age": "2026-05-01T10:00:00", "age": "May 1"},
        {"title": "no url"}]}}
    fake = FakeServer(lambda seen: json_reply(answer))
    try:
        hits = asyncio.run(search_once(searcher(fake.url, "brave", key="BSA-secret-key", max_results=3), "brave api"))
        (seen,) = fake.requests
        assert seen.method == "GET" and urlsplit(seen.path).path == "/res/v1/web/search"
        assert parse_qs(urlsplit(seen.path).query) == {"q": ["brave api"], "count": ["3"]}
        assert seen.headers["x-subscription-token"] == "BSA-secret-key" and "authorization" not in seen.headers
        assert hits == [("Brave Search API", "https://brave.com/search/api/", "The independent index.",
                         "2026-05-01T10:00:00")]
        assert "BSA-secret-key" not in caplog.text
    finally:
        fake.close()


def test_tavily_is_asked_with_a_bearer_key_and_the_domains():
    answer = {"query": "q", "answer": None, "results": [
        {"title": "Tavily", "url": "https://docs.tavily.com/", "content": "Search for agents.", "score": 0.9,
         "published_date": "Mon, 01 Jun 2026"}], "response_time": 1.2}
    fake = FakeServer(lambda seen: json_reply(answer))
    try:
        hits = asyncio.run(search_once(searcher(fake.url, "tavily", key="tvly-secret"), "tavily", ["tavily.com"],
                                       ["spam.com"]))
        (seen,) = fake.requests
        assert seen.method == "POST" and seen.path == "/search"
        assert seen.headers["authorization"] == "Bearer tvly-secret"
        assert seen.body == {"query": "tavily", "max_results": 5, "include_domains": ["tavily.com"],
                             "exclude_domains": ["spam.com"]}
        assert hits == [("Tavily", "https://docs.tavily.com/", "Search for agents.", "Mon, 01 Jun 2026")]
    finally:
        fake.close()


def test_a_key_is_looked_up_once_however_many_search():
    looked = []
    fake = searxng()

    def lookup():
        looked.append(1)
        return "k"

    async def many():
        one = Searcher(profiles.SearchSettings("brave", fake.url), lookup)
        try:
            return await asyncio.gather(*(one.search(f"q{i}") for i in range(5)), return_exceptions=True)
        finally:
            await one.close()

    try:
        asyncio.run(many())
        assert looked == [1]
    finally:
        fake.close()


async def search_once(one: Searcher, query: str, allowed=(), blocked=()):
    try:
        return await one.search(query, allowed, blocked)
    finally:
        await one.close()


def test_a_searxng_server_without_json_says_what_to_change():
    fake = searxng(status=403)
    try:
        with pytest.raises(SearchFailed, match="settings.yml") as failed:
            asyncio.run(search_once(searcher(fake.url), "q"))
        assert failed.value.code == "unavailable" and not failed.value.setup
    finally:
        fake.close()


# ---------------------------------------------------------------- the profiles file and `ccs key`


@pytest.mark.parametrize(("body", "line", "words"), [
    ('[search]\nprovider = "bing"\n', 3, "provider must be one of searxng, brave, tavily"),
    ('[search]\nprovider = "searxng"\n', 3, "a SearXNG backend needs its url"),
    ('[search]\nprovider = "brave"\nurl = "https://api.search.brave.com?key=x"\n', 4, "url holds a query"),
    ('[search]\nprovider = "tavily"\nmax_results = 0\n', 4, "max_results must be from 1 to 20"),
    ('[search]\nprovider = "searxng"\nurl = "http://127.0.0.1:8888"\nkey_env = "K"\n', 5, "takes no key"),
    ('[search]\nprovider = "brave"\ntimeout = "5"\n', 4, "'timeout' must be a number"),
    ('[search]\nprovider = "brave"\nkey = "sk"\n', 4, "unknown key 'key'"),
])
def test_a_bad_search_table_names_file_and_line(body, line, words):
    path = write_config("version = 1\n" + body)
    with pytest.raises(profiles.ConfigError) as err:
        profiles.load(path)
    assert str(err.value).startswith(f"{path}:{line}: [search]: ") and words in str(err.value), str(err.value)
    result = ccs("list")
    assert result.returncode == 2 and words in result.stderr and "Traceback" not in result.stderr


def test_a_search_table_loads_with_defaults():
    config = profiles.load(write_config('version = 1\n[search]\nprovider = "brave"\n'))
    assert config.search == profiles.SearchSettings("brave", "https://api.search.brave.com")
    assert config.search.needs_key and searcher_for(config).title == "Brave Search"
    assert searcher_for(profiles.load(write_config("version = 1\n"))) is None


def test_ccs_key_set_search_stores_the_backends_key(file_keyring):
    write_config('version = 1\n[search]\nprovider = "tavily"\n')
    stored = ccs("key", "set", "search", "--stdin", input="tvly-stored-key\n")
    assert stored.returncode == 0, stored.stderr
    assert "tvly-stored-key" not in stored.stdout
    printed = ccs("key", "print", "search")
    assert printed.stdout.strip() == "tvly-stored-key"
    write_config('version = 1\n[search]\nprovider = "searxng"\nurl = "http://127.0.0.1:8888"\n')
    refused = ccs("key", "set", "search", "--stdin", input="x\n")
    assert refused.returncode == 2 and "takes no key" in refused.stderr
    write_config("version = 1\n")
    missing = ccs("key", "set", "search", "--stdin", input="x\n")
    assert missing.returncode == 2 and "no [search] table" in missing.stderr
