"""The aiohttp application: Slack requests, signed webhooks, health. It owns the lifetimes."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import suppress
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import SignatureVerifier

from bot.connectors import signing
from bot.connectors.generic import parse_webhook_mentions
from bot.domain.mention import Mention, MentionError, SourceKind
from bot.services.ingest import ingest_batch
from bot.wiring import Components, learn_team

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024 * 2  # Slack payloads are far smaller; webhook batches stay modest.
COMPONENTS = web.AppKey("components", Components)


def _components(request: web.Request) -> Components:
    return request.app[COMPONENTS]


async def slack_events(request: web.Request) -> web.Response:
    """Every Slack request. Retried events (same `event_id`) are applied once."""
    components = _components(request)
    body = await request.text()
    secret = components.settings.env.slack_signing_secret
    if secret is None:
        return web.json_response({"error": "signing secret not configured"}, status=503)
    verifier = SignatureVerifier(secret.get_secret_value())
    if not verifier.is_valid_request(body, dict(request.headers)):
        return web.json_response({"error": "invalid signature"}, status=401)
    event_id = _event_id(request, body)
    if event_id is not None:
        async with components.db.transaction() as tx:
            first = await tx.remember_delivery(f"event:{event_id}", components.services.clock())
        if not first:
            return web.Response(status=200)
    bolt_request = AsyncBoltRequest(body=body, query=request.query_string,
                                    headers=dict(request.headers))
    bolt_response = await components.bolt.async_dispatch(bolt_request)
    return await to_aiohttp_response(bolt_response)


def _event_id(request: web.Request, body: str) -> str | None:
    if not request.content_type.endswith("json"):
        return None
    with suppress(ValueError):
        data = json.loads(body)
        if isinstance(data, dict) and data.get("type") == "event_callback":
            return str(data.get("event_id") or "") or None
    return None


async def webhook(request: web.Request) -> web.Response:
    """Signed inbound mentions for a configured source (CONTRACT.md's generic format)."""
    components = _components(request)
    name = request.match_info["source"]
    source = components.settings.file.source(name)
    if source is None or source.kind not in (SourceKind.GENERIC, SourceKind.DEMO):
        return web.json_response({"error": f"no webhook source named '{name}'"}, status=404)
    secret = components.settings.lookup(source.secret_env)
    if secret is None:
        return web.json_response({"error": "source has no secret configured"}, status=503)
    raw = await request.read()
    if not signing.verify(secret.get_secret_value().encode(), raw,
                          request.headers.get("X-Mentiondesk-Signature")):
        return web.json_response({"error": "invalid signature"}, status=401)
    try:
        parsed = parse_webhook_mentions(raw)
    except MentionError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    mentions = [m for m in parsed if isinstance(m, Mention)]
    rejected = [{"index": i, "error": str(m)} for i, m in enumerate(parsed)
                if isinstance(m, MentionError)]
    result = await ingest_batch(components.services, mentions, source_name=name)
    components.dispatcher.wake()
    status = 200 if mentions or not rejected else 400
    return web.json_response(
        {"accepted": len(result.created) + len(result.joined),
         "duplicates": result.duplicates, "rejected": rejected},
        status=status,
    )


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def readyz(request: web.Request) -> web.Response:
    ok = await _components(request).db.ping()
    return web.json_response({"ok": ok, "database": ok}, status=200 if ok else 503)


def create_app(components: Components, *, background: bool = True) -> web.Application:
    """The HTTP side. With `background`, the dispatcher runs inside the same process."""
    app = web.Application(client_max_size=MAX_BODY)
    app[COMPONENTS] = components
    app.router.add_post("/slack/events", slack_events)
    app.router.add_post("/webhooks/{source}", webhook)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)

    async def lifetime(_app: web.Application) -> AsyncIterator[None]:
        await learn_team(components)
        stop = asyncio.Event()
        tasks: list[asyncio.Task[Any]] = []
        if background:
            tasks.append(asyncio.create_task(components.dispatcher.run(stop)))
        yield
        stop.set()
        for task in tasks:
            with suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, timeout=20)
        await components.close()

    app.cleanup_ctx.append(lifetime)
    return app
