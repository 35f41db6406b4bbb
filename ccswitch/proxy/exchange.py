"""One request over its targets: each target's pipeline for its API kind (relayed or translated), falling
back to the next target before anything reached the client, ending in one `Outcome` (one log line, one
usage row)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from ..budgets import Over, Unpriced
from ..keys import mask
from .chat import Chat
from .errors import ProxyError
from .key_pool import KeyPool
from .collected import Collected
from .pipeline import CLIENT_LEFT, REPLY, SESSION_HEADER, Outcome, Reply
from .refusals import Refusals
from .relay import Relay, Signatures
from .responses import Responses
from .router import Purpose, Route, Router, Target
from .upstream import Upstream, new_client
from .vision import Vision
from .web_search import with_web_search

# by the target's API kind (apis.APIS)
PIPELINES = {"anthropic": Relay, "openai": Chat, "openai-responses": Responses}

log = logging.getLogger("ccswitch.proxy")


class OverBudget(ProxyError):
    """A request a budget stops before it is sent: claude is told at once (no retry), no target is to blame."""

    def __init__(self, over: Over | Unpriced):
        super().__init__(429, over.message(), retry=False)


def falls_back(error: ProxyError) -> bool:
    """Worth the next target: rate limited, overloaded, a server error, no connection, no answer in time."""
    return error.hidden is None and not isinstance(error, OverBudget) and (error.status == 429 or error.status >= 500)


class Exchanges:
    """What every request of one proxy shares: the router, a pooled client per provider, what each
    model refused, which provider signed which thinking. `record(request)`: where each request's end goes
    (the usage log), or None. `new_client(upstream)`: a provider's HTTP client, made once on first use (a test
    may make it otherwise). `search`: the web search backend (search_backends.Searcher), None without one."""

    def __init__(self, router: Router, client=None, record=None, search=None):
        self.router = router
        self.record = record
        self.search = search
        self.new_client = client or new_client
        self.clients: dict[str, object] = {}
        self.refusals: dict[tuple[str, str], Refusals] = {}
        self.pools: dict[str, KeyPool] = {}  # by profile, for profiles that hold more than one key
        self.signatures = Signatures()
        self.vision = Vision(self)

    def client_for(self, upstream: Upstream):
        client = self.clients.get(upstream.name)
        if client is None:
            client = self.clients[upstream.name] = self.new_client(upstream)
        return client

    async def close(self) -> None:
        self.vision.close()
        for client in self.clients.values():
            await client.close()
        if self.search is not None:
            await self.search.close()

    @staticmethod
    def pipeline(upstream: Upstream, req: dict):
        """The pipeline class for a request to `upstream`: its API kind's, inside the layers a request may need
        around it (web search)."""
        return with_web_search(PIPELINES[upstream.api], req, upstream)

    async def _with_keys(self, target: Target, upstream: Upstream, req: dict, request, reply: Reply,
                         outcome: Outcome, reported) -> None:
        """One target through its pipeline, with each of its profile's keys in turn while a failure is the
        key's (rate limited, out of quota, rejected) and nothing has reached the client."""
        pool = self.pools.get(upstream.name)
        if pool is None and len(upstream.keys) > 1:
            pool = self.pools[upstream.name] = KeyPool(upstream.name, list(upstream.keys),
                                                       self.router.health.cooldown)
        keys = pool.order() if pool else [upstream.key]
        if not keys:
            raise ProxyError(429, f"profile '{upstream.name}': every key is rate limited, out of quota or rejected "
                                  "(`ccs doctor` checks each)")
        for number, key in enumerate(keys, 1):
            attempt = upstream if key == upstream.key else replace(upstream, key=key)
            outcome.key = mask(key) if pool else None
            try:
                return await self.pipeline(upstream, req)(self, attempt, target.model, req, request.headers, reply,
                                                          outcome, reported).run()
            except ProxyError as e:
                if reply.started or pool is None or not pool.failed(key, e) or number == len(keys):
                    raise
                outcome.skipped.append(f"{target} key {mask(key)} ({e.status})")

    async def messages(self, req: dict, request, reported):
        """Answer one /v1/messages request, trying its targets in turn; the answer (begun or whole) is returned
        for the server to finish. `reported(error)`: an error as the client may see it (keys masked), logged."""
        requested = req.get("model") or ""
        if not isinstance(requested, str):
            raise ProxyError(400, "model: must be a string")
        purpose = Purpose.of(request.headers)
        outcome = Outcome(requested, req.get("stream") is True, request.headers.get(SESSION_HEADER, "")[:200] or None,
                          purpose)
        reply = request[REPLY] = Reply(request)
        try:
            routes = await self.router.routes(requested, purpose)
            outcome.cooling = [r.target for r in routes if self.router.health.cooling(r.target)]
            over = None
            for number, route in enumerate(routes, 1):
                target, upstream = route
                outcome.target = target
                if spent := self.router.over_budget(target, number == 1):
                    over = over or spent
                    if not spent.fallback or number == len(routes):
                        raise OverBudget(over)
                    outcome.skipped.append(f"{target} (over budget)")
                    continue
                sent = await self.vision.described(req, route, outcome.session)  # for a model that takes no images
                try:
                    await self._with_keys(target, upstream, sent, request, reply, outcome, reported)
                except ProxyError as e:
                    if reply.started or not falls_back(e) or number == len(routes):
                        raise
                    self.router.health.failed(target, e)
                    outcome.skipped.append(f"{target} ({e.status})")
                    log.warning("ccs proxy: %s failed (%s %s); trying %s", target, e.status,
                                self.router.masked(e.message), routes[number].target)
                    continue
                if outcome.complete:  # not when the client left, or the stream broke off
                    self.router.health.succeeded(target)
                return reply.response
        except ProxyError as e:
            outcome.status, outcome.error = e.status, e.error_type
            if outcome.target is not None and falls_back(e):
                self.router.health.failed(outcome.target, e)
            raise
        except asyncio.CancelledError:  # the client went away (aiohttp cancels its handler)
            if not outcome.complete:  # not one that closed as soon as it had the whole answer
                outcome.status = CLIENT_LEFT
            raise
        except Exception:  # a bug of ours, answered by the app as a 500
            outcome.status, outcome.error = 500, "api_error"
            raise
        finally:
            self.ended(outcome, reply.started_at)

    async def whole_answer(self, route: Route, req: dict, outcome: Outcome, limit: float) -> dict:
        """A request the proxy makes itself (an image's description) to one route, its answer collected whole
        within `limit` seconds and read as an Anthropic message: no client, no fallback; a log line and a usage
        row like any request's. A ProxyError when it failed."""
        target, upstream = route
        outcome.target = target
        answer = Collected()
        headers = {SESSION_HEADER: outcome.session} if outcome.session else {}
        pipeline = PIPELINES[upstream.api](self, upstream, target.model, req, headers, answer, outcome, self._masked)
        try:
            if over := self.router.over_budget(target, False):  # what the proxy asks spends budgets too
                raise OverBudget(over)
            try:
                async with asyncio.timeout(limit):
                    await pipeline.run()
            except TimeoutError:
                raise ProxyError(504, f"no whole answer from {upstream.url} within {limit:g} s") from None
            if not outcome.complete:
                raise ProxyError(502, f"the answer from {upstream.url} broke off")
            return answer.message(upstream.url)
        except ProxyError as e:
            outcome.status, outcome.error = e.status, e.error_type
            raise
        except Exception:  # a bug of ours
            outcome.status, outcome.error = 500, "api_error"
            raise
        finally:
            self.ended(outcome, answer.started_at)

    def _masked(self, error: ProxyError) -> ProxyError:
        error.message = self.router.masked(error.message)
        return error

    def ended(self, outcome: Outcome, first_byte_at: float | None) -> None:
        """A request's end: its log line, its usage row."""
        outcome.ended(first_byte_at)
        log.info("%s", outcome)
        if self.record is not None:
            self.record(outcome.request())
