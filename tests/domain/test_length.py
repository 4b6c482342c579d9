from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.domain.length import (
    check_length,
    count_graphemes,
    count_mastodon,
    count_x,
    counter_for,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "length"
X_CASES = json.loads((DATA / "x_conformance_v3.json").read_text(encoding="utf-8"))

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # 👨‍👩‍👧‍👦
FLAG_JP = "\U0001f1ef\U0001f1f5"
THUMBS_MEDIUM = "\U0001f44d\U0001f3fd"
E_ACUTE_COMBINING = "e\u0301"


@pytest.mark.parametrize("case", X_CASES, ids=[c["description"][:60] for c in X_CASES])
def test_x_matches_the_twitter_text_v3_conformance_suite(case: dict) -> None:
    assert count_x(case["text"]) == case["weighted_length"]
    result = check_length("x", case["text"])
    assert result.ok is case["valid"]
    assert result.length == case["weighted_length"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hello", 5),
        ("日本語", 6),
        ("https://example.com/a/very/long/path/" + "x" * 200, 23),
        (FAMILY, 2),
        (FLAG_JP, 2),
        (THUMBS_MEDIUM, 2),
        ("\u2018quoted\u2019", 8),
    ],
)
def test_x_weights(text: str, expected: int) -> None:
    assert count_x(text) == expected


def test_x_over_the_limit_says_by_how_much() -> None:
    result = check_length("x", "a" * 312)
    assert (result.length, result.limit, result.ok) == (312, 280, False)
    assert result.unit == "weighted characters"
    assert result.detail == "312/280 weighted characters — 32 over"


def test_x_under_the_limit_says_what_is_left() -> None:
    assert check_length("x", "thanks!").detail == "7/280 weighted characters — 273 left"


def test_x_rejects_characters_twitter_text_calls_invalid() -> None:
    result = check_length("x", "hi\ufeff")
    assert not result.ok
    assert "does not accept" in result.detail


def test_twitter_is_an_alias_of_x() -> None:
    assert check_length("twitter", "a" * 281).limit == 280


def test_mastodon_counts_urls_as_23_and_remote_mentions_as_local_part() -> None:
    text = "@ann@example.social see https://example.com/" + "p" * 100
    # "@ann" + " see " + 23
    assert count_mastodon(text) == 4 + 5 + 23


def test_mastodon_does_not_shorten_urls_without_scheme_or_email_like_text() -> None:
    assert count_mastodon("example.com") == len("example.com")
    assert count_mastodon("mail ann@example.com") == len("mail ann@example.com")


def test_mastodon_counts_grapheme_clusters() -> None:
    assert count_mastodon(FAMILY + FLAG_JP + E_ACUTE_COMBINING) == 3


def test_mastodon_default_and_instance_limit() -> None:
    assert check_length("mastodon", "a" * 500).ok
    assert not check_length("mastodon", "a" * 501).ok
    custom = check_length("mastodon", "a" * 501, limit=1000)
    assert custom.ok and custom.limit == 1000


def test_mastodon_long_link_fits_where_raw_length_would_not() -> None:
    text = "a" * 470 + " https://example.com/" + "x" * 100
    assert len(text) > 500
    assert check_length("mastodon", text).ok


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hello", 5),
        (FAMILY, 1),
        (FLAG_JP, 1),
        (THUMBS_MEDIUM, 1),
        (E_ACUTE_COMBINING, 1),
        ("a" + "\u0301" * 5, 1),
        ("\r\n", 1),
        ("नमस्ते", 3),
    ],
)
def test_graphemes(text: str, expected: int) -> None:
    assert count_graphemes(text) == expected


def test_bluesky_300_graphemes_fit_even_when_code_points_do_not() -> None:
    text = FAMILY * 300  # 300 graphemes, 7500 bytes
    result = check_length("bluesky", FLAG_JP * 300)
    assert result.length == 300 and result.byte_length == 2400 and result.ok
    too_many_bytes = check_length("bluesky", text)
    assert too_many_bytes.length == 300
    assert not too_many_bytes.ok
    assert too_many_bytes.detail.endswith("4,500 bytes over")


def test_bluesky_grapheme_limit() -> None:
    assert check_length("bluesky", "a" * 300).ok
    result = check_length("bluesky", "a" * 301)
    assert not result.ok
    assert result.detail == "301/300 graphemes, 301/3,000 bytes — 1 over"


def test_bluesky_limits_object_reports_both_limits() -> None:
    limits = counter_for("bluesky")
    assert (limits.max_length, limits.max_bytes, limits.unit) == (300, 3000, "graphemes")
    assert limits.count(E_ACUTE_COMBINING * 3) == 3


def test_reddit_and_generic_limits() -> None:
    assert check_length("reddit", "a" * 10_000).ok
    assert not check_length("reddit", "a" * 10_001).ok
    assert check_length("generic", "a" * 10_000).ok
    assert not check_length("generic", "a" * 51, limit=50).ok


def test_unknown_network_is_measured_like_generic() -> None:
    assert counter_for("forum").max_length == 10_000


def test_empty_reply_never_fits() -> None:
    result = check_length("mastodon", "   ")
    assert not result.ok
    assert "empty" in result.detail


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        counter_for("generic", 0)
