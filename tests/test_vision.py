"""Images for text-only models (`vision = "profile,model"`): each image, in a message or in a tool result, reaches
the text-only provider as the description the vision route gave of it, asked for once per image and proxy; the
vision provider gets the image byte for byte; a failing vision route is a note, never a failed turn; each
description is a usage row of its own. Real sockets, the official anthropic SDK as the client."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import socket
import time
from pathlib import Path

import anthropic
import httpx2
import pytest
from conftest import ccs, logged_rows, write_config
from fakes import FakeServer, Reply, anthropic_text_stream, json_reply, png, sse
from proxy_harness import chunk

from ccswitch import profiles, usage
from ccswitch.errors import CcsError
from ccswitch.proxy import lifecycle, vision

KEYS = {"EYE_KEY": "sk-eye-secret-1111", "TEXT_KEY": "sk-text-secret-2222", "GLM_KEY": "sk-glm-secret-3333"}
RED, BLUE = png((255, 0, 0)), png((0, 0, 255))


def image(data: bytes, **extra) -> dict:
    return {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                        "data": base64.b64encode(data).decode()}, **extra}


def seen_as(data: bytes) -> str:
    """What the vision fakes below say of an image: a name for its bytes."""
    return f"a picture whose bytes hash to {hashlib.sha256(data).hexdigest()[:12]}"


def described_image(source: dict) -> str:
    return seen_as(base64.b64decode(source["data"]))


def anthropic_eye(seen):
    """An Anthropic-API vision model: names the image it got, whole (as asked)."""
    (picture,) = [b for b in seen.body["messages"][0]["content"] if b["type"] == "image"]
    return json_reply({"id": "msg_eye", "type": "message", "role": "assistant", "model": seen.body["model"],
                       "content": [{"type": "text", "text": described_image(picture["source"])}],
                       "stop_reason": "end_turn", "usage": {"input_tokens": 1600, "output_tokens": 40}})


def openai_eye(seen):
    """An OpenAI-API vision model (Chat Completions): names the image it got as a data URL."""
    (picture,) = [p for p in seen.body["messages"][-1]["content"] if p["type"] == "image_url"]
    data = picture["image_url"]["url"].split(",", 1)[1]
    return json_reply({"id": "c1", "object": "chat.completion", "model": seen.body["model"], "choices": [
        {"index": 0, "message": {"role": "assistant", "content": seen_as(base64.b64decode(data))},
         "finish_reason": "stop"}], "usage": {"prompt_tokens": 1200, "completion_tokens": 30}})


def text_model(seen):
    """A text-only OpenAI-API model: says how much it was given."""
    said = f"I was given {len(json.dumps(seen.body['messages']))} characters"
    if not seen.body.get("stream"):
        return json_reply({"id": "c2", "object": "chat.completion", "model": seen.body["model"], "choices": [
            {"index": 0, "message": {"role": "assistant", "content": said}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 70, "completion_tokens": 6}})
    return Reply(200, {"Content-Type": "text/event-stream"}, sse([
        chunk({"role": "assistant", "content": said}),
        chunk(finish="stop", usage={"prompt_tokens": 70, "completion_tokens": 6})]))


def glm_model(seen):
    """A text-only Anthropic-API model."""
    if seen.body.get("stream"):
        return anthropic_text_stream("from glm", seen.body["model"])
    return json_reply({"id": "msg_glm", "type": "message", "role": "assistant", "model": seen.body["model"],
                       "content": [{"type": "text", "text": "from glm"}], "stop_reason": "end_turn",
                       "usage": {"input_tokens": 9, "output_tokens": 2}})


class Proxy:
    """A vision fake (`eye`, Anthropic's API, or `oeye`, OpenAI's), a text-only fake behind profile `text`
    (OpenAI's API) and `glm` (Anthropic's API, passed through), the proxy serving profile `serve`."""

    def __init__(self, monkeypatch, serve: str = "text", eye=anthropic_eye, text: str = 'vision = "eye,eye-1"',
                 more: str = "", limit: float | None = None):
        for var, value in KEYS.items():
            monkeypatch.setenv(var, value)
        self.eye, self.oeye = FakeServer(eye), FakeServer(openai_eye)
        self.text, self.glm = FakeServer(text_model), FakeServer(glm_model)
        self.config = profiles.parse(f"""
