"""Web search for every provider. claude's WebSearch asks for Anthropic's `web_search` server tool, which only
Anthropic runs: for any other target this layer around the target's pipeline offers the model a plain
`web_search` function instead, runs each search it asks for against the `[search]` backend (within the tool's
`max_uses`), hands the results back as a tool result and asks again, until the model answers. The client gets
what Anthropic would have sent: `server_tool_use` and `web_search_tool_result` blocks, then the answer, with
`usage.server_tool_use.web_search_requests`; a search that fails is an error result, never a failed turn.

The model is asked through the pipeline of the target's API kind (relay, Chat, Responses), its answers collected
whole (`collected`); their tokens add up in the one usage row of the client's request. The client's stream
begins once the first answer is in (until then a failure still falls back to the next target), and gets pings
while the model or a search takes its time. Past search blocks in a conversation become text the model can read.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import logging
import secrets

from . import jsonio
from .anthropic import PING, EventWriter, event, new_message_id, start_and_deltas
from .collected import Collected
from .errors import ProxyError
from .pipeline import CLIENT_LEFT, JSON_CONTENT, PING_AFTER, SSE_HEADERS, Exchange, Outcome
from .search_backends import Hit, SearchFailed

ANTHROPIC_HOST = "api.anthropic.com"  # runs the server tool itself: a request for it goes as it is
TOOL_TYPE = "web_search_"  # the server tool's type: web_search_20250305 and the versions after it
FUNCTION = "web_search"  # the function offered to the model instead (the server tool's own name)
MAX_USES = 8  # searches in one answer when the tool sets no max_uses (as many as claude's WebSearch allows)
MAX_QUERY = 400  # characters in a query (Brave takes no longer ones)
OUR_IDS = "srvtoolu_ccs"  # the server_tool_use ids the proxy makes (Anthropic's start "srvtoolu_01")
ENCRYPTED = "ccs-search-"  # our encrypted_content: this mark and the snippet in base64, read by nobody but us
NOT_SET_UP = ("Web search is not set up in ccs, so this search did not run. To search from any provider, add a "
              "[search] table to the ccs profiles file (`ccs edit`): provider = \"searxng\" with the url of a SearXNG "
              "server, or provider = \"brave\" or \"tavily\" with its key stored by `ccs key set search` (see the ccs "
              "docs/profiles.md, \"Web search\").")

log = logging.getLogger("ccswitch.proxy")


def with_web_search(pipeline, req: dict, upstream):
    """The pipeline class for a request to `upstream`: the one of its API kind (`pipeline`), inside this layer when
    the request needs it: it carries the web_search server tool or past searches, for a target other than
    Anthropic; for Anthropic, when it holds searches this proxy made (whose content Anthropic cannot decrypt)."""
    anthropic = upstream.host == ANTHROPIC_HOST
    if anthropic and not _holds_searches(req, ours=True):
        return pipeline
    if not anthropic and server_tool(req) is None and not _holds_searches(req, ours=False):
        return pipeline
    return functools.partial(WebSearch, pipeline)


def server_tool(req: dict) -> dict | None:
    """The request's web_search server tool, if it has one."""
    tools = req.get("tools")
    return next((t for t in tools if _is_server_tool(t)), None) if isinstance(tools, list) else None


def _is_server_tool(tool) -> bool:
    return isinstance(tool, dict) and str(tool.get("type", "")).startswith(TOOL_TYPE) and "input_schema" not in tool


class ClientLeft(Exception):
    """The client went away while its answer was being written."""


