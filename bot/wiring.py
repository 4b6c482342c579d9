"""The composition root: the only place that builds things. Nothing is built at import time.

Settings → engine → HTTP session → Slack client → services → Bolt app → dispatcher.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

import handlers
from bot.connectors.base import Connector
from bot.connectors.generic import GenericConnector
from bot.delivery import CardDelivery
from bot.domain.mention import SourceKind
from bot.outbox import Dispatcher
from bot.render import Renderer, default_templates_dir
from bot.reply_delivery import ReplyDelivery
from bot.services.context import Clock, Services, utc_now
from bot.services.effects import Effect
from bot.services.roles import RolePolicy
from bot.settings import Settings
from bot.slack.notifier import SlackNotifier
from db.engine import make_engine
from db.migrate import upgrade
from db.store import Database
from handlers.deps import Deps
from handlers.templates import templates_command

log = logging.getLogger(__name__)


@dataclass
class Components:
    """Everything a running process holds, so lifetimes can close it in order."""

    settings: Settings
    db: Database
    http: aiohttp.ClientSession
    slack_client: AsyncWebClient
    notifier: SlackNotifier
    renderer: Renderer
    services: Services
    roles: RolePolicy
    bolt: AsyncApp
    dispatcher: Dispatcher
    deps: Deps
    connectors: dict[str, Connector] = field(default_factory=dict)

    async def close(self) -> None:
        await self.http.close()
        await self.db.dispose()


async def build(
    settings: Settings,
    *,
    clock: Clock = utc_now,
    migrate: bool = True,
    dispatcher_idle: float = 1.0,
) -> Components:
    """Build every component from settings; migrates the database first unless told not to."""
    engine = make_engine(settings.env.database_url)
    db = Database(engine)
    if migrate:
        await upgrade(engine)
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
    token = settings.env.slack_bot_token
    slack_client = AsyncWebClient(
        token=token.get_secret_value() if token else None,
        base_url=settings.env.slack_api_url,
        timeout=10,
    )
    notifier = SlackNotifier(slack_client)
    renderer = Renderer(default_templates_dir())
    slack = settings.file.slack
    services = Services(
        db=db,
        clock=clock,
        default_channel=slack.mentions_channel,
        approvals_channel=slack.approvals_channel,
        approval_in_thread=slack.approval_in_thread,
        allow_preapproved_without_approval=(
            settings.file.replies.allow_preapproved_without_approval
        ),
    )
    roles = RolePolicy(
        leads=slack.leads,
        lead_usergroup=slack.lead_usergroup,
        agents=slack.agents,
        agent_usergroup=slack.agent_usergroup,
        lookup=notifier.usergroup_members,
        cache_seconds=slack.usergroup_cache_seconds,
    )
    secret = settings.env.slack_signing_secret
    bolt = AsyncApp(
        client=slack_client,
        signing_secret=secret.get_secret_value() if secret else "",
        request_verification_enabled=True,
        raise_error_for_unhandled_request=False,
    )
    connectors = build_connectors(settings, http)
    cards = CardDelivery(db, notifier, renderer, clock)
    replies = ReplyDelivery(services, notifier, connectors)
    dispatcher = Dispatcher(
        db,
        {**cards.handlers(), **replies.handlers()},
        on_failure={Effect.REPLY_POST: replies.reply_failed},
        clock=clock,
        idle_seconds=dispatcher_idle,
    )
    extras: dict[str, Any] = {
        "brand": dict(settings.file.brand),
        "connectors": connectors,
        "commands": {"templates": templates_command},
    }
    deps = Deps(services=services, roles=roles, notifier=notifier, renderer=renderer,
                wake=dispatcher.wake, extras=extras)
    handlers.register(bolt, deps)
    return Components(
        settings=settings,
        db=db,
        http=http,
        slack_client=slack_client,
        notifier=notifier,
        renderer=renderer,
        services=services,
        roles=roles,
        bolt=bolt,
        dispatcher=dispatcher,
        deps=deps,
        connectors=connectors,
    )


def build_connectors(settings: Settings, http: aiohttp.ClientSession) -> dict[str, Connector]:
    """One connector per configured source that can answer (webhook sources reply by POST)."""
    connectors: dict[str, Connector] = {}
    for source in settings.file.sources:
        if source.kind is SourceKind.GENERIC:
            secret = settings.lookup(source.secret_env)
            connectors[source.name] = GenericConnector(
                source.name, session=http, reply_url=source.reply_url,
                secret=secret.get_secret_value().encode() if secret else b"",
                max_length=source.reply_limit,
            )
    return connectors


async def learn_team(components: Components) -> None:
    """Remember our workspace id so requests from another workspace are refused."""
    try:
        data = await components.notifier.call("auth.test")
    except Exception as exc:
        log.warning("auth.test failed (%s); team check disabled until restart",
                    exc.__class__.__name__)
        return
    components.roles.team_id = data.get("team_id") or None
