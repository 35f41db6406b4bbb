"""What providers and clients really do over a working day, against the proxy on real sockets: each fault
ends in the right Anthropic-shaped error (or a clean close) within a bound, and the next request works.

These cases are the fault matrix in docs/reliability.md."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import time
from pathlib import Path

import httpx2
import pytest

from ccswitch.proxy import lifecycle
from ccswitch.proxy.router import Router
from ccswitch.proxy.upstream import Upstream, new_client
from fakes import FakeServer, Reply, json_reply, sse
from proxy_harness import SIMPLE, Harness, chunk, completion
from streams import assert_grammar, parse_anthropic_sse

GOOD_STREAM = sse([chunk({"content": "fine"}),
                   chunk(finish="stop", usage={"prompt_tokens": 3, "completion_tokens": 1})])
SSE = {"Content-Type": "text/event-stream"}


def first_then_fine(fault: Reply):
    """A provider that answers the first request with `fault` and every later one properly."""
    def script(seen):
        if len(fault_log) == 0:
            fault_log.append(seen)
            return fault
        return Reply(200, SSE, GOOD_STREAM) if seen.body.get("stream") else json_reply(completion("fine"))

    fault_log: list = []
    return script


def error_body(status: int, **extra) -> Reply:
    return json_reply({"error": {"message": f"provider says {status}", "type": "x"}}, status, extra)


HTML = Reply(200, {"Content-Type": "text/html"}, [b"<html><body>Please log in</body></html>"])
NOT_JSON = Reply(200, {"Content-Type": "application/json"}, [b'{"choices": [{"message": '])

# fault, expected status, error type, words in the message, whether claude may retry it; the fault matrix of docs/reliability.md
HTTP_FAULTS = {
    "429-retry-after": (error_body(429, **{"Retry-After": "7"}), 429, "rate_limit_error", "provider says 429", True),
    "429": (error_body(429), 429, "rate_limit_error", "provider says 429", True),
    "500": (error_body(500), 500, "api_error", "provider says 500", True),
    "502": (error_body(502), 502, "overloaded_error", "provider says 502", True),
    "503": (error_body(503), 503, "overloaded_error", "provider says 503", True),
    "504": (error_body(504), 504, "overloaded_error", "provider says 504", True),
    "529": (error_body(529), 529, "overloaded_error", "provider says 529", True),
    "401": (error_body(401), 401, "authentication_error", "ccs key set gpt", False),
    "403": (error_body(403), 403, "permission_error", "ccs key set gpt", False),
    "html-200": (HTML, 502, "api_error", "/v1/chat/completions", False),
    "invalid-json-200": (NOT_JSON, 502, "api_error", "/v1/chat/completions", False),
    "reset-before-headers": (Reply(reset=True), 502, "overloaded_error", "broke off", True),
}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("name", HTTP_FAULTS)
def test_provider_faults_before_any_byte_are_anthropic_http_errors(name, stream):
    fault, status, kind, words, retried = HTTP_FAULTS[name]
    with Harness(first_then_fine(fault)) as h:
        started = time.monotonic()
        response = h.post(body={**SIMPLE, "stream": stream})
        assert time.monotonic() - started < 5
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert error["type"] == kind and words in error["message"], error
        assert ("retry-after" in response.headers) == (name == "429-retry-after")
        if name == "429-retry-after":
            assert response.headers["retry-after"] == "7"
        # claude 2.1.329 retries for about three minutes unless told that a retry cannot help
        assert response.headers.get("x-should-retry") == (None if retried else "false")
        assert h.post(body={**SIMPLE, "stream": stream}).status_code == 200  # the next request works
        assert h.bugs == []


MID_STREAM = {
    "reset-mid-stream": (Reply(200, SSE, sse([chunk({"content": "part"})], done=False) + [0.05], close_early=True),
                         "broke off"),
    "no-done-no-finish": (Reply(200, SSE, sse([chunk({"content": "part"})], done=False) + [0.05]),
                          "ended before the answer did"),
    "error-event": (Reply(200, SSE, sse([chunk({"content": "part"})], done=False) + [0.05] + [
        b'data: {"error": {"message": "quota exceeded mid-answer", "code": 429}}\n\n']), "quota exceeded mid-answer"),
}


@pytest.mark.parametrize("name", MID_STREAM)
def test_provider_faults_after_the_stream_began_are_error_events(name):
    fault, words = MID_STREAM[name]
    with Harness(first_then_fine(fault)) as h:
        response = h.post(body={**SIMPLE, "stream": True})
        assert response.status_code == 200
        events = parse_anthropic_sse(response.content)
        assert events[0][0] == "message_start" and events[-1][0] == "error", events
        assert words in events[-1][1]["error"]["message"]
        assert h.post(body={**SIMPLE, "stream": True}).status_code == 200
        assert h.bugs == []


def test_a_stream_that_ends_with_a_finish_reason_but_no_done_is_complete():
    with Harness(lambda seen: Reply(200, SSE, sse([chunk({"content": "all"}, finish="stop")], done=False))) as h:
        events = parse_anthropic_sse(h.post(body={**SIMPLE, "stream": True}).content)
        assert_grammar(events)
        assert events[-2][1]["delta"]["stop_reason"] == "end_turn"


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_provider_that_stalls_before_answering_is_a_504_after_the_profiles_timeout(stream):
    with Harness(first_then_fine(Reply(200, SSE, GOOD_STREAM, wait=30.0)), timeout=1.0) as h:
        started = time.monotonic()
        response = h.post(body={**SIMPLE, "stream": stream})
        assert 0.9 < time.monotonic() - started < 4
        assert response.status_code == 504 and response.json()["error"]["type"] == "overloaded_error"
        assert "in time" in response.json()["error"]["message"]
        assert h.upstream_server.disconnected.wait(3)  # and the stalled request upstream was closed
        assert h.post(body={**SIMPLE, "stream": stream}).status_code == 200


def test_a_provider_that_stalls_mid_stream_ends_in_an_error_event_after_the_timeout():
    stalled = Reply(200, SSE, sse([chunk({"content": "part"})], done=False) + [30.0])
    with Harness(first_then_fine(stalled), timeout=1.0) as h:
        started = time.monotonic()
        events = parse_anthropic_sse(h.post(body={**SIMPLE, "stream": True}).content)
        assert 0.9 < time.monotonic() - started < 4
        assert events[-1][0] == "error" and "in time" in events[-1][1]["error"]["message"]
        assert h.upstream_server.disconnected.wait(3)
        assert h.post(body={**SIMPLE, "stream": True}).status_code == 200


@pytest.mark.slow
def test_a_slow_trickle_for_a_minute_completes_with_pings_in_the_gaps():
    """One chunk every 12 s for a minute: longer gaps than a ping interval (10 s), shorter than the
    timeout (15 s). Pings keep claude's idle watchdog fed and the answer arrives whole."""
    pieces = []
    for index in range(5):
        pieces += sse([chunk({"content": f"t{index} "})], done=False) + [12.0]
    pieces += sse([chunk(finish="stop")])
    with Harness(lambda seen: Reply(200, SSE, pieces), timeout=15.0) as h:
        arrivals = []
        with httpx2.stream("POST", h.endpoint.url + "/v1/messages", json={**SIMPLE, "stream": True}, timeout=30,
                           headers={"x-api-key": h.endpoint.token}) as response:
            raw = b""
            for piece in response.iter_raw():
                arrivals.append(time.monotonic())
                raw += piece
        events = parse_anthropic_sse(raw)
        assert_grammar(events)
        assert sum(kind == "ping" for kind, _ in events) >= 4
        assert "".join(d["delta"]["text"] for k, d in events if k == "content_block_delta") == "t0 t1 t2 t3 t4 "
        assert max(b - a for a, b in zip(arrivals, arrivals[1:])) < 11  # never silent for a whole gap


