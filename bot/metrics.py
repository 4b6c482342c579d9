"""Prometheus metrics. Totals that must hold across every process (mentions, cards, replies,
outbox depth and age) are read from the database on each scrape; rates and latencies of this
process's own work (Slack calls, effects, retries, failures) are counted in memory.

Each `Metrics` has its own registry, so tests and several apps in one process never share
counters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from db.metrics_store import Snapshot, snapshot
from db.models import OutboxRow
from db.store import Database

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
RETRY_OUTCOMES = frozenset({"transient", "ratelimited", "error"})
FAILURE_OUTCOMES = frozenset({"permanent", "gave_up", "lease_lost"})
_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)


class _FromDatabase(Collector):
    def __init__(self, now: Callable[[], datetime]) -> None:
        self.latest = Snapshot()
        self.now = now

    def collect(self) -> Iterator[Metric]:
        snap = self.latest
        for name, doc, value in (
            ("mentiondesk_mentions_ingested", "Mentions stored (all processes).", snap.mentions),
            ("mentiondesk_cards_posted", "Cases with a card in Slack.", snap.cards),
            ("mentiondesk_replies_sent", "Replies published on a network.", snap.replies),
            ("mentiondesk_digests_posted", "Storm digest cards posted.", snap.digests),
        ):
            counter = CounterMetricFamily(name, doc)
            counter.add_metric([], value)
            yield counter
        depth = GaugeMetricFamily("mentiondesk_outbox_depth", "Outbox rows not done.",
                                  labels=["status", "kind"])
        for (status, kind), count in sorted(snap.outbox.items()):
            depth.add_metric([status, kind], count)
        yield depth
        age = GaugeMetricFamily("mentiondesk_outbox_oldest_age_seconds",
                                "Age of the oldest outbox row still to be sent.")
        age.add_metric([], max(0.0, (self.now() - snap.oldest_due).total_seconds())
                       if snap.oldest_due else 0.0)
        yield age


class Metrics:
    def __init__(self, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.registry = CollectorRegistry()
        self._db = _FromDatabase(now)
        self.registry.register(self._db)
        self.slack_calls = Counter("mentiondesk_slack_calls", "Slack Web API calls made.",
                                   ["method", "outcome"], registry=self.registry)
        self.slack_seconds = Histogram("mentiondesk_slack_call_seconds",
                                       "Slack Web API call latency.", ["method"],
                                       registry=self.registry)
        self.effects = Counter("mentiondesk_outbox_effects",
                               "Outbox rows settled, by kind and outcome.",
                               ["kind", "outcome"], registry=self.registry)
        self.retries = Counter("mentiondesk_outbox_retries",
                               "Effects rescheduled after a transient failure.", ["kind"],
                               registry=self.registry)
        self.failures = Counter("mentiondesk_outbox_failures",
                                "Effects that failed for good, by kind of failure.",
                                ["kind", "reason"], registry=self.registry)
        self.effect_latency = Histogram(
            "mentiondesk_effect_latency_seconds",
            "From enqueue to done (a card post: mention stored to card in Slack).", ["kind"],
            buckets=_LATENCY_BUCKETS, registry=self.registry)

    # DispatchObserver
    def settled(self, kind: str, outcome: str, row: OutboxRow, now: datetime) -> None:
        self.effects.labels(kind, outcome).inc()
        if outcome in RETRY_OUTCOMES:
            self.retries.labels(kind).inc()
        elif outcome in FAILURE_OUTCOMES:
            self.failures.labels(kind, outcome).inc()
        elif outcome == "done":
            self.effect_latency.labels(kind).observe(
                max(0.0, (now - row.created_at).total_seconds()))

    def slack_call(self, method: str, seconds: float, outcome: str) -> None:
        self.slack_calls.labels(method, outcome).inc()
        self.slack_seconds.labels(method).observe(seconds)

    async def render(self, db: Database) -> bytes:
        """Refresh the database figures, then the text exposition."""
        async with db.transaction() as tx:
            self._db.latest = await snapshot(tx)
        return generate_latest(self.registry)