[profiles.eye]
base_url = "{self.eye.url}"
key_env = "EYE_KEY"
model = "eye-1"
prices = {{ "*" = {{ input = 1, output = 2 }} }}

[profiles.oeye]
api = "openai"
base_url = "{self.oeye.url}/v1"
key_env = "EYE_KEY"
model = "gpt-eye"

[profiles.text]
api = "openai"
base_url = "{self.text.url}/v1"
key_env = "TEXT_KEY"
model = "text-1"
{text}

[profiles.glm]
base_url = "{self.glm.url}/api/anthropic"
key_env = "GLM_KEY"
model = "glm-4.6"
{more}
""", Path("profiles.toml"))
        profile = self.config.get(serve)
        try:
            keys = lifecycle.keys_for(self.config, profile)
        except CcsError:
            self.close_fakes()
            raise
        self._running = lifecycle.running_for(self.config, profile, keys)
        self.limit = limit

    def __enter__(self):
        self.endpoint = self._running.__enter__()
        self.sdk = anthropic.Anthropic(base_url=self.endpoint.url, auth_token=self.endpoint.token, api_key=None,
                                       max_retries=0, timeout=20)
        return self

    def __exit__(self, *exc):
        self.sdk.close()  # its idle connection would hold the proxy's stop for its grace time
        self._running.__exit__(*exc)
        self.close_fakes()

    def close_fakes(self):
        for fake in (self.eye, self.oeye, self.text, self.glm):
            fake.close()

    def ask(self, *content, model: str = "claude-sonnet-4-5", session: str = "sess-1", history=()) -> str:
        message = self.sdk.messages.create(model=model, max_tokens=100, messages=[
            *history, {"role": "user", "content": list(content)}], extra_headers={"x-claude-code-session-id": session})
        return message.content[0].text


def no_image_in(fake: FakeServer, *pictures: bytes) -> None:
    """The fake received none of these images' bytes, in any form, nor any image part at all."""
    sent = json.dumps([r.body for r in fake.requests])
    assert fake.requests and not any(base64.b64encode(p).decode() in sent for p in pictures)
    assert '"image_url"' not in sent and '"input_image"' not in sent and '"type": "image"' not in sent


TOOL_TURN = [{"role": "user", "content": "look at the screenshot"},
             {"role": "assistant", "content": [{"type": "text", "text": "Reading it."}, {
                 "type": "tool_use", "id": "toolu_read", "name": "Read", "input": {"file_path": "/p/shot.png"}}]}]


def test_the_text_only_provider_gets_descriptions_and_the_vision_provider_the_image_byte_for_byte(monkeypatch):
    with Proxy(monkeypatch) as p:
        p.ask({"type": "tool_result", "tool_use_id": "toolu_read", "content": [image(BLUE)]},
              {"type": "text", "text": "and this one:"}, image(RED, cache_control={"type": "ephemeral"}),
              {"type": "text", "text": "what is wrong?"}, history=TOOL_TURN)
        no_image_in(p.text, RED, BLUE)
        messages = p.text.requests[-1].body["messages"]
        call = next(m for m in messages if m.get("tool_calls"))["tool_calls"][0]
        result = next(m for m in messages if m["role"] == "tool")
        assert result["tool_call_id"] == call["id"] and call["function"]["name"] == "Read"  # still a pair
        assert result["content"] == f"[image, described by eye,eye-1 for a model that cannot see it]\n" \
                                    f"{seen_as(BLUE)}\n[end of image]"
        red = result["content"].replace(seen_as(BLUE), seen_as(RED))
        assert messages[-1]["content"] == f"and this one:\n\n{red}\n\nwhat is wrong?"  # the text in place
        assert sorted(r.body["messages"][0]["content"][0]["source"]["data"] for r in p.eye.requests) == sorted(
            base64.b64encode(picture).decode() for picture in (RED, BLUE))  # each image once, as the user sent it
        asked = p.eye.requests[0]
        assert asked.path == "/v1/messages" and asked.headers["authorization"] == f"Bearer {KEYS['EYE_KEY']}"
        assert asked.body["model"] == "eye-1" and asked.body["stream"] is False
        assert "verbatim" in asked.body["messages"][0]["content"][1]["text"]
        assert asked.headers["x-claude-code-session-id"] == "sess-1"


