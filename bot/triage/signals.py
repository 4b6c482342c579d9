"""Everything triage knows about one mention, computed once, so priority and routing stay pure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from bot.domain.mention import Mention
from bot.triage.config import TriageConfig
from bot.triage.language import LanguageDetector
from bot.triage.sentiment import NEUTRAL, SentimentAnalyzer, SentimentLabel
from bot.triage.text import (
    content_text,
    fingerprint,
    keyword_matcher,
    normalize_handle,
    strip_urls,
)

MAX_KEYWORD_CHARS = 10_000
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_WORDISH = re.compile(r"\w")
_HASHTAG = re.compile(r"#\w+")
_DIGIT = re.compile(r"\d")

SPAM_LINK_ONLY = "link only"
SPAM_BOT_LIKE = "bot-like account"


@dataclass(frozen=True, slots=True)
class AuthorHistory:
    """What the database knows about the author; the ingest path looks it up, triage only reads."""

    case_count: int = 0
    is_customer: bool = False
    recent_texts: tuple[str, ...] = ()


NO_HISTORY = AuthorHistory()


class Analyzers:
    """The two models triage runs, built lazily and shared: build one per process."""

    def __init__(
        self,
        sentiment: SentimentAnalyzer | None = None,
        language: LanguageDetector | None = None,
    ) -> None:
        self.sentiment = sentiment or SentimentAnalyzer()
        self.language = language or LanguageDetector()


@dataclass(frozen=True, slots=True)
class Signals:
    sentiment: float
    sentiment_label: SentimentLabel
    language: str | None
    followers: int
    verified: bool
    urgency_words: tuple[str, ...]
    is_known_customer: bool
    case_count: int
    is_vip: bool
    spam_reasons: tuple[str, ...]
    link_only: bool
    repeated_text: bool
    bot_like: bool

    @property
    def is_spam(self) -> bool:
        return bool(self.spam_reasons)


@lru_cache(maxsize=64)
def _handles(handles: frozenset[str]) -> frozenset[str]:
    return frozenset(normalize_handle(handle) for handle in handles)


def is_link_only(text: str) -> bool:
    """A URL with nothing said around it but tags: the classic drive-by promotion."""
    if not _URL.search(text):
        return False
    return _WORDISH.search(_HASHTAG.sub(" ", content_text(strip_urls(text)))) is None


def is_bot_like(handle: str, followers: int, config: TriageConfig) -> bool:
    rule = config.bot_like
    local = normalize_handle(handle).split("@", 1)[0]
    return followers <= rule.max_followers and len(_DIGIT.findall(local)) >= rule.min_handle_digits


# The same author's recent texts come back on every mention they post; fingerprint them once.
_remembered_fingerprint = lru_cache(maxsize=8_192)(fingerprint)


def repeated_copies(text: str, history: AuthorHistory) -> int:
    if not history.recent_texts:
        return 0
    own = fingerprint(text[:MAX_KEYWORD_CHARS])
    if not own:
        return 0
    return sum(
        1
        for earlier in history.recent_texts
        if _remembered_fingerprint(earlier[:MAX_KEYWORD_CHARS]) == own
    )


def compute_signals(
    mention: Mention,
    *,
    config: TriageConfig,
    history: AuthorHistory = NO_HISTORY,
    analyzers: Analyzers,
) -> Signals:
    text = mention.text or ""
    handle = normalize_handle(mention.author.handle)
    followers = max(0, mention.author.followers)

    sentiment = analyzers.sentiment.score(text) if text else NEUTRAL

    keyword_text = text[:MAX_KEYWORD_CHARS]
    urgency = keyword_matcher(config.urgency_words).find(keyword_text)

    link_only = is_link_only(keyword_text)
    bot_like = is_bot_like(handle, followers, config)
    repeated = repeated_copies(text, history) >= max(1, config.repeated_text_min_copies)
    spam: list[str] = []
    if handle and handle in _handles(config.excluded_handles):
        spam.append(f"excluded handle @{handle}")
    spam.extend(
        f"excluded keyword '{word}'"
        for word in keyword_matcher(config.excluded_keywords).find(keyword_text)
    )
    if link_only:
        spam.append(SPAM_LINK_ONLY)
    if repeated:
        spam.append("repeated text")
    if bot_like:
        spam.append(SPAM_BOT_LIKE)

    return Signals(
        sentiment=sentiment.compound,
        sentiment_label=sentiment.label,
        language=analyzers.language.language_of(mention),
        followers=followers,
        verified=mention.author.verified,
        urgency_words=urgency,
        is_known_customer=history.case_count > 0 or history.is_customer,
        case_count=max(0, history.case_count),
        is_vip=bool(handle) and handle in _handles(config.vip_handles),
        spam_reasons=tuple(spam),
        link_only=link_only,
        repeated_text=repeated,
        bot_like=bot_like,
    )
