"""Sentiment of a short social post, from VADER with a few customer-care adjustments.

VADER is built for social text (emoji, capitals, "!!!", negation) and needs no model download.
It only knows English words, though emoji and emoticons score in any language.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

MAX_ANALYSED_CHARS = 2_000
"""Posts are short; anything longer is a paste whose opening says enough, and VADER is linear."""

NEGATIVE_AT_OR_BELOW = -0.05
POSITIVE_AT_OR_ABOVE = 0.05
"""VADER's published cut-offs; on tests/data/triage/labelled.jsonl wider bands scored lower."""

# In care conversations these are the product's vocabulary ("support", "help", "please
# refund"), not feelings; VADER's general lexicon counts them as positive and so misreads
# complaints. The failure words are missing from VADER's lexicon.
CARE_LEXICON: dict[str, float] = {
    "please": 0.0,
    "help": 0.0,
    "support": 0.0,
    "loyalty": 0.0,
    "gift": 0.0,
    "ok": 0.0,
    "okay": 0.0,
    "crashing": -1.7,
    "crashes": -1.7,
    "crashed": -1.7,
    "outage": -2.0,
    "overcharged": -2.0,
    "unreachable": -1.5,
    "pouting": -2.0,  # VADER reads 😡 as its description, "pouting face"
}


class SentimentLabel(StrEnum):
    NEGATIVE = "negative"
    NEUTRAL = "neutral"
    POSITIVE = "positive"


@dataclass(frozen=True, slots=True)
class Sentiment:
    compound: float
    label: SentimentLabel


NEUTRAL = Sentiment(0.0, SentimentLabel.NEUTRAL)


def label_for(
    compound: float,
    *,
    negative_at_or_below: float = NEGATIVE_AT_OR_BELOW,
    positive_at_or_above: float = POSITIVE_AT_OR_ABOVE,
) -> SentimentLabel:
    if compound <= negative_at_or_below:
        return SentimentLabel.NEGATIVE
    if compound >= positive_at_or_above:
        return SentimentLabel.POSITIVE
    return SentimentLabel.NEUTRAL


class SentimentAnalyzer:
    """Holds one VADER analyzer (its lexicon load costs ~15 ms), built on first use."""

    def __init__(
        self,
        *,
        negative_at_or_below: float = NEGATIVE_AT_OR_BELOW,
        positive_at_or_above: float = POSITIVE_AT_OR_ABOVE,
        lexicon_overrides: dict[str, float] | None = None,
    ) -> None:
        self._negative = negative_at_or_below
        self._positive = positive_at_or_above
        self._overrides = dict(CARE_LEXICON if lexicon_overrides is None else lexicon_overrides)
        self._vader: SentimentIntensityAnalyzer | None = None

    def _analyzer(self) -> SentimentIntensityAnalyzer:
        if self._vader is None:
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

            vader = SentimentIntensityAnalyzer()
            vader.lexicon.update(self._overrides)
            self._vader = vader
        return self._vader

    def score(self, text: str) -> Sentiment:
        """Never raises: text VADER cannot read is neutral rather than a failed ingest."""
        sample = text[:MAX_ANALYSED_CHARS] if text else ""
        if not sample.strip():
            return NEUTRAL
        try:
            compound = float(self._analyzer().polarity_scores(sample)["compound"])
        except Exception:
            return NEUTRAL
        return Sentiment(
            compound,
            label_for(
                compound,
                negative_at_or_below=self._negative,
                positive_at_or_above=self._positive,
            ),
        )
