from __future__ import annotations

from typing import Any

import pytest

from bot.triage.priority import Priority, PriorityLevel
from bot.triage.routing import (
    RouteDecision,
    RoutingRule,
    RuleMatch,
    SpamAction,
    SpamPolicy,
    route,
    rules_from_raw,
    validate_rules,
)

from .conftest import make_mention
from .test_priority import make_signals

RAW_RULES: list[dict[str, Any]] = [
    {"channel": "C_VIP", "match": {"vip": True}},
    {"channel": "C_URGENT_X", "match": {"networks": ["x"], "priority": ["urgent"]}},
    {"channel": "C_ES", "match": {"languages": ["es", "pt"]}},
    {"channel": "C_BILLING", "match": {"keywords": ["refund", "charged", "invoice"]}},
    {"channel": "C_REDDIT_HIGH", "match": {"networks": "Reddit", "priority": ["urgent", "high"]}},
    {"channel": "C_DE_BILLING", "match": {"languages": "de", "keywords": "rechnung"}},
    {"channel": "C_NOT_VIP_URGENT", "match": {"priority": "urgent", "vip": False}},
]
RULES = rules_from_raw(RAW_RULES)
DEFAULT = "C_DEFAULT"

ROUTES: list[tuple[str, dict[str, Any], dict[str, Any], PriorityLevel, str, int | None]] = [
    ("vip wins first", {"source": "mastodon"}, {"is_vip": True}, PriorityLevel.LOW, "C_VIP", 0),
    ("vip on x urgent still vip", {"source": "x"}, {"is_vip": True}, PriorityLevel.URGENT,
     "C_VIP", 0),
    ("urgent on x", {"source": "x"}, {}, PriorityLevel.URGENT, "C_URGENT_X", 1),
    ("high on x is not urgent", {"source": "x", "text": "hi"}, {}, PriorityLevel.HIGH,
     DEFAULT, None),
    ("spanish", {"source": "x"}, {"language": "es"}, PriorityLevel.NORMAL, "C_ES", 2),
    ("portuguese", {"source": "bluesky"}, {"language": "pt"}, PriorityLevel.HIGH, "C_ES", 2),
    ("unknown language skips language rules", {"text": "hola"}, {"language": None},
     PriorityLevel.NORMAL, DEFAULT, None),
    ("billing keyword", {"text": "Where is my REFUND?"}, {}, PriorityLevel.NORMAL,
     "C_BILLING", 3),
    ("keyword needs whole word", {"text": "refunded, thanks"}, {}, PriorityLevel.NORMAL,
     DEFAULT, None),
    ("spanish beats billing by order", {"text": "refund"}, {"language": "es"},
     PriorityLevel.NORMAL, "C_ES", 2),
    ("reddit high, case-insensitive network", {"source": "reddit"}, {}, PriorityLevel.HIGH,
     "C_REDDIT_HIGH", 4),
    ("reddit normal", {"source": "reddit"}, {}, PriorityLevel.NORMAL, DEFAULT, None),
    ("german and keyword", {"text": "Meine Rechnung ist falsch"}, {"language": "de"},
     PriorityLevel.NORMAL, "C_DE_BILLING", 5),
    ("german without keyword", {"text": "Hallo"}, {"language": "de"}, PriorityLevel.NORMAL,
     DEFAULT, None),
    ("keyword without german", {"text": "rechnung"}, {"language": "nl"}, PriorityLevel.NORMAL,
     DEFAULT, None),
    ("urgent elsewhere not vip", {"source": "mastodon"}, {}, PriorityLevel.URGENT,
     "C_NOT_VIP_URGENT", 6),
    ("plain", {"source": "mastodon", "text": "nice"}, {}, PriorityLevel.NORMAL, DEFAULT, None),
]


@pytest.mark.parametrize(
    ("name", "mention_kw", "signal_kw", "level", "channel", "index"),
    ROUTES,
    ids=[row[0] for row in ROUTES],
)
def test_routing_table(name, mention_kw, signal_kw, level, channel, index):
    kwargs = {"text": "hello", **mention_kw}
    decision = route(
        make_mention(kwargs.pop("text"), **kwargs),
        make_signals(**signal_kw),
        Priority(level=level, score=0, reasons=()),
        RULES,
        DEFAULT,
    )
    assert decision == RouteDecision(channel=channel, rule_index=index), name


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (None, RouteDecision(DEFAULT, None, SpamAction.REVIEW)),
        (SpamPolicy(SpamAction.REVIEW, "C_SPAM"), RouteDecision("C_SPAM", None, SpamAction.REVIEW)),
        (SpamPolicy(SpamAction.AUTOCLOSE, "C_SPAM"),
         RouteDecision(None, None, SpamAction.AUTOCLOSE)),
    ],
)
def test_spam_policy_comes_before_rules(policy, expected):
    signals = make_signals(is_vip=True, spam_reasons=("link only",))
    priority = Priority(PriorityLevel.LOW, 0, ())
    assert route(make_mention("x"), signals, priority, RULES, DEFAULT, policy) == expected


