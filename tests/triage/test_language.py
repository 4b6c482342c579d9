from __future__ import annotations

import pytest

from bot.triage.language import LanguageDetector, normalize_language
from bot.triage.text import content_text

from .conftest import load_labelled, make_mention

MIN_ACCURACY_30_PLUS = 0.9
MIN_ACCURACY_ALL = 0.85


@pytest.fixture(scope="module")
def detector() -> LanguageDetector:
    return LanguageDetector()


def test_accuracy_on_labelled_posts(detector, record_property):
    rows = load_labelled()
    long_rows = [row for row in rows if len(content_text(row["text"])) >= 30]
    results = [(detector.detect(row["text"]), row) for row in rows]
    misses = [f"{row['lang']}->{got}: {row['text']}" for got, row in results if got != row["lang"]]
    accuracy_all = 1 - len(misses) / len(rows)
    right_long = sum(detector.detect(row["text"]) == row["lang"] for row in long_rows)
    accuracy_long = right_long / len(long_rows)
    print(
        f"\nlanguage accuracy: all n={len(rows)} {accuracy_all:.3f}; "
        f"30+ chars n={len(long_rows)} {accuracy_long:.3f}"
    )
    for miss in misses:
        print("  miss", miss)
    record_property("language_accuracy_all", round(accuracy_all, 3))
    record_property("language_accuracy_30_plus", round(accuracy_long, 3))
    assert accuracy_long >= MIN_ACCURACY_30_PLUS, f"language accuracy 30+ {accuracy_long:.3f}"
    assert accuracy_all >= MIN_ACCURACY_ALL, f"language accuracy all {accuracy_all:.3f}"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "😀😀😀",
        "👍",
        "ok",
        "@acme",
        "https://example.com/some/long/path?with=query",
        "1234 5678 !!!",
        "\x00\x01",
        "\ud800\udfff",
    ],
)
def test_unknown_for_short_empty_or_emoji(detector, text):
    assert detector.detect(text) is None


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Thanks so much for sorting out my order so quickly", "en"),
        ("Merci beaucoup pour votre aide, tout fonctionne maintenant", "fr"),
        ("今月二回請求されています", "ja"),
        ("앱이 계속 멈춰요 도와주세요", "ko"),
        ("RT @acme: Gracias por todo, el servicio fue excelente https://t.co/x", "es"),
    ],
)
def test_detects_clear_text(detector, text, code):
    assert detector.detect(text) == code


def test_long_text_is_capped_and_still_detected(detector):
    assert detector.detect("the order arrived late and broken " * 3_000) == "en"


def test_restricted_language_set_answers_only_from_it():
    detector = LanguageDetector(languages={"en", "de"})
    assert detector.detect("Merci beaucoup pour votre aide, tout fonctionne maintenant") is None
    assert detector.detect("Vielen Dank für die schnelle Hilfe heute") == "de"
    assert detector.detect("今月二回請求されています") is None


@pytest.mark.parametrize(
    ("tag", "code"),
    [("en", "en"), ("en-US", "en"), ("pt_BR", "pt"), ("DE", "de"), ("und", None), ("", None),
     (None, None), ("zh-Hant-TW", "zh"), ("123", None)],
)
def test_normalize_language(tag, code):
    assert normalize_language(tag) == code


def test_network_tag_is_preferred(detector):
    mention = make_mention("Thanks so much for sorting out my order so quickly", lang="es-MX")
    assert detector.language_of(mention) == "es"
    untagged = make_mention("Thanks so much for sorting out my order so quickly", lang="und")
    assert detector.language_of(untagged) == "en"
