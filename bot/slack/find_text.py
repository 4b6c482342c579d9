"""The answer to `/mentions find`: one line per case with its state, outcome and date."""

from __future__ import annotations

from bot.slack.cards import network_label, slack_date
from bot.slack.text import escape_and_truncate
from bot.slack.triage_card import OUTCOME_WORDS
from db.store import CaseRecord

TEXT_LIMIT = 80


def found_line(record: CaseRecord) -> str:
    case, mention = record.case, record.mention
    handle = escape_and_truncate(mention.author_handle or "unknown", 60)
    state = f"_{case.state.replace('_', ' ')}_"
    if case.outcome:
        state += f" ({OUTCOME_WORDS.get(case.outcome, 'closed')})"
    if case.group_id is not None:
        state += f", grouped with #{case.group_id}"
    when = slack_date(mention.published_at, "{date_short_pretty}")
    text = escape_and_truncate(" ".join(mention.text.split()), TEXT_LIMIT)
    return (f"• #{case.id} · {network_label(mention.source)} · {handle} · {state} · {when}"
            f" — {text}")


def found_text(needle: str, records: list[CaseRecord], *, by_handle: bool, limit: int) -> str:
    """A heading that says what was matched, then the cases, newest first."""
    if not records:
        return "No case matches that."
    shown = escape_and_truncate(needle.strip(), 80)
    many = "the latest " if len(records) >= limit else ""
    noun = "case" if len(records) == 1 else "cases"
    what = f"from {shown}" if by_handle else f"mentioning “{shown}”"
    head = f"*{many}{len(records)} {noun} {what}* (newest first)"
    return "\n".join([head, *(found_line(r) for r in records)])
