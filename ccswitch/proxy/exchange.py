"""One request over its targets: each target's pipeline for its API kind (relayed or translated), falling
back to the next target before anything reached the client, ending in one `Outcome` (one log line, one
usage row)."""

from __future__ import annotations

import asyncio
import logging

from .chat import Chat
from .refusals import Refusals
from .errors import ProxyError
from .pipeline import CLIENT_LEFT, REPLY, SESSION_HEADER, Outcome, Reply
from .relay import Relay, Signatures
from .responses import Responses
from .router import Router
from .upstream import Upstream, new_client
from .web_search import with_web_search

# by the target's API kind (apis.APIS)
PIPELINES = {"anthropic": Relay, "openai": Chat, "openai-responses": Responses}

log = logging.getLogger("ccswitch.proxy")


def falls_back(error: ProxyError) -> bool:
    """Worth the next target: rate limited, overloaded, a server error, no connection, no answer in time."""
    return error.hidden is None and (error.status == 429 or error.status >= 500)


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
        self.signatures = Signatures()

    def client_for(self, upstream: Upstream):
        client = self.clients.get(upstream.name)
        if client is None:
            client = self.clients[upstream.name] = self.new_client(upstream)
        return client

    async def close(self) -> None:
        for client in self.clients.values():
            await client.close()
        if self.search is not None:
            await self.search.close()

    @staticmethod
    def pipeline(upstream: Upstream, req: dict):
        """The pipeline class for a request to `upstream`: its API kind's, inside the layers a request may need
        around it (web search)."""
        return with_web_search(PIPELINES[upstream.api], req, upstream)

    async def messages(self, req: dict, request, reported):
        """Answer one /v1/messages request, trying its targets in turn; the answer (begun or whole) is returned
        for the server to finish. `reported(error)`: an error as the client may see it (keys masked), logged."""
        requested = req.get("model") or ""
        if not isinstance(requested, str):
            raise ProxyError(400, "model: must be a string")
        outcome = Outcome(requested, req.get("stream") is True, request.headers.get(SESSION_HEADER, "")[:200] or None)
        reply = request[REPLY] = Reply(request)
        try:
            routes = await self.router.routes(requested)
            outcome.cooling = [r.target for r in routes if self.router.health.cooling(r.target)]
            for number, (target, upstream) in enumerate(routes, 1):
                outcome.target = target
                pipeline = self.pipeline(upstream, req)(self, upstream, target.model, req, request.headers, reply,
                                                        outcome, reported)
                try:
                    await pipeline.run()
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
            outcome.status = CLIENT_LEFT
            raise
        except Exception:  # a bug of ours, answered by the app as a 500
            outcome.status, outcome.error = 500, "api_error"
            raise
        finally:
            outcome.ended(reply.started_at)
            log.info("%s", outcome)
            if self.record is not None:
                self.record(outcome.request())
