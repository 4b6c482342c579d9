"""Spike detection per topic: is this keyword suddenly far busier than it usually is?

Counts fall into fixed buckets (5 minutes by default). A closed bucket updates an EWMA of the
per-bucket count and of its variance; the sliding window (the last few buckets, the current
one included) is compared with that baseline. An alert needs the window to clear three bars at
once: a minimum count, a ratio over the baseline, and a z-score against the baseline's noise
(never less than Poisson noise). A spike alerts once: the topic stays "in spike" until its
window falls back under half the bar, and a cool-down blocks a second alert soon after.
Time only comes in through arguments, so the detector is deterministic and replayable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

STATE_VERSION = 1


def poisson_tail(count: int, mean: float) -> float:
    """P(X >= count) for X ~ Poisson(mean), summed upward; only called past the cheap bars.

    Past the mode the terms only shrink, so the sum stops once they no longer matter, or
    once they underflow to 0 (a count far above the mean: the tail is below 1e-300). Waiting
    for a term smaller than a total of 0 ran 10,000 terms per mention in a busy topic."""
    if count <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    log_mean = math.log(mean)
    total = 0.0
    k = count
    while k <= count + 10_000:
        term = math.exp(k * log_mean - mean - math.lgamma(k + 1))
        total += term
        k += 1
        if k > mean and (term == 0.0 or term < total * 1e-12):
            break
    return min(1.0, total)


class TopicTrend(StrEnum):
    LONE = "lone"
    TREND = "trend"


@dataclass(frozen=True, slots=True)
class SpikeConfig:
    bucket: timedelta = timedelta(minutes=5)
    window_buckets: int = 3
    alpha: float = 0.05
    """EWMA weight of each closed bucket: ~20 buckets of memory, so slow ramps are absorbed."""
    min_count: int = 10
    ratio: float = 3.0
    z: float = 3.0
    """For noisy (overdispersed) topics: the window must also clear baseline + z * noise."""
    max_p_value: float = 1e-6
    """Poisson tail: a count this likely under the baseline is noise, however big the ratio."""
    min_expected: float = 1.0
    """Floor on the window baseline, so a topic that was silent needs `min_count`, not 1."""
    cooldown: timedelta = timedelta(hours=2)
    warmup: timedelta = timedelta(hours=1)
    """No alerts until the detector has watched this long, so a cold start is not a spike."""
    spike_learning: float = 0.25
    """Share of `alpha` applied while a spike is on, so a spike barely lifts its own baseline."""
    trend_min_count: int = 3
    trend_ratio: float = 2.0
    max_catch_up_buckets: int = 500

    @property
    def window(self) -> timedelta:
        return self.bucket * self.window_buckets


@dataclass(frozen=True, slots=True)
class SpikeAlert:
    topic: str
    count: int
    baseline: float
    """Expected count in a window of this length, from the learned per-bucket rate."""
    ratio: float
    window: timedelta
    started_at: datetime


@dataclass(slots=True)
class _Topic:
    current: int
    mean: float = 0.0
    var: float = 0.0
    closed: int = 0
    recent: dict[int, int] = field(default_factory=dict)
    in_spike: bool = False
    last_alert_at: datetime | None = None


def _aware(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


class SpikeDetector:
    def __init__(self, config: SpikeConfig | None = None) -> None:
        self.config = config or SpikeConfig()
        self._bucket_seconds = self.config.bucket.total_seconds()
        if self._bucket_seconds <= 0 or self.config.window_buckets < 1:
            raise ValueError("spike bucket and window must be positive")
        self._origin: int | None = None
        self._topics: dict[str, _Topic] = {}

    def _bucket_of(self, at: datetime) -> int:
        return math.floor(_aware(at).timestamp() / self._bucket_seconds)

    def _bucket_start(self, bucket: int) -> datetime:
        return datetime.fromtimestamp(bucket * self._bucket_seconds, tz=UTC)

    def _topic(self, topic: str, bucket: int) -> _Topic:
        state = self._topics.get(topic)
        if state is None:
            # A topic first seen now has, in effect, counted zero since the detector started.
            origin = bucket if self._origin is None else self._origin
            learned = bucket - origin - (self.config.window_buckets - 1)
            state = _Topic(current=bucket, closed=learned)
            self._topics[topic] = state
        return state

    def _expected_rate(self, state: _Topic) -> float:
        """Per-bucket baseline, bias-corrected so a young EWMA is not read as a quiet one."""
        if state.closed <= 0:
            return 0.0
        correction = 1.0 - (1.0 - self.config.alpha) ** min(state.closed, 10_000)
        return state.mean / correction if correction > 0 else state.mean

    def _close_until(self, state: _Topic, bucket: int) -> None:
        """Slides the window forward; a bucket joins the baseline only as it leaves the window,
        so a spike building over several buckets cannot raise its own bar."""
        config = self.config
        width = config.window_buckets
        counts = state.recent
        if bucket - state.current > config.max_catch_up_buckets:
            # A long silence: let the window's buckets leave, then decay the EWMA in closed
            # form, as if fed zeros (mean*d^n, var*d^n + mean^2*d^n*(1-d^n)).
            for _ in range(width):
                state.current += 1
                self._learn(state, counts.pop(state.current - width, 0))
            skipped = bucket - state.current
            decay = (1.0 - config.alpha) ** skipped
            state.var = state.var * decay + state.mean**2 * decay * (1.0 - decay)
            state.mean *= decay
            state.closed += skipped
            state.current = bucket
        while state.current < bucket:
            state.current += 1
            self._learn(state, counts.pop(state.current - width, 0))

    def _learn(self, state: _Topic, count: int) -> None:
        if state.closed < 0:  # a bucket from before the detector started: nothing to learn
            state.closed += 1
            return
        alpha = self.config.alpha * (self.config.spike_learning if state.in_spike else 1.0)
        delta = count - state.mean
        state.mean += alpha * delta
        state.var = (1.0 - alpha) * (state.var + alpha * delta * delta)
        state.closed += 1

    def _bar(self, state: _Topic) -> tuple[float, float]:
        """(expected window count, count that makes a spike)."""
        config = self.config
        rate = self._expected_rate(state)
        expected = max(config.min_expected, rate * config.window_buckets)
        noise = math.sqrt(config.window_buckets * max(state.var, rate))
        return expected, max(
            float(config.min_count), config.ratio * expected, expected + config.z * noise
        )

    def observe(self, topic: str, at: datetime) -> SpikeAlert | None:
        """Counts one mention of `topic` at `at`; returns an alert when a spike begins."""
        config = self.config
        bucket = self._bucket_of(at)
        state = self._topic(topic, bucket)
        if self._origin is None:
            self._origin = bucket
        if bucket > state.current:
            self._close_until(state, bucket)
        elif bucket <= state.current - config.window_buckets:
            return None  # too late to matter for the window; the baseline has moved on
        counts = state.recent
        counts[bucket] = counts.get(bucket, 0) + 1

        count = sum(counts.values())
        expected, bar = self._bar(state)
        if state.in_spike and count < bar / 2:
            state.in_spike = False
        if state.in_spike or count < bar or poisson_tail(count, expected) > config.max_p_value:
            return None
        warm = (bucket - self._origin) * config.bucket >= config.warmup
        if not warm:
            return None
        state.in_spike = True
        at_utc = _aware(at)
        if state.last_alert_at is not None and at_utc - state.last_alert_at < config.cooldown:
            return None
        state.last_alert_at = at_utc
        # The spike began at the first bucket in the window that was itself out of line.
        rate = expected / config.window_buckets
        per_bucket_bar = max(config.ratio * rate, rate + config.z * math.sqrt(max(state.var, rate)))
        started = min(
            (key for key, value in counts.items() if value > per_bucket_bar),
            default=state.current - config.window_buckets + 1,
        )
        return SpikeAlert(
            topic=topic,
            count=count,
            baseline=round(expected, 3),
            ratio=round(count / expected, 2),
            window=config.window,
            started_at=self._bucket_start(started),
        )

    def state_of(self, topic: str, now: datetime) -> TopicTrend:
        """Whether a mention on `topic` is part of a current wave or a lone voice (read-only)."""
        state = self._topics.get(topic)
        if state is None:
            return TopicTrend.LONE
        config = self.config
        bucket = self._bucket_of(now)
        floor = bucket - config.window_buckets
        count = sum(value for key, value in state.recent.items() if floor < key <= bucket)
        expected, _ = self._bar(state)
        if count >= config.trend_min_count and count >= config.trend_ratio * expected:
            return TopicTrend.TREND
        return TopicTrend.LONE

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe state; the configuration is not included (it comes from the config file)."""
        return {
            "version": STATE_VERSION,
            "bucket_seconds": self._bucket_seconds,
            "origin": self._origin,
            "topics": {
                name: {
                    "current": state.current,
                    "mean": state.mean,
                    "var": state.var,
                    "closed": state.closed,
                    "recent": sorted([key, value] for key, value in state.recent.items()),
                    "in_spike": state.in_spike,
                    "last_alert_at": (
                        state.last_alert_at.isoformat() if state.last_alert_at else None
                    ),
                }
                for name, state in self._topics.items()
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], config: SpikeConfig | None = None) -> SpikeDetector:
        """Restores saved state; state from another bucket size or version starts fresh."""
        detector = cls(config)
        if (
            not isinstance(data, dict)
            or data.get("version") != STATE_VERSION
            or data.get("bucket_seconds") != detector._bucket_seconds
        ):
            return detector
        origin = data.get("origin")
        detector._origin = int(origin) if origin is not None else None
        for name, raw in dict(data.get("topics") or {}).items():
            last = raw.get("last_alert_at")
            detector._topics[str(name)] = _Topic(
                current=int(raw["current"]),
                mean=float(raw["mean"]),
                var=float(raw["var"]),
                closed=int(raw["closed"]),
                recent={int(key): int(value) for key, value in raw.get("recent", [])},
                in_spike=bool(raw.get("in_spike", False)),
                last_alert_at=datetime.fromisoformat(last) if last else None,
            )
        return detector
