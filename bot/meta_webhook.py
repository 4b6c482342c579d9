"""`GET/POST /webhooks/meta`: Meta's subscription handshake and its signed notifications.

The GET answers `hub.challenge` only when `hub.verify_token` matches the configured token
(constant-time). The POST is verified with `X-Hub-Signature-256` over the raw body before
anything is parsed; a bad or missing signature gets 401 and stores nothing. Notifications that
are not comments or mentions are acknowledged (Meta retries anything but 200) and skipped.
"""

from __future__ import annotations

import logging

from aiohttp import web

from bot.connectors.base import ConnectorError, PermanentError
from bot.connectors.meta import MetaConnector, Skipped, verify_signature
from bot.domain.mention import Mention, SourceKind
from bot.polling import mark_replyable
from bot.services.ingest import ingest_batch
from bot.services.sources import note_success
from bot.settings import Settings, SourceConfig
from bot.wiring import Components

log = logging.getLogger(__name__)


def meta_source(settings: Settings, name: str) -> SourceConfig | None:
    """The Meta source a webhook path names: by its own name, or `meta` for the only one."""
    source = settings.file.source(name)
    if source is not None:
        return source if source.kind is SourceKind.META else None
    if name == "meta":
        return next((s for s in settings.file.sources if s.kind is SourceKind.META), None)
    return None


def _connector(components: Components, source: SourceConfig) -> MetaConnector | None:
    connector = components.connectors.get(source.name)
    return connector if isinstance(connector, MetaConnector) else None


async def handshake(request: web.Request, components: Components, source: SourceConfig
                    ) -> web.Response:
    connector = _connector(components, source)
    if connector is None:
        return web.json_response({"error": "source is not configured"}, status=503)
    challenge = connector.challenge(request.query)
    if challenge is None:
        return web.json_response({"error": "verification failed"}, status=403)
    return web.Response(text=challenge, content_type="text/plain")


async def receive(request: web.Request, components: Components, source: SourceConfig
                  ) -> web.Response:
    connector = _connector(components, source)
    if connector is None:
        return web.json_response({"error": "source is not configured"}, status=503)
    raw = await request.read()
    signature = request.headers.get("X-Hub-Signature-256")
    if not verify_signature(connector.app_secret, raw, signature):
        return web.json_response({"error": "invalid signature"}, status=401)
    try:
        parsed = connector.accept(raw, signature)
    except PermanentError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    mentions: list[Mention] = []
    for item in parsed:
        if isinstance(item, Skipped):
            log.info("source %s: %s", source.name, item.reason)
            continue
        try:
            item = await connector.complete(item)
        except ConnectorError as exc:
            log.warning("source %s: mention %s kept without its text: %s",
                        source.name, item.external_id, exc)
        mentions.append(mark_replyable(connector, item))
    services = components.services
    result = await ingest_batch(services, mentions, source_name=source.name)
    slack = components.settings.file.slack
    await note_success(services.db, source, services.clock(),
                       mentions=len(result.created) + len(result.joined),
                       admin_channel=slack.admin_channel or slack.alerts_channel)
    components.dispatcher.wake()
    return web.json_response({"accepted": len(result.created) + len(result.joined),
                              "duplicates": result.duplicates,
                              "skipped": len(parsed) - len(mentions)})
