"""Spike alerts in the leads' channel: what is spiking, how far above normal, how people feel
and how many of those cases are still open or at risk, with a few sample mentions.

The alert row is written by ingest under the shared spike state's lock, with a dedup key per
topic and spike start, so a spike is announced once however many processes ingest it. The
figures are read when the alert is sent, so they describe the spike as it stands then.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from bot.outbox import EffectHandler
from bot.services.context import Clock, utc_now
from bot.services.effects import Effect
from bot.slack.cards import compact_number, network_label
from bot.slack.notifier import SlackNotifier
from bot.slack.text import escape_and_truncate, quote_block
from db import triage_store
from db.models import OutboxRow
from db.store import CaseRecord, Database

SAMPLE_TEXT_LIMIT = 280
PRIORITY_RANK = {"urgent": 0, "high": 1, "normal": 2, "low": 3}


def _minutes(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h"


def pick_samples(records: list[CaseRecord], count: int) -> list[CaseRecord]:
    """The most important mentions first: priority, then reach; one per author."""
    ranked = sorted(records, key=lambda r: (PRIORITY_RANK.get(r.case.priority, 9),
                                            -r.mention.author_followers, -(r.case.id or 0)))
    chosen: list[CaseRecord] = []
    authors: set[tuple[str, str]] = set()
    for record in ranked:
        author = (record.mention.source, record.mention.author_handle)
        if author in authors:
            continue
        authors.add(author)
        chosen.append(record)
        if len(chosen) >= count:
            break
    return chosen


def alert_blocks(payload: dict[str, Any], records: list[CaseRecord], samples: int
                 ) -> tuple[str, list[dict[str, Any]]]:
    topic = escape_and_truncate(str(payload.get("topic", "")), 80)
    count = int(payload.get("count", 0))
    baseline = float(payload.get("baseline", 0.0))
    ratio = float(payload.get("ratio", 0.0))
    window = _minutes(float(payload.get("window_seconds", 0)))
    seen = max(count, len(records))
    headline = (f":rotating_light: *Spike: '{topic}'* · {seen} mentions in {window}, "
                f"{ratio:.1f}× the usual {baseline:.1f}")
    mix = Counter(r.case.sentiment for r in records)
    sentiment = " · ".join(f"{mix.get(label, 0)} {label}"
                           for label in ("negative", "neutral", "positive"))
    open_cases = [r for r in records if triage_store.is_open(r.case)]
    risky = [r for r in open_cases if triage_store.at_risk(r.case)]
    status = (f"*Sentiment:* {sentiment}\n*Open cases:* {len(open_cases)} · *at risk* "
              f"(urgent or high, unclaimed): {len(risky)}")
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": headline}},
        {"type": "section", "text": {"type": "mrkdwn", "text": status}},
    ]
    for record in pick_samples(records, samples):
        mention = record.mention
        who = escape_and_truncate(mention.author_handle or "unknown author", 80)
        reach = compact_number(mention.author_followers)
        text = (f"*{network_label(mention.source)}* · {who} · {reach} followers · "
                f"case #{record.case.id} · {record.case.priority}\n"
                + quote_block(mention.text or "(no text)", SAMPLE_TEXT_LIMIT))
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": text}]})
    fallback = f"Spike: '{topic}' · {seen} mentions in {window} ({ratio:.1f}× normal)"
    return fallback, blocks


class AlertDelivery:
    def __init__(self, db: Database, notifier: SlackNotifier, channel: str, *,
                 samples: int = 3, clock: Clock = utc_now) -> None:
        self.db = db
        self.notifier = notifier
        self.channel = channel
        self.samples = samples
        self.clock = clock

    async def post(self, row: OutboxRow) -> None:
        payload = dict(row.payload)
        since = _parse(payload.get("since")) or self.clock() - timedelta(
            seconds=float(payload.get("window_seconds", 900)))
        async with self.db.transaction() as tx:
            records = await triage_store.topic_mentions(tx, str(payload.get("topic", "")),
                                                        since)
        text, blocks = alert_blocks(payload, records, self.samples)
        await self.notifier.post_message(self.channel, text, blocks=blocks)

    def handlers(self) -> dict[str, EffectHandler]:
        return {Effect.ALERT_POST: self.post}


def _parse(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
