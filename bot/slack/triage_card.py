"""The triage lines of a case card: priority and its reasons, the author's history, the group
of near-identical mentions and whether a complaint is a lone voice or part of a trend.

Reasons can carry text a stranger wrote (an excluded handle, a keyword match), so every line
is escaped here; the template only places it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.domain.lifecycle import Outcome, State
from bot.slack.text import escape_and_truncate
from db import triage_store
from db.store import CaseRecord, Tx

LEVEL_BADGES = {
    "urgent": ":red_circle: *Urgent*",
    "high": ":large_orange_circle: *High*",
    "normal": ":large_blue_circle: Normal",
    "low": ":white_circle: Low",
}
OUTCOME_WORDS = {
    Outcome.RESOLVED.value: "resolved",
    Outcome.ANSWERED.value: "answered",
    Outcome.ESCALATED.value: "escalated",
    Outcome.NO_ACTION.value: "no action",
    Outcome.SPAM.value: "spam",
    Outcome.DUPLICATE.value: "duplicate",
}
REASON_LIMIT = 120
MAX_REASONS = 5


@dataclass(frozen=True, slots=True)
class CardExtras:
    """What a card shows beyond its own case, read from the database at send time."""

    history: triage_store.CaseHistory | None = None
    similar: int = 0


async def load_card_extras(tx: Tx, record: CaseRecord) -> CardExtras:
    case = record.case
    similar = 0
    if case.group_id is None and case.id is not None:
        similar = await triage_store.group_size(tx, case.id)
    return CardExtras(history=await triage_store.case_history(tx, case), similar=similar)


def _when(at: datetime) -> str:
    fallback = at.strftime("%Y-%m-%d")
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}}|{fallback}>"


def priority_line(record: CaseRecord) -> str:
    """`🔴 Urgent · negative · 48k followers · says 'refund'`."""
    case = record.case
    badge = LEVEL_BADGES.get(case.priority, escape_and_truncate(case.priority, 16))
    reasons = [escape_and_truncate(str(reason), REASON_LIMIT)
               for reason in (case.priority_reasons or [])[:MAX_REASONS]]
    return " · ".join([badge, *reasons])


def history_line(history: triage_store.CaseHistory | None) -> str:
    if history is None:
        return ""
    if history.count == 0:
        return ":bust_in_silhouette: first case from this author"
    noun = "case" if history.count == 1 else "cases"
    parts = [f":bust_in_silhouette: {history.count} earlier {noun}"]
    if history.last_case_id is not None:
        if history.last_state == State.CLOSED and history.last_outcome:
            what = OUTCOME_WORDS.get(history.last_outcome, "closed")
        else:
            what = "still open"
        when = f", {_when(history.last_at)}" if history.last_at else ""
        parts.append(f"last: #{history.last_case_id} {what}{when}")
    return " · ".join(parts)


def trend_line(record: CaseRecord) -> str:
    """Only complaints get the lone-voice-or-trend verdict; praise needs no triage."""
    case = record.case
    if case.trend_topic:
        topic = escape_and_truncate(case.trend_topic, 60)
        return f":chart_with_upwards_trend: part of a trend: '{topic}' is busier than usual"
    signals = record.mention.signals or {}
    if case.sentiment == "negative" or signals.get("urgency_words"):
        return ":speaking_head_in_silhouette: lone voice: no wave of similar complaints"
    return ""


def group_line(extras: CardExtras | None) -> str:
    if extras is None or extras.similar <= 0:
        return ""
    noun = "mention" if extras.similar == 1 else "mentions"
    return f":repeat: *+{extras.similar} similar* {noun} grouped here (listed in the thread)"


def triage_lines(record: CaseRecord, extras: CardExtras | None) -> list[str]:
    """Context lines for the card, each already safe mrkdwn; empty ones are left out."""
    case = record.case
    lines = [priority_line(record)]
    if case.group_id is not None:
        lines.append(f":link: similar to case #{case.group_id}")
    lines += [group_line(extras), trend_line(record), history_line(
        extras.history if extras else None)]
    return [line for line in lines if line]
