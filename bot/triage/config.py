"""Triage settings as plain frozen values; the TOML loader maps `[triage]` onto these."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_URGENCY_WORDS: tuple[str, ...] = (
    "refund",
    "cancel",
    "outage",
    "broken",
    "lawsuit",
    "down",
    "charged",
    "scam",
    "hacked",
    "not working",
)

DEFAULT_FOLLOWER_TIERS: tuple[tuple[int, int], ...] = (
    (1_000_000, 40),
    (100_000, 30),
    (10_000, 20),
    (1_000, 10),
)


@dataclass(frozen=True, slots=True)
class PriorityWeights:
    """Points each signal adds; a level is reached when the sum crosses its threshold."""

    base: int = 20
    negative: int = 25
    very_negative: int = 35
    positive: int = -10
    urgency_first: int = 30
    urgency_each_more: int = 5
    urgency_max: int = 40
    follower_tiers: tuple[tuple[int, int], ...] = DEFAULT_FOLLOWER_TIERS
    vip: int = 40
    known_customer: int = 15
    verified: int = 10
    spam: int = -60


@dataclass(frozen=True, slots=True)
class PriorityThresholds:
    urgent: int = 80
    high: int = 50
    normal: int = 15


@dataclass(frozen=True, slots=True)
class BotLikeRule:
    """An account looks automated when its handle carries many digits and nobody follows it."""

    min_handle_digits: int = 6
    max_followers: int = 0


@dataclass(frozen=True, slots=True)
class TriageConfig:
    urgency_words: tuple[str, ...] = DEFAULT_URGENCY_WORDS
    vip_handles: frozenset[str] = frozenset()
    excluded_handles: frozenset[str] = frozenset()
    excluded_keywords: tuple[str, ...] = ()
    weights: PriorityWeights = field(default_factory=PriorityWeights)
    thresholds: PriorityThresholds = field(default_factory=PriorityThresholds)
    very_negative_at_or_below: float = -0.5
    bot_like: BotLikeRule = field(default_factory=BotLikeRule)
    repeated_text_min_copies: int = 2
    """How many earlier copies of the same text by one author make a post 'repeated'."""
