"""Turning a template choice and typed values into a reply text that fits the network."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.connectors.base import ReplyLimits
from bot.domain.length import LengthCheck, check_with, counter_for
from bot.render import RenderError, ReplyContext, ReplyTemplate, render_reply, value_errors
from bot.services.replies import DraftInput
from bot.slack.ids import BLOCK_TEMPLATE, BLOCK_TEXT, VAR_BLOCK_PREFIX
from db.store import CaseRecord, mention_of


class FieldErrors(ValueError):
    """Per-field problems, keyed by the modal's block ids."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


def compose_draft(
    record: CaseRecord,
    template: ReplyTemplate | None,
    values: Mapping[str, str],
    text_override: str | None,
    limits: ReplyLimits,
    *,
    agent_id: str,
    brand: Mapping[str, Any],
) -> DraftInput:
    """Render, then count the way the network counts. Raises `FieldErrors`; saves nothing."""
    if template is None:
        raise FieldErrors({BLOCK_TEMPLATE: "Choose a template."})
    problems = {f"{VAR_BLOCK_PREFIX}{k}": v for k, v in value_errors(template, values).items()}
    if problems:
        raise FieldErrors(problems)
    context = ReplyContext(mention=mention_of(record.mention), case_id=record.case.id or 0,
                           agent_id=agent_id, brand=brand)
    try:
        rendered = render_reply(template, context, values)
    except RenderError as exc:
        block = f"{VAR_BLOCK_PREFIX}{exc.field}" if exc.field else BLOCK_TEMPLATE
        raise FieldErrors({block: exc.message}) from exc
    override = (text_override or "").strip()
    text = override or rendered
    edited = bool(override) and override != rendered
    length = measure(limits, record, text)
    if not length.ok:
        raise FieldErrors({BLOCK_TEXT if override else BLOCK_TEMPLATE: length.detail})
    return DraftInput(text=text, template=template.name, values=dict(values),
                      preapproved=template.preapproved, edited=edited, length=length)


def limits_for(connectors: Mapping[str, Any], record: CaseRecord) -> ReplyLimits:
    """The reply limits of the case's source: its connector's, else its network's defaults."""
    connector = connectors.get(record.case.source_name)
    if connector is not None:
        limits: ReplyLimits = connector.reply_limits()
        return limits
    return counter_for(record.mention.source)


def measure(limits: ReplyLimits, record: CaseRecord, text: str) -> LengthCheck:
    """Count `text` for the case's network (X weighs characters its own way)."""
    return check_with(limits, text, x_rules=record.mention.source == "x")
