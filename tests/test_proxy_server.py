"""The proxy over real sockets: uvicorn in a thread, a fake OpenAI provider, the official anthropic SDK."""

from __future__ import annotations

import json
import socket
import time
import zlib

import anthropic
import httpx2
import pytest

from ccswitch.proxy import chat, lifecycle, pipeline
from ccswitch.proxy.anthropic import estimate_tokens
from ccswitch.proxy.router import Router
from ccswitch.proxy.upstream import Upstream
from conftest import FIXTURES
from fakes import Reply, json_reply, sse
from proxy_harness import SIMPLE, Harness, chunk, completion
from streams import assert_grammar, parse_anthropic_sse

TOOL_STREAM = sse([chunk({"role": "assistant", "reasoning_content": "I should list files."}),
                   chunk({"content": "Listing."}),
                   chunk({"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "Bash", "arguments": ""}}]}),
                   chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"command": '}}]}),
                   chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"ls"}'}}]}),
                   chunk({"tool_calls": [{"index": 1, "id": "c2", "function": {"name": "Read",
                                                                                "arguments": '{"file_path": "/x"}'}}]}),
                   chunk(finish="tool_calls"), {"choices": [], "usage": {"prompt_tokens": 50, "completion_tokens": 9}}])


def test_sdk_non_streaming_round_trip():
    with Harness(lambda seen: json_reply(completion("Hello from upstream"))) as h:
        message = h.sdk.messages.create(**SIMPLE)
        assert message.content[0].text == "Hello from upstream"
        assert message.stop_reason == "end_turn" and message.usage.input_tokens == 12
        (seen,) = h.requests
        assert seen.path == "/v1/chat/completions"
        assert seen.headers["authorization"] == "Bearer sk-upstream-key"
        assert seen.body["model"] == "gpt-big"  # claude-opus-* -> the profile's opus model
        assert h.endpoint.token not in json.dumps(seen.headers)


def test_sdk_streaming_with_thinking_and_parallel_tools():
    with Harness(lambda seen: Reply(200, {"Content-Type": "text/event-stream"}, TOOL_STREAM)) as h:
        with h.sdk.messages.stream(**{**SIMPLE, "thinking": {"type": "adaptive"}}) as stream:
            message = stream.get_final_message()
        assert [b.type for b in message.content] == ["thinking", "text", "tool_use", "tool_use"]
        assert message.content[2].input == {"command": "ls"} and message.content[3].name == "Read"
        assert message.stop_reason == "tool_use"
        assert message.usage.input_tokens == 50 and message.usage.output_tokens == 9
        assert h.requests[0].body["stream"] is True and h.requests[0].body["reasoning_effort"] == "medium"


def test_a_provider_that_ignores_stream_true_still_gives_a_stream():
    reply = completion("Running it.", [{"id": "c", "type": "function",
                                        "function": {"name": "Bash", "arguments": '{"a": 1}'}}], "tool_calls")
    reply["choices"][0]["message"]["reasoning_content"] = "A shell call will do."
    with Harness(lambda seen: json_reply(reply)) as h:
        with h.sdk.messages.stream(**SIMPLE) as stream:
            message = stream.get_final_message()
        assert [b.type for b in message.content] == ["thinking", "text", "tool_use"]
        assert message.content[0].thinking == "A shell call will do." and message.content[1].text == "Running it."
        assert message.content[2].input == {"a": 1}
        assert message.stop_reason == "tool_use"


def test_real_claude_code_requests_go_through():
    def script(seen):
        return Reply(200, {"Content-Type": "text/event-stream"}, sse([chunk({"content": "ok"}, finish="stop")]))

    with Harness(script) as h:
        for name in ("main-streaming-request.json", "tool-result-parallel-followup.json",
                     "tool-result-image-followup.json", "thinking-block-followup.json",
                     "toolsearch-tool-reference-followup.json", "v2.1.197/tool-result-followup.json"):
            response = h.post("/v1/messages?beta=true", json.loads((FIXTURES / name).read_text()))
            assert response.status_code == 200, response.text
            events = parse_anthropic_sse(response.content)
            assert_grammar(events)
        assert len(h.requests) == 6


def test_nothing_is_answered_without_the_session_token(tmp_path):
    with Harness(lambda seen: json_reply(completion())) as h:
        token = h.endpoint.token
        wrong = [{}, {"authorization": "Bearer wrong"}, {"x-api-key": "wrong"}, {"x-api-key": token[:-1]},
                 {"x-api-key": token + "x"}, {"authorization": token}, {"authorization": f"Basic {token}"},
                 {"x-api-key": ""}]
        for method, path in [("POST", "/v1/messages"), ("POST", "/v1/messages/count_tokens"), ("GET", "/v1/models"),
                             ("GET", "/v1/anything"), ("POST", f"/v1/messages?key={token}"), ("DELETE", "/")]:
            for headers in wrong:
                response = httpx2.request(method, h.endpoint.url + path, json=SIMPLE, headers=headers)
                assert response.status_code == 401, (method, path, headers)
                assert response.json()["error"]["type"] == "authentication_error"
        for path in ("/", "/health", "/api/hello"):  # claude's connectivity check comes without a token
            assert httpx2.get(h.endpoint.url + path).json() == {"status": "ok"}
        for headers in ({"x-api-key": token}, {"authorization": f"Bearer {token}"},
                        {"authorization": f"bearer {token}"}):
            assert httpx2.post(h.endpoint.url + "/v1/messages", json=SIMPLE, headers=headers).status_code == 200
        assert len(h.requests) == 3


@pytest.mark.parametrize("host", ["attacker.example:80", "127.0.0.1.evil.example", "127.0.0.1.evil.example:8080",
                                  "localhost.evil", "evil.localhost", "127.0.0.2", "0.0.0.0", "[::1].evil", ""])
def test_foreign_host_headers_are_refused(host):
    """A page in a browser that DNS rebinding points at the proxy sends its own name as Host."""
    with Harness(lambda seen: json_reply(completion())) as h:
        for path in ("/v1/messages", "/health"):
            response = h.post(path, body=SIMPLE, headers={"host": host})
            assert response.status_code == 403 and response.json()["error"]["type"] == "permission_error"
        assert h.requests == []


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1:9", "LOCALHOST:1234", "[::1]:80", "[::1]"])
def test_loopback_host_headers_are_served(host):
    with Harness(lambda seen: json_reply(completion())) as h:
        assert h.post(body=SIMPLE, headers={"host": host}).status_code == 200


def test_listens_on_loopback_only():
    """The listening socket's own address, read from the kernel's table: no traffic leaves loopback."""
    with Harness(lambda seen: json_reply(completion())) as h:
        port = int(h.endpoint.url.rsplit(":", 1)[1])
        assert h.endpoint.url.startswith("http://127.0.0.1:")
        listening = []
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for line in open(table).read().splitlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                address, hex_port = local.rsplit(":", 1)
                if state == "0A" and int(hex_port, 16) == port:  # LISTEN
                    listening.append(address)
        assert listening == ["0100007F"]  # 127.0.0.1, and nothing else


def test_health_models_count_tokens_and_404():
    with Harness(lambda seen: json_reply(completion())) as h:
        assert httpx2.head(h.endpoint.url + "/").status_code == 200
        assert httpx2.head(h.endpoint.url + "/api/hello").status_code == 200
        models = h.sdk.models.list()
        assert [m.id for m in models.data] == ["gpt-main", "gpt-big", "gpt-small"]
        req = json.loads((FIXTURES / "count-tokens.json").read_text())
        counted = h.post("/v1/messages/count_tokens?beta=true", req)
        assert counted.status_code == 200 and 2000 < counted.json()["input_tokens"] < 40000
        assert h.sdk.messages.count_tokens(model="m", messages=[{"role": "user", "content": "hi"}]).input_tokens >= 1
        assert h.requests == []  # never forwarded
        missing = h.post("/v1/complete", SIMPLE)
        assert missing.status_code == 404 and missing.json() == {
            "type": "error", "error": {"type": "not_found_error", "message": "POST /v1/complete is not served by the ccs proxy"}}


def test_token_estimate_counts_cjk_near_one_per_character():
    english = estimate_tokens({"messages": [{"role": "user", "content": "word " * 400}]})
    chinese = estimate_tokens({"messages": [{"role": "user", "content": "\u4f60\u597d\u4e16\u754c" * 250}]})
    assert 450 <= english <= 560 and 1000 <= chinese <= 1010
    assert estimate_tokens({"messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "x" * 100000}}]}]}) < 1700


@pytest.mark.parametrize("stream", [False, True])
def test_a_provider_without_usage_gets_an_estimate_so_claude_can_size_its_context(stream):
    """Claude Code compacts by the usage it is told; zeros would let the context overflow the model."""
    answer = "word " * 200
    if stream:
        script = lambda seen: Reply(200, {"Content-Type": "text/event-stream"},  # noqa: E731
                                    sse([chunk({"content": answer}), chunk(finish="stop")]))
    else:
        script = lambda seen: json_reply({**completion(answer), "usage": None})  # noqa: E731
    req = json.loads((FIXTURES / "interactive-request.json").read_text())
    with Harness(script) as h:
        response = h.post("/v1/messages?beta=true", {**req, "stream": stream})
    if stream:
        usage = parse_anthropic_sse(response.content)[-2][1]["usage"]
    else:
        usage = response.json()["usage"]
    assert usage["input_tokens"] == estimate_tokens(req) > 2000
    assert 200 <= usage["output_tokens"] <= 300


@pytest.mark.parametrize("status, kind", [(400, "invalid_request_error"), (401, "authentication_error"),
                                          (403, "permission_error"), (404, "not_found_error"),
                                          (413, "request_too_large"), (429, "rate_limit_error"), (500, "api_error"),
                                          (502, "overloaded_error"), (503, "overloaded_error"),
                                          (504, "overloaded_error"), (529, "overloaded_error")])
@pytest.mark.parametrize("stream", [False, True])
def test_upstream_http_errors_map_to_anthropic_errors(status, kind, stream):
    def script(seen):
        return json_reply({"error": {"message": "provider says no", "type": "x"}}, status, {"Retry-After": "7"})

    with Harness(script) as h:
        response = h.post(body={**SIMPLE, "stream": stream})
        assert response.status_code == status
        body = response.json()
        assert body["type"] == "error" and body["error"]["type"] == kind
        assert "provider says no" in body["error"]["message"]
        if status == 429:
            assert response.headers["retry-after"] == "7"
        if status in (401, 403):
            assert "ccs key set gpt" in body["error"]["message"]


def test_an_optional_parameter_the_provider_refuses_is_dropped_and_remembered():
    def script(seen):
        if "reasoning_effort" in seen.body:
            return json_reply({"error": {"message": "Unrecognized request argument supplied: reasoning_effort"}}, 400)
        return json_reply(completion("fine without it"))

    with Harness(script) as h:
        thinking = {**SIMPLE, "thinking": {"type": "enabled", "budget_tokens": 2000}}
        assert h.sdk.messages.create(**thinking).content[0].text == "fine without it"
        assert [("reasoning_effort" in r.body) for r in h.requests] == [True, False]
        h.sdk.messages.create(**thinking)
        assert len(h.requests) == 3 and "reasoning_effort" not in h.requests[2].body  # remembered: no retry
        other = h.post(body={**thinking, "model": "gpt-other"})  # another model is asked afresh
        assert other.status_code == 200 and "reasoning_effort" in h.requests[3].body


@pytest.mark.parametrize("status, message", [
    (400, "Unable to generate parser for this template. Automatic parser generation failed: ... "
          "raise_exception('System message must be at the beginning.') Error: Jinja Exception: System message must "
          "be at the beginning."),  # llama.cpp with a Qwen template
    (500, "Conversation roles must alternate user/assistant/user/assistant/..."),  # an older server, a Gemma template
])
def test_a_template_that_wants_system_text_first_gets_it_there(status, message):
    """Claude Code sends a system message after the first user message; strict local templates refuse it."""
    def strict(seen):
        roles = [m["role"] for m in seen.body["messages"]]
        if "system" in roles[1:]:
            return json_reply({"error": {"code": status, "message": message, "type": "invalid_request_error"}}, status)
        return json_reply(completion("templated fine"))

    req = json.loads((FIXTURES / "tool-result-followup.json").read_text())
    with Harness(strict) as h:
        for _ in range(2):
            response = h.post("/v1/messages?beta=true", {**req, "stream": False})
            assert response.status_code == 200 and response.json()["content"][0]["text"] == "templated fine"
        first, retried, remembered = (r.body["messages"] for r in h.requests)
    assert [m["role"] for m in first].count("system") == 2
    assert [m["role"] for m in retried].count("system") == 1 and retried[0]["role"] == "system"
    assert "# Environment" in retried[0]["content"] and retried[0]["content"].startswith(first[0]["content"])
    assert [m for m in retried if m["role"] != "system"] == [m for m in first if m["role"] != "system"]
    assert remembered == retried  # no second failed attempt


def test_mistral_gets_an_assistant_turn_between_tool_results_and_the_users_words():
    def mistral(seen):
        roles = [m["role"] for m in seen.body["messages"]]
        if any(a == "tool" and b == "user" for a, b in zip(roles, roles[1:])):
            return json_reply({"object": "error", "message": "Unexpected role 'user' after role 'tool'",
                               "type": "invalid_request_message_order", "param": None, "code": "3230"}, 400)
        return json_reply(completion("bridged"))

    req = json.loads((FIXTURES / "tool-result-image-followup.json").read_text())  # results, then an image turn
    with Harness(mistral) as h:
        for _ in range(2):
            response = h.post("/v1/messages?beta=true", {**req, "stream": False})
            assert response.status_code == 200 and response.json()["content"][0]["text"] == "bridged"
        first, retried, remembered = (r.body["messages"] for r in h.requests)
    roles = [m["role"] for m in retried]
    at = roles.index("tool")
    assert roles[at:at + 3] == ["tool", "assistant", "user"] and retried[at + 1]["content"]
    assert [m for m in retried if m not in first] == [retried[at + 1]]  # only the bridge was added
    assert remembered == retried


def test_a_models_output_cap_is_learnt_from_its_error_and_kept():
    def capped(seen):
        if seen.body["max_tokens"] > 16384:
            return json_reply({"error": {"message": f"max_tokens is too large: {seen.body['max_tokens']}. This model "
                                         "supports at most 16384 completion tokens, whereas you provided "
                                         f"{seen.body['max_tokens']}.", "type": "invalid_request_error"}}, 400)
        return json_reply(completion("within the cap"))

    with Harness(capped) as h:
        for _ in range(2):
            assert h.sdk.messages.create(**{**SIMPLE, "max_tokens": 32000}).content[0].text == "within the cap"
        assert h.sdk.messages.create(**{**SIMPLE, "max_tokens": 1000}).content[0].text == "within the cap"
    assert [r.body["max_tokens"] for r in h.requests] == [32000, 16384, 16384, 1000]


OVERFLOWS = {
    "vllm": (400, {"error": {"message": "'max_tokens' or 'max_completion_tokens' is too large: 32000. This model's "
                                        "maximum context length is 32768 tokens and your request has {used} input "
                                        "tokens (32000 > 32768 - {used}).", "type": "BadRequestError", "code": 400}}),
    "openai": (400, {"error": {"message": "This model's maximum context length is 32768 tokens. However, you requested "
                                          "{total} tokens ({used} in the messages, 32000 in the completion). Please "
                                          "reduce the length of the messages or completion.",
                               "code": "context_length_exceeded"}}),
    "llama.cpp": (400, {"error": {"code": 400, "message": "the request exceeds the available context size, try "
                                  "increasing it", "type": "exceed_context_size_error", "n_prompt_tokens": "{used}",
                                  "n_ctx": 32768}}),
    "gemini": (400, [{"error": {"code": 400, "message": "The input token count ({used}) exceeds the maximum number of "
                                "tokens allowed (32768).", "status": "INVALID_ARGUMENT"}}]),
}


@pytest.mark.parametrize("provider", OVERFLOWS)
@pytest.mark.parametrize("used", [20000, 40000])
def test_a_full_context_is_reported_in_anthropics_words(provider, used):
    """claude lowers max_tokens and retries on Anthropic's first message, and knows the second as a full context."""
    status, body = OVERFLOWS[provider]
    raw = json.dumps(body).replace("{used}", str(used)).replace("{total}", str(used + 32000)).replace(
        '"' + str(used) + '"', str(used))
    with Harness(lambda seen: Reply(status, {"Content-Type": "application/json"}, [raw.encode()])) as h:
        response = h.post(body={**SIMPLE, "max_tokens": 32000})
    error = response.json()["error"]
    assert response.status_code == 400 and error["type"] == "invalid_request_error"
    if used < 32768:
        assert error["message"] == (f"input length and `max_tokens` exceed context limit: {used} + 32000 > 32768, "
                                    "decrease input length or `max_tokens` and try again")
    else:
        assert error["message"] == f"prompt is too long: {used} tokens > 32768 maximum"


def test_a_400_about_anything_else_is_not_retried():
    with Harness(lambda seen: json_reply({"error": {"message": "messages: too long"}}, 400)) as h:
        response = h.post(body={**SIMPLE, "thinking": {"type": "adaptive"}})
        assert response.status_code == 400 and len(h.requests) == 1


def test_sdk_raises_the_mapped_error_class():
    with Harness(lambda seen: json_reply({"error": {"message": "slow down"}}, 429)) as h:
        with pytest.raises(anthropic.RateLimitError):
            h.sdk.messages.create(**SIMPLE)


def test_error_inside_a_200_stream_before_anything_is_an_http_error():
    with Harness(lambda seen: Reply(200, {"Content-Type": "text/event-stream"},
                                    [b'data: {"error": {"message": "quota exceeded", "code": 429}}\n\n'])) as h:
        response = h.post(body={**SIMPLE, "stream": True})
        assert response.status_code == 429 and "quota exceeded" in response.json()["error"]["message"]


def test_error_after_the_stream_began_is_an_error_event():
    pieces = sse([chunk({"content": "partial"})], done=False) + [0.05, b'data: {"error": {"message": "boom"}}\n\n']
    with Harness(lambda seen: Reply(200, {"Content-Type": "text/event-stream"}, pieces)) as h:
        response = h.post(body={**SIMPLE, "stream": True})
        assert response.status_code == 200
        events = parse_anthropic_sse(response.content)
        assert events[-1][0] == "error" and "boom" in events[-1][1]["error"]["message"]
        with pytest.raises(anthropic.APIStatusError):
            with h.sdk.messages.stream(**SIMPLE) as stream:
                stream.get_final_message()


@pytest.mark.parametrize("chunks, expect_http_error", [([], True), (sse([chunk({"content": "part"})], done=False), False)])
def test_reset_mid_stream(chunks, expect_http_error):
    with Harness(lambda seen: Reply(200, {"Content-Type": "text/event-stream"}, chunks + [0.05], close_early=True)) as h:
        response = h.post(body={**SIMPLE, "stream": True})
        if expect_http_error:
            assert response.status_code == 502 and response.json()["error"]["type"] in ("api_error", "overloaded_error")
        else:
            assert response.status_code == 200
            assert parse_anthropic_sse(response.content)[-1][0] == "error"


@pytest.mark.parametrize("reply", [
    json_reply([1, 2]), json_reply({"choices": "none"}), Reply(200, {"Content-Type": "text/html"}, [b"<html>login</html>"]),
    Reply(200, {"Content-Type": "text/event-stream"}, [b"data: [1]\n\n"]),
    Reply(200, {"Content-Type": "text/event-stream"}, [b'data: {"choices": [{"delta": {"tool_calls": 7}}]}\n\n'])],
    ids=["list", "odd-choices", "html", "list-chunk", "odd-tool-calls"])
def test_an_answer_of_an_unexpected_shape_is_a_502_never_a_crash(reply):
    with Harness(lambda seen: reply) as h:
        response = h.post(body={**SIMPLE, "stream": True})
        assert response.status_code == 502, response.text
        assert response.json()["error"]["type"] == "api_error" and response.headers["x-should-retry"] == "false"


def test_upstream_timeout_and_refused_connection():
    with Harness(lambda seen: Reply(200, {"Content-Type": "text/event-stream"}, [3.0]), timeout=0.5) as h:
        started = time.monotonic()
        response = h.post(body={**SIMPLE, "stream": True})
        assert response.status_code == 504 and response.json()["error"]["type"] == "overloaded_error"
        assert time.monotonic() - started < 3
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with lifecycle.running(Router.single(Upstream(api="openai", name="gpt", base_url=f"http://127.0.0.1:{port}/v1", model="m"))) as endpoint:
        response = httpx2.post(endpoint.url + "/v1/messages", json=SIMPLE, headers={"x-api-key": endpoint.token})
        assert response.status_code == 502 and "cannot connect" in response.json()["error"]["message"]


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", json.dumps({"model": "m"}).encode(),
                                 json.dumps({"model": "m", "max_tokens": 5, "messages": [
                                     {"role": "user", "content": [{"type": "image", "source": {"type": "ftp"}}]}]}).encode(),
                                 json.dumps({"model": "m", "max_tokens": 5, "messages": [
                                     {"role": "assistant", "content": [{"type": "tool_use"}]}]}).encode()])
def test_malformed_client_requests_are_400_never_500(raw):
    with Harness(lambda seen: json_reply(completion())) as h:
        response = httpx2.post(h.endpoint.url + "/v1/messages", content=raw,
                              headers={"x-api-key": h.endpoint.token, "content-type": "application/json"})
        assert response.status_code == 400, response.text
        assert response.json()["error"]["type"] == "invalid_request_error"
        assert h.requests == []


def test_an_internal_bug_is_still_an_anthropic_error(monkeypatch):
    def broken(*args):
        raise RuntimeError("boom")

    monkeypatch.setattr(chat, "translate_response", broken)
    with Harness(lambda seen: json_reply(completion())) as h:
        response = h.post(body=SIMPLE)
        assert response.status_code == 500
        assert response.json()["error"] == {"type": "api_error", "message": "internal error in the ccs proxy: RuntimeError"}


def test_client_disconnect_cancels_the_upstream_request():
    tick = sse([chunk({"content": "tick"})], done=False)[0]
    slow = [tick] + [piece for _ in range(100) for piece in (0.05, tick)]
    with Harness(lambda seen: Reply(200, {"Content-Type": "text/event-stream"}, slow)) as h:
        with httpx2.stream("POST", h.endpoint.url + "/v1/messages", json={**SIMPLE, "stream": True},
                          headers={"x-api-key": h.endpoint.token}) as response:
            assert response.status_code == 200
            next(response.iter_raw())
        assert h.upstream_server.disconnected.wait(3), "the upstream request was not cancelled"


def test_disconnect_while_waiting_for_the_provider_cancels_it():
    with Harness(lambda seen: Reply(200, {"Content-Type": "text/event-stream"}, [2.0] + sse([chunk({"content": "x"})]))) as h:
        with pytest.raises(httpx2.ReadTimeout):  # the client gives up before the provider answers
            h.post(body={**SIMPLE, "stream": True}, timeout=httpx2.Timeout(5, read=0.3))
        assert h.upstream_server.disconnected.wait(4)


def test_ping_when_the_provider_is_quiet(monkeypatch):
    monkeypatch.setattr(pipeline, "PING_AFTER", 0.1)
    pieces = sse([chunk({"content": "a"})], done=False) + [0.5] + sse([chunk({"content": "b"}, finish="stop")])
    with Harness(lambda seen: Reply(200, {"Content-Type": "text/event-stream"}, pieces)) as h:
        events = parse_anthropic_sse(h.post(body={**SIMPLE, "stream": True}).content)
        assert "ping" in [kind for kind, _ in events]
        assert_grammar(events)


def test_streams_hand_their_upstream_connection_back_for_the_next_request():
    """A long session streams thousands of answers: each must leave its connection to the provider idle in the
    pool, not held open or thrown away. The fake ends its body a moment after `[DONE]`, as servers do."""
    pieces = sse([chunk({"content": f"w{i} "}) for i in range(50)] + [chunk(finish="stop")]) + [0.002]
    with Harness(lambda seen: Reply(200, {"Content-Type": "text/event-stream"}, pieces)) as h:
        with httpx2.Client(timeout=20) as client:
            for _ in range(100):
                response = client.post(h.endpoint.url + "/v1/messages", json={**SIMPLE, "stream": True},
                                       headers={"x-api-key": h.endpoint.token})
                assert response.status_code == 200 and parse_anthropic_sse(response.content)[-1][0] == "message_stop"
        # A few, not one: claude's next request can arrive in the 2 ms before the last body ended (the
        # leak this guards against opened a connection per stream, and kept most of them)
        assert h.upstream_server.connections <= 5
        assert h.upstream_server.open_connections <= 5


def gzipped(pieces: list[bytes]) -> list[bytes]:
    """A body compressed as a server compresses a stream: each piece flushed, so it can be decoded on arrival."""
    compressor = zlib.compressobj(wbits=31)  # the gzip format
    out = [compressor.compress(piece) + compressor.flush(zlib.Z_SYNC_FLUSH) for piece in pieces]
    return [*out, compressor.flush()]


@pytest.mark.parametrize("stream", [False, True])
def test_answers_are_asked_for_uncompressed_and_decoded_when_compressed_anyway(stream):
    """The proxy reads raw bytes for speed: a provider that compresses despite `identity` must still be read."""
    if stream:
        reply = Reply(200, {"Content-Type": "text/event-stream", "Content-Encoding": "gzip"},
                      gzipped(sse([chunk({"content": "Hel"}), chunk({"content": "lo"}, finish="stop")])))
    else:
        reply = Reply(200, {"Content-Type": "application/json", "Content-Encoding": "gzip"},
                      gzipped([json.dumps(completion("Hello")).encode()]))
    with Harness(lambda seen: reply) as h:
        response = h.post(body={**SIMPLE, "stream": stream})
        assert response.status_code == 200, response.text
        if stream:
            events = parse_anthropic_sse(response.content)
            assert_grammar(events)
            assert "".join(e["delta"].get("text", "") for k, e in events if k == "content_block_delta") == "Hello"
        else:
            assert response.json()["content"][0]["text"] == "Hello"
        assert h.requests[0].headers["accept-encoding"] == "identity"
        assert h.bugs == []


def test_azure_v1_gets_the_deployment_as_model_and_the_key_in_an_api_key_header():
    """The azure-openai preset's way (auth = "api-key" on an OpenAI-API profile): `api-key: KEY`, no bearer, the
    v1 path under the base URL, the deployment's name as the model, no api-version anywhere."""
    with Harness(lambda seen: json_reply(completion("from azure")), auth="api-key", model="gpt-56-sol", models={},
                 extra_body={"user_security_context": {"application_name": "ccs"}}) as h:
        assert h.sdk.messages.create(**{**SIMPLE, "model": "claude-sonnet-5-5"}).content[0].text == "from azure"
        (seen,) = h.requests
        assert seen.path == "/v1/chat/completions" and "api-version" not in seen.path
        assert seen.headers["api-key"] == "sk-upstream-key" and "authorization" not in seen.headers
        assert seen.body["model"] == "gpt-56-sol"
        assert seen.body["user_security_context"] == {"application_name": "ccs"}  # extra_body, after translation


KEEPALIVE = b": OPENROUTER PROCESSING\n\n"  # OpenRouter's comment while its provider is busy, a write of its own


def test_openrouters_processing_comments_are_skipped_through_the_proxy():
    pieces = [KEEPALIVE, 0.05, KEEPALIVE, *sse([chunk({"role": "assistant", "content": "Hel"})], done=False), KEEPALIVE,
              *sse([chunk({"content": "lo"}, finish="stop")])]
    with Harness(lambda seen: Reply(200, {"Content-Type": "text/event-stream"}, pieces)) as h:
        with h.sdk.messages.stream(**SIMPLE) as stream:
            message = stream.get_final_message()
        assert message.content[0].text == "Hello" and message.stop_reason == "end_turn"
        assert len(h.requests) == 1 and not h.bugs


@pytest.mark.parametrize("last", [
    {"id": "gen-1", "provider": "openai", "error": {"code": "server_error", "message": "Provider disconnected"},
     "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]},  # OpenRouter's documented shape
    {"choices": [{"index": 0, "delta": {}, "finish_reason": "error"}]},  # the finish alone
])
def test_finish_reason_error_after_the_stream_began_is_an_error_event_not_a_clean_stop(last):
    pieces = [KEEPALIVE, *sse([chunk({"role": "assistant", "content": "partial"})], done=False), 0.05,
              *sse([last], done=False)]
    with Harness(lambda seen: Reply(200, {"Content-Type": "text/event-stream"}, pieces)) as h:
        response = h.post(body={**SIMPLE, "stream": True})
        assert response.status_code == 200
        events = parse_anthropic_sse(response.content)
        kinds = [kind for kind, _ in events]
        assert kinds[-1] == "error" and "message_stop" not in kinds and "message_delta" not in kinds
        assert events[-1][1]["error"]["type"] in ("api_error", "overloaded_error")
        if "error" in last:
            assert "Provider disconnected" in events[-1][1]["error"]["message"]
        with pytest.raises(anthropic.APIStatusError):
            with h.sdk.messages.stream(**SIMPLE) as stream:
                stream.get_final_message()
