"""Block Kit for cases: the card, the close modal. All user text is made safe here, once.

Templates in `templates/cards/` only lay blocks out; every string they receive was escaped
(mrkdwn) or cleaned (plain_text) and truncated by grapheme in this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

from bot.domain.lifecycle import Outcome, State
from bot.slack.ids import (
    ACTION_CLAIM,
    ACTION_CLOSE,
    ACTION_DRAFT,
    ACTION_RELEASE,
    ACTION_RETRY,
    BLOCK_NOTE,
    BLOCK_OUTCOME,
    VIEW_CLOSE,
    ButtonValue,
)
from bot.slack.sla_badge import sla_badge
from bot.slack.text import escape_and_truncate, quote_block
from bot.slack.triage_card import CardExtras, triage_lines
from db.store import CaseRecord

NETWORK_LABELS = {
    "x": "X",
    "twitter": "X",
    "mastodon": "Mastodon",
    "bluesky": "Bluesky",
    "reddit": "Reddit",
    "rss": "RSS",
    "hackernews": "Hacker News",
    "facebook": "Facebook",
    "instagram": "Instagram",
}
OUTCOME_LABELS = {
    Outcome.RESOLVED: "Resolved",
    Outcome.ANSWERED: "Answered (elsewhere or already)",
    Outcome.ESCALATED: "Escalated",
    Outcome.NO_ACTION: "No action needed",
    Outcome.SPAM: "Spam",
    Outcome.DUPLICATE: "Duplicate",
}
BODY_LIMIT = 2900
STATUS_LIMIT = 2900


class BlockRenderer(Protocol):
    def render_blocks(self, template_name: str, **context: Any) -> Any: ...


@dataclass(frozen=True, slots=True)
class Card:
    blocks: list[dict[str, Any]]
    text: str


def network_label(source: str) -> str:
    return NETWORK_LABELS.get(source.lower(), source[:1].upper() + source[1:])


def compact_number(value: int) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M".replace(".0M", "M")
    if value >= 10_000:
        return f"{value // 1000}k"
    if value >= 1_000:
        return f"{value / 1000:.1f}k".replace(".0k", "k")
    return str(value)


def safe_link(url: str, label: str) -> str:
    """A Slack link only for http(s) URLs, with `|` and `>` percent-encoded so they cannot
    close the link early and smuggle in markup. Anything else is shown as escaped text."""
    parts = urlsplit(url.strip()) if url else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        return ""
    cleaned = quote(url.strip(), safe=":/?#[]@!$&'()*+,;=%~.-_")
    return f"<{cleaned}|{label}>"


def slack_date(at: datetime, fmt: str = "{date_short_pretty} {time}") -> str:
    fallback = at.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(at.timestamp())}^{fmt}|{fallback}>"


def _buttons(record: CaseRecord, can_reply: bool = True) -> list[dict[str, Any]]:
    case = record.case
    value = ButtonValue(case.id or 0).pack()
    claim = {"action_id": ACTION_CLAIM, "label": "Claim", "value": value, "style": "primary"}
    release = {"action_id": ACTION_RELEASE, "label": "Release", "value": value}
    draft = {"action_id": ACTION_DRAFT, "label": "Draft reply", "value": value,
             "style": "primary"}
    close = {"action_id": ACTION_CLOSE, "label": "Close", "value": value}
    retry = {"action_id": ACTION_RETRY, "label": "Retry", "value": value, "style": "danger"}
    state = State(case.state)
    can_draft = can_reply and (case.reply_error is None or state != State.APPROVED)
    by_state: dict[State, list[dict[str, Any]]] = {
        State.NEW: [claim, close],
        State.CLAIMED: [release, draft, close] if can_draft else [release, close],
        State.AWAITING_APPROVAL: [close],
        State.APPROVED: [retry, close] if case.reply_error else [close],
        State.REPLIED: [draft, close] if can_draft else [close],
        State.CLOSED: [],
    }
    return by_state[state]


def _status(record: CaseRecord) -> str:
    case = record.case
    state = State(case.state)
    who = f"<@{case.assignee}>" if case.assignee else ""
    if state == State.NEW:
        return ""
    if state == State.CLAIMED:
        return f":raising_hand: Claimed by {who}"
    if state == State.AWAITING_APPROVAL:
        return f":hourglass_flowing_sand: Claimed by {who} · reply waiting for a lead's approval"
    if state == State.APPROVED:
        if case.reply_error:
            reason = escape_and_truncate(case.reply_error, 500)
            return f":warning: Reply could not be posted: {reason}"
        return f":outbox_tray: Claimed by {who} · reply approved, posting…"
    if state == State.REPLIED:
        return f":speech_balloon: Replied by {who}"
    outcome = OUTCOME_LABELS.get(Outcome(case.outcome), case.outcome) if case.outcome else ""
    closed = f":white_check_mark: Closed as *{outcome}*"
    if who:
        closed += f" · handled by {who}"
    if case.note:
        closed += f"\n>{escape_and_truncate(case.note, 500)}"
    return closed


def _with_reply_note(record: CaseRecord, status: str) -> str:
    """Say why an open case cannot be answered on its network (noted by the connector at
    ingest, e.g. X only allows replies to posts that mention or quote the brand)."""
    why = record.mention.extra.get("reply_blocked")
    if not isinstance(why, str) or not why or record.case.state == State.CLOSED:
        return status
    note = f":no_entry_sign: {escape_and_truncate(why, 300)}"
    return f"{status}\n{note}" if status else note


def card_context(record: CaseRecord, *, reply_text: str | None = None,
                 can_reply: bool = True, now: datetime | None = None,
                 extras: CardExtras | None = None) -> dict[str, Any]:
    """Everything the card template shows, already safe for Slack. Without `can_reply` (the
    source cannot publish replies) there is no `Draft reply` button."""
    case, mention = record.case, record.mention
    name = escape_and_truncate(mention.author_name, 80) if mention.author_name else ""
    handle = escape_and_truncate(mention.author_handle, 80) if mention.author_handle else ""
    who = " ".join(p for p in (f"*{name}*" if name else "", handle) if p) or "unknown author"
    followers = f" · {compact_number(mention.author_followers)} followers"
    verified = " · :heavy_check_mark: verified" if mention.author_verified else ""
    header = f"*{network_label(mention.source)}* · {who}{followers}{verified}"
    body = quote_block(mention.text, BODY_LIMIT) if mention.text.strip() else "_(no text)_"
    link = safe_link(mention.url, "Open original")
    meta_parts = [link] if link else []
    meta_parts += [f"posted {slack_date(mention.published_at)}", f"case #{case.id}"]
    if case.sla_due_at and case.first_reply_at is None and case.state != State.CLOSED:
        meta_parts.append(sla_badge(case.sla_due_at, now))
    reply = ""
    if reply_text and case.state in (State.REPLIED, State.CLOSED):
        posted = safe_link(case.reply_url or "", "view reply")
        reply = f":outbox_tray: *Our reply*{' · ' + posted if posted else ''}\n" + quote_block(
            reply_text, 1500
        )
    return {
        "case_id": case.id,
        "header": header,
        "body": body,
        "meta": " · ".join(meta_parts),
        "triage": triage_lines(record, extras),
        "status": _with_reply_note(record, _status(record)),
        "reply": reply,
        "buttons": _buttons(record, can_reply),
    }


def fallback_text(record: CaseRecord) -> str:
    """Notification text: escaped like everything else, short."""
    mention = record.mention
    handle = escape_and_truncate(mention.author_handle or "someone", 80)
    return f"{network_label(mention.source)} mention from {handle} (case #{record.case.id})"


def render_card(renderer: BlockRenderer, record: CaseRecord, *, reply_text: str | None = None,
                can_reply: bool = True, now: datetime | None = None,
                extras: CardExtras | None = None) -> Card:
    blocks = renderer.render_blocks("cards/case.json.j2", **card_context(
        record, reply_text=reply_text, can_reply=can_reply, now=now, extras=extras))
    return Card(blocks=blocks, text=fallback_text(record))


def close_modal(renderer: BlockRenderer, record: CaseRecord) -> dict[str, Any]:
    case, mention = record.case, record.mention
    summary = (
        f"Case #{case.id} · {network_label(mention.source)} · "
        f"{escape_and_truncate(mention.author_handle or 'unknown author', 80)}\n"
        + quote_block(mention.text, 500)
    )
    initial = None
    if case.state == State.REPLIED:
        initial = {"value": Outcome.RESOLVED.value, "label": OUTCOME_LABELS[Outcome.RESOLVED]}
    result: dict[str, Any] = renderer.render_blocks(
        "cards/close_modal.json.j2",
        callback_id=VIEW_CLOSE,
        private_metadata=ButtonValue(case.id or 0).pack(),
        summary=summary,
        outcome_block=BLOCK_OUTCOME,
        note_block=BLOCK_NOTE,
        outcomes=[{"value": o.value, "label": label} for o, label in OUTCOME_LABELS.items()],
        initial=initial,
    )
    return result

