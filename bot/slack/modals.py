"""The draft, reject and edit-and-approve modals.

The draft modal is rebuilt whenever the agent picks a template or types (its inputs dispatch
`block_actions` on every character), so it always prompts for exactly that template's
variables and shows a preview counted the way the network counts. Input block ids never change
between rebuilds, so Slack keeps what the person typed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from bot.domain.length import LengthCheck
from bot.render import ReplyTemplate
from bot.slack.cards import network_label
from bot.slack.ids import (
    ACTION_DRAFT_INPUT,
    ACTION_TEMPLATE_PICK,
    BLOCK_REASON,
    BLOCK_TEMPLATE,
    BLOCK_TEXT,
    VAR_BLOCK_PREFIX,
    VIEW_APPROVE_EDIT,
    VIEW_DRAFT,
    VIEW_REJECT,
    ButtonValue,
)
from bot.slack.text import escape_and_truncate, quote_block, safe_plain
from db.store import CaseRecord

TEXT_MAX = 10_000
TEXT_INPUT_MAX = 3000
LIVE = {"trigger_actions_on": ["on_character_entered"]}


def _plain(text: str, limit: int = 75) -> dict[str, Any]:
    return {"type": "plain_text", "text": safe_plain(text, limit) or " "}


def _option(value: str, label: str) -> dict[str, Any]:
    return {"text": _plain(label), "value": value[:150]}


def draft_metadata(case_id: int, template: str | None) -> str:
    return json.dumps({"case": case_id, "template": template})


def parse_draft_metadata(raw: object) -> tuple[int, str | None]:
    try:
        data = json.loads(raw) if isinstance(raw, str) else None
        case_id = int(data["case"]) if isinstance(data, dict) else -1
        template = data.get("template") if isinstance(data, dict) else None
    except (ValueError, TypeError, KeyError):
        case_id, template = -1, None
    if case_id < 0 or not (template is None or isinstance(template, str)):
        raise ValueError("That form is not one mentiondesk made; nothing was saved.")
    return case_id, template


def draft_modal(
    record: CaseRecord,
    templates: list[ReplyTemplate],
    selected: ReplyTemplate | None,
    *,
    values: Mapping[str, str] | None = None,
    preview: str | None = None,
    length: LengthCheck | None = None,
    note: str = "",
) -> dict[str, Any]:
    case, mention = record.case, record.mention
    values = values or {}
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text":
            f"*{network_label(mention.source)}* · "
            f"{escape_and_truncate(mention.author_handle or 'unknown author', 80)}\n"
            + quote_block(mention.text, 1200)}},
    ]
    if not templates:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text":
            "No reply template suits this network yet. Ask a lead to add one in "
            "`templates/replies/`."}})
    else:
        select: dict[str, Any] = {
            "type": "static_select", "action_id": ACTION_TEMPLATE_PICK,
            "placeholder": _plain("Choose a template"),
            "options": [_option(t.name, t.title) for t in templates[:100]],
        }
        if selected is not None:
            select["initial_option"] = _option(selected.name, selected.title)
        blocks.append({"type": "input", "block_id": BLOCK_TEMPLATE, "dispatch_action": True,
                       "label": _plain("Template"), "element": select})
    if selected is not None:
        for variable in selected.variables:
            blocks.append(_variable_block(variable, values.get(variable.name)))
        blocks.append({
            "type": "input", "block_id": BLOCK_TEXT, "optional": True, "dispatch_action": True,
            "label": _plain("Final text (optional: edit the rendered reply)"),
            "hint": _plain("Leave empty to send the template as rendered.", 150),
            "element": {"type": "plain_text_input", "action_id": ACTION_DRAFT_INPUT,
                        "multiline": True, "max_length": TEXT_INPUT_MAX,
                        "dispatch_action_config": LIVE},
        })
        if preview:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text":
                "*Preview*\n" + quote_block(preview, 2500)}})
        blocks.extend(length_blocks(length, note))
    view: dict[str, Any] = {
        "type": "modal",
        "callback_id": VIEW_DRAFT,
        "private_metadata": draft_metadata(case.id or 0, selected.name if selected else None),
        "title": _plain("Draft reply", 24),
        "close": _plain("Cancel", 24),
        "blocks": blocks,
    }
    if templates:
        view["submit"] = _plain("Send for approval", 24)
    return view


def length_blocks(length: LengthCheck | None, note: str = "") -> list[dict[str, Any]]:
    """The length line under a preview; over the limit it is a warning nobody can miss."""
    if length is not None and not length.ok:
        return [{"type": "section", "text": {"type": "mrkdwn", "text":
                 ":warning: *Too long to send:* " + escape_and_truncate(length.detail, 300)
                 + "\nShorten it; it cannot be submitted like this."}}]
    text = length.detail if length is not None else note
    if not text:
        return []
    return [{"type": "context", "elements": [{"type": "mrkdwn",
             "text": escape_and_truncate(text, 300)}]}]


def _variable_block(variable: Any, current: str | None) -> dict[str, Any]:
    block_id = f"{VAR_BLOCK_PREFIX}{variable.name}"
    label = _plain(variable.label or variable.name, 2000)
    initial = current if current is not None else (variable.default or None)
    if variable.choices:
        element: dict[str, Any] = {
            "type": "static_select", "action_id": ACTION_DRAFT_INPUT,
            "options": [_option(str(c), str(c)) for c in variable.choices[:100]],
        }
        if initial in variable.choices:
            element["initial_option"] = _option(str(initial), str(initial))
    else:
        element = {"type": "plain_text_input", "action_id": ACTION_DRAFT_INPUT,
                   "max_length": 500, "dispatch_action_config": LIVE}
        if initial:
            element["initial_value"] = str(initial)[:500]
    return {"type": "input", "block_id": block_id, "optional": not variable.required,
            "dispatch_action": True, "label": label, "element": element}


def reject_modal(case_id: int, draft_id: int) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": VIEW_REJECT,
        "private_metadata": ButtonValue(case_id, draft_id).pack(),
        "title": _plain("Reject reply", 24),
        "submit": _plain("Reject", 24),
        "close": _plain("Cancel", 24),
        "blocks": [{
            "type": "input", "block_id": BLOCK_REASON,
            "label": _plain("Why? The agent will see this."),
            "element": {"type": "plain_text_input", "action_id": "value", "multiline": True,
                        "max_length": 1000},
        }],
    }


def approve_edit_modal(
    case_id: int, draft_id: int, text: str, length: LengthCheck | None, *, agent: str
) -> dict[str, Any]:
    """The lead's edit of a draft before approving it; the agent's text stays on record."""
    return {
        "type": "modal",
        "callback_id": VIEW_APPROVE_EDIT,
        "private_metadata": ButtonValue(case_id, draft_id).pack(),
        "title": _plain("Edit & approve", 24),
        "submit": _plain("Approve & send", 24),
        "close": _plain("Cancel", 24),
        "blocks": [
            {"type": "context", "elements": [{"type": "mrkdwn", "text":
                f"Case #{case_id} · draft by <@{agent}>. Your edit is what gets published; "
                "the original stays on record."}]},
            {"type": "input", "block_id": BLOCK_TEXT, "dispatch_action": True,
             "label": _plain("Reply text"),
             "element": {"type": "plain_text_input", "action_id": ACTION_DRAFT_INPUT,
                         "multiline": True, "max_length": TEXT_INPUT_MAX,
                         "initial_value": text[:TEXT_INPUT_MAX],
                         "dispatch_action_config": LIVE}},
            *length_blocks(length),
        ],
    }