class WebSearch(Exchange):
    """A target's pipeline (`inner`, its API kind's) with the web_search server tool run by the proxy."""

    def __init__(self, inner, *args):
        super().__init__(*args)
        self.inner = inner
        self.searcher = self.shared.search  # search_backends.Searcher, or None without a [search]
        self.tool = server_tool(self.req) or {}
        max_uses = self.tool.get("max_uses")
        self.limit = max_uses if isinstance(max_uses, int) and not isinstance(max_uses, bool) and max_uses > 0 \
            else MAX_USES
        self.used = 0  # searches asked for within the limit
        self.searched = 0  # searches that ran (usage.server_tool_use.web_search_requests)
        self.asked = 0  # requests to the model
        self.usage: dict[str, int] = {}
        self.streamed = self.req.get("stream") is True
        self.content: list[dict] = []  # the answer's blocks (for a whole answer)
        self.writer: EventWriter | None = None  # the client's stream, once begun
        self.messages: list = []

    async def run(self) -> None:
        anthropic = self.upstream.host == ANTHROPIC_HOST
        req = readable(self.req, ours_only=anthropic)
        if anthropic or not self.tool:  # only past searches to put in words
            await self.inner(self.shared, self.upstream, self.model, req, self.headers, self.reply, self.outcome,
                             self.reported).run()
            return
        self.req = req
        self.messages = list(req.get("messages") or [])
        try:
            stop = await self._rounds()
            await self._finish(stop)
        except ProxyError as e:
            if self.writer is None:
                raise  # nothing sent yet: an HTTP error, or the next target
            self.outcome.status, self.outcome.error = e.status, e.error_type
            await self._write(event("error", self.reported(e).body()))
        except ClientLeft:
            self.outcome.status = CLIENT_LEFT
        finally:
            self.outcome.usage = self._usage()

    async def _rounds(self) -> str:
        """Ask the model, run the searches it asks for, again until it answers; the stop reason of its answer."""
        for _ in range(self.limit + 2):  # each round spends the budget, or ends the tool's offer
            message = await self._ask(self._body())
            await self._begin()
            content = [block for block in message.get("content") or [] if isinstance(block, dict)]
            calls = [block for block in content if block.get("type") == "tool_use" and block.get("name") == FUNCTION]
            if not calls:
                await self._emit(content)
                return message.get("stop_reason") or "end_turn"
            asked = [self._query(call) for call in calls]
            found = await self._meanwhile(asyncio.gather(*(self._search(query) for query in asked)))
            done = {id(call): (query, result) for call, query, result in zip(calls, asked, found)}
            blocks = []
            for block in content:
                if id(block) in done:
                    blocks.extend(_server_blocks(block, *done[id(block)]))
                else:
                    blocks.append(block)
            await self._emit(blocks)
            if setup := next((r for r in found if isinstance(r, SearchFailed) and r.setup), None):
                await self._emit([{"type": "text", "text": setup.message}])  # searching again cannot help
                return "end_turn"
            if len(calls) < len([block for block in content if block.get("type") == "tool_use"]):
                return "tool_use"  # the model called the client's tools too: theirs to run
            self.messages += [{"role": "assistant", "content": content},
                              {"role": "user", "content": [_tool_result(call, *done[id(call)]) for call in calls]}]
        return "end_turn"

    def _body(self) -> dict:
        """The request the model gets: the client's, its server tool replaced by the function while searches are
        left, the searches so far in its messages; a forced tool choice forces the first request only."""
        tools = [tool for tool in self.req.get("tools") or () if not _is_server_tool(tool)]
        if self.used < self.limit:
            tools.append(self._function())
        body = {**self.req, "messages": self.messages, "stream": True, "tools": tools}
        choice = body.get("tool_choice")
        if not tools:
            del body["tools"]
            body.pop("tool_choice", None)
        elif isinstance(choice, dict) and choice.get("type") in ("any", "tool") and self.asked:
            body["tool_choice"] = {"type": "auto", **{k: v for k, v in choice.items() if k == "disable_parallel_tool_use"}}
        return body

    def _function(self) -> dict:
        return {"name": FUNCTION,
                "description": "Search the web. Gives the top results for a query: each page's title, URL, age and a "
                               "passage of its text. Use it for anything recent or that you are not sure of; search "
                               f"again with other words when the results do not answer. At most {self.limit} searches "
                               "in one answer.",
                "input_schema": {"type": "object", "properties": {
                    "query": {"type": "string", "description": "What to search the web for"}}, "required": ["query"]}}

    async def _ask(self, body: dict) -> dict:
        """The model's whole answer to `body`, through the target's own pipeline."""
        self.asked += 1
        collected = Collected()
        outcome = Outcome(self.outcome.requested, True, self.outcome.session)
        pipeline = self.inner(self.shared, self.upstream, self.model, body, self.headers, collected, outcome,
                              self.reported)
        try:
            await self._meanwhile(pipeline.run())
        finally:
            self._add(outcome.usage)
        message = collected.message(self.upstream.url)
        if not outcome.complete:
            raise ProxyError(502, f"the answer from {self.upstream.url} broke off")
        return message

    def _query(self, call: dict) -> str | SearchFailed:
        """The query of a call, counted against the budget; or why it is not searched."""
        arguments = call.get("input")
        query = arguments.get("query") if isinstance(arguments, dict) else None
        if not isinstance(query, str) or not query.strip():
            return SearchFailed("invalid_tool_input", "a search needs a query: a string of words to search for")
        if len(query) > MAX_QUERY:
            return SearchFailed("query_too_long", f"the query is over {MAX_QUERY} characters: search with fewer words")
        if self.used >= self.limit:
            return SearchFailed("max_uses_exceeded", f"all {self.limit} searches of this answer are used: answer "
                                                     "with what they found")
        self.used += 1
        return query.strip()

    async def _search(self, query: str | SearchFailed) -> list[Hit] | SearchFailed:
        if isinstance(query, SearchFailed):
            return query
        if self.searcher is None:
            return SearchFailed("unavailable", NOT_SET_UP, setup=True)
        try:
            hits = await self.searcher.search(query, _domains(self.tool, "allowed_domains"),
                                              _domains(self.tool, "blocked_domains"))
        except SearchFailed as e:
            if e.setup:
                e.message = f"Web search did not run: {e.message}"
            return e
        self.searched += 1
        return hits

    # ------------------------------------------------------------ the client's side

    async def _begin(self) -> None:
        """Start the client's stream (once)."""
        if self.writer is not None or not self.streamed:
            return
        await self.reply.start(200, SSE_HEADERS)
        self.outcome.status = 200
        self.writer = EventWriter(self.outcome.requested)
        out: list[bytes] = []
        self.writer.start(out)
        if not await self._write(b"".join(out)):
            raise ClientLeft

    async def _emit(self, blocks: list[dict]) -> None:
        """Blocks of the answer: to the client's stream, or kept for a whole answer."""
        blocks = [_complete(block) for block in blocks]
        if not self.streamed:
            self.content.extend(blocks)
            return
        out: list[bytes] = []
        for block in blocks:
            start, *deltas = start_and_deltas(block)
            self.writer.open_block(block["type"], start, out)
            for delta in deltas:
                self.writer.delta(delta, out)
            self.writer.close_block(out)
        if out and not await self._write(b"".join(out)):
            raise ClientLeft

    async def _finish(self, stop: str) -> None:
        usage = self._usage()
        log.info("ccs proxy: web search for %s: %d searches, %d model requests", self.outcome.requested,
                 self.searched, self.asked)
        if not self.streamed:
            self.outcome.status, self.outcome.usage = 200, usage
            message = {"id": new_message_id(), "type": "message", "role": "assistant", "model": self.outcome.requested,
                       "content": self.content, "stop_reason": stop, "stop_sequence": None, "usage": usage}
            await self.answer_whole(200, JSON_CONTENT, jsonio.dumps(message))
            return
        out: list[bytes] = []
        self.writer.end(stop, usage, out)
        if not await self._write(b"".join(out)):
            raise ClientLeft
        self.outcome.complete = True

    async def _meanwhile(self, work):
        """`work`'s result; while it runs, a ping to a client whose stream has begun every PING_AFTER seconds."""
        task = asyncio.ensure_future(work)
        try:
            while self.writer is not None and not task.done():
                await asyncio.wait({task}, timeout=PING_AFTER)
                if not task.done() and not await self._write(PING):
                    raise ClientLeft
            return await task
        finally:
            if not task.done():
                task.cancel()
                await asyncio.wait({task})
                if not task.cancelled():
                    task.exception()  # retrieved: a gather cancelled under its children ends with one

    async def _write(self, data: bytes) -> bool:
        """False when the client went away, or took nothing for as long as the provider may keep silent."""
        try:
            async with asyncio.timeout(self.upstream.timeout):
                await self.reply.write(data)
        except (ConnectionError, TimeoutError):
            return False
        return True

    def _add(self, usage: dict | None) -> None:
        for key, value in (usage or {}).items():
            if isinstance(value, int) and not isinstance(value, bool):
                self.usage[key] = self.usage.get(key, 0) + value

    def _usage(self) -> dict:
        """What every request to the model used, summed, and the searches that ran (as Anthropic counts them)."""
        return {"input_tokens": 0, "output_tokens": 0, **self.usage,
                "server_tool_use": {"web_search_requests": self.searched}}