def test_a_vision_route_of_any_api_kind_and_a_passed_through_text_only_provider(monkeypatch):
    """The vision model behind OpenAI's API gets the image as a data URL of the same bytes; a text-only
    Anthropic-API provider (relayed) gets the description in the image's place, the rest as claude sent it."""
    with Proxy(monkeypatch, serve="glm", more='vision = "oeye,gpt-eye"') as p:
        p.ask({"type": "tool_result", "tool_use_id": "toolu_read", "content": [
            {"type": "text", "text": "shot.png:"}, image(RED)]}, history=TOOL_TURN)
        sent = p.glm.requests[-1].body["messages"]
        assert sent[:2] == TOOL_TURN
        (result,) = sent[2]["content"]
        assert result["tool_use_id"] == "toolu_read" and result["content"][0] == {"type": "text", "text": "shot.png:"}
        assert result["content"][1]["type"] == "text" and seen_as(RED) in result["content"][1]["text"]
        assert "oeye,gpt-eye" in result["content"][1]["text"]
        no_image_in(p.glm, RED)
        (asked,) = p.oeye.requests
        assert asked.path == "/v1/chat/completions" and asked.body["model"] == "gpt-eye"
        assert f"base64,{base64.b64encode(RED).decode()}" in json.dumps(asked.body)


def test_each_image_is_described_once_however_many_requests_carry_it(monkeypatch):
    slow = []

    def eye(seen):
        slow.append(seen)
        reply = anthropic_eye(seen)
        reply.wait = 0.5  # long enough for all the requests below to be waiting on it
        return reply

    with Proxy(monkeypatch, eye=eye) as p:
        p.ask(image(RED), {"type": "text", "text": "once"}, image(RED))  # twice in one request
        p.ask({"type": "text", "text": "again"}, image(RED), session="sess-2")  # and in the next one

        async def at_once() -> list[int]:
            async with httpx2.AsyncClient(timeout=20) as client:
                answers = await asyncio.gather(*(client.post(
                    p.endpoint.url + "/v1/messages", headers={"x-api-key": p.endpoint.token},
                    json={"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": [
                        {"role": "user", "content": [image(BLUE)]}]}) for _ in range(5)))
            return [a.status_code for a in answers]

        assert asyncio.run(at_once()) == [200] * 5
        assert len(slow) == 2  # RED once, BLUE once for five requests at the same time
        no_image_in(p.text, RED, BLUE)
        first, second = p.text.requests[0].body["messages"], p.text.requests[1].body["messages"]
        red = first[0]["content"].split("\n\nonce\n\n")
        assert red[0] == red[1] and second[0]["content"] == f"again\n\n{red[0]}"  # the same words each time


def closed_port() -> int:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    return port