def test_connection_refused_is_a_502_naming_the_provider():
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with lifecycle.running(Router.single(Upstream(api="openai", name="gpt", base_url=f"http://127.0.0.1:{port}/v1", model="m"))) as endpoint:
        started = time.monotonic()
        response = httpx2.post(endpoint.url + "/v1/messages", json=SIMPLE, headers={"x-api-key": endpoint.token})
        assert time.monotonic() - started < 5
        assert response.status_code == 502 and f"127.0.0.1:{port}" in response.json()["error"]["message"]
        assert response.json()["error"]["type"] == "api_error" and response.headers["x-should-retry"] == "false"


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory):
    """A TLS context with a certificate nobody trusts, as behind a wrong base_url or a corporate interceptor."""
    where = tmp_path_factory.mktemp("tls")
    made = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                           "/CN=127.0.0.1", "-keyout", str(where / "key.pem"), "-out", str(where / "cert.pem")],
                          capture_output=True)
    if made.returncode != 0:
        pytest.skip("openssl cannot make a certificate here")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(where / "cert.pem", where / "key.pem")
    return context


@pytest.mark.parametrize("kind", ["untrusted-certificate", "plain-http-on-https"])
def test_a_tls_failure_is_a_502_that_says_tls(kind, self_signed):
    tls = self_signed if kind == "untrusted-certificate" else None
    fake = FakeServer(lambda seen: json_reply(completion()), tls=tls)
    url = fake.url.replace("http://", "https://") + "/v1"
    try:
        with lifecycle.running(Router.single(Upstream(api="openai", name="gpt", base_url=url, model="m"))) as endpoint:
            response = httpx2.post(endpoint.url + "/v1/messages", json=SIMPLE, headers={"x-api-key": endpoint.token},
                                   timeout=20)
    finally:
        fake.close()
    assert response.status_code == 502 and response.headers["x-should-retry"] == "false"
    assert "TLS with https://127.0.0.1" in response.json()["error"]["message"]


