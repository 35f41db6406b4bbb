"""The web search backends the proxy searches with (the profiles file's `[search]`): SearXNG's JSON API, Brave's
Search API and Tavily's, each asked its own way (one row of BACKENDS) and read into the same `Hit`s. A backend
that fails, is slow or answers oddly is a `SearchFailed` carrying one of Anthropic's web search error codes,
never a failed request: the model hears what went wrong and answers all the same."""

from __future__ import annotations

import asyncio
import fnmatch
import html
import logging
import re
import time
from collections.abc import Callable
from typing import NamedTuple
from urllib.parse import urlsplit

from .. import http_client
from ..errors import CcsError
from . import jsonio

MAX_BODY = 4 * 1024 * 1024  # a backend's answer, at most
MAX_TITLE, MAX_SNIPPET, MAX_URL = 300, 2000, 2048  # characters of a hit kept (the model reads every one)
KEY_RETRY = 30.0  # seconds before a key that could not be looked up is looked up again
TAGS = re.compile(r"<[^>]{0,100}>")  # Brave marks the query's words in its snippets: <strong>...</strong>

log = logging.getLogger("ccswitch.proxy")


class Hit(NamedTuple):
    title: str
    url: str
    snippet: str
    page_age: str | None = None


class SearchFailed(Exception):
    """A search that gave no results. `code`: Anthropic's error code for it (unavailable, too_many_requests,
    ...); `setup`: ccs is not set up to search (no [search], no key), which asking again will not change."""

    def __init__(self, code: str, message: str, setup: bool = False):
        super().__init__(message)
        self.code = code
        self.message = message
        self.setup = setup


class Request(NamedTuple):
    method: str
    path: str  # under the backend's url
    params: dict | None = None
    json: dict | None = None
    headers: dict | None = None


def _searxng(query: str, key: str | None, count: int, allowed, blocked) -> Request:
    return Request("GET", "/search", params={"q": query, "format": "json"}, headers={"Accept": "application/json"})


def _brave(query: str, key: str | None, count: int, allowed, blocked) -> Request:
    return Request("GET", "/res/v1/web/search", params={"q": query, "count": str(count)},
                   headers={"Accept": "application/json", "X-Subscription-Token": key or ""})


def _tavily(query: str, key: str | None, count: int, allowed, blocked) -> Request:
    body = {"query": query, "max_results": count}
    if allowed:
        body["include_domains"] = list(allowed)
    if blocked:
        body["exclude_domains"] = list(blocked)
    return Request("POST", "/search", json=body, headers={"Authorization": f"Bearer {key}"})


def _hits(results, title: str, url: str, snippet: str, *ages: str) -> list[Hit]:
    """Hits from a list of result objects, by the names their fields have there; what is not a result is skipped."""
    hits = []
    for result in results if isinstance(results, list) else []:
        if not isinstance(result, dict) or not isinstance(result.get(url), str) or not 0 < len(result[url]) <= MAX_URL:
            continue
        age = next((result[a] for a in ages if isinstance(result.get(a), str) and result[a]), None)
        text = result.get(snippet) if isinstance(result.get(snippet), str) else ""
        hits.append(Hit(_plain(result.get(title) or result[url])[:MAX_TITLE], result[url], _plain(text)[:MAX_SNIPPET],
                        age and age[:100]))
    return hits


def _plain(text) -> str:
    return html.unescape(TAGS.sub("", str(text))).strip()


class Backend(NamedTuple):
    title: str
    request: Callable[..., Request]
    hits: Callable[[dict], list[Hit]]
    forbidden: str  # what a 401 or 403 from it means


BACKENDS = {
    "searxng": Backend("SearXNG", _searxng, lambda data: _hits(data.get("results"), "title", "url", "content",
                                                                 "publishedDate"),
                       "the SearXNG server refuses JSON: add json to search.formats in its settings.yml"),
    "brave": Backend("Brave Search", _brave, lambda data: _hits((data.get("web") or {}).get("results"), "title", "url",
                                                                "description", "page_age", "age"),
                     "Brave Search refused the key: store a new one with `ccs key set search`"),
    "tavily": Backend("Tavily", _tavily, lambda data: _hits(data.get("results"), "title", "url", "content",
                                                            "published_date"),
                      "Tavily refused the key: store a new one with `ccs key set search`"),
}


