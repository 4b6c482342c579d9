"""Text normalisation shared by signals, grouping and routing, so they agree on what a word is."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_HANDLE = re.compile(r"(?<![\w@])@\w[\w.\-]*(?:@[\w\-]+(?:\.[\w\-]+)+)?")
_RT_PREFIX = re.compile(r"^\s*(?:RT\s+@[^\s:]+:?\s*)+")
_NOT_WORD = re.compile(r"[^\w\s]+")
_SPACES = re.compile(r"\s+")

# Scripts written without spaces between words: a keyword in them cannot rely on \b boundaries.
_UNSPACED_RANGES = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF66, 0xFF9F),  # half-width Katakana
)


def strip_urls(text: str) -> str:
    return _URL.sub(" ", text)


def strip_handles(text: str) -> str:
    return _HANDLE.sub(" ", text)


def strip_rt_prefix(text: str) -> str:
    return _RT_PREFIX.sub("", text)


def content_text(text: str) -> str:
    """The words a person wrote: no URLs, @handles or retweet prefix (for language and spam)."""
    return _SPACES.sub(" ", strip_handles(strip_urls(strip_rt_prefix(text)))).strip()


def fingerprint(text: str) -> str:
    """A normal form under which retweets, cross-posts and re-pastes of one text are equal."""
    folded = unicodedata.normalize("NFKC", strip_rt_prefix(text)).casefold()
    words = _NOT_WORD.sub(" ", strip_handles(strip_urls(folded))).replace("_", " ")
    return _SPACES.sub(" ", words).strip()


def normalize_handle(handle: str) -> str:
    """Handles compare without a leading @ and without case (X, Mastodon and Bluesky agree)."""
    return handle.strip().lstrip("@").casefold()


def _is_unspaced(char: str) -> bool:
    code = ord(char)
    return any(low <= code <= high for low, high in _UNSPACED_RANGES)


def _keyword_key(text: str) -> str:
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


class KeywordMatcher:
    """Finds whole-word, case-insensitive occurrences of a fixed list of words and phrases.

    One compiled alternation serves every keyword, so the cost does not grow per keyword.
    Words in unspaced scripts (Japanese, Chinese, Thai) match as substrings, since those
    languages have no word boundaries to look for.
    """

    __slots__ = ("_by_key", "_pattern")

    def __init__(self, keywords: Iterable[str]) -> None:
        self._by_key: dict[str, str] = {}
        # Keywords grouped by the boundaries they need, each group one alternation behind
        # its boundary checks: inside a word the lookbehind fails once, instead of once per
        # keyword, which made the search several times slower.
        groups: dict[tuple[str, str], list[str]] = {}
        for keyword in keywords:
            key = _keyword_key(keyword)
            if not key or key in self._by_key:
                continue
            self._by_key[key] = keyword.strip()
            body = r"\s+".join(re.escape(part) for part in key.split(" "))
            left = "" if _is_unspaced(key[0]) else r"(?<!\w)"
            right = "" if _is_unspaced(key[-1]) else r"(?!\w)"
            groups.setdefault((left, right), []).append(body)
        parts = []
        for (left, right), bodies in groups.items():
            bodies.sort(key=len, reverse=True)
            parts.append(f"{left}(?:{'|'.join(bodies)}){right}")
        self._pattern = re.compile("|".join(parts)) if parts else None

    def find(self, text: str) -> tuple[str, ...]:
        """The configured keywords present in `text`, once each, in order of first appearance."""
        if self._pattern is None or not text:
            return ()
        folded = unicodedata.normalize("NFKC", text).casefold()
        found: dict[str, None] = {}
        for match in self._pattern.finditer(folded):
            keyword = self._by_key.get(_keyword_key(match.group(0)))
            if keyword is not None:
                found.setdefault(keyword, None)
        return tuple(found)

    def __bool__(self) -> bool:
        return self._pattern is not None


@lru_cache(maxsize=64)
def keyword_matcher(keywords: tuple[str, ...]) -> KeywordMatcher:
    """A shared matcher per keyword list; configs are frozen, so their tuples are stable keys."""
    return KeywordMatcher(keywords)