def test_no_rules_means_default():
    decision = route(make_mention("x"), make_signals(), Priority(PriorityLevel.URGENT, 99, ()),
                     [], DEFAULT)
    assert decision == RouteDecision(DEFAULT, None)


def test_empty_match_catches_everything():
    rules = [RoutingRule(RuleMatch(), "C_ALL")]
    decision = route(make_mention("x"), make_signals(), Priority(PriorityLevel.LOW, 0, ()),
                     rules, DEFAULT)
    assert decision == RouteDecision("C_ALL", 0)


def test_rules_from_raw_builds_typed_rules():
    assert RULES[4].match.networks == frozenset({"reddit"})
    assert RULES[4].match.priorities == frozenset({PriorityLevel.URGENT, PriorityLevel.HIGH})
    assert RULES[5].match.keywords == ("rechnung",)
    assert RULES[6].match.vip is False
    assert RULES[0].match.vip is True and RULES[0].match.networks == frozenset()


def test_rules_from_raw_refuses_bad_config():
    with pytest.raises(ValueError, match=r"routing\[0\]\.match\.priority: 'urgnt'"):
        rules_from_raw([{"channel": "C", "match": {"priority": "urgnt"}}])


VALIDATION: list[tuple[Any, list[str]]] = [
    (RAW_RULES, []),
    ([], []),
    ({"channel": "C"}, ["routing: expected a list of [[routing]] tables"]),
    (
        [{"channel": "C1"}, {"channel": "C2"}, {"channel": "C3", "match": {"priority": "urgnt"}}],
        ["routing[2].match.priority: 'urgnt' is not one of urgent, high, normal, low"],
    ),
    (
        [{"channel": "C", "match": {"priority": ["high", "Urgent"]}}],
        ["routing[0].match.priority: 'Urgent' is not one of urgent, high, normal, low"],
    ),
    ([{"match": {}}], ["routing[0].channel: a channel id is required"]),
    ([{"channel": "  "}], ["routing[0].channel: a channel id is required"]),
    (["C1"], ["routing[0]: expected a table with 'channel' and 'match'"]),
    ([{"channel": "C", "when": {}}], ["routing[0].when: unknown key (use match, channel)"]),
    (
        [{"channel": "C", "match": {"network": ["x"]}}],
        ["routing[0].match.network: unknown condition "
         "(use networks, languages, keywords, priority, vip)"],
    ),
    ([{"channel": "C", "match": "vip"}], ["routing[0].match: expected a table of conditions"]),
    (
        [{"channel": "C", "match": {"languages": ["en", "eng", "EN"]}}],
        [
            "routing[0].match.languages: 'eng' is not a two-letter ISO 639-1 code like 'en'",
            "routing[0].match.languages: 'EN' is not a two-letter ISO 639-1 code like 'en'",
        ],
    ),
    (
        [{"channel": "C", "match": {"keywords": ["ok", 3, ""]}}],
        [
            "routing[0].match.keywords[1]: expected a non-empty string, got 3",
            "routing[0].match.keywords[2]: expected a non-empty string, got ''",
        ],
    ),
    (
        [{"channel": "C", "match": {"networks": 5}}],
        ["routing[0].match.networks: expected a string or a list of strings"],
    ),
    ([{"channel": "C", "match": {"vip": "yes"}}],
     ["routing[0].match.vip: expected true or false, got 'yes'"]),
    (
        [{"channel": 7, "match": {"vip": 1, "priority": "low"}}],
        ["routing[0].channel: a channel id is required",
         "routing[0].match.vip: expected true or false, got 1"],
    ),
]


@pytest.mark.parametrize(("raw", "problems"), VALIDATION)
def test_validate_rules(raw, problems):
    assert validate_rules(raw) == problems


def test_rule_match_built_in_code_is_case_insensitive():
    rules = [RoutingRule(RuleMatch(networks=frozenset({"Mastodon"}), languages=frozenset({"DE"})),
                         "C_DE")]
    signals = make_signals(language="de")
    priority = Priority(PriorityLevel.NORMAL, 0, ())
    mention = make_mention("Hallo", source="mastodon")
    assert route(mention, signals, priority, rules, DEFAULT) == RouteDecision("C_DE", 0)