@pytest.mark.parametrize("fault", ["503", "400", "timeout", "refused", "no key"])
def test_a_failing_vision_route_leaves_a_note_and_the_turn_goes_on(monkeypatch, fault):
    replies = {"503": json_reply({"error": {"message": f"overloaded, key {KEYS['EYE_KEY']}"}}, 503),
               "400": json_reply({"type": "error", "error": {"type": "invalid_request_error",
                                                              "message": "this model takes no images"}}, 400),
               "timeout": Reply(wait=5.0)}
    monkeypatch.setattr(vision, "DESCRIBE_SECONDS", 1.0)
    routes = f"""
[profiles.down]
base_url = "http://127.0.0.1:{closed_port()}"
auth = "none"

[profiles.mix]
models = {{ sonnet = "text,text-1" }}
"""  # `mix` loads `eye` (text's vision) on first use, not at start: a missing key shows then
    with Proxy(monkeypatch, serve="mix" if fault == "no key" else "text", eye=lambda seen: replies[fault],
               text=f'vision = "{"down,m" if fault == "refused" else "eye,eye-1"}"', more=routes) as p:
        if fault == "no key":
            monkeypatch.delenv("EYE_KEY")
        started = time.monotonic()
        assert p.ask({"type": "text", "text": "see"}, image(RED)).startswith("I was given")
        assert time.monotonic() - started < 8
        note = p.text.requests[-1].body["messages"][0]["content"].removeprefix("see\n\n")
        profile = "down" if fault == "refused" else "eye"
        assert note.startswith(f"[image: not described: the vision profile '{profile}' failed: "), note
        words = {"503": "503 upstream 503: overloaded, key sk-", "400": "400 upstream 400: this model takes no images",
                 "timeout": "504 no whole answer from", "refused": "cannot connect", "no key": "EYE_KEY"}[fault]
        assert words in note and KEYS["EYE_KEY"] not in note, note
        no_image_in(p.text, RED)


def test_a_failures_note_stands_a_while_then_the_vision_route_is_asked_again(monkeypatch):
    monkeypatch.setattr(vision, "FAILED_FOR", 0.5)
    answers = iter([json_reply({"error": {"message": "busy"}}, 529)])
    with Proxy(monkeypatch, eye=lambda seen: next(answers, None) or anthropic_eye(seen)) as p:
        p.ask(image(RED))
        p.ask(image(RED))
        assert len(p.eye.requests) == 1  # the vision route is not asked for each turn while it fails
        time.sleep(0.6)
        p.ask(image(RED))
        assert len(p.eye.requests) == 2
        notes = [r.body["messages"][0]["content"] for r in p.text.requests]
        assert notes[0] == notes[1] and "529" in notes[0] and seen_as(RED) in notes[2]


def test_each_description_is_a_usage_row_of_its_own_under_the_session_that_asked(monkeypatch):
    answers = iter([json_reply({"error": {"message": "busy"}}, 503)])
    monkeypatch.setattr(vision, "FAILED_FOR", 0.0)
    with Proxy(monkeypatch, eye=lambda seen: next(answers, None) or anthropic_eye(seen)) as p:
        p.ask(image(BLUE), session="sess-0")  # the vision route fails: a row all the same
        p.ask(image(RED), session="sess-1")
        p.ask(image(RED), session="sess-2")  # described before: no row of its own
    failed, _, described, first, second = logged_rows()
    assert (failed["target"], failed["model"], failed["requested"], failed["status"], failed["error"]) == (
        "eye", "eye-1", usage.DESCRIBED, 503, "overloaded_error")
    assert {k: described[k] for k in ("session", "profile", "target", "model", "requested", "stream", "status",
                                      "input_tokens", "output_tokens", "error", "hops")} == {
        "session": "sess-1", "profile": "text", "target": "eye", "model": "eye-1", "requested": usage.DESCRIBED,
        "stream": 0, "status": 200, "input_tokens": 1600, "output_tokens": 40, "error": None, "hops": 0}
    assert described["cost"] == pytest.approx((1600 * 1 + 40 * 2) / 1e6)  # at the vision profile's prices
    assert [(r["target"], r["requested"], r["session"]) for r in (first, second)] == [
        ("text", "claude-sonnet-4-5", "sess-1"), ("text", "claude-sonnet-4-5", "sess-2")]
    shown = ccs("usage", "--by", "model")
    assert shown.returncode == 0, shown.stderr
    line = next(line for line in shown.stdout.splitlines() if "eye-1" in line)
    assert line.split()[:4] == ["eye", "eye-1", usage.DESCRIBED.split()[0], usage.DESCRIBED.split()[1]]
    assert line.split()[4:6] == ["2", "1"]  # two descriptions asked for, one failed


