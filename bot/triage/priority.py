"""Priority from signals: a weighted sum whose parts double as the reasons shown on the card."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.triage.config import TriageConfig
from bot.triage.sentiment import SentimentLabel
from bot.triage.signals import Signals


class PriorityLevel(StrEnum):
    URGENT = "urgent"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


PRIORITY_LEVELS: tuple[PriorityLevel, ...] = tuple(PriorityLevel)


@dataclass(frozen=True, slots=True)
class Priority:
    level: PriorityLevel
    score: int
    reasons: tuple[str, ...]


_UNITS = ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "k"))


def format_count(value: int) -> str:
    """Compact like the networks show it (1.2k, 48k, 1.3M); truncates so it never overstates."""
    if value < 1_000:
        return str(max(0, value))
    for unit, suffix in _UNITS:
        if value >= unit:
            if value < 10 * unit:
                tenths = value * 10 // unit
                whole, frac = divmod(tenths, 10)
                return f"{whole}{suffix}" if frac == 0 else f"{whole}.{frac}{suffix}"
            return f"{value // unit}{suffix}"
    return str(value)


def _quote_words(words: tuple[str, ...]) -> str:
    return ", ".join(f"'{word}'" for word in words)


def score_priority(signals: Signals, config: TriageConfig) -> Priority:
    weights = config.weights
    parts: list[tuple[int, str]] = []

    if signals.sentiment_label is SentimentLabel.NEGATIVE:
        if signals.sentiment <= config.very_negative_at_or_below:
            parts.append((weights.very_negative, "very negative"))
        else:
            parts.append((weights.negative, "negative"))
    elif signals.sentiment_label is SentimentLabel.POSITIVE:
        parts.append((weights.positive, "positive"))

    if signals.urgency_words:
        extra = weights.urgency_each_more * (len(signals.urgency_words) - 1)
        points = min(weights.urgency_max, weights.urgency_first + extra)
        parts.append((points, f"says {_quote_words(signals.urgency_words)}"))

    if signals.is_vip:
        parts.append((weights.vip, "VIP"))

    for minimum, points in sorted(weights.follower_tiers, reverse=True):
        if signals.followers >= minimum:
            parts.append((points, f"{format_count(signals.followers)} followers"))
            break

    if signals.is_known_customer:
        label = "known customer"
        if signals.case_count:
            noun = "case" if signals.case_count == 1 else "cases"
            label = f"known customer ({signals.case_count} {noun})"
        parts.append((weights.known_customer, label))

    if signals.verified:
        parts.append((weights.verified, "verified"))

    if signals.spam_reasons:
        parts.append((weights.spam, f"possible spam: {', '.join(signals.spam_reasons)}"))

    score = weights.base + sum(points for points, _ in parts)
    # Stable sort: equal weights keep the order above, which reads most important first.
    ordered = sorted(parts, key=lambda part: -part[0])
    return Priority(
        level=level_for(score, config),
        score=score,
        reasons=tuple(reason for points, reason in ordered if points != 0),
    )


def level_for(score: int, config: TriageConfig) -> PriorityLevel:
    thresholds = config.thresholds
    if score >= thresholds.urgent:
        return PriorityLevel.URGENT
    if score >= thresholds.high:
        return PriorityLevel.HIGH
    if score >= thresholds.normal:
        return PriorityLevel.NORMAL
    return PriorityLevel.LOW
