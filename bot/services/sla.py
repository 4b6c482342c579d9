"""SLA timers: arm them for unanswered cases, fire each nudge and escalation exactly once.

Timers live in the database, so they survive restarts. Arming is a sweep rather than a hook in
every code path that creates a case or changes its priority: any open, unanswered case without
timers (or whose priority changed) is armed on the next round. Firing sets `fired_at` with a
compare-and-set in the same transaction that enqueues the Slack effect (with a dedup key), so
two workers, or a worker restarted mid-round, never send one twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import timedelta

from bot.domain.lifecycle import SYSTEM
from bot.domain.sla import SlaPolicy
from bot.services.context import Services
from bot.services.effects import Effect
from db import timers as store

log = logging.getLogger(__name__)

# Timers due this long before they are armed (an import of old mentions) are not sent.
STALE_AFTER = timedelta(hours=24)
EFFECTS = {store.NUDGE: Effect.SLA_NUDGE, store.ESCALATE: Effect.SLA_ESCALATE}


def sla_key(case_id: int, kind: str) -> str:
    return f"sla:{case_id}:{kind}"


class SlaTimers:
    """The timer loop. Runs in `mentiondesk run` and in every `mentiondesk worker`."""

    def __init__(self, services: Services, policy: SlaPolicy, *, interval: float = 15.0,
                 batch: int = 200, wake: Callable[[], None] = lambda: None) -> None:
        self.services = services
        self.policy = policy
        self.interval = interval
        self.batch = batch
        self.wake = wake

    async def arm(self) -> int:
        """Give timers to cases that lack them; returns how many cases were armed."""
        if not self.policy.enabled:
            return 0
        now = self.services.clock()
        async with self.services.db.transaction() as tx:
            cases = await store.cases_to_arm(tx, self.batch)
            for case in cases:
                due = self.policy.due(case.published_at, case.priority)
                if due is None:
                    continue
                stale = due.breach_at < now - STALE_AFTER
                late_nudge = stale or due.breach_at <= now
                await store.upsert_timer(tx, case.case_id, store.NUDGE, case.priority,
                                         due.nudge_at, now, cancelled=late_nudge)
                await store.upsert_timer(tx, case.case_id, store.ESCALATE, case.priority,
                                         due.breach_at, now, cancelled=stale)
                await store.set_sla_due(tx, case.case_id, due.breach_at)
                await tx.enqueue(Effect.CARD_UPDATE, now=now, case_id=case.case_id)
        if cases:
            self.wake()
        return len(cases)

    async def fire_due(self) -> int:
        """Send what is due; returns how many effects were enqueued."""
        now = self.services.clock()
        sent = 0
        async with self.services.db.transaction() as tx:
            for timer in await store.due_timers(tx, now, self.batch):
                superseded = (timer.kind == store.NUDGE and timer.breach_at is not None
                              and timer.breach_at <= now)
                if not timer.live or superseded:
                    await store.settle_timer(tx, timer.timer_id, "cancelled", now)
                    continue
                if not await store.settle_timer(tx, timer.timer_id, "fired", now):
                    continue
                await tx.enqueue(EFFECTS[timer.kind], now=now, case_id=timer.case_id,
                                 payload={"kind": timer.kind},
                                 dedup_key=sla_key(timer.case_id, timer.kind))
                await tx.enqueue(Effect.CARD_UPDATE, now=now, case_id=timer.case_id)
                await tx.audit(case_id=timer.case_id, actor=SYSTEM.user_id,
                               action=f"sla_{timer.kind}", at=now,
                               payload={"timer_id": timer.timer_id})
                sent += 1
        if sent:
            self.wake()
        return sent

    async def run_once(self) -> int:
        await self.arm()
        return await self.fire_due()

    async def run(self, stop: asyncio.Event) -> None:
        if not self.policy.enabled:
            return
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception:
                log.exception("SLA timer round failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval)
