"""Puts the reliability parts together for the composition root: the paced notifier the
dispatcher's effects use, metrics, storm digests and the dispatcher's periodic chores."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from bot.digests import DIGEST_POST, DigestDelivery, Digester, DigestPolicy
from bot.metrics import Metrics
from bot.outbox import Dispatcher
from bot.pacing import PacedNotifier, Pacer, budgets
from bot.services.context import Clock
from bot.settings import ReliabilityConfig
from bot.slack.notifier import SlackNotifier
from db.store import Database

SWEEP_EVERY = 1.0
DEDUP_CLEANUP_EVERY = 3600.0
FORGET_SLICE = 5_000


@dataclass
class Reliability:
    config: ReliabilityConfig
    pacer: Pacer
    notifier: PacedNotifier
    metrics: Metrics
    digester: Digester
    digests: DigestDelivery


def build_reliability(config: ReliabilityConfig, db: Database, notifier: SlackNotifier,
                      clock: Clock) -> Reliability:
    pacer = Pacer(db, budgets(config.post_per_second, config.post_burst,
                              config.update_per_minute, config.pace_scale))
    metrics = Metrics()
    paced = PacedNotifier(notifier, pacer, observe=metrics.slack_call)
    policy = DigestPolicy(post_per_second=config.post_per_second * config.pace_scale,
                          after_seconds=config.digest_after_seconds,
                          page_size=config.digest_page_size, min_size=config.digest_min_size)
    return Reliability(config=config, pacer=pacer, notifier=paced, metrics=metrics,
                       digester=Digester(db, policy, clock), digests=DigestDelivery(db, paced))


def attach(dispatcher: Dispatcher, parts: Reliability, db: Database, clock: Clock) -> None:
    """Digest posts as an effect, the digest sweep before dispatch rounds (at most once a
    second), dedup keys forgotten after the retention (never under 24 h), metrics."""
    dispatcher.handlers[DIGEST_POST] = parts.digests.post
    dispatcher.observer = parts.metrics
    dispatcher.lease = timedelta(seconds=parts.config.lease_seconds)
    last_sweep: list[float] = []

    async def sweep() -> None:
        now = asyncio.get_running_loop().time()
        if last_sweep and now - last_sweep[0] < SWEEP_EVERY:
            return
        last_sweep[:] = [now]
        await parts.digester.sweep()

    retention = timedelta(hours=max(24.0, parts.config.dedup_retention_hours))

    async def forget_deliveries() -> int:
        """Slice by slice, each its own short transaction, until none is left."""
        before = clock() - retention
        total = 0
        while True:
            dropped = await db.retrying(lambda tx: tx.forget_deliveries(before, FORGET_SLICE))
            total += dropped
            if dropped < FORGET_SLICE:
                return total

    dispatcher.before_round.append(sweep)
    dispatcher.chores.append((DEDUP_CLEANUP_EVERY, forget_deliveries))
