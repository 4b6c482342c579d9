"""The outbox dispatcher: every outbound effect leaves the process from a leased database row.

A row is leased (with a fencing token that grows on every lease), handled, then settled with a
check that the lease is still ours: a dispatcher that lost its lease cannot settle work another
one took over, and the paced Slack calls re-check the lease right before each side effect.
Transient failures are retried with jittered backoff (tenacity in-process, then a rescheduled
row); permanent ones are parked where people can see them. Rows of different cases run
concurrently; rows of one case run in order.

Fairness and order per channel: a round takes at most `per_lane` rows of one effect kind in
one channel, so a channel with a long paced backlog cannot starve the others. Card posts of
one channel run one after another, and when one has to wait (pacing, or a failure to retry)
the channel's later posts wait with it: after an outage the cards still come in mention
order.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from bot.connectors.base import PermanentError, RateLimited, TransientError
from bot.logs import case_context
from bot.services.context import Clock, utc_now
from db.models import OutboxRow
from db.store import Database, Tx

log = logging.getLogger(__name__)

EffectHandler = Callable[[OutboxRow], Awaitable[None]]
FailureHandler = Callable[[OutboxRow, str], Awaitable[None]]
Chore = Callable[[], Awaitable[object]]

ORDERED_KINDS = frozenset({"card.post"})  # one channel's posts keep their order
MAX_ATTEMPTS = 20  # about 12 minutes of failures at the capped backoff before parking
MAX_BACKOFF = 60.0  # a channel's later cards wait behind a failing one: keep waits short
IN_PROCESS_ATTEMPTS = 3
IN_PROCESS_MAX_WAIT = 5.0


@dataclass(frozen=True, slots=True)
class LeaseRef:
    """The lease a side effect runs under (the lease is renewed before each Slack call)."""

    row_id: int
    owner: str
    token: int
    lease: timedelta
    clock: Clock

    async def renew(self, tx: Tx) -> None:
        """Fencing and heartbeat in one statement: raises `LeaseLost` if the row was taken
        over, else the lease runs a full period from now."""
        now = self.clock()
        if not await tx.renew_lease(self.row_id, self.owner, self.token, now, now + self.lease):
            raise LeaseLost(self.row_id)


current_lease: ContextVar[LeaseRef | None] = ContextVar("current_lease", default=None)


@contextmanager
def unfenced() -> Iterator[None]:
    """For compensating actions (deleting a duplicate this process just made): they must run
    even though the lease is gone."""
    token = current_lease.set(None)
    try:
        yield
    finally:
        current_lease.reset(token)


_attempt: ContextVar[int] = ContextVar("outbox_attempt", default=1)


def may_have_happened(row: OutboxRow) -> bool:
    """True when an earlier try of this effect may have reached the other side with its
    answer lost (an in-process retry, a rescheduled row, or a row taken over from a
    dispatcher that died or froze): the handler must look before acting again."""
    return row.attempts > 0 or bool(row.last_error) or row.lease_token > 1 or _attempt.get() > 1


class LeaseLost(Exception):
    """Another dispatcher took the row over (this one was frozen or too slow): stop, touch
    nothing."""

    def __init__(self, row_id: int) -> None:
        super().__init__(f"lost the lease on outbox row {row_id}")


class Deferred(Exception):
    """Not an error: the effect may not go for `seconds` yet (pacing); hand the row back."""

    def __init__(self, seconds: float, reason: str) -> None:
        super().__init__(reason)
        self.seconds = seconds


class DispatchObserver(Protocol):
    def settled(self, kind: str, outcome: str, row: OutboxRow, now: datetime) -> None: ...


def _quick_retry(exc: BaseException) -> bool:
    if isinstance(exc, RateLimited):
        return exc.retry_after <= IN_PROCESS_MAX_WAIT
    return isinstance(exc, TransientError)


def _wait(state: RetryCallState) -> float:
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, RateLimited):
        return exc.retry_after
    base = min(IN_PROCESS_MAX_WAIT, 0.2 * 2 ** (state.attempt_number - 1))
    return random.uniform(base / 2, base)


def backoff_seconds(attempts: int, retry_after: float | None = None) -> float:
    """Delay before a rescheduled row is tried again: jittered exponential, capped at a
    minute; a 429's `Retry-After` is what Slack asked for, so it is used as given (plus a
    little jitter so paused rows do not all return at once)."""
    if retry_after is not None:
        return retry_after * random.uniform(1.0, 1.1)
    base = min(MAX_BACKOFF, 2.0**attempts)
    return random.uniform(base / 2, base)


class Dispatcher:
    """Leases due outbox rows and runs the handler registered for their kind."""

    def __init__(
        self,
        db: Database,
        handlers: dict[str, EffectHandler],
        *,
        on_failure: dict[str, FailureHandler] | None = None,
        clock: Clock = utc_now,
        lease: timedelta = timedelta(seconds=60),
        batch: int = 16,
        per_lane: int = 4,
        concurrency: int = 8,
        idle_seconds: float = 1.0,
        owner: str | None = None,
        observer: DispatchObserver | None = None,
    ) -> None:
        self.db = db
        self.handlers = handlers
        self.on_failure = on_failure or {}
        self.clock = clock
        self.lease = lease
        self.batch = batch
        self.per_lane = per_lane
        self.concurrency = concurrency
        self.idle_seconds = idle_seconds
        self.owner = owner or f"dispatcher-{uuid.uuid4().hex[:12]}"
        self.observer = observer
        self.before_round: list[Chore] = []
        self.chores: list[tuple[float, Chore]] = []
        self._wake = asyncio.Event()
        self._wake_waiters: list[asyncio.Future[None]] = []
        self._stopping = False

    def wake(self) -> None:
        """Called after a commit that enqueued work, so it leaves at once rather than on the
        next poll."""
        self._wake.set()
        for waiter in self._wake_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._wake_waiters.clear()

    async def run(self, stop: asyncio.Event) -> None:
        """Dispatch until `stop` is set; then finish the rows in hand and return the rest."""
        last_chore: dict[int, float] = {}
        loop = asyncio.get_running_loop()
        stopper = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                for index, (every, chore) in enumerate(self.chores):
                    if loop.time() - last_chore.get(index, -every) >= every:
                        last_chore[index] = loop.time()
                        await self._quietly(chore)
                round_task = asyncio.ensure_future(self._round())
                await asyncio.wait({round_task, stopper}, return_when=asyncio.FIRST_COMPLETED)
                if not round_task.done():
                    self._stopping = True  # rows not started yet are handed back
                handled = await round_task
                if handled == 0 and not stop.is_set():
                    self._wake.clear()
                    waiter = asyncio.ensure_future(self._wake.wait())
                    await asyncio.wait({waiter, stopper}, timeout=self.idle_seconds,
                                       return_when=asyncio.FIRST_COMPLETED)
                    waiter.cancel()
        finally:
            stopper.cancel()
            self._stopping = True
            await self._quietly(self.hand_back)

    async def hand_back(self) -> int:
        returned = await self.db.retrying(lambda tx: tx.hand_back(self.owner))
        if returned:
            log.info("handed %d outbox rows back", returned)
        return returned

    async def _quietly(self, chore: Chore) -> None:
        try:
            await chore()
        except Exception:
            log.exception("outbox chore %s failed; will try again",
                          getattr(chore, "__qualname__", chore))

    async def _round(self) -> int:
        try:
            return await self.run_once()
        except Exception:
            log.exception("outbox dispatch round failed; retrying")
            return 0

    async def run_once(self) -> int:
        """Lease and handle one batch; returns how many rows were handled."""
        for chore in self.before_round:
            await chore()
        now = self.clock()

        async def lease(tx: Tx) -> tuple[list[OutboxRow], dict[int, str]]:
            rows = await tx.lease_outbox(self.owner, now, self.lease, self.batch,
                                         per_lane=self.per_lane)
            ordered = [r.case_id for r in rows if r.kind in ORDERED_KINDS and r.case_id]
            return rows, await tx.case_channels(ordered)

        rows, channels = await self.db.retrying(lease)
        if not rows:
            return 0
        rows = await self._coalesce(rows)
        groups = self._groups(rows, channels)
        gate = asyncio.Semaphore(self.concurrency)

        async def run_group(group: Sequence[OutboxRow]) -> None:
            async with gate:
                for index, row in enumerate(group):
                    if self._stopping:
                        await self.db.retrying(
                            lambda tx, r=row: tx.hand_back(self.owner, [r.id or 0]))
                        continue
                    later = await self._handle(row)
                    if later is None:
                        continue
                    until, paced = later
                    channel = channels.get(row.case_id or 0)
                    if row.kind in ORDERED_KINDS and channel:
                        await self._hold_lane(row, channel, until, group[index + 1:])
                        return
                    if paced:
                        await self._hold_kind(row, until)

        heartbeat = asyncio.create_task(self._heartbeat([r.id or 0 for r in rows]))
        try:
            await asyncio.gather(*(run_group(g) for g in groups.values()))
        finally:
            heartbeat.cancel()
        return len(rows)

    @staticmethod
    def _groups(rows: Sequence[OutboxRow],
                channels: dict[int, str]) -> dict[object, list[OutboxRow]]:
        """Rows of one group run one after another, in id order: one channel's card posts
        (with the other rows of those cases), else one case's rows; groups run
        concurrently."""
        groups: dict[object, list[OutboxRow]] = {}
        lane_of_case: dict[int, object] = {}
        rest = []
        for row in rows:
            channel = channels.get(row.case_id or 0)
            if row.kind in ORDERED_KINDS and channel:
                key = ("lane", row.kind, channel)
                lane_of_case[row.case_id or 0] = key
                groups.setdefault(key, []).append(row)
            else:
                rest.append(row)
        for row in rest:
            key = (lane_of_case.get(row.case_id, row.case_id) if row.case_id is not None
                   else ("row", row.id))
            groups.setdefault(key, []).append(row)
        for group in groups.values():
            group.sort(key=lambda r: r.id or 0)
        return groups

    async def _hold_lane(self, row: OutboxRow, channel: str, until: datetime,
                         rest: Sequence[OutboxRow]) -> None:
        """`row` must wait until `until`: the channel's later posts wait with it."""
        in_hand = [r.id or 0 for r in rest]
        held = await self.db.retrying(
            lambda tx: tx.hold_lane(row.kind, channel, row.id or 0, until, self.owner, in_hand))
        if held:
            log.debug("%d later %s rows for %s wait behind #%s", held, row.kind, channel,
                      row.id)

    async def _hold_kind(self, row: OutboxRow, until: datetime) -> None:
        """`row` waits for its method's budget: the rows of its kind behind it would only
        be leased to wait too, so they wait in the queue instead (no churn)."""
        held = await self.db.retrying(
            lambda tx: tx.hold_kind(row.kind, row.id or 0, until))
        if held:
            log.debug("%d later %s rows wait for the pace", held, row.kind)

    async def _heartbeat(self, row_ids: list[int]) -> None:
        """Keep the batch's leases alive while it is worked through; a frozen process stops
        beating, so its rows are taken over once the lease runs out."""
        every = self.lease.total_seconds() / 3
        while True:
            await asyncio.sleep(every)
            now = self.clock()
            try:
                await self.db.retrying(
                    lambda tx, n=now: tx.extend_leases(self.owner, row_ids, n, n + self.lease))
            except Exception:
                log.warning("could not extend outbox leases; rows may be taken over")

    def next_wake(self) -> asyncio.Future[None]:
        """Resolved by the next `wake()`: tests wait on it for work queued by a listener
        that runs after Slack's ack, instead of guessing when it has finished."""
        waiter = asyncio.get_running_loop().create_future()
        self._wake_waiters.append(waiter)
        return waiter

    async def drain(self, max_rounds: int = 1000) -> int:
        """Handle everything that is due now (tests and the CLI use this)."""
        total = 0
        for _ in range(max_rounds):
            handled = await self.run_once()
            total += handled
            if handled == 0:
                break
        return total

    async def _coalesce(self, rows: list[OutboxRow]) -> list[OutboxRow]:
        """Several updates of one card in a batch: only the latest is sent (it renders the
        current state anyway)."""
        latest: dict[tuple[str, int], int] = {}
        for row in rows:
            if row.kind.endswith(".update") and row.case_id is not None:
                latest[(row.kind, row.case_id)] = row.id or 0
        keep, skip = [], []
        for row in rows:
            key = (row.kind, row.case_id or 0)
            if key in latest and latest[key] != row.id:
                skip.append(row)
            else:
                keep.append(row)
        if skip:
            now = self.clock()

            async def settle(tx: Tx) -> None:
                for row in skip:
                    await tx.finish_outbox(row.id or 0, self.owner, status="done", now=now,
                                           last_error="coalesced", lease_token=row.lease_token)

            await self.db.retrying(settle)
        return keep

    async def _handle(self, row: OutboxRow) -> tuple[datetime, bool] | None:
        """Run the row. When it was handed back for later: when it is due again, and
        whether only the pace held it back (rather than a failure)."""
        with case_context(row.case_id):
            return await self._handle_row(row)

    async def _handle_row(self, row: OutboxRow) -> tuple[datetime, bool] | None:
        handler = self.handlers.get(row.kind)
        if handler is None:
            await self._settle(row, "parked", f"no handler for effect '{row.kind}'")
            return None
        if row.kind.endswith(".update") and row.case_id is not None:
            absorbed = await self.db.retrying(
                lambda tx: tx.absorb_updates(row.kind, row.case_id or 0, row.id or 0,
                                             self.clock()))
            if absorbed:
                log.debug("%d older %s rows coalesced into #%s", absorbed, row.kind, row.id)
        lease = LeaseRef(row.id or 0, self.owner, row.lease_token, self.lease, self.clock)
        token = current_lease.set(lease)
        try:
            await self.db.retrying(lease.renew)
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(IN_PROCESS_ATTEMPTS),
                wait=_wait,
                retry=retry_if_exception(_quick_retry),
                reraise=True,
            ):
                with attempt:
                    _attempt.set(attempt.retry_state.attempt_number)
                    await handler(row)
        except LeaseLost:
            log.warning("outbox row %s (%s) was taken over by another dispatcher; leaving it",
                        row.id, row.kind)
            self._observe(row, "lease_lost")
            return None
        except Deferred as deferred:
            until = self.clock() + timedelta(seconds=deferred.seconds)
            await self._settle(row, "pending", row.last_error, available_at=until,
                               outcome="deferred")
            return until, True
        except PermanentError as exc:
            log.warning("effect %s #%s failed for good: %s", row.kind, row.id, exc)
            await self._settle(row, "parked", str(exc), outcome="permanent")
            await self._failed(row, str(exc))
            return None
        except Exception as exc:
            until = await self._reschedule(row, exc)
            return None if until is None else (until, False)
        finally:
            current_lease.reset(token)
        await self._settle(row, "done", None, outcome="done")
        return None

    async def _reschedule(self, row: OutboxRow, exc: Exception) -> datetime | None:
        if not isinstance(exc, TransientError):
            log.exception("effect %s #%s raised unexpectedly", row.kind, row.id)
        limited = isinstance(exc, RateLimited)
        # A 429 is Slack asking us to wait, not a failure of the effect: it does not count.
        attempts = row.attempts if limited else row.attempts + 1
        if attempts >= MAX_ATTEMPTS:
            await self._settle(row, "parked", f"gave up after {attempts} tries: {exc}",
                               outcome="gave_up")
            await self._failed(row, str(exc))
            return None
        retry_after = exc.retry_after if limited else None
        delay = backoff_seconds(attempts, retry_after)
        log.info("effect %s #%s will be retried in %.1fs: %s", row.kind, row.id, delay, exc)
        outcome = "ratelimited" if isinstance(exc, RateLimited) else (
            "transient" if isinstance(exc, TransientError) else "error")
        until = self.clock() + timedelta(seconds=delay)
        await self._settle(row, "pending", str(exc), attempts=attempts, available_at=until,
                           outcome=outcome)
        return until

    async def _failed(self, row: OutboxRow, reason: str) -> None:
        failure = self.on_failure.get(row.kind)
        if failure is not None:
            await failure(row, reason)

    def _observe(self, row: OutboxRow, outcome: str) -> None:
        if self.observer is not None:
            self.observer.settled(row.kind, outcome, row, self.clock())

    async def _settle(self, row: OutboxRow, status: str, error: str | None, *,
                      outcome: str | None = None, **values: object) -> None:
        now = self.clock()

        async def settle(tx: Tx) -> bool:
            return await tx.finish_outbox(row.id or 0, self.owner, status=status, now=now,
                                          last_error=error, lease_token=row.lease_token,
                                          **values)

        ok = await self.db.retrying(settle)
        if not ok:
            log.warning("lost the lease on outbox row %s before settling it", row.id)
            self._observe(row, "lease_lost")
            return
        self._observe(row, outcome or status)