def test_routers_describe_for_every_route_and_a_targets_own_vision_wins(monkeypatch):
    mix = """
[profiles.mix]
models = { opus = "glm,glm-4.6", sonnet = "text,text-1", haiku = "eye,eye-1" }
vision = "eye,eye-1"

[profiles.plain]
models = { opus = "glm,glm-4.6" }
"""
    with Proxy(monkeypatch, serve="mix", text='vision = "oeye,gpt-eye"', more=mix) as p:
        assert p.ask(image(RED), model="claude-opus-5-5") == "from glm"
        no_image_in(p.glm, RED)  # the router's vision, for a target without its own
        assert len(p.eye.requests) == 1 and not p.oeye.requests
        p.ask(image(RED), model="claude-sonnet-4-5")
        assert len(p.oeye.requests) == 1  # the target's own vision
        no_image_in(p.text, RED)
        p.sdk.messages.create(model="eye,eye-1", max_tokens=5, messages=[{"role": "user", "content": [image(BLUE)]}])
        assert p.eye.requests[-1].body["messages"][0]["content"] == [image(BLUE)]  # the vision model sees for itself
        assert len(p.eye.requests) == 2
    with Proxy(monkeypatch, serve="plain", text="", more=mix) as p:
        p.ask(image(RED), model="claude-opus-5-5")
        assert p.glm.requests[-1].body["messages"][0]["content"] == [image(RED)]  # nobody said glm takes no images
        assert not p.eye.requests


def test_a_streamed_answer_through_the_sdk_and_no_images_no_description(monkeypatch):
    with Proxy(monkeypatch) as p:
        with p.sdk.messages.stream(model="claude-opus-5-5", max_tokens=50, messages=[
                {"role": "user", "content": [{"type": "text", "text": "what is it?"}, image(BLUE)]}]) as stream:
            assert stream.get_final_message().content[0].text.startswith("I was given")
        assert p.ask({"type": "text", "text": "just words"}).startswith("I was given")
        assert len(p.eye.requests) == 1
        no_image_in(p.text, BLUE)


# ---------------------------------------------------------------- the setting, checked


@pytest.mark.parametrize(("raw", "words"), [
    ({"preset": "zai", "vision": "no-comma"}, 'vision \'no-comma\': the route of a model that sees images'),
    ({"preset": "zai", "vision": "bad name!,m"}, "the route of a model that sees images"),
    ({"preset": "zai", "vision": "Text,m"}, "cannot describe its own"),
    ({"preset": "zai", "vision": "eye,m", "direct": True},
     r"images are described by the proxy, and this profile runs without it \(direct = true\)"),
    ({"preset": "claude", "vision": "eye,m"}, "claude signs its requests"),
    ({"preset": "zai", "vision": 3}, "'vision' must be a string"),
])
def test_the_vision_setting_is_checked(raw, words):
    with pytest.raises(CcsError, match=words):
        profiles.resolve("text", raw)


def test_the_vision_route_is_checked_where_a_routers_routes_are():
    from ccswitch import doctor

    config = profiles.parse("""
[profiles.eye]
preset = "openai"
[profiles.max]
preset = "claude"
[profiles.mix]
models = { opus = "eye,gpt-5" }
[profiles.a]
preset = "zai"
vision = "b,m"
[profiles.b]
preset = "kimi"
vision = "a,m"
[profiles.ok]
preset = "deepseek"
vision = "eye,gpt-5.6-luna"
[profiles.router]
models = { opus = "a,glm-4.6" }
vision = "eye,"
""", Path("profiles.toml"))

    def problems(vision: str) -> list[str]:
        return config.route_problems(profiles.resolve("x", {"preset": "zai", "vision": vision}))

    assert problems("ghost,m") == ["vision 'ghost,m': no profile named 'ghost'"]
    assert "own login" in problems("max,m")[0] and "a router itself" in problems("mix,m")[0]
    assert "so its models take none; name a profile whose model sees images" in problems("a,m")[0]
    assert "(a loop)" in config.route_problems(config.get("a"))[0]
    assert config.route_problems(config.get("ok")) == [] and config.get("ok").needs_proxy
    assert "eye" in [t.name for t in config.route_targets(config.get("ok"))]  # its key is looked up at start
    with pytest.raises(CcsError, match="vision 'b,m'"):
        lifecycle.keys_for(config, config.get("a"))
    found = {(f.check, f.level): f.detail for f in doctor.route_findings(config)}
    assert found[("ok", "ok")] == "has its images described by eye,gpt-5.6-luna"
    assert found[("router", "ok")] == "routes to a; has its images described by eye,"
    assert "(a loop)" in found[("a", "fail")] and ("eye", "ok") not in found


