"""Planned misbehaviour of the emulated Web API: failures, late answers, rate limits.

Tests use it to prove the bot's edges retry what Slack asks them to retry (429 with
Retry-After, 5xx) and never re-post blindly after a timeout whose request did land.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar


class _Counted(Protocol):
    remaining: int


_C = TypeVar("_C", bound=_Counted)


@dataclass(slots=True)
class Fault:
    status: int
    retry_after: int | None
    error: str
    remaining: int


@dataclass(slots=True)
class Outage:
    """Until `until`, calls fail in turn with `statuses`, with `ok_between` calls answered
    normally between two failures (0: every call fails)."""

    until: float
    statuses: tuple[int, ...]
    retry_after: int
    ok_between: int
    seen: int = 0

    def next_status(self) -> int | None:
        turn, self.seen = self.seen, self.seen + 1
        cycle = self.ok_between + 1
        if turn % cycle:
            return None
        return self.statuses[(turn // cycle) % len(self.statuses)]


@dataclass(slots=True)
class Delay:
    seconds: float
    remaining: int


@dataclass(slots=True)
class _RateLimit:
    per_second: float
    seen: dict[str, list[float]] = field(default_factory=dict)


def _take(plans: dict[str, list[_C]], method: str) -> _C | None:
    queue = plans.get(method)
    if not queue:
        return None
    plan = queue[0]
    plan.remaining -= 1
    if plan.remaining <= 0:
        queue.pop(0)
    return plan


class Faults:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._faults: dict[str, list[Fault]] = {}
        self._delays: dict[str, list[Delay]] = {}
        self._outages: dict[str, Outage] = {}
        self._rate_limits: dict[str, _RateLimit] = {}
        self._held: set[asyncio.Future[None]] = set()

    def fail(self, method: str, status: int, retry_after: int | None, times: int,
             error: str | None) -> None:
        code = error or ("ratelimited" if status == 429 else "internal_error")
        self._faults.setdefault(method, []).append(
            Fault(status, retry_after if status == 429 else None, code, times))

    def outage(self, method: str, seconds: float, statuses: tuple[int, ...], retry_after: int,
               ok_between: int) -> None:
        self._outages[method] = Outage(self._clock() + seconds, statuses, retry_after,
                                       ok_between)

    def outage_over(self, method: str) -> bool:
        outage = self._outages.get(method)
        return outage is None or self._clock() >= outage.until

    def delay(self, method: str, seconds: float, times: int) -> None:
        self._delays.setdefault(method, []).append(Delay(seconds, times))

    def rate_limit(self, method: str, per_channel_per_second: float) -> None:
        self._rate_limits[method] = _RateLimit(per_channel_per_second)

    def clear(self) -> None:
        self._faults.clear()
        self._outages.clear()
        self._delays.clear()
        self._rate_limits.clear()

    def take_fault(self, method: str) -> Fault | None:
        outage = self._outages.get(method)
        if outage is not None:
            if self._clock() >= outage.until:
                del self._outages[method]
            elif (status := outage.next_status()) is not None:
                code = "ratelimited" if status == 429 else "internal_error"
                return Fault(status, outage.retry_after if status == 429 else None, code, 0)
        return _take(self._faults, method)

    def take_delay(self, method: str) -> Delay | None:
        return _take(self._delays, method)

    def over_rate(self, method: str, channel: str) -> bool:
        """True when this call would exceed the method's per-channel rate; counts it if not."""
        limit = self._rate_limits.get(method)
        if limit is None:
            return False
        now = self._clock()
        recent = [t for t in limit.seen.get(channel, []) if now - t < 1.0]
        if len(recent) >= limit.per_second:
            limit.seen[channel] = recent
            return True
        limit.seen[channel] = [*recent, now]
        return False

    async def hold(self, seconds: float) -> None:
        """Wait `seconds`, or less if `release()` is called first."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._held.add(future)
        try:
            await asyncio.wait([future], timeout=seconds)
        finally:
            self._held.discard(future)

    def release(self) -> None:
        for future in list(self._held):
            if not future.done():
                future.set_result(None)
