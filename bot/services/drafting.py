"""Turning a template choice and typed values into a reply text that fits the network."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.connectors.base import ReplyLimits
from bot.domain.length import LengthCheck, check_with, counter_for
from bot.render import RenderError, ReplyContext, ReplyTemplate, render_reply, value_errors
from bot.services.replies import DraftInput
from bot.slack.ids import BLOCK_TEMPLATE, BLOCK_TEXT, VAR_BLOCK_PREFIX
from bot.slack.text import escape_mrkdwn
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
        # Mastodon prefixes the author's @acct: the reply is measured with it.
        per_mention = getattr(connector, "reply_limits_for_mention", None)
        if per_mention is not None:
            with_prefix: ReplyLimits = per_mention(mention_of(record.mention))
            return with_prefix
        limits: ReplyLimits = connector.reply_limits()
        return limits
    return counter_for(record.mention.source)


def reply_possible(connectors: Mapping[str, Any], record: CaseRecord) -> tuple[bool, str]:
    """Whether the case's source can publish a reply to this mention, and if not, why.

    Sources without a connector, connectors that cannot reply at all (RSS, Hacker News, X
    without a user token, a webhook source without `reply_url`) and mentions the network
    will not let us answer all say no: drafting a reply there would only end in a refusal.
    """
    connector = connectors.get(record.case.source_name)
    if connector is None or not connector.can_reply:
        return False, (f"Replies cannot be posted to '{record.case.source_name}' from here; "
                       "answer on the network and close the case with an outcome.")
    allowed, why = connector.reply_allowed(mention_of(record.mention))
    if not allowed:
        return False, f"This mention cannot be answered from here: {escape_mrkdwn(why)}"
    return True, ""


def measure(limits: ReplyLimits, record: CaseRecord, text: str) -> LengthCheck:
    """Count `text` for the case's network (X weighs characters its own way)."""
    return check_with(limits, text, x_rules=record.mention.source == "x")
