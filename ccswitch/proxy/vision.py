"""Images for models that take none: before a request goes to a target whose profile (or the router serving
it) names a `vision` route, each image in it (in a message's content, or in a tool result's: how claude's
Read tool sends a PNG) becomes a text block holding what the vision route's model said of that image.

A description is one Anthropic Messages request of the proxy's own to the vision route, sent by the same
pipelines as claude's (any API kind), the image in it byte for byte; it is one usage row of its own. Each
image is described once per proxy: descriptions are kept by the image's hash (a bounded LRU), and requests
that need the same one at the same time share one description request. A vision route that fails leaves a
note in the image's place, never a failed turn.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable

from ..profiles import split_route
from ..usage import DESCRIBED
from . import jsonio
from .errors import ProxyError
from .pipeline import Outcome
from .router import Route, Target

ASK = ("Describe this image for a coding assistant that cannot see it. Transcribe all text in it verbatim "
       "(code, error messages, stack traces, logs, labels, UI text), keeping line breaks and indentation. Describe "
       "the structure of a user interface (windows, panels, controls and their state, layout), diagrams and charts "
       "(boxes, arrows, labels, values), and anything that looks wrong (errors, warnings, broken layout). Be exact "
       "and complete; no preamble, no guesses about what the user wants.")
MAX_TOKENS = 4096  # of a description
DESCRIBE_SECONDS = 120.0  # the longest one description may take (the turn waits for it)
AT_ONCE = 4  # descriptions under way at the same time, per proxy
FAILED_FOR = 30.0  # seconds the note of a failed description stands before the vision route is asked again
KEPT = 1024  # descriptions kept, at most
KEPT_BYTES = 8 * 1024 * 1024  # and their text, at most
NOTE_LENGTH = 300  # characters of a failure's message in its note

log = logging.getLogger("ccswitch.proxy")


class Vision:
    """The images of one proxy's requests, described for the targets that take none (see the module's
    docstring). `exchanges`: the proxy's Exchanges (the router, and the pipelines that send a request)."""

    def __init__(self, exchanges):
        self.exchanges = exchanges
        self.kept = Descriptions()
        self.under_way: dict[tuple[str, str], asyncio.Future] = {}
        self.at_once = asyncio.Semaphore(AT_ONCE)
        self.limit = DESCRIBE_SECONDS

    def route_for(self, route: Route) -> Target | None:
        """Where the images of a request to `route` are described: its profile's own `vision`, else the served
        profile's; None when neither says its model takes no images, or when it is the vision model itself."""
        setting = route.upstream.vision or self.exchanges.router.vision
        if not setting:
            return None
        vision = Target(*split_route(setting))
        same = vision.profile.lower() == route.target.profile.lower() and \
            (vision.model or route.upstream.model_for("")) == route.target.model
        return None if same else vision

    async def described(self, req: dict, route: Route, session: str | None) -> dict:
        """`req` as a request to `route` may go: itself, or a copy with each image a text block."""
        vision = self.route_for(route)
        found = images(req) if vision is not None else []
        if not found:
            return req
        keys = {id(block): image_key(block) for block in found}  # each hashed once
        by_key = {keys[id(block)]: block for block in found}
        texts = dict(zip(by_key, await asyncio.gather(*(self.description(vision, key, block, session)
                                                         for key, block in by_key.items()))))
        return replaced(req, lambda block: texts[keys[id(block)]])

    async def description(self, vision: Target, key: str, image: dict, session: str | None) -> str:
        """An image's text block: kept from before, shared with a request that asked first, or asked for now."""
        kept_as = (str(vision).lower(), key)
        if (text := self.kept.get(kept_as)) is not None:
            return text
        under_way = self.under_way.get(kept_as)
        if under_way is None:
            under_way = self.under_way[kept_as] = asyncio.ensure_future(self._describe(vision, image, session))
            under_way.add_done_callback(lambda done: self._keep(kept_as, done))
        text, _ = await asyncio.shield(under_way)  # a client that leaves does not cancel it for the others
        return text

    def _keep(self, kept_as: tuple[str, str], done: asyncio.Future) -> None:
        self.under_way.pop(kept_as, None)
        if not done.cancelled():
            text, failed = done.result()
            self.kept.put(kept_as, text, time.monotonic() + FAILED_FOR if failed else None)

    async def _describe(self, vision: Target, image: dict, session: str | None) -> tuple[str, bool]:
        """(the image's text block, whether it is a failure's note); never an exception."""
        router = self.exchanges.router
        try:
            async with self.at_once:
                route = await router.resolve(vision)
                message = await self.exchanges.whole_answer(route, request_for(image, route.target.model),
                                                            Outcome(DESCRIBED, False, session), self.limit)
            text = "".join(block.get("text") or "" for block in message["content"]
                           if isinstance(block, dict) and block.get("type") == "text").strip()
            if not text:
                raise ProxyError(502, "its answer held no text")
            return f"[image, described by {route.target} for a model that cannot see it]\n{text}\n[end of image]", False
        except ProxyError as e:
            reason = f"{e.status} {router.masked(e.message)}"
        except Exception as e:  # a bug of ours: logged, and still a note rather than a failed turn
            log.error("ccs proxy: a bug in ccs, describing an image with %s", vision, exc_info=e)
            reason = f"internal error in the ccs proxy: {type(e).__name__}"
        reason = reason if len(reason) <= NOTE_LENGTH else reason[:NOTE_LENGTH] + "..."
        log.warning("ccs proxy: an image was not described by %s: %s", vision, reason)
        return f"[image: not described: the vision profile '{vision.profile}' failed: {reason}]", True

    def close(self) -> None:
        for under_way in list(self.under_way.values()):
            under_way.cancel()


