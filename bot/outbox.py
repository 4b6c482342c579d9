"""The outbox dispatcher: every outbound effect leaves the process from a leased database row.

A row is leased, handled, then settled with a check that the lease is still ours (a dispatcher
that lost its lease cannot settle work another one took over). Transient failures are retried
with jittered backoff (tenacity in-process, then a rescheduled row); permanent ones are parked
where people can see them.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from bot.connectors.base import PermanentError, RateLimited, TransientError
from bot.services.context import Clock, utc_now
from db.models import OutboxRow
from db.store import Database

log = logging.getLogger(__name__)

EffectHandler = Callable[[OutboxRow], Awaitable[None]]
FailureHandler = Callable[[OutboxRow, str], Awaitable[None]]

MAX_ATTEMPTS = 12
IN_PROCESS_ATTEMPTS = 3
IN_PROCESS_MAX_WAIT = 5.0


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
    """Delay before a rescheduled row is tried again: jittered exponential, capped at 5 min."""
    base = min(300.0, 2.0**attempts)
    delay = random.uniform(base / 2, base)
    return max(delay, retry_after or 0.0)


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
        batch: int = 25,
        idle_seconds: float = 1.0,
        owner: str | None = None,
    ) -> None:
        self.db = db
        self.handlers = handlers
        self.on_failure = on_failure or {}
        self.clock = clock
        self.lease = lease
        self.batch = batch
        self.idle_seconds = idle_seconds
        self.owner = owner or f"dispatcher-{uuid.uuid4().hex[:12]}"
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Called after a commit that enqueued work, so it leaves at once rather than on the
        next poll."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                handled = await self.run_once()
            except Exception:
                log.exception("outbox dispatch round failed; retrying")
                handled = 0
            if handled == 0:
                self._wake.clear()
                waiter = asyncio.ensure_future(self._wake.wait())
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait(
                    {waiter, stopper},
                    timeout=self.idle_seconds,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                waiter.cancel()
                stopper.cancel()

    async def run_once(self) -> int:
        """Lease and handle one batch; returns how many rows were handled."""
        now = self.clock()
        async with self.db.transaction() as tx:
            rows = await tx.lease_outbox(self.owner, now, self.lease, self.batch)
        rows = await self._coalesce(rows)
        for row in rows:
            await self._handle(row)
        return len(rows)

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
            async with self.db.transaction() as tx:
                for row in skip:
                    await tx.finish_outbox(row.id or 0, self.owner, status="done", now=now,
                                           last_error="coalesced")
        return keep

    async def _handle(self, row: OutboxRow) -> None:
        handler = self.handlers.get(row.kind)
        if handler is None:
            await self._settle(row, "parked", f"no handler for effect '{row.kind}'")
            return
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(IN_PROCESS_ATTEMPTS),
                wait=_wait,
                retry=retry_if_exception(_quick_retry),
                reraise=True,
            ):
                with attempt:
                    await handler(row)
        except PermanentError as exc:
            log.warning("effect %s #%s failed for good: %s", row.kind, row.id, exc,
                        extra={"case_id": row.case_id})
            await self._settle(row, "parked", str(exc))
            failure = self.on_failure.get(row.kind)
            if failure is not None:
                await failure(row, str(exc))
            return
        except Exception as exc:
            if not isinstance(exc, TransientError):
                log.exception("effect %s #%s raised unexpectedly", row.kind, row.id)
            attempts = row.attempts + 1
            if attempts >= MAX_ATTEMPTS:
                await self._settle(row, "parked", f"gave up after {attempts} tries: {exc}")
                failure = self.on_failure.get(row.kind)
                if failure is not None:
                    await failure(row, str(exc))
                return
            retry_after = exc.retry_after if isinstance(exc, RateLimited) else None
            delay = backoff_seconds(attempts, retry_after)
            log.info("effect %s #%s will be retried in %.1fs: %s", row.kind, row.id, delay, exc,
                     extra={"case_id": row.case_id})
            await self._settle(
                row,
                "pending",
                str(exc),
                attempts=attempts,
                available_at=self.clock() + timedelta(seconds=delay),
            )
            return
        await self._settle(row, "done", None)

    async def _settle(self, row: OutboxRow, status: str, error: str | None, **values: object
                      ) -> None:
        async with self.db.transaction() as tx:
            ok = await tx.finish_outbox(
                row.id or 0, self.owner, status=status, now=self.clock(), last_error=error,
                **values,
            )
        if not ok:
            log.warning("lost the lease on outbox row %s before settling it", row.id)
