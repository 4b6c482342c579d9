from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.triage.config import BotLikeRule, TriageConfig
from bot.triage.sentiment import SentimentLabel
from bot.triage.signals import (
    SPAM_BOT_LIKE,
    SPAM_LINK_ONLY,
    AuthorHistory,
    compute_signals,
    is_link_only,
)
from bot.triage.text import KeywordMatcher, fingerprint

from .conftest import make_mention

CONFIG = TriageConfig(
    vip_handles=frozenset({"@BigCo", "ceo@example.social"}),
    excluded_handles=frozenset({"@spammer"}),
    excluded_keywords=("crypto giveaway", "free followers"),
)


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("I want a refund", ("refund",)),
        ("REFUND!!!", ("refund",)),
        ("refund? refund.", ("refund",)),
        ("got refunded already", ()),
        ("the site is down", ("down",)),
        ("downtown store", ()),
        ("sundown sale", ()),
        ("app is not working", ("not working",)),
        ("app is NOT\n  working", ("not working",)),
        ("notworking", ()),
        ("I was charged twice and want to cancel", ("charged", "cancel")),
        ("cancellation fee?", ()),
        ("#refund please", ("refund",)),
        ("scam_alert", ()),
        ("ＲＥＦＵＮＤ now", ("refund",)),
        ("", ()),
    ],
)
def test_default_urgency_words_match_whole_words(analyzers, text, found):
    signals = compute_signals(make_mention(text), config=CONFIG, analyzers=analyzers)
    assert signals.urgency_words == found


@pytest.mark.parametrize(
    ("keywords", "text", "found"),
    [
        (("reembolso",), "¡Reembolso ya!", ("reembolso",)),
        (("rückerstattung",), "Wo bleibt meine RÜCKERSTATTUNG?", ("rückerstattung",)),
        (("café",), "le cafés", ()),
        (("返金",), "返金してください", ("返金",)),
        (("déçu",), "très DÉÇU", ("déçu",)),
        (("straße",), "STRASSE gesperrt", ("straße",)),
        (("a.b",), "axb", ()),
    ],
)
def test_keyword_matcher_is_unicode_aware(keywords, text, found):
    assert KeywordMatcher(keywords).find(text) == found


def test_spam_signals(analyzers):
    link = compute_signals(
        make_mention("https://spam.example/deal #ad @acme"), config=CONFIG, analyzers=analyzers
    )
    assert link.link_only and SPAM_LINK_ONLY in link.spam_reasons
    linked_words = compute_signals(
        make_mention("my order is late https://acme.example/o/1"),
        config=CONFIG,
        analyzers=analyzers,
    )
    assert not linked_words.link_only and linked_words.spam_reasons == ()

    excluded = compute_signals(
        make_mention("hello @acme", handle="@SPAMMER"), config=CONFIG, analyzers=analyzers
    )
    assert excluded.spam_reasons == ("excluded handle @spammer",)

    keyword = compute_signals(
        make_mention("Huge CRYPTO giveaway today"), config=CONFIG, analyzers=analyzers
    )
    assert keyword.spam_reasons == ("excluded keyword 'crypto giveaway'",)

    bot = compute_signals(
        make_mention("great deal", handle="@user84736251", followers=0),
        config=CONFIG,
        analyzers=analyzers,
    )
    assert bot.bot_like and bot.spam_reasons == (SPAM_BOT_LIKE,)
    followed = compute_signals(
        make_mention("great deal", handle="@user84736251", followers=12),
        config=CONFIG,
        analyzers=analyzers,
    )
    assert not followed.bot_like
    looser = TriageConfig(bot_like=BotLikeRule(min_handle_digits=3, max_followers=10))
    assert compute_signals(
        make_mention("hi", handle="@bob123", followers=5), config=looser, analyzers=analyzers
    ).bot_like


def test_repeated_text_by_the_same_author(analyzers):
    text = "@acme WHERE IS MY ORDER?? https://t.co/a"
    history = AuthorHistory(recent_texts=("@acme where is my order https://t.co/b",) * 2)
    repeated = compute_signals(make_mention(text), config=CONFIG, history=history,
                               analyzers=analyzers)
    assert repeated.repeated_text and "repeated text" in repeated.spam_reasons
    once = AuthorHistory(recent_texts=("@acme where is my order",))
    assert not compute_signals(make_mention(text), config=CONFIG, history=once,
                               analyzers=analyzers).repeated_text


def test_author_signals(analyzers):
    vip = compute_signals(
        make_mention("hi", handle="@bigco", followers=48_000, verified=True),
        config=CONFIG,
        history=AuthorHistory(case_count=3),
        analyzers=analyzers,
    )
    assert (vip.is_vip, vip.followers, vip.verified, vip.is_known_customer, vip.case_count) == (
        True, 48_000, True, True, 3)
    mastodon = compute_signals(
        make_mention("hi", handle="@CEO@example.social"), config=CONFIG, analyzers=analyzers
    )
    assert mastodon.is_vip
    stranger = compute_signals(make_mention("hi", handle=""), config=CONFIG, analyzers=analyzers)
    assert not stranger.is_vip and not stranger.is_known_customer
    crm = compute_signals(make_mention("hi"), config=CONFIG,
                          history=AuthorHistory(is_customer=True), analyzers=analyzers)
    assert crm.is_known_customer and crm.case_count == 0


def test_sentiment_and_language_are_carried(analyzers):
    signals = compute_signals(
        make_mention("@acme worst service ever, I am furious"), config=CONFIG, analyzers=analyzers
    )
    assert signals.sentiment_label is SentimentLabel.NEGATIVE and signals.sentiment < 0
    assert signals.language == "en"


@pytest.mark.parametrize(
    "text",
    ["", "📦📦📦", "ﷺ ꧁꧂ 𒀱", "x" * 100_000, "refund " * 20_000, "\x00" * 50, "\ud83d"],
)
def test_degrades_on_odd_text(analyzers, text):
    signals = compute_signals(make_mention(text), config=CONFIG, analyzers=analyzers)
    assert signals.language is None
    assert signals.sentiment_label is SentimentLabel.NEUTRAL


def test_is_link_only():
    assert is_link_only("https://a.example")
    assert is_link_only("  www.a.example/x  👉 @acme #")
    assert not is_link_only("")
    assert is_link_only("https://a.example #deal #sale")
    assert not is_link_only("look https://a.example")


def test_fingerprint_ignores_retweet_urls_handles_and_punctuation():
    original = "Our app is down for some users. We're on it! https://status.acme.example"
    assert fingerprint(f"RT @acme: {original}") == fingerprint(original)
    assert fingerprint("RT @a: RT @b: Hello,   WORLD!! https://t.co/x") == "hello world"


@settings(max_examples=150, deadline=None)
@given(
    text=st.text(max_size=400),
    handle=st.text(max_size=40),
    followers=st.integers(min_value=0, max_value=10**10),
    lang=st.none() | st.text(max_size=12),
    recent=st.lists(st.text(max_size=60), max_size=3),
)
def test_compute_signals_never_raises(analyzers, text, handle, followers, lang, recent):
    mention = make_mention(text, handle=handle, followers=followers, lang=lang)
    signals = compute_signals(
        mention, config=CONFIG, history=AuthorHistory(recent_texts=tuple(recent)),
        analyzers=analyzers,
    )
    assert -1.0 <= signals.sentiment <= 1.0
    assert signals.language is None or len(signals.language) == 2