class Descriptions:
    """Image descriptions by (vision route, image hash), the least recently used dropped first beyond KEPT of
    them or KEPT_BYTES of text. A failure's note is kept until its time is up."""

    def __init__(self, count: int = KEPT, size: int = KEPT_BYTES):
        self.count, self.size = count, size
        self.items: OrderedDict[tuple[str, str], tuple[str, float | None]] = OrderedDict()
        self.bytes = 0

    def get(self, key: tuple[str, str]) -> str | None:
        item = self.items.get(key)
        if item is None:
            return None
        text, until = item
        if until is not None and time.monotonic() >= until:
            self._drop(key)
            return None
        self.items.move_to_end(key)
        return text

    def put(self, key: tuple[str, str], text: str, until: float | None = None) -> None:
        if key in self.items:
            self._drop(key)
        self.items[key] = (text, until)
        self.bytes += len(text)
        while self.items and (len(self.items) > self.count or self.bytes > self.size):
            self._drop(next(iter(self.items)))

    def _drop(self, key: tuple[str, str]) -> None:
        self.bytes -= len(self.items.pop(key)[0])


def images(req: dict) -> list[dict]:
    """Every image block of a request's messages, in order: in their content and in their tool results'. (One
    without a source is left to the provider to refuse.)"""
    found = []
    for message in req.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        for block in content if isinstance(content, list) else ():
            if isinstance(block, dict) and block.get("type") == "tool_result" and isinstance(block.get("content"), list):
                found += [b for b in block["content"] if _is_image(b)]
            elif _is_image(block):
                found.append(block)
    return found


def _is_image(block) -> bool:
    return isinstance(block, dict) and block.get("type") == "image" and isinstance(block.get("source"), dict)


def image_key(block: dict) -> str:
    """What an image is kept by: the sha256 of its source (its bytes in base64 and their media type, or its URL
    or file id)."""
    return hashlib.sha256(jsonio.dumps(block.get("source"))).hexdigest()


def replaced(req: dict, text_for: Callable[[dict], str]) -> dict:
    """A copy of `req` with each image block a text block (`text_for(block)`), where it was: the order of the
    blocks, the tool results and their ids stay as they were, and so does an image's cache_control."""

    def blocks(content: list) -> list:
        out = []
        for block in content:
            if _is_image(block):
                block = {"type": "text", "text": text_for(block),
                         **({"cache_control": block["cache_control"]} if "cache_control" in block else {})}
            elif isinstance(block, dict) and block.get("type") == "tool_result" and isinstance(block.get("content"),
                                                                                                list):
                block = {**block, "content": blocks(block["content"])}
            out.append(block)
        return out

    messages = [{**m, "content": blocks(m["content"])} if isinstance(m, dict) and isinstance(m.get("content"), list)
                else m for m in req["messages"]]
    return {**req, "messages": messages}


def request_for(image: dict, model: str) -> dict:
    """The description request: the image as the user sent it (its source untouched), and what to say of it."""
    return {"model": model, "max_tokens": MAX_TOKENS, "stream": False, "messages": [{"role": "user", "content": [
        {"type": "image", "source": image["source"]}, {"type": "text", "text": ASK}]}]}
