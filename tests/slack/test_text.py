from __future__ import annotations

import pytest
import regex

from bot.slack.text import (
    clean_controls,
    escape_and_truncate,
    escape_mrkdwn,
    quote_block,
    safe_plain,
    truncate_graphemes,
)

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"
FLAG_JP = "\U0001f1ef\U0001f1f5"


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("<!channel> look", "&lt;!channel&gt; look"),
        ("<!here>", "&lt;!here&gt;"),
        ("<@U123>", "&lt;@U123&gt;"),
        ("<#C1>", "&lt;#C1&gt;"),
        ("<!subteam^S123>", "&lt;!subteam^S123&gt;"),
        ("<http://evil.example|bank.com>", "&lt;http://evil.example|bank.com&gt;"),
        ("fish & chips", "fish &amp; chips"),
        ("already &amp;", "already &amp;amp;"),
    ],
)
def test_escape_mrkdwn_makes_slack_control_sequences_inert(raw: str, escaped: str) -> None:
    assert escape_mrkdwn(raw) == escaped


def test_escaped_text_has_no_raw_angle_brackets() -> None:
    out = escape_mrkdwn("<<<!everyone>>> <mailto:a@b.c|x>")
    assert "<" not in out and ">" not in out


def test_plain_channel_words_are_kept_as_written() -> None:
    # Slack only pings for these with link_names/parse=full, which the bot never sets.
    assert escape_mrkdwn("@channel @here @everyone") == "@channel @here @everyone"


BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"


@pytest.mark.parametrize("control", list(BIDI_CONTROLS))
def test_bidi_controls_become_visible(control: str) -> None:
    out = escape_mrkdwn(f"invoice{control}fdp.exe")
    assert control not in out
    assert f"⟦U+{ord(control):04X}⟧" in out


def test_c0_and_c1_controls_are_removed_but_newline_and_tab_kept() -> None:
    raw = "a\x00b\x07c\x1bd\x7fe\x85f\tg\nh"
    assert clean_controls(raw) == "abcdef\tg\nh"


def test_windows_line_endings_become_newlines() -> None:
    assert clean_controls("one\r\ntwo\rthree") == "one\ntwo\nthree"


def test_truncate_keeps_short_text() -> None:
    assert truncate_graphemes("short", 10) == "short"


def test_truncate_adds_ellipsis_within_limit() -> None:
    out = truncate_graphemes("abcdefghij", 5)
    assert out == "abcd…"
    assert len(out) == 5


@pytest.mark.parametrize("limit", range(30))
def test_truncate_never_splits_a_cluster(limit: int) -> None:
    text = "ab" + FAMILY + "c" + FLAG_JP + "e\u0301" + FAMILY
    boundaries = {0}
    for cluster in regex.findall(r"\X", text):
        boundaries.add(max(boundaries) + len(cluster))
    out = truncate_graphemes(text, limit)
    assert len(out) <= limit
    body = out.removesuffix("…")
    assert text.startswith(body)
    assert len(body) in boundaries


def test_truncate_drops_a_cluster_that_would_not_fit_whole() -> None:
    assert truncate_graphemes("ab" + FAMILY, 8) == "ab…"


def test_truncate_tiny_limit_without_room_for_ellipsis() -> None:
    assert truncate_graphemes("abc", 0) == ""
    assert truncate_graphemes("abc", 1) == "…"


def test_safe_plain_cleans_but_does_not_escape() -> None:
    assert safe_plain("A & <B>\u202e", None) == "A & <B>⟦U+202E⟧"
    assert safe_plain("x" * 200, 150) == "x" * 149 + "…"


def test_escape_and_truncate_counts_the_escaped_length() -> None:
    out = escape_and_truncate("<" * 100, 20)
    assert len(out) <= 20
    assert out == "&lt;" * 4 + "…"


def test_quote_block_quotes_every_line_and_escapes() -> None:
    assert quote_block("hi <!channel>\n\nbye", 100) == ">hi &lt;!channel&gt;\n>\n>bye"


def test_quote_block_truncates_within_limit() -> None:
    text = "line one\n" + "x" * 500
    out = quote_block(text, 50)
    assert len(out) <= 50
    assert out.startswith(">line one\n>")
    assert out.endswith("…")


def test_quote_block_never_cuts_an_entity() -> None:
    for limit in range(1, 30):
        out = quote_block("a&b<c>d" * 3, limit)
        assert len(out) <= limit
        body = out.removesuffix("…")
        assert not body.endswith(("&", "&a", "&am", "&l", "&lt", "&g", "&gt"))