# ---------------------------------------------------------------- the client side


def test_a_client_that_leaves_before_the_provider_answers_closes_the_upstream_request():
    with Harness(first_then_fine(Reply(200, SSE, GOOD_STREAM, wait=30.0))) as h:
        with pytest.raises(httpx2.ReadTimeout):
            h.post(body={**SIMPLE, "stream": True}, timeout=httpx2.Timeout(5, read=0.3))
        assert_closed_upstream_soon(h, gave_up=time.monotonic())


def test_a_client_that_leaves_mid_stream_closes_the_upstream_request():
    tick = sse([chunk({"content": "tick"})], done=False)[0]
    slow = [tick] + [piece for _ in range(200) for piece in (0.05, tick)]
    with Harness(first_then_fine(Reply(200, SSE, slow))) as h:
        with httpx2.stream("POST", h.endpoint.url + "/v1/messages", json={**SIMPLE, "stream": True},
                           headers={"x-api-key": h.endpoint.token}) as response:
            next(response.iter_raw())
        assert_closed_upstream_soon(h, gave_up=time.monotonic())
        deadline = time.monotonic() + 5
        while len(lines := [r.getMessage() for r in h.log.records if " -> " in r.getMessage()]) < 2:
            assert time.monotonic() < deadline, lines  # each request's line comes once it has ended
            time.sleep(0.02)
        assert " stream 499 " in lines[0] and " stream 200 " in lines[1]  # the log says who left


def assert_closed_upstream_soon(h: Harness, gave_up: float) -> None:
    """The provider saw its request closed within 2 s of the client giving up, and the next request works."""
    assert h.upstream_server.disconnected.wait(3)
    assert h.upstream_server.disconnect_times[0] - gave_up < 2
    assert h.post(body={**SIMPLE, "stream": True}).status_code == 200