class Searcher:
    """Searches with the `[search]` backend (profiles.SearchSettings). Its key is looked up on first use, off the
    event loop (`lookup`, which may run a key_cmd), and again after KEY_RETRY seconds when that failed."""

    def __init__(self, settings, lookup: Callable[[], str | None], client=None):
        self.settings = settings
        self.backend = BACKENDS[settings.provider]
        self.lookup = lookup
        self.client = client
        self.key: str | None = None
        self.key_failed: tuple[float, str] | None = None
        self.looking: asyncio.Future | None = None

    @property
    def title(self) -> str:
        return self.backend.title

    async def search(self, query: str, allowed=(), blocked=()) -> list[Hit]:
        """The hits for `query`, within `allowed` domains and none of `blocked`; SearchFailed otherwise."""
        started = time.monotonic()
        key = await self._key() if self.settings.needs_key else None
        request = self.backend.request(query, key, self.settings.max_results, allowed, blocked)
        try:
            async with asyncio.timeout(self.settings.timeout):
                status, raw = await self._send(request)
        except TimeoutError:
            raise self._failed("unavailable", f"{self.title} did not answer within {self.settings.timeout:g} s",
                               query) from None
        except http_client.errors() as e:
            raise self._failed("unavailable", f"cannot reach {self.title} at {self.settings.url} "
                                              f"({http_client.failure_kind(e)})", query) from None
        if status == 429:
            raise self._failed("too_many_requests", f"{self.title} says too many requests (429)", query)
        if status in (401, 403):
            raise self._failed("unavailable", f"{self.backend.forbidden} ({status})", query)
        if status >= 400:
            raise self._failed("unavailable", f"{self.title} answered HTTP {status}", query)
        try:
            data = jsonio.loads(raw)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise self._failed("unavailable", f"{self.title} answered with something other than JSON "
                                              f"({raw[:60]!r})", query)
        hits = [hit for hit in self.backend.hits(data) if within(hit.url, allowed, blocked)]
        hits = hits[:self.settings.max_results]
        log.info("ccs proxy: web search (%s) %r: %d results in %.0f ms", self.settings.provider, query[:100],
                 len(hits), (time.monotonic() - started) * 1000)
        return hits

    def _failed(self, code: str, message: str, query: str) -> SearchFailed:
        log.warning("ccs proxy: web search (%s) %r failed: %s", self.settings.provider, query[:100], message)
        return SearchFailed(code, message)

    async def _send(self, request: Request) -> tuple[int, bytes]:
        if self.client is None:
            self.client = http_client.session(self.settings.url, read_timeout=self.settings.timeout, connections=16)
        async with self.client.request(request.method, self.settings.url + request.path, params=request.params,
                                       json=request.json, headers=request.headers, allow_redirects=False) as response:
            chunks, size = [], 0
            while chunk := await response.content.readany():
                size += len(chunk)
                if size > MAX_BODY:
                    raise SearchFailed("unavailable", f"{self.title} answered over {MAX_BODY // 1024 // 1024} MiB")
                chunks.append(chunk)
            return response.status, b"".join(chunks)

    async def _key(self) -> str:
        if self.key:
            return self.key
        if self.key_failed and time.monotonic() - self.key_failed[0] < KEY_RETRY:
            raise SearchFailed("unavailable", self.key_failed[1], setup=True)
        if self.looking is None:
            self.looking = asyncio.ensure_future(asyncio.to_thread(self.lookup))
        looking = self.looking
        try:
            self.key = await asyncio.shield(looking)
        except CcsError as e:  # no key stored, key_env unset, a key_cmd that failed
            self.key_failed = (time.monotonic(), str(e))
            raise SearchFailed("unavailable", str(e), setup=True) from None
        finally:
            if self.looking is looking and looking.done():
                self.looking = None
        return self.key

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()


def within(url: str, allowed=(), blocked=()) -> bool:
    """A result's URL inside the allowed domains and none of the blocked, as Anthropic's tool reads them: a
    domain covers its subdomains, a path what is under it (`*` in a path: anything there)."""
    parts = urlsplit(url)
    name, path = (parts.hostname or "").lower(), parts.path.lstrip("/")

    def matches(domain: str) -> bool:
        host, _, under = domain.lower().removeprefix("https://").removeprefix("http://").partition("/")
        return (name == host or name.endswith("." + host)) and fnmatch.fnmatchcase(path, under.rstrip("*") + "*")

    return (not allowed or any(matches(d) for d in allowed)) and not any(matches(d) for d in blocked)


def searcher_for(config) -> Searcher | None:
    """The proxy's searcher, if the profiles file has a `[search]`."""
    if config.search is None:
        return None
    from .. import keys

    return Searcher(config.search, lambda: keys.search_key(config.search, config.secret_store))
