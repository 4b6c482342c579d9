"""Triage on cards, group threads and spike alerts: valid Block Kit, hostile text inert."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_sdk.models.blocks import Block

from bot.alert_delivery import alert_blocks, pick_samples
from bot.group_delivery import group_blocks
from bot.render import Renderer, default_templates_dir
from bot.sandbox.limits import check_message_blocks, describe
from bot.slack.cards import render_card
from bot.slack.triage_card import CardExtras, history_line, triage_lines
from db.models import CaseRow, MentionRow
from db.store import CaseRecord
from db.triage_store import CaseHistory

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
HOSTILE = "<!channel> <@U0LEAD1> <https://evil.example|bank.com> *bold* _it_ &amp; \u202egpj.exe"


def record(case_id: int = 7, *, text: str = "my parcel never came", priority: str = "urgent",
           reasons: list[str] | None = None, sentiment: str = "negative",
           group_id: int | None = None, trend: str | None = None, handle: str = "@ann",
           followers: int = 48_000, state: str = "new",
           signals: dict[str, Any] | None = None) -> CaseRecord:
    mention = MentionRow(
        id=case_id, source="x", external_id=str(case_id), url="https://x.example/s/1",
        author_handle=handle, author_name="Ann", author_followers=followers, text=text,
        published_at=T0, received_at=T0, sentiment=sentiment, signals=signals or {},
    )
    case = CaseRow(
        id=case_id, mention_id=case_id, source="x", author_handle=handle, state=state,
        channel="C0MENTIONS", published_at=T0, created_at=T0, updated_at=T0,
        priority=priority, sentiment=sentiment, group_id=group_id, trend_topic=trend,
        priority_reasons=reasons if reasons is not None else [
            "negative", "48k followers", "says 'refund'"],
    )
    return CaseRecord(case=case, mention=mention)


def assert_valid(blocks: list[dict[str, Any]]) -> None:
    assert describe(check_message_blocks(blocks)) == []
    for block in blocks:
        Block.parse(block).to_dict()  # slack_sdk.models agrees


def rendered(rec: CaseRecord, extras: CardExtras | None = None) -> list[dict[str, Any]]:
    card = render_card(Renderer(default_templates_dir()), rec, extras=extras, now=T0)
    assert_valid(card.blocks)
    return card.blocks


def test_card_shows_level_and_reasons_in_order() -> None:
    blocks = rendered(record(), CardExtras(history=CaseHistory(count=0), similar=14))
    lines = [e["text"] for b in blocks if b["type"] == "context" for e in b["elements"]]
    assert ":red_circle: *Urgent* · negative · 48k followers · says 'refund'" in lines
    assert ":repeat: *+14 similar* mentions grouped here (listed in the thread)" in lines
    assert ":bust_in_silhouette: first case from this author" in lines
    assert any(line.startswith(":speaking_head_in_silhouette: lone voice") for line in lines)


@pytest.mark.parametrize(
    ("history", "expected"),
    [
        (None, ""),
        (CaseHistory(count=0), ":bust_in_silhouette: first case from this author"),
        (CaseHistory(count=1, last_case_id=3, last_outcome="resolved", last_state="closed",
                     last_at=T0),
         ":bust_in_silhouette: 1 earlier case · last: #3 resolved, "
         "<!date^1795338000^{date_short_pretty}|2026-11-22>"),
        (CaseHistory(count=4, last_case_id=9, last_state="claimed", last_at=T0),
         ":bust_in_silhouette: 4 earlier cases · last: #9 still open, "
         "<!date^1795338000^{date_short_pretty}|2026-11-22>"),
    ],
)
def test_history_line(history: CaseHistory | None, expected: str) -> None:
    assert history_line(history) == expected


def test_trend_or_lone_voice_only_for_complaints() -> None:
    def trend_of(rec: CaseRecord) -> list[str]:
        return [line for line in triage_lines(rec, None) if "trend" in line or "lone" in line]

    assert trend_of(record(trend="checkout")) == [
        ":chart_with_upwards_trend: part of a trend: 'checkout' is busier than usual"]
    assert trend_of(record(sentiment="positive", reasons=["positive"])) == []
    urgent_but_neutral = record(sentiment="neutral", signals={"urgency_words": ["refund"]})
    assert trend_of(urgent_but_neutral)[0].startswith(":speaking_head_in_silhouette: lone")


def test_grouped_case_names_its_lead() -> None:
    assert ":link: similar to case #3" in triage_lines(record(group_id=3), None)


def test_hostile_text_in_reasons_topic_and_handle_is_inert() -> None:
    rec = record(reasons=[f"possible spam: excluded handle @{HOSTILE}", f"says '{HOSTILE}'"],
                 trend=HOSTILE, handle=HOSTILE, text=HOSTILE, priority="<!here>")
    blocks = rendered(rec, CardExtras(history=CaseHistory(count=0), similar=2))
    shown = json.dumps(blocks, ensure_ascii=False)
    for live in ("<!channel>", "<@U0LEAD1>", "<https://evil.example", "<!here>", "\u202e"):
        assert live not in shown
    assert "&lt;!channel&gt;" in shown


def test_long_reasons_stay_within_block_limits() -> None:
    rec = record(reasons=["x" * 5_000] * 20, trend="t" * 500)
    rendered(rec, CardExtras(history=CaseHistory(count=10**6, last_case_id=1, last_at=T0),
                             similar=10**6))


def test_group_thread_message_is_valid_and_escaped() -> None:
    members = [record(case_id=100 + n, text=HOSTILE * 30, handle=HOSTILE, state="claimed")
               for n in range(20)]
    blocks = group_blocks(7, 57, members)
    assert_valid(blocks)
    shown = json.dumps(blocks, ensure_ascii=False)
    assert "57 similar mentions" in shown and "…and 37 more" in shown
    assert "<!channel>" not in shown and "<@U0LEAD1>" not in shown


def test_spike_alert_is_valid_escaped_and_counts_the_mix() -> None:
    records = [
        record(case_id=1, text=HOSTILE, sentiment="negative", priority="urgent", followers=10),
        record(case_id=2, text="checkout is fine for me", sentiment="positive",
               priority="low", handle="@bob", state="closed"),
        record(case_id=3, text="checkout?", sentiment="neutral", priority="high",
               handle="@cy", state="claimed"),
        record(case_id=4, text="checkout broken", sentiment="negative", priority="high",
               handle="@dee", followers=90_000),
    ]
    payload = {"topic": HOSTILE, "count": 4, "baseline": 0.5, "ratio": 8.0,
               "window_seconds": 900, "since": (T0 - timedelta(minutes=15)).isoformat()}
    text, blocks = alert_blocks(payload, records, samples=3)
    assert_valid(blocks)
    shown = json.dumps(blocks, ensure_ascii=False)
    assert "4 mentions in 15 min, 8.0× the usual 0.5" in shown
    assert "2 negative · 1 neutral · 1 positive" in shown
    assert "*Open cases:* 3 · *at risk* (urgent or high, unclaimed): 2" in shown
    for live in ("<!channel>", "<@U0LEAD1>", "<https://evil.example"):
        assert live not in shown and live not in text


def test_samples_put_urgent_and_far_reaching_first_one_per_author() -> None:
    records = [record(case_id=1, priority="normal", handle="@a", followers=10),
               record(case_id=2, priority="urgent", handle="@b", followers=5),
               record(case_id=3, priority="urgent", handle="@b", followers=5),
               record(case_id=4, priority="high", handle="@c", followers=900)]
    assert [r.case.id for r in pick_samples(records, 3)] == [3, 4, 1]