def test_two_hundred_disconnects_in_a_row_leak_nothing():
    tick = sse([chunk({"content": "tick"})], done=False)[0]

    def script(seen):
        if seen.body["messages"][0]["content"] == "wait":
            return Reply(200, SSE, GOOD_STREAM, wait=30.0)
        if seen.body["messages"][0]["content"] == "slow":
            return Reply(200, SSE, [tick] + [piece for _ in range(400) for piece in (0.02, tick)])
        return Reply(200, SSE, GOOD_STREAM)

    def ask(content: str) -> dict:
        return {**SIMPLE, "stream": True, "messages": [{"role": "user", "content": content}]}

    with Harness(script) as h:
        headers = {"x-api-key": h.endpoint.token}
        with httpx2.Client(timeout=httpx2.Timeout(10, read=0.05)) as impatient, httpx2.Client(timeout=10) as client:
            for index in range(200):
                if index % 4 == 0:  # before the provider answered
                    with pytest.raises(httpx2.ReadTimeout):
                        impatient.post(h.endpoint.url + "/v1/messages", json=ask("wait"), headers=headers)
                else:  # mid-stream
                    with client.stream("POST", h.endpoint.url + "/v1/messages", json=ask("slow"),
                                       headers=headers) as response:
                        next(response.iter_raw())
        deadline = time.monotonic() + 10
        while h.upstream_server.open_connections > 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert h.upstream_server.open_connections <= 2  # every abandoned request was closed upstream
        with httpx2.Client(timeout=20) as client:
            for _ in range(20):
                response = client.post(h.endpoint.url + "/v1/messages", json=ask("normal"), headers=headers)
                assert response.status_code == 200 and parse_anthropic_sse(response.content)[-1][0] == "message_stop"
        assert h.bugs == []


SMALL_RECEIVE_BUFFER = 65536


def socket_buffers() -> int:
    """The most the kernel may hold of a stream whose reader stopped, when the proxy's receive buffer from
    the provider is small (a send buffer autotunes up to tcp_wmem's maximum; Linux doubles SO_RCVBUF)."""
    send_max = int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    return 2 * send_max + 2 * SMALL_RECEIVE_BUFFER


def test_a_client_that_stops_reading_is_given_up_without_holding_the_whole_answer():
    """A provider sending 40 MB to a client that reads nothing: the proxy stops reading from the provider
    (bounded memory: what it holds is 1 MiB and a write, the rest of what the provider got rid of sits in
    socket buffers), gives up after the timeout, and closes both ends."""
    big = [b"data: " + json.dumps(chunk({"content": "x" * 8000})).encode() + b"\n\n"] * 5000
    # the proxy's receive buffer kept small, so that what the kernel holds is bounded well below 40 MB
    # (autotuned, it may grow to tcp_rmem's maximum, 32 MB on some machines)
    def small(address):
        family, kind, proto, _, _ = address
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_RECEIVE_BUFFER)
        return sock

    with Harness(first_then_fine(Reply(200, SSE, big + sse([chunk(finish="stop")]))), timeout=2.0,
                 client=lambda upstream: new_client(upstream, socket_factory=small)) as h:
        port = int(h.endpoint.url.rsplit(":", 1)[1])
        stuck = socket.create_connection(("127.0.0.1", port))
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        body = json.dumps({**SIMPLE, "stream": True}).encode()
        stuck.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n"
                      b"x-api-key: " + h.endpoint.token.encode() + b"\r\ncontent-length: %d\r\n\r\n" % len(body) + body)
        try:
            assert h.upstream_server.disconnected.wait(15), "the proxy never gave up on the stuck client"
            assert h.upstream_server.sent[0] < socket_buffers() + 3 * 1024 * 1024  # of 40 MB: it stopped reading early
            assert h.post(body={**SIMPLE, "stream": True}).status_code == 200
        finally:
            stuck.close()
