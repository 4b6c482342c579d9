"""Slack pacing: the dispatcher's calls stay inside Slack's published rate limits.

`chat.postMessage` goes at about one per second per channel (short bursts allowed); other
methods get their tier's budget for the whole workspace. Budgets are token buckets kept in
the database (GCRA), so several worker processes share them. A 429 pauses the key for its
`Retry-After`. A call whose slot is further off than `max_wait` is not waited for in-process:
`Deferred` tells the dispatcher to hand the row back until then.

Pacing is for background work only; interactive calls (views.open within a trigger's three
seconds) are never held back here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.connectors.base import RateLimited
from bot.outbox import Deferred, current_lease
from bot.slack.notifier import SlackNotifier
from db import pace
from db.store import Database, Tx

log = logging.getLogger(__name__)


SAFETY = 1.05
"""Calls are spaced 5 % wider than the budget's rate: a call that leaves on time can arrive
a few milliseconds late, and Slack counts arrivals (a burst then its next call, exactly one
interval later, drew a 429 at the boundary)."""


@dataclass(frozen=True, slots=True)
class Budget:
    """`per_second` sustained, `burst` calls back to back; per channel or per workspace."""

    per_second: float
    burst: int = 1
    per_channel: bool = False

    @property
    def interval(self) -> timedelta:
        return timedelta(seconds=SAFETY / self.per_second)

    @property
    def tolerance(self) -> timedelta:
        return self.interval * (self.burst - 1)


_TIER2 = Budget(20 / 60, 3)
_TIER3 = Budget(50 / 60, 5)
_TIER4 = Budget(100 / 60, 10)

# Slack's tiers per method (docs: "Rate limits" and each method's page).
DEFAULT_BUDGETS: dict[str, Budget] = {
    "chat.postMessage": Budget(1.0, 3, per_channel=True),
    "chat.update": _TIER3,
    "chat.delete": _TIER3,
    "conversations.history": _TIER3,
    "conversations.replies": _TIER3,
    "chat.postEphemeral": _TIER4,
    "chat.getPermalink": _TIER4,
    "views.open": _TIER4,
    "views.push": _TIER4,
    "views.update": _TIER4,
    "views.publish": _TIER4,
    "users.info": _TIER4,
    "usergroups.users.list": _TIER2,
}
OTHER_METHODS = _TIER2


def budgets(post_per_second: float = 1.0, post_burst: int = 3,
            update_per_minute: float = 50.0, scale: float = 1.0) -> dict[str, Budget]:
    """The default budgets with the configurable ones replaced; `scale` multiplies every
    rate (scenario tests that do not measure pacing run with a large one)."""
    table = {**DEFAULT_BUDGETS,
             "chat.postMessage": Budget(post_per_second, post_burst, per_channel=True),
             "chat.update": Budget(update_per_minute / 60, _TIER3.burst),
             "*": OTHER_METHODS}
    return {method: Budget(b.per_second * scale, b.burst, b.per_channel)
            for method, b in table.items()}


def wall_clock() -> datetime:
    return datetime.now(UTC)


class Pacer:
    """Takes a slot before each call; all processes on one database share the budgets."""

    def __init__(self, db: Database, table: dict[str, Budget] | None = None, *,
                 max_wait: float = 2.0, clock: Callable[[], datetime] = wall_clock) -> None:
        self.db = db
        self.table = table or budgets()
        self.max_wait = timedelta(seconds=max_wait)
        self.clock = clock
        self.waited = 0.0
        self._paused: dict[str, datetime] = {}

    def key(self, method: str, channel: str | None) -> str:
        budget = self.budget(method)
        return f"{method}:{channel or '-'}" if budget.per_channel else method

    def budget(self, method: str) -> Budget:
        return self.table.get(method) or self.table.get("*") or OTHER_METHODS

    async def acquire(self, method: str, channel: str | None) -> None:
        """Wait for a slot (at most `max_wait`), or raise `Deferred`. Inside the dispatcher,
        right before the call, the outbox lease is renewed or found lost (`LeaseLost`): a
        process frozen while it waited cannot act on a row another one took over."""
        budget = self.budget(method)
        key = self.key(method, channel)
        lease = current_lease.get()
        now = self.clock()

        async def reserve(tx: Tx) -> tuple[datetime, bool]:
            if lease is not None:  # fenced first: a lost lease takes no slot
                await lease.renew(tx)
            return await pace.take_slot(tx, key, now, budget.interval, budget.tolerance,
                                        self.max_wait)

        start, taken = await self.db.retrying(reserve)
        if not taken:
            raise Deferred((start - now).total_seconds(), f"{key} is paced")
        wait = (start - self.clock()).total_seconds()
        if wait <= 0:
            return  # the lease was renewed with the slot, right before the call
        self.waited += wait
        await asyncio.sleep(wait)

        async def recheck(tx: Tx) -> datetime | None:
            # The wait may have outlived the lease (a frozen process) and a 429 may have
            # paused the key meanwhile (seen here at once, or through the database when
            # another process got it).
            if lease is not None:
                await lease.renew(tx)
            return self._paused.get(key) or await pace.paused_until(tx, key)

        until = await self.db.retrying(recheck)
        now = self.clock()
        if until is not None and until > now:
            raise Deferred((until - now).total_seconds(), f"{key} is paused")

    async def pause(self, method: str, channel: str | None, seconds: float) -> None:
        now = self.clock()
        until = now + timedelta(seconds=seconds)
        key = self.key(method, channel)
        self._paused[key] = max(until, self._paused.get(key, until))
        log.warning("Slack rate-limited %s: pausing it for %.0fs", key, seconds)
        await self.db.retrying(lambda tx: pace.pause(tx, key, until, now))


class PacedNotifier(SlackNotifier):
    """The notifier the dispatcher uses: every call waits for its slot first."""

    def __init__(self, notifier: SlackNotifier, pacer: Pacer,
                 observe: Callable[[str, float, str], None] | None = None) -> None:
        super().__init__(notifier.client)
        self.pacer = pacer
        self.observe = observe

    async def call(self, method: str, *, form: bool = False, **kwargs: Any) -> dict[str, Any]:
        channel = kwargs.get("channel")
        channel = str(channel) if channel else None
        await self.pacer.acquire(method, channel)
        loop = asyncio.get_running_loop()
        started = loop.time()
        outcome = "ok"
        try:
            return await super().call(method, form=form, **kwargs)
        except RateLimited as exc:
            outcome = "ratelimited"
            await self.pacer.pause(method, channel, exc.retry_after)
            raise
        except Exception as exc:
            outcome = exc.__class__.__name__
            raise
        finally:
            if self.observe is not None:
                self.observe(method, loop.time() - started, outcome)
