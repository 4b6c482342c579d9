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
from bot.alert_delivery import AlertDelivery
from bot.connectors.base import Connector, PermanentError
from bot.connectors.generic import GenericConnector
from bot.connectors.registry import NETWORK_MODULES, build_network_connector
from bot.delivery import CardDelivery
from bot.domain.mention import SourceKind
from bot.event_intake import EventIntake
from bot.group_delivery import GroupDelivery
from bot.home_delivery import HomeDelivery
from bot.netpolicy import guarded_session
from bot.outbox import Dispatcher
from bot.reliability import Reliability, build_reliability
from bot.reliability import attach as attach_reliability
from bot.render import Renderer, default_templates_dir
from bot.reply_delivery import ReplyDelivery
from bot.services.context import Clock, Services, utc_now
from bot.services.drafting import reply_possible
from bot.services.effects import Effect
from bot.services.roles import RolePolicy
from bot.services.sla import SlaTimers
from bot.services.triage import Triage
from bot.settings import Settings
from bot.sla_delivery import SlaDelivery
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
    timers: SlaTimers | None = None
    reliability: Reliability | None = None
    intake: EventIntake = field(init=False)
    """Slack events' ids and effects, committed in batches before they are acknowledged."""

    def __post_init__(self) -> None:
        self.intake = EventIntake(self.db, self.services.clock, self.dispatcher.wake)

    async def close(self) -> None:
        await self.intake.close()
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
    http = guarded_session(settings)
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
        triage=Triage(settings.file.triage.setup(default_channel=slack.mentions_channel,
                                                 review_channel=slack.review_channel)),
    )
    roles = RolePolicy(
        leads=slack.leads,
        lead_usergroup=slack.lead_usergroup,
        agents=slack.agents,
        agent_usergroup=slack.agent_usergroup,
        lookup=notifier.usergroup_members,
        cache_seconds=slack.usergroup_cache_seconds,
        monotonic=lambda: clock().timestamp(),
    )
    secret = settings.env.slack_signing_secret
    bolt = AsyncApp(
        client=slack_client,
        signing_secret=secret.get_secret_value() if secret else "",
        request_verification_enabled=True,
        raise_error_for_unhandled_request=False,
    )
    connectors = build_connectors(settings, http)
    reliability = build_reliability(settings.file.reliability, db, notifier, clock)
    paced = reliability.notifier  # the dispatcher's Slack calls are paced and fenced
    cards = CardDelivery(db, paced, renderer, clock,
                         can_reply=lambda record: reply_possible(connectors, record)[0])
    replies = ReplyDelivery(services, paced, connectors)
    sla_policy = settings.file.sla.policy()
    sla = SlaDelivery(db, paced, sla_policy, slack.alerts_channel, clock)
    home = HomeDelivery(services, paced, settings.file.sla.timezone)
    triage_setup = services.triage.setup
    groups = GroupDelivery(db, paced, list_limit=triage_setup.thread_list_limit, clock=clock)
    alerts = AlertDelivery(db, paced, slack.alerts_channel, samples=triage_setup.spike_samples,
                           clock=clock)
    dispatcher = Dispatcher(
        db,
        {**home.refreshing(cards.handlers()), **replies.handlers(), **sla.handlers(),
         **groups.handlers(), **alerts.handlers(), **home.handlers()},
        on_failure={Effect.REPLY_POST: replies.reply_failed},
        clock=clock,
        idle_seconds=dispatcher_idle,
    )
    attach_reliability(dispatcher, reliability, db, clock)
    extras: dict[str, Any] = {
        "brand": dict(settings.file.brand),
        "connectors": connectors,
        "commands": {"templates": templates_command},
        "sla": settings.file.sla,
        "slack_api_url": settings.env.slack_api_url,
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
        timers=SlaTimers(services, sla_policy, wake=dispatcher.wake),
        reliability=reliability,
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
        elif source.kind is SourceKind.DEMO and source.enabled:
            from bot.connectors.demo import DEFAULT_PACE_SECONDS, DemoConnector, pace_problem

            pace = source.option("pace_seconds", DEFAULT_PACE_SECONDS)
            if problem := pace_problem(pace):
                log.warning("source %s not started: %s", source.name, problem)
            else:
                connectors[source.name] = DemoConnector(source.name, pace_seconds=float(pace))
        elif source.enabled and source.kind in NETWORK_MODULES:
            try:
                connectors[source.name] = build_network_connector(source, http, settings.secrets)
            except PermanentError as exc:
                log.warning("source %s not started: %s (see mentiondesk check-config)",
                            source.name, exc)
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
