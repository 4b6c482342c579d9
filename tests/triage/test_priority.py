from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from bot.triage.config import PriorityThresholds, PriorityWeights, TriageConfig
from bot.triage.priority import PriorityLevel, format_count, level_for, score_priority
from bot.triage.sentiment import SentimentLabel
from bot.triage.signals import Signals

U, H, N, L = PriorityLevel.URGENT, PriorityLevel.HIGH, PriorityLevel.NORMAL, PriorityLevel.LOW
NEG = {"sentiment": -0.3, "sentiment_label": SentimentLabel.NEGATIVE}
VERY_NEG = {"sentiment": -0.8, "sentiment_label": SentimentLabel.NEGATIVE}
POS = {"sentiment": 0.6, "sentiment_label": SentimentLabel.POSITIVE}


def make_signals(**overrides: Any) -> Signals:
    base = Signals(
        sentiment=0.0,
        sentiment_label=SentimentLabel.NEUTRAL,
        language="en",
        followers=0,
        verified=False,
        urgency_words=(),
        is_known_customer=False,
        case_count=0,
        is_vip=False,
        spam_reasons=(),
        link_only=False,
        repeated_text=False,
        bot_like=False,
    )
    return replace(base, **overrides)


CASES: list[tuple[str, dict[str, Any], PriorityLevel, tuple[str, ...]]] = [
    ("plain question", {}, N, ()),
    ("praise", POS, L, ("positive",)),
    ("negative", NEG, N, ("negative",)),
    ("very negative", VERY_NEG, H, ("very negative",)),
    ("refund alone", {"urgency_words": ("refund",)}, H, ("says 'refund'",)),
    ("negative refund", {**NEG, "urgency_words": ("refund",)}, H,
     ("says 'refund'", "negative")),
    ("very negative refund", {**VERY_NEG, "urgency_words": ("refund",)}, U,
     ("very negative", "says 'refund'")),
    ("two urgency words", {**NEG, "urgency_words": ("charged", "refund")}, U,
     ("says 'charged', 'refund'", "negative")),
    ("urgency capped", {"urgency_words": ("a", "b", "c", "d", "e", "f")}, H,
     ("says 'a', 'b', 'c', 'd', 'e', 'f'",)),
    ("48k followers", {"followers": 48_000}, N, ("48k followers",)),
    ("negative 48k", {**NEG, "followers": 48_000}, H, ("negative", "48k followers")),
    ("negative 1.3M", {**NEG, "followers": 1_300_000}, U, ("1.3M followers", "negative")),
    ("999 followers", {"followers": 999}, N, ()),
    ("1.2k followers", {"followers": 1_250}, N, ("1.2k followers",)),
    ("150k followers", {"followers": 150_000}, H, ("150k followers",)),
    ("VIP", {"is_vip": True}, H, ("VIP",)),
    ("VIP negative", {**NEG, "is_vip": True}, U, ("VIP", "negative")),
    ("VIP praise", {**POS, "is_vip": True}, H, ("VIP", "positive")),
    ("known customer", {"is_known_customer": True, "case_count": 3}, N,
     ("known customer (3 cases)",)),
    ("known customer one case", {**NEG, "is_known_customer": True, "case_count": 1}, H,
     ("negative", "known customer (1 case)")),
    ("CRM customer", {"is_known_customer": True}, N, ("known customer",)),
    ("verified", {"verified": True}, N, ("verified",)),
    ("verified negative 10k", {**NEG, "verified": True, "followers": 12_000}, H,
     ("negative", "12k followers", "verified")),
    ("spam", {"spam_reasons": ("link only",), "link_only": True}, L,
     ("possible spam: link only",)),
    ("spam from a big account", {"spam_reasons": ("bot-like account",), "followers": 2_000_000},
     L, ("2M followers", "possible spam: bot-like account")),
    ("everything", {**VERY_NEG, "urgency_words": ("lawsuit",), "is_vip": True,
                    "followers": 5_000_000, "is_known_customer": True, "case_count": 7,
                    "verified": True}, U,
     ("VIP", "5M followers", "very negative", "says 'lawsuit'", "known customer (7 cases)",
      "verified")),
]


@pytest.mark.parametrize(("name", "overrides", "level", "reasons"), CASES,
                         ids=[case[0] for case in CASES])
def test_priority_table(name, overrides, level, reasons):
    priority = score_priority(make_signals(**overrides), TriageConfig())
    assert (priority.level, priority.reasons) == (level, reasons), name


def test_weights_and_thresholds_come_from_config():
    config = TriageConfig(
        weights=PriorityWeights(negative=100),
        thresholds=PriorityThresholds(urgent=200, high=110, normal=0),
    )
    priority = score_priority(make_signals(**NEG), config)
    assert (priority.level, priority.score) == (H, 120)
    silent = TriageConfig(weights=PriorityWeights(verified=0))
    assert score_priority(make_signals(verified=True), silent).reasons == ()


@pytest.mark.parametrize(
    ("score", "level"), [(80, U), (79, H), (50, H), (49, N), (15, N), (14, L), (-100, L)]
)
def test_level_boundaries(score, level):
    assert level_for(score, TriageConfig()) is level


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0"), (7, "7"), (999, "999"), (1_000, "1k"), (1_050, "1k"), (1_200, "1.2k"),
        (1_299, "1.2k"), (9_999, "9.9k"), (10_000, "10k"), (48_000, "48k"), (48_900, "48k"),
        (999_999, "999k"), (1_000_000, "1M"), (1_300_000, "1.3M"), (25_600_000, "25M"),
        (2_100_000_000, "2.1B"), (-5, "0"),
    ],
)
def test_format_count(value, text):
    assert format_count(value) == text