def test_the_example_profiles_describe_images_with_a_model_that_sees_them():
    from conftest import REPO

    config = profiles.parse((REPO / "profiles.example.toml").read_text(), REPO / "profiles.example.toml")
    seeing = [p for p in config.profiles.values() if p.vision]
    assert seeing and all(config.route_problems(p) == [] for p in seeing)


def test_ccs_show_and_a_direct_run_say_where_images_go():
    write_config("""
        version = 1
        [profiles.eye]
        preset = "openai"
        [profiles.ds]
        preset = "deepseek"
        key_env = "DS_KEY"
        vision = "eye,gpt-5.6-luna"
    """)
    shown = ccs("show", "ds")
    assert shown.returncode == 0, shown.stderr
    assert any(line.split() == ["vision", "eye,gpt-5.6-luna"] for line in shown.stdout.splitlines()), shown.stdout
    assert json.loads(ccs("show", "ds", "--json").stdout)["vision"] == "eye,gpt-5.6-luna"
    direct = ccs("run", "--direct", "ds", "--", "true", env={"DS_KEY": "sk-x"})
    assert direct.returncode == 2 and "has its images described by eye,gpt-5.6-luna" in direct.stderr


# ---------------------------------------------------------------- the pieces


def test_the_kept_descriptions_are_bounded_by_count_and_by_size_least_recently_used_first():
    kept = vision.Descriptions(count=3, size=100)
    for name in "abc":
        kept.put(("v", name), name * 10)
    assert kept.get(("v", "a")) == "a" * 10  # now the most recently used
    kept.put(("v", "d"), "d" * 10)
    assert kept.get(("v", "b")) is None and kept.get(("v", "a")) and len(kept.items) == 3
    kept.put(("v", "e"), "e" * 95)  # over 100 characters: the least recently used go until it fits
    assert list(kept.items) == [("v", "e")] and kept.bytes == 95
    kept.put(("v", "f"), "note", until=time.monotonic() - 1)  # a failure's note whose time is up
    assert kept.get(("v", "f")) is None and ("v", "f") not in kept.items


def test_images_are_found_and_replaced_in_place():
    req = {"model": "m", "messages": [
        {"role": "user", "content": [image(RED), {"type": "text", "text": "x"}]},
        {"role": "assistant", "content": "plain"},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "is_error": False,
                                      "content": [image(BLUE, cache_control={"type": "ephemeral"})]},
                                     {"type": "image", "source": "not an object"}]}]}
    found = vision.images(req)
    assert [vision.image_key(b) for b in found] == [vision.image_key(image(RED)), vision.image_key(image(BLUE))]
    texts = {vision.image_key(image(RED)): "R", vision.image_key(image(BLUE)): "B"}
    out = vision.replaced(req, lambda block: texts[vision.image_key(block)])
    assert out["messages"][0]["content"] == [{"type": "text", "text": "R"}, {"type": "text", "text": "x"}]
    assert out["messages"][1] is req["messages"][1]
    assert out["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "t1", "is_error": False,
         "content": [{"type": "text", "text": "B", "cache_control": {"type": "ephemeral"}}]},
        {"type": "image", "source": "not an object"}]  # left for the provider to refuse
    assert req["messages"][0]["content"][0] == image(RED)  # the client's request is not changed
