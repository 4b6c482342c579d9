"""Block Kit for the approval request a lead decides on. User text is escaped here."""

from __future__ import annotations

from typing import Any

from bot.slack.cards import network_label, safe_link
from bot.slack.ids import ACTION_APPROVE, ACTION_APPROVE_EDIT, ACTION_REJECT, ButtonValue
from bot.slack.text import escape_and_truncate, quote_block
from db.models import DraftRow
from db.store import CaseRecord


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def approval_blocks(record: CaseRecord, draft: DraftRow, length_detail: str
                    ) -> tuple[list[dict[str, Any]], str]:
    case, mention = record.case, record.mention
    handle = escape_and_truncate(mention.author_handle or "unknown author", 80)
    link = safe_link(mention.url, "original")
    title = f"*Reply for approval* · case #{case.id} · {network_label(mention.source)} · {handle}"
    if link:
        title += f" · {link}"
    template = escape_and_truncate(draft.template or "free text", 80)
    blocks: list[dict[str, Any]] = [
        _section(title),
        _section("*They wrote*\n" + quote_block(mention.text, 1200)),
        _section(f"*Proposed reply* by <@{draft.author}>\n"
                 + quote_block(draft.original_text or draft.text, 2500)),
    ]
    if draft.original_text is not None:
        blocks.append(_section(f"*Published as edited by <@{draft.decided_by}>*\n"
                               + quote_block(draft.text, 2500)))
    agent_edit = draft.edited and draft.original_text is None
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text":
        f"template: {template} · {escape_and_truncate(length_detail, 200)}"
        + (" · edited by the agent" if agent_edit else "")}]})
    value = ButtonValue(case.id or 0, draft.id).pack()
    if draft.status == "pending":
        blocks.append({"type": "actions", "block_id": f"approval_{draft.id}", "elements": [
            {"type": "button", "action_id": ACTION_APPROVE, "style": "primary", "value": value,
             "text": {"type": "plain_text", "text": "Approve"}},
            {"type": "button", "action_id": ACTION_APPROVE_EDIT, "value": value,
             "text": {"type": "plain_text", "text": "Edit & approve"}},
            {"type": "button", "action_id": ACTION_REJECT, "style": "danger", "value": value,
             "text": {"type": "plain_text", "text": "Reject"}},
        ]})
    elif draft.status == "approved":
        edited = " (edited by the lead)" if draft.original_text is not None else ""
        blocks.append(_section(f":white_check_mark: Approved by <@{draft.decided_by}>{edited}"))
    elif draft.status == "rejected":
        reason = escape_and_truncate(draft.reason or "", 800)
        blocks.append(_section(f":no_entry: Rejected by <@{draft.decided_by}>: {reason}"))
    elif draft.status == "withdrawn":
        blocks.append(_section("_Withdrawn: the case was closed before a decision._"))
    else:
        blocks.append(_section("_Superseded by a newer draft._"))
    text = f"Reply for approval on case #{case.id}"
    return blocks, text
