"""`[triage]` in the config file: typed, checked with locations, and driving priority weights."""

from __future__ import annotations

import time
import tomllib
from pathlib import Path
from typing import Any

import pytest

from bot.services.triage import Triage
from bot.settings import ConfigError, Environment, Settings, parse_file_config
from bot.triage.priority import PriorityLevel, score_priority
from bot.triage.routing import SpamAction
from bot.triage.sentiment import Sentiment, SentimentLabel
from bot.triage.settings import TriageSettings
from bot.triage.signals import Analyzers, AuthorHistory

from .conftest import make_mention
from .test_priority import NEG, make_signals

ROOT = Path(__file__).resolve().parents[2]
U, H, N, L = PriorityLevel.URGENT, PriorityLevel.HIGH, PriorityLevel.NORMAL, PriorityLevel.LOW


def problems_of(triage: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_file_config({"triage": triage}, origin="md.toml")
    return caught.value.problems


def test_broken_rules_are_reported_with_their_location() -> None:
    found = problems_of({
        "routing": [
            {"channel": "C0OK", "match": {"languages": ["eng"], "priority": ["hot"],
                                          "colour": "red"}},
            {"match": {"keywords": ["refund", " "]}},
            {"channel": "#billing", "match": {"vip": "yes"}},
        ],
        "weights": {"negativ": 30},
        "thresholds": {"urgent": 10, "high": 50},
        "spam": "delete",
    })
    assert found == [
        "md.toml: triage.spam: Input should be 'review' or 'autoclose'",
        "md.toml: triage.weights.negativ: unknown key",
        "md.toml: triage.thresholds: thresholds must satisfy urgent > high > normal",
        "md.toml: triage.routing[0].match.languages: 'eng' is not a two-letter ISO 639-1 "
        "code like 'en'",
        "md.toml: triage.routing[0].match.priority[0]: Input should be 'urgent', 'high', "
        "'normal' or 'low'",
        "md.toml: triage.routing[0].match.colour: unknown key",
        "md.toml: triage.routing[1].channel: Field required",
        "md.toml: triage.routing[1].match.keywords: must not contain an empty word",
        "md.toml: triage.routing[2].channel: '#billing' is not a Slack channel id (C…, G… "
        "or D…)",
        "md.toml: triage.routing[2].match.vip: Input should be a valid boolean",
    ]


def test_a_catch_all_rule_before_others_is_reported() -> None:
    settings = TriageSettings.model_validate({"routing": [
        {"channel": "C0A", "match": {"networks": "x"}},
        {"channel": "C0B"},
        {"channel": "C0C", "match": {"keywords": "refund"}},
    ]})
    assert settings.problems() == [
        "triage.routing[1].match: matches every mention, so rules 2..2 never apply"]


def test_check_config_reports_triage_problems(tmp_path: Path) -> None:
    config = tmp_path / "mentiondesk.toml"
    config.write_text('[[triage.routing]]\nchannel = "C0ALL"\n'
                      '[[triage.routing]]\nchannel = "C0X"\nmatch = { networks = ["x"] }\n')
    from bot.checks import check_config
    from bot.settings import load_file_config

    settings = Settings(env=Environment(mentiondesk_config=str(config)),
                        file=load_file_config(config))
    assert (f"{config}: triage.routing[0].match: matches every mention, so rules 1..1 never "
            "apply") in check_config(settings)


def test_the_example_config_parses_and_builds() -> None:
    data = tomllib.loads((ROOT / "mentiondesk.example.toml").read_text(encoding="utf-8"))
    file = parse_file_config(data)
    setup = file.triage.setup(default_channel="C0M", review_channel="C0R")
    assert setup.rules and setup.spikes is not None and setup.grouping is not None
    assert file.triage.problems() == []


# Config-driven weights: (config overrides, signals, expected level, expected reasons).
WEIGHTED: list[tuple[str, dict[str, Any], dict[str, Any], PriorityLevel, tuple[str, ...]]] = [
    ("defaults: negative is normal", {}, NEG, N, ("negative",)),
    ("negative weighs more", {"weights": {"negative": 40}}, NEG, H, ("negative",)),
    ("lower bar for urgent", {"thresholds": {"urgent": 40, "high": 30, "normal": 10}}, NEG, U,
     ("negative",)),
    ("followers tiers from config", {"weights": {"follower_tiers": [[500, 60]]}},
     {"followers": 800}, U, ("800 followers",)),
    ("no points for reach", {"weights": {"follower_tiers": []}}, {"followers": 10**7}, N, ()),
    ("known customers matter", {"weights": {"known_customer": 35}},
     {"is_known_customer": True, "case_count": 2}, H, ("known customer (2 cases)",)),
    ("zero-weight signal gives no reason", {"weights": {"verified": 0}}, {"verified": True},
     N, ()),
    ("spam penalty", {"weights": {"spam": -5}}, {"spam_reasons": ("link only",)}, N,
     ("possible spam: link only",)),
]


@pytest.mark.parametrize(("name", "overrides", "signals", "level", "reasons"), WEIGHTED,
                         ids=[case[0] for case in WEIGHTED])
def test_config_driven_weights(name: str, overrides: dict[str, Any], signals: dict[str, Any],
                               level: PriorityLevel, reasons: tuple[str, ...]) -> None:
    config = TriageSettings.model_validate(overrides).setup(
        default_channel="C0M", review_channel="").config
    priority = score_priority(make_signals(**signals), config)
    assert (priority.level, priority.reasons) == (level, reasons), name


def test_urgency_words_and_vips_come_from_config(analyzers: Analyzers) -> None:
    setup = TriageSettings.model_validate({
        "urgency_words": ["chargeback"], "vip_handles": ["@Mayor"], "spam": "autoclose",
        "routing": [{"channel": "C0VIP", "match": {"vip": True}}],
    }).setup(default_channel="C0M", review_channel="C0R")
    triage = Triage(setup, analyzers)
    got = triage.assess(make_mention("filing a chargeback today", handle="@mayor"),
                        AuthorHistory())
    assert got.signals is not None and got.signals.urgency_words == ("chargeback",)
    assert got.decision.channel == "C0VIP"
    assert got.topics == ("chargeback",)
    spam = triage.assess(make_mention("https://x.example/deal"), AuthorHistory())
    assert spam.decision.spam_action is SpamAction.AUTOCLOSE


class _BrokenSentiment:
    """A model that fails on every call, as a corrupt lexicon or a bug would."""

    def score(self, text: str) -> Sentiment:
        raise RuntimeError("lexicon is corrupt")


def test_a_failing_model_degrades_to_neutral_normal_default(analyzers: Analyzers) -> None:
    triage = Triage(analyzers=Analyzers(_BrokenSentiment(), analyzers.language))  # type: ignore[arg-type]
    got = triage.assess(make_mention("I want a refund"), AuthorHistory())
    assert got.signals is None
    assert (got.priority.level, got.priority.reasons) == (N, ())
    assert got.decision.channel == triage.setup.default_channel
    values = got.mention_values()
    assert values["sentiment"] == SentimentLabel.NEUTRAL and values["signals"]["failed"]


@pytest.mark.parametrize(
    "text",
    ["", "   ", "😀🔥😀", "x" * 100_000, "refund " * 15_000, "注文した商品がまだ届きません",
     "Мой заказ не пришёл", "طلبي لم يصل بعد", "\x00\x01", "\ud800 broken"],
    ids=["empty", "spaces", "emoji", "100k", "100k-words", "ja", "ru", "ar", "controls",
         "surrogate"],
)
def test_any_text_gets_an_assessment_quickly(analyzers: Analyzers, text: str) -> None:
    triage = Triage(analyzers=analyzers)
    began = time.perf_counter()
    got = triage.assess(make_mention(text), AuthorHistory())
    assert time.perf_counter() - began < 0.5
    assert got.signals is not None
    assert got.priority.level in PriorityLevel
    if not text.strip() or text.startswith("😀"):
        assert got.signals.language is None
    assert -1.0 <= got.signals.sentiment <= 1.0
