"""The aiohttp application: Slack requests, signed webhooks, health. It owns the lifetimes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import suppress
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.request.async_request import AsyncBoltRequest

from bot import meta_webhook
from bot.connectors import signing
from bot.connectors.generic import parse_webhook_mentions
from bot.domain.mention import Mention, MentionError, SourceKind
from bot.event_intake import envelope_of
from bot.meta_webhook import meta_source
from bot.netpolicy import slack_request_problem
from bot.polling import polling_for
from bot.services.ingest import ingest_batch
from bot.services.sources import note_success, source_health
from bot.wiring import Components, learn_team

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024 * 2  # Slack payloads are far smaller; webhook batches stay modest.
COMPONENTS = web.AppKey("components", Components)


def _components(request: web.Request) -> Components:
    return request.app[COMPONENTS]


async def slack_events(request: web.Request) -> web.Response:
    """Every Slack request. Retried events (same `event_id`) are applied once.

    Interactions that change state commit before their listener acks (handlers/). Events
    commit their id and their effect before Bolt sees them (bot/event_intake.py): Bolt acks
    an event before its listener runs, so nothing may be left for the listener to persist."""
    components = _components(request)
    raw = await request.read()
    secret = components.settings.env.slack_signing_secret
    if secret is None or not secret.get_secret_value().strip():
        return web.json_response({"error": "signing secret not configured"}, status=503)
    if not signing.slack_request_ok(secret.get_secret_value(), raw, request.headers):
        return web.json_response({"error": "invalid signature"}, status=401)
    try:
        body = raw.decode("utf-8")
    except UnicodeDecodeError:
        return web.json_response({"error": "body is not UTF-8"}, status=400)
    problem = slack_request_problem(body, components.settings.env.slack_api_url)
    if problem is not None:
        log.warning("Slack request refused: %s", problem)
        return web.json_response({"error": problem}, status=400)
    envelope = envelope_of(body) if request.content_type.endswith("json") else None
    if envelope is not None and not await components.intake.first_delivery(envelope):
        return web.Response(status=200)
    bolt_request = AsyncBoltRequest(body=body, query=request.query_string,
                                    headers=dict(request.headers))
    bolt_response = await components.bolt.async_dispatch(bolt_request)
    return await to_aiohttp_response(bolt_response)


async def webhook(request: web.Request) -> web.Response:
    """Signed inbound mentions for a configured source (CONTRACT.md's generic format)."""
    components = _components(request)
    name = request.match_info["source"]
    if (meta := meta_source(components.settings, name)) is not None:
        return await meta_webhook.receive(request, components, meta)
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
    slack = components.settings.file.slack
    await note_success(components.db, source, components.services.clock(),
                       mentions=len(result.created) + len(result.joined),
                       admin_channel=slack.admin_channel or slack.alerts_channel)
    components.dispatcher.wake()
    status = 200 if mentions or not rejected else 400
    return web.json_response(
        {"accepted": len(result.created) + len(result.joined),
         "duplicates": result.duplicates, "rejected": rejected},
        status=status,
    )


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def webhook_handshake(request: web.Request) -> web.Response:
    """Meta's subscription check (`hub.challenge`) for a Meta source."""
    components = _components(request)
    name = request.match_info["source"]
    meta = meta_source(components.settings, name)
    if meta is None:
        return web.json_response({"error": f"no webhook source named '{name}'"}, status=404)
    return await meta_webhook.handshake(request, components, meta)


async def readyz(request: web.Request) -> web.Response:
    components = _components(request)
    ok = await components.db.ping()
    body: dict[str, Any] = {"ok": ok, "database": ok}
    if ok:
        health = await source_health(components.db, components.settings.file.sources,
                                     components.services.clock())
        body["sources"] = [h.as_json() for h in health]
        body["sources_healthy"] = all(h.healthy for h in health)
    return web.json_response(body, status=200 if ok else 503)


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format; database-wide figures are read fresh on each scrape."""
    components = _components(request)
    if components.reliability is None:
        return web.Response(status=404, text="metrics are not enabled\n")
    body = await components.reliability.metrics.render(components.db)
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; "
                                                            "charset=utf-8"})


# Bolt runs a listener after its ack in a task made from this coroutine function.
BOLT_LISTENER_TASK = "run_ack_function_asynchronously"


async def listeners_finished(timeout: float) -> None:  # noqa: ASYNC109
    """Wait for listeners still running after their ack (a report being built, a refusal being
    audited): closing the database under them would lose that work."""
    running = [t for t in asyncio.all_tasks()
               if t is not asyncio.current_task() and BOLT_LISTENER_TASK in repr(t.get_coro())]
    if running:
        await asyncio.wait(running, timeout=timeout)


def create_app(components: Components, *, background: bool = True) -> web.Application:
    """The HTTP side. With `background`, the dispatcher and the pollers run in this process."""
    app = web.Application(client_max_size=MAX_BODY)
    app[COMPONENTS] = components
    app.router.add_post("/slack/events", slack_events)
    app.router.add_post("/webhooks/{source}", webhook)
    app.router.add_get("/webhooks/{source}", webhook_handshake)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)

    async def lifetime(_app: web.Application) -> AsyncIterator[None]:
        await learn_team(components)
        stop = asyncio.Event()
        tasks: list[asyncio.Task[Any]] = []
        if background:
            tasks.append(asyncio.create_task(components.dispatcher.run(stop)))
            if components.timers is not None:
                tasks.append(asyncio.create_task(components.timers.run(stop)))
            tasks.append(asyncio.create_task(polling_for(components).run(stop)))
        yield
        stop.set()
        for task in tasks:
            with suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, timeout=20)
        await listeners_finished(timeout=10)
        await components.close()

    app.cleanup_ctx.append(lifetime)
    return app
