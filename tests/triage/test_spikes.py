from __future__ import annotations

import json
import math
import random
from collections.abc import Iterable
from datetime import timedelta

import pytest

from bot.triage.spikes import SpikeAlert, SpikeConfig, SpikeDetector, TopicTrend

from .conftest import T0

BUCKET = timedelta(minutes=5)


def poisson(rng: random.Random, mean: float) -> int:
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def feed(
    detector: SpikeDetector, counts: Iterable[int], topic: str = "refund", start_bucket: int = 0
) -> list[tuple[int, SpikeAlert]]:
    """Spreads each bucket's count evenly over it; returns (bucket number, alert) pairs."""
    alerts = []
    for offset, count in enumerate(counts):
        bucket = start_bucket + offset
        for n in range(count):
            at = T0 + bucket * BUCKET + BUCKET * (n + 0.5) / count
            alert = detector.observe(topic, at)
            if alert is not None:
                alerts.append((bucket, alert))
    return alerts


def noisy(rng: random.Random, mean: float, buckets: int) -> list[int]:
    return [poisson(rng, mean) for _ in range(buckets)]


def test_noisy_baseline_with_two_spikes_alerts_exactly_twice():
    rng = random.Random(7)
    counts = noisy(rng, 4.0, 288)
    for bucket in range(100, 104):
        counts[bucket] += 30
    for bucket in range(200, 203):
        counts[bucket] += 25
    alerts = feed(SpikeDetector(), counts)
    assert [bucket for bucket, _ in alerts] == [100, 200]
    first = alerts[0][1]
    assert first.topic == "refund"
    assert first.window == timedelta(minutes=15)
    assert first.started_at == T0 + 100 * BUCKET
    assert first.ratio >= 3.0 and first.count >= 10
    assert 8 <= first.baseline <= 18


@pytest.mark.parametrize("seed", range(5))
def test_quiet_noise_never_alerts(seed):
    rng = random.Random(seed)
    assert feed(SpikeDetector(), noisy(rng, 6.0, 288 * 2)) == []


@pytest.mark.parametrize("seed", range(5))
def test_overdispersed_noise_never_alerts(seed):
    """Counts whose rate itself wanders (gamma-mixed Poisson, variance ~1.6x the mean)."""
    rng = random.Random(seed)
    counts = [poisson(rng, rng.gammavariate(8, 0.6)) for _ in range(288 * 2)]
    assert feed(SpikeDetector(), counts) == []


def test_spike_on_overdispersed_noise_is_found_once():
    rng = random.Random(21)
    counts = [poisson(rng, rng.gammavariate(8, 0.6)) for _ in range(288)]
    for bucket in range(150, 154):
        counts[bucket] += 25
    alerts = feed(SpikeDetector(), counts)
    assert len(alerts) == 1 and 150 <= alerts[0][0] <= 153
    assert alerts[0][1].started_at == T0 + 150 * BUCKET


def test_slow_ramp_is_absorbed():
    rng = random.Random(3)
    counts = [poisson(rng, 2 + 12 * bucket / 144) for bucket in range(144)]
    counts += noisy(rng, 14.0, 144)
    assert feed(SpikeDetector(), counts) == []


def test_quiet_topic_needs_the_minimum_count():
    almost = [1] + [0] * 40 + [5, 4] + [0] * 5 + [4, 5] + [0] * 5
    assert feed(SpikeDetector(), almost) == []
    alerts = feed(SpikeDetector(), [1] + [0] * 40 + [5, 4, 3] + [0] * 12)
    assert [bucket for bucket, _ in alerts] == [43]
    alert = alerts[0][1]
    assert (alert.count, alert.baseline, alert.ratio) == (10, 1.0, 10.0)
    assert alert.started_at == T0 + 41 * BUCKET


def test_long_spike_alerts_once():
    rng = random.Random(11)
    counts = noisy(rng, 3.0, 48) + [40] * 18 + noisy(rng, 3.0, 48)
    assert [bucket for bucket, _ in feed(SpikeDetector(), counts)] == [48]


def test_cooldown_suppresses_a_second_spike_soon_after():
    rng = random.Random(5)
    counts = noisy(rng, 2.0, 300)
    for start in (60, 72, 120):  # 1 h between the first two, 4 h to the third
        for bucket in range(start, start + 2):
            counts[bucket] += 30
    detector = SpikeDetector(SpikeConfig(cooldown=timedelta(hours=2)))
    assert [bucket for bucket, _ in feed(detector, counts)] == [60, 120]
    no_cooldown = SpikeDetector(SpikeConfig(cooldown=timedelta(0)))
    assert [bucket for bucket, _ in feed(no_cooldown, counts)] == [60, 72, 120]


def test_no_alert_during_warmup():
    counts = [0, 20, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    assert feed(SpikeDetector(), counts) == []


def test_topics_are_independent_and_new_topics_learn_from_zero():
    detector = SpikeDetector()
    rng = random.Random(2)
    feed(detector, noisy(rng, 5.0, 30), topic="billing")
    alerts = feed(detector, [12], topic="outage", start_bucket=30)
    assert [(bucket, alert.topic) for bucket, alert in alerts] == [(30, "outage")]


def test_state_of_tells_lone_from_trend():
    detector = SpikeDetector()
    rng = random.Random(9)
    feed(detector, noisy(rng, 1.0, 30))
    lone_at = T0 + 30 * BUCKET
    detector.observe("refund", lone_at)
    assert detector.state_of("refund", lone_at) is TopicTrend.LONE
    assert detector.state_of("never-seen", lone_at) is TopicTrend.LONE
    feed(detector, [8, 8], start_bucket=31)
    assert detector.state_of("refund", T0 + 32 * BUCKET) is TopicTrend.TREND
    assert detector.state_of("refund", T0 + 40 * BUCKET) is TopicTrend.LONE


def test_state_round_trips_through_json_mid_stream():
    rng = random.Random(13)
    counts = noisy(rng, 4.0, 200)
    for bucket in (50, 51, 150, 151):
        counts[bucket] += 35
    uninterrupted = feed(SpikeDetector(), counts)

    first = SpikeDetector()
    before = feed(first, counts[:100])
    restored = SpikeDetector.from_dict(json.loads(json.dumps(first.to_dict())))
    assert restored.to_dict() == first.to_dict()
    after = feed(restored, counts[100:], start_bucket=100)
    assert before + after == uninterrupted
    assert [bucket for bucket, _ in uninterrupted] == [50, 150]


def test_foreign_state_starts_fresh():
    detector = SpikeDetector()
    feed(detector, [3] * 5)
    state = detector.to_dict()
    other_bucket = SpikeDetector.from_dict(state, SpikeConfig(bucket=timedelta(minutes=1)))
    assert other_bucket.to_dict()["topics"] == {}
    assert SpikeDetector.from_dict({"version": 99})._topics == {}


def test_late_and_far_apart_observations():
    detector = SpikeDetector()
    detector.observe("refund", T0 + timedelta(hours=2))
    assert detector.observe("refund", T0) is None  # older than the window: ignored
    detector.observe("refund", T0 + timedelta(days=400))
    state = detector.to_dict()["topics"]["refund"]
    assert state["mean"] < 1e-6 and state["recent"] == [[state["current"], 1]]


def test_config_is_validated():
    with pytest.raises(ValueError, match="positive"):
        SpikeDetector(SpikeConfig(bucket=timedelta(0)))
