"""Shared listener plumbing: who acts, and turning refusals into one ephemeral sentence."""

from __future__ import annotations

import logging
from typing import Any

from bot.domain.lifecycle import Actor, IllegalTransition, NotAllowed
from bot.services.cases import AlreadyClaimed, CaseNotFound, ChangedMeanwhile
from bot.services.refusals import record_refusal
from bot.services.replies import DraftNotCurrent
from bot.slack.ids import BadButtonValue, ButtonValue
from bot.slack.modals import parse_draft_metadata
from handlers.deps import Deps

log = logging.getLogger(__name__)

# Refusals worth recording: who tried what, and why the bot said no.
REFUSALS: tuple[type[Exception], ...] = (
    AlreadyClaimed,
    BadButtonValue,
    CaseNotFound,
    ChangedMeanwhile,
    DraftNotCurrent,
    IllegalTransition,
    NotAllowed,
)
# Exceptions whose message is written for the person who clicked (bad form input too).
USER_FACING: tuple[type[Exception], ...] = (*REFUSALS, ValueError)
SORRY = "Something went wrong on our side; nothing was changed. Please try again."


def user_id(body: dict[str, Any]) -> str | None:
    user = body.get("user")
    if isinstance(user, dict):
        return user.get("id")
    return body.get("user_id") or (user if isinstance(user, str) else None)


def team_id(body: dict[str, Any]) -> str | None:
    team = body.get("team")
    if isinstance(team, dict):
        return team.get("id")
    return body.get("team_id") or (body.get("user") or {}).get("team_id")


def channel_id(body: dict[str, Any]) -> str | None:
    channel = body.get("channel")
    if isinstance(channel, dict):
        return channel.get("id")
    return body.get("channel_id")


def first_action(body: dict[str, Any]) -> dict[str, Any]:
    actions = body.get("actions") or [{}]
    return actions[0] if isinstance(actions[0], dict) else {}


async def actor_of(deps: Deps, body: dict[str, Any]) -> Actor:
    return await deps.roles.resolve(user_id(body), team_id(body))


async def tell(deps: Deps, body: dict[str, Any], text: str) -> None:
    """An ephemeral message to the person who acted, where they acted."""
    channel, user = channel_id(body), user_id(body)
    if not channel or not user:
        return
    try:
        await deps.notifier.ephemeral(channel, user, text)
    except Exception as exc:
        log.warning("could not send an ephemeral message: %s", exc.__class__.__name__)




def _operation(body: dict[str, Any]) -> str:
    if body.get("command"):
        words = str(body.get("text") or "").split(maxsplit=1)
        return f"command:{words[0].lower() if words else 'help'}"
    view = body.get("view") or {}
    if body.get("type") == "view_submission":
        return f"view:{view.get('callback_id')}"
    return f"action:{first_action(body).get('action_id')}"


def case_in_payload(body: dict[str, Any]) -> int | None:
    """The case a click or form is about, if it names one (for log lines; never trusted for
    decisions, which unpack the value strictly)."""
    case_id, _raw = _claimed_value(body)
    if case_id is None:
        try:
            case_id, _template = parse_draft_metadata(
                (body.get("view") or {}).get("private_metadata"))
        except ValueError:
            return None
    return case_id


def _claimed_value(body: dict[str, Any]) -> tuple[int | None, str | None]:
    raw = first_action(body).get("value") or (body.get("view") or {}).get("private_metadata")
    try:
        return ButtonValue.unpack(raw).case_id, None
    except BadButtonValue:
        return None, None if raw is None else str(raw)


async def refuse(deps: Deps, body: dict[str, Any], exc: Exception) -> str:
    """`explain(exc)`, after putting a refusal in the audit log (every decision is there)."""
    if isinstance(exc, REFUSALS):
        case_id, raw_value = _claimed_value(body)
        await record_refusal(
            deps.services, actor_id=user_id(body) or "unknown", operation=_operation(body),
            reason=str(exc), case_id=case_id,
            detail={"team_id": team_id(body), "value": raw_value,
                    "error": exc.__class__.__name__})
    return explain(exc)


def explain(exc: Exception) -> str:
    """The sentence a user sees for a refusal; unknown failures never leak details."""
    if isinstance(exc, USER_FACING):
        return str(exc)
    log.exception("listener failed", exc_info=exc)
    return SORRY