def _domains(tool: dict, key: str) -> list[str]:
    value = tool.get(key)
    return [d for d in value if isinstance(d, str)] if isinstance(value, list) else []


def _complete(block: dict) -> dict:
    """A block with the fields its stream events carry (a provider may leave an empty one out)."""
    kind = block.get("type")
    if kind == "text":
        return {"text": "", **block}
    if kind == "thinking":
        return {"thinking": "", **block}
    if kind == "tool_use":
        return {"input": {}, **block}
    return block


# ---------------------------------------------------------------- what Anthropic sends, and what the model reads


def _server_blocks(call: dict, query: str | SearchFailed, result: list[Hit] | SearchFailed) -> list[dict]:
    """A search as Anthropic answers it: the server_tool_use, then its web_search_tool_result."""
    tool_id = OUR_IDS + secrets.token_hex(12)
    asked = {"query": query} if isinstance(query, str) else dict(call.get("input") or {})
    if isinstance(result, SearchFailed):
        content = {"type": "web_search_tool_result_error", "error_code": result.code}
    else:
        content = [{"type": "web_search_result", "title": hit.title, "url": hit.url,
                    "encrypted_content": encrypted(hit.snippet), "page_age": hit.page_age} for hit in result]
    return [{"type": "server_tool_use", "id": tool_id, "name": FUNCTION, "input": asked},
            {"type": "web_search_tool_result", "tool_use_id": tool_id, "content": content}]


