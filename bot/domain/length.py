"""Reply length as each network counts it, so a draft is refused before the network refuses it.

Every network counts differently: X weighs code points and shortens links to 23, Mastodon
counts grapheme clusters after shortening links and remote mentions, Bluesky caps both
graphemes and UTF-8 bytes. A draft that "looks short" can still be rejected, so the card shows
the network's own number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import regex
from twitter_text import extract_urls_with_indices, parse_tweet

from bot.connectors.base import ReplyLimits

X_MAX_WEIGHTED = 280
MASTODON_DEFAULT_LIMIT = 500
BLUESKY_MAX_GRAPHEMES = 300
BLUESKY_MAX_BYTES = 3000
REDDIT_MAX_CHARACTERS = 10_000
GENERIC_DEFAULT_LIMIT = 10_000
URL_LENGTH = 23

# twitter-text refuses these outright, whatever the length.
_X_INVALID_CHARACTERS = frozenset("\ufffe\ufeff\uffff")

_GRAPHEME = regex.compile(r"\X")
# Mastodon counts `@user@domain` as `@user`; the shape follows its account mention rule.
_MASTODON_REMOTE_MENTION = re.compile(
    r"(?<![=/\w])@([a-z0-9_]+(?:[a-z0-9_.-]+[a-z0-9_]+)?)@[\w.-]+\w",
    re.IGNORECASE,
)
_ALIASES = {"twitter": "x"}


@dataclass(frozen=True, slots=True)
class LengthCheck:
    """Whether a reply fits, with the numbers a person needs to shorten it."""

    length: int
    limit: int
    unit: str
    ok: bool
    detail: str
    byte_length: int | None = None
    byte_limit: int | None = None


def count_graphemes(text: str) -> int:
    """User-perceived characters: a ZWJ family, a flag or `e` + accent count once."""
    return sum(1 for _ in _GRAPHEME.finditer(text))


def count_x(text: str) -> int:
    """X's weighted length (twitter-text v3 configuration)."""
    return parse_tweet(text).weightedLength


def mastodon_countable_text(text: str) -> str:
    """The text Mastodon measures: every http(s) URL as 23 characters, `@user@domain` as `@user`."""
    urls = extract_urls_with_indices(text, extract_urls_without_protocol=False)
    pieces: list[str] = []
    position = 0
    for entity in urls:
        start, end = entity["indices"]
        pieces.append(_shorten_mentions(text[position:start]))
        pieces.append("x" * URL_LENGTH)
        position = end
    pieces.append(_shorten_mentions(text[position:]))
    return "".join(pieces)


def _shorten_mentions(text: str) -> str:
    return _MASTODON_REMOTE_MENTION.sub(lambda match: "@" + match.group(1), text)


def count_mastodon(text: str) -> int:
    return count_graphemes(mastodon_countable_text(text))


def count_utf8_bytes(text: str) -> int:
    return len(text.encode("utf-8"))


def _network(network: str) -> str:
    key = network.strip().lower()
    return _ALIASES.get(key, key)


def counter_for(network: str, limit: int | None = None) -> ReplyLimits:
    """How replies are measured on `network`; unknown networks are counted like `generic`.

    `limit` overrides the default (a Mastodon instance's own limit, a generic sink's cap).
    """
    key = _network(network)
    if limit is not None and limit <= 0:
        raise ValueError(f"a reply limit must be positive, not {limit}")
    if key == "x":
        return ReplyLimits(limit or X_MAX_WEIGHTED, count_x, "weighted characters")
    if key == "mastodon":
        return ReplyLimits(limit or MASTODON_DEFAULT_LIMIT, count_mastodon, "characters")
    if key == "bluesky":
        return ReplyLimits(
            limit or BLUESKY_MAX_GRAPHEMES, count_graphemes, "graphemes", BLUESKY_MAX_BYTES
        )
    if key == "reddit":
        return ReplyLimits(limit or REDDIT_MAX_CHARACTERS, len, "characters")
    return ReplyLimits(limit or GENERIC_DEFAULT_LIMIT, len, "characters")


def check_length(network: str, text: str, *, limit: int | None = None) -> LengthCheck:
    """Measure `text` the way `network` does and say, in one sentence, whether it fits."""
    limits = counter_for(network, limit)
    return check_with(limits, text, x_rules=_network(network) == "x")


def check_with(limits: ReplyLimits, text: str, *, x_rules: bool = False) -> LengthCheck:
    """Measure `text` with a connector's own `ReplyLimits`."""
    length = limits.count(text)
    summary = f"{length:,}/{limits.max_length:,} {limits.unit}"
    byte_length = count_utf8_bytes(text) if limits.max_bytes is not None else None
    if byte_length is not None:
        summary += f", {byte_length:,}/{limits.max_bytes:,} bytes"

    problems: list[str] = []
    if not text.strip():
        problems.append("the reply is empty")
    if length > limits.max_length:
        problems.append(f"{length - limits.max_length:,} over")
    if byte_length is not None and limits.max_bytes is not None and byte_length > limits.max_bytes:
        problems.append(f"{byte_length - limits.max_bytes:,} bytes over")
    if x_rules and any(char in _X_INVALID_CHARACTERS for char in text):
        problems.append("contains a character X does not accept (U+FFFE, U+FEFF or U+FFFF)")

    if problems:
        detail = f"{summary} — {'; '.join(problems)}"
    else:
        detail = f"{summary} — {limits.max_length - length:,} left"
    return LengthCheck(
        length=length,
        limit=limits.max_length,
        unit=limits.unit,
        ok=not problems,
        detail=detail,
        byte_length=byte_length,
        byte_limit=limits.max_bytes,
    )