def _tool_result(call: dict, query, result: list[Hit] | SearchFailed) -> dict:
    """A search as the model reads it: the result of its function call."""
    if isinstance(result, SearchFailed):
        return {"type": "tool_result", "tool_use_id": call["id"], "is_error": True,
                "content": f"The web search failed ({result.code}): {result.message}"}
    return {"type": "tool_result", "tool_use_id": call["id"], "content": results_text(query, result)}


def results_text(query: str | None, hits: list[Hit]) -> str:
    head = f"Web search results for {query!r}:" if query else "Web search results:"
    if not hits:
        return f"{head} none."
    lines = [head]
    for number, hit in enumerate(hits, 1):
        lines += ["", f"{number}. {hit.title}", f"   {hit.url}"]
        if hit.page_age:
            lines.append(f"   ({hit.page_age})")
        if hit.snippet:
            lines.append(f"   {hit.snippet}")
    return "\n".join(lines)


def encrypted(snippet: str) -> str:
    """The snippet as the opaque `encrypted_content` of a result (base64: claude keeps it as it is)."""
    return ENCRYPTED + base64.urlsafe_b64encode(snippet.encode()).decode()


def decrypted(content) -> str:
    """The snippet in an `encrypted_content` this proxy made; "" for Anthropic's own (only Anthropic reads those)."""
    if not isinstance(content, str) or not content.startswith(ENCRYPTED):
        return ""
    try:
        return base64.urlsafe_b64decode(content[len(ENCRYPTED):]).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return ""


def _is_search_block(block, ours: bool) -> bool:
    if not isinstance(block, dict):
        return False
    kind = block.get("type")
    if kind == "server_tool_use" and block.get("name") == FUNCTION:
        return not ours or str(block.get("id", "")).startswith(OUR_IDS)
    if kind == "web_search_tool_result":
        return not ours or str(block.get("tool_use_id", "")).startswith(OUR_IDS)
    return False


def _holds_searches(req: dict, ours: bool) -> bool:
    messages = req.get("messages")
    return isinstance(messages, list) and any(
        isinstance(m, dict) and isinstance(m.get("content"), list) and any(_is_search_block(b, ours) for b in m["content"])
        for m in messages)


def readable(req: dict, ours_only: bool = False) -> dict:
    """The request with past searches (the server_tool_use and web_search_tool_result blocks of earlier answers)
    as text a model can read; `ours_only`: only those this proxy made (for Anthropic, which reads its own)."""
    if not _holds_searches(req, ours_only):
        return req
    queries: dict[str, str] = {}
    messages = []
    for message in req["messages"]:
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list) or not any(_is_search_block(b, ours_only) for b in content):
            messages.append(message)
            continue
        blocks = []
        for block in content:
            if not _is_search_block(block, ours_only):
                blocks.append(block)
            elif block["type"] == "server_tool_use":
                asked = block.get("input")
                query = asked.get("query") if isinstance(asked, dict) else None
                queries[str(block.get("id"))] = query if isinstance(query, str) else ""
            else:
                blocks.append({"type": "text", "text": f"\n\n{_past_result(block, queries)}\n\n"})
        messages.append({**message, "content": blocks})
    return {**req, "messages": messages}


def _past_result(block: dict, queries: dict[str, str]) -> str:
    query = queries.get(str(block.get("tool_use_id"))) or None
    content = block.get("content")
    if not isinstance(content, list):
        code = content.get("error_code") if isinstance(content, dict) else None
        return f"(A web search{f' for {query!r}' if query else ''} failed: {code or 'unavailable'}.)"
    hits = [Hit(str(r.get("title") or r.get("url")), str(r.get("url")), decrypted(r.get("encrypted_content")),
                r.get("page_age") if isinstance(r.get("page_age"), str) else None)
            for r in content if isinstance(r, dict) and r.get("url")]
    return results_text(query, hits)
