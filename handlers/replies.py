"""Listeners for the reply loop: draft modal (live preview), approve, edit & approve, reject,
retry."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.connectors.base import PermanentError
from bot.domain.length import LengthCheck
from bot.domain.lifecycle import Action, NotAllowed, State, check_may_act, check_may_decide
from bot.render import RenderError, ReplyContext, render_reply
from bot.services.cases import load_case
from bot.services.drafting import FieldErrors, compose_draft, limits_for, measure, reply_possible
from bot.services.replies import (
    DraftNotCurrent,
    approve_draft,
    reject_draft,
    retry_reply,
    save_draft,
)
from bot.slack.ids import (
    ACTION_APPROVE,
    ACTION_APPROVE_EDIT,
    ACTION_DRAFT,
    ACTION_DRAFT_INPUT,
    ACTION_REJECT,
    ACTION_RETRY,
    ACTION_TEMPLATE_PICK,
    BLOCK_REASON,
    BLOCK_TEMPLATE,
    BLOCK_TEXT,
    VAR_BLOCK_PREFIX,
    VIEW_APPROVE_EDIT,
    VIEW_DRAFT,
    VIEW_REJECT,
    BadButtonValue,
    ButtonValue,
)
from bot.slack.modals import (
    TEXT_INPUT_MAX,
    approve_edit_modal,
    draft_modal,
    parse_draft_metadata,
    reject_modal,
)
from db.models import DraftRow
from db.store import CaseRecord, mention_of
from handlers.common import actor_of, explain, first_action, refuse, tell
from handlers.deps import Deps
from handlers.views import field_value

log = logging.getLogger(__name__)

Ack = Callable[..., Awaitable[Any]]
DRAFTABLE = (State.CLAIMED, State.REPLIED)
KNOWN_NETWORKS = frozenset({"x", "mastodon", "bluesky", "reddit", "rss", "hackernews",
                            "facebook", "instagram"})


def _connectors(deps: Deps) -> Mapping[str, Any]:
    return deps.extras.get("connectors", {})  # type: ignore[no-any-return]


def _values(view: dict[str, Any]) -> dict[str, str]:
    state = (view.get("state") or {}).get("values") or {}
    return {
        block[len(VAR_BLOCK_PREFIX):]: value
        for block in state
        if block.startswith(VAR_BLOCK_PREFIX)
        and (value := field_value(view, block, ACTION_DRAFT_INPUT)) is not None
    }


def _typed_text(view: dict[str, Any]) -> str:
    return (field_value(view, BLOCK_TEXT, ACTION_DRAFT_INPUT) or "").strip()


def _templates(deps: Deps, record: CaseRecord) -> list[Any]:
    """Templates for this network; mentions from webhook sources count as `generic`."""
    source = record.mention.source.lower()
    network = source if source in KNOWN_NETWORKS else "generic"
    return deps.renderer.reply_templates(network)  # type: ignore[attr-defined,no-any-return]


def _measure(deps: Deps, record: CaseRecord, text: str) -> LengthCheck:
    return measure(limits_for(_connectors(deps), record), record, text)


def _view(deps: Deps, record: CaseRecord, name: str | None, values: dict[str, str],
          agent: str, typed: str = "") -> dict[str, Any]:
    """The draft modal for what the agent has chosen and typed so far, preview counted."""
    templates = _templates(deps, record)
    selected = next((t for t in templates if t.name == name), None)
    if selected is None and len(templates) == 1:
        selected = templates[0]
    preview, length, note = None, None, ""
    if selected is not None:
        merged = {v.name: v.default for v in selected.variables if v.default} | values
        context = ReplyContext(mention=mention_of(record.mention), case_id=record.case.id or 0,
                               agent_id=agent, brand=deps.extras.get("brand", {}))
        try:
            preview = typed or render_reply(selected, context, merged)
            length = _measure(deps, record, preview)
        except RenderError as exc:
            note = f"Preview after the fields are filled in ({exc.message})"
    return draft_modal(record, templates, selected, values=values, preview=preview,
                       length=length, note=note)


async def _update_view(deps: Deps, view: dict[str, Any], new_view: dict[str, Any]) -> None:
    """Replace the open modal, unless the person changed it meanwhile (Slack's view hash):
    a newer keystroke is already on its way and will rebuild it from newer input."""
    try:
        await deps.notifier.call("views.update", view_id=view["id"], hash=view.get("hash"),
                                 view=new_view)
    except PermanentError as exc:
        if "hash_conflict" not in str(exc):
            raise
        log.debug("views.update skipped: the view changed meanwhile")


async def handle_draft(deps: Deps, ack: Ack, body: dict[str, Any]) -> None:
    """Open the modal at once: it must land inside Slack's 3-second trigger window."""
    try:
        value = ButtonValue.unpack(first_action(body).get("value"))
        actor = await actor_of(deps, body)
        record = await load_case(deps.services, value.case_id)
        check_may_act(actor, Action.SUBMIT_DRAFT, record.case.assignee)
        if record.case.state not in DRAFTABLE:
            raise NotAllowed("Claim the case before drafting a reply.")
        possible, why = reply_possible(_connectors(deps), record)
        if not possible:
            raise NotAllowed(why)
        await deps.notifier.open_view(body["trigger_id"],
                                      _view(deps, record, None, {}, actor.user_id))
    except Exception as exc:
        await tell(deps, body, await refuse(deps, body, exc))
    await ack()


async def handle_draft_change(deps: Deps, ack: Ack, body: dict[str, Any]) -> None:
    """A template was picked or a field typed into: rebuild the preview and its count."""
    await ack()
    view = body.get("view") or {}
    try:
        if view.get("callback_id") == VIEW_APPROVE_EDIT:
            await _edit_change(deps, body, view)
            return
        case_id, meta_template = parse_draft_metadata(view.get("private_metadata"))
        record = await load_case(deps.services, case_id)
        actor = await actor_of(deps, body)
        action = first_action(body)
        if action.get("action_id") == ACTION_TEMPLATE_PICK:
            name = (action.get("selected_option") or {}).get("value")
        else:
            name = field_value(view, BLOCK_TEMPLATE, ACTION_TEMPLATE_PICK) or meta_template
        new_view = _view(deps, record, name, _values(view), actor.user_id, _typed_text(view))
        await _update_view(deps, view, new_view)
    except Exception as exc:
        explain(exc)


async def _load_draft(deps: Deps, value: ButtonValue) -> DraftRow:
    async with deps.services.db.transaction() as tx:
        draft = await tx.get_draft(value.draft_id or 0)
    if draft is None or draft.case_id != value.case_id or draft.status != "pending":
        raise DraftNotCurrent
    return draft


async def _edit_change(deps: Deps, body: dict[str, Any], view: dict[str, Any]) -> None:
    value = ButtonValue.unpack(view.get("private_metadata"))
    record = await load_case(deps.services, value.case_id)
    draft = await _load_draft(deps, value)
    text = _typed_text(view)
    new_view = approve_edit_modal(value.case_id, value.draft_id or 0, text,
                                  _measure(deps, record, text), agent=draft.author)
    await _update_view(deps, view, new_view)


async def handle_draft_submit(deps: Deps, ack: Ack, body: dict[str, Any]) -> None:
    view = body.get("view") or {}
    try:
        case_id, meta_template = parse_draft_metadata(view.get("private_metadata"))
        record = await load_case(deps.services, case_id)
        actor = await actor_of(deps, body)
        name = field_value(view, BLOCK_TEMPLATE, ACTION_TEMPLATE_PICK) or meta_template
        template = next((t for t in _templates(deps, record) if t.name == name), None)
        draft = compose_draft(
            record, template, _values(view), _typed_text(view),
            limits_for(_connectors(deps), record),
            agent_id=actor.user_id, brand=deps.extras.get("brand", {}),
        )
        await save_draft(deps.services, case_id, actor, draft)
    except FieldErrors as exc:
        await ack(response_action="errors", errors=exc.errors)
        return
    except Exception as exc:
        reason = await refuse(deps, body, exc)
        await ack(response_action="errors", errors={BLOCK_TEMPLATE: reason})
        return
    finally:
        deps.wake()
    await ack()


def _draft_button(body: dict[str, Any]) -> ButtonValue:
    """The clicked button's value; approval buttons must name a draft."""
    value = ButtonValue.unpack(first_action(body).get("value"))
    if value.draft_id is None:
        raise BadButtonValue
    return value


async def handle_approve(deps: Deps, ack: Ack, body: dict[str, Any]) -> None:
    try:
        value = _draft_button(body)
        actor = await actor_of(deps, body)
        await approve_draft(deps.services, value.case_id, value.draft_id, actor)
    except Exception as exc:
        await tell(deps, body, await refuse(deps, body, exc))
    finally:
        deps.wake()
    await ack()


async def handle_approve_edit(deps: Deps, ack: Ack, body: dict[str, Any]) -> None:
    """Open the lead's editor with the draft's text; the same checks as approving apply."""
    try:
        value = _draft_button(body)
        actor = await actor_of(deps, body)
        draft = await _load_draft(deps, value)
        check_may_decide(actor, draft.author)
        if len(draft.text) > TEXT_INPUT_MAX:
            raise NotAllowed("This draft is longer than Slack's 3,000-character text box; "
                             "approve it as it is or reject it with a reason.")
        record = await load_case(deps.services, value.case_id)
        await deps.notifier.open_view(body["trigger_id"], approve_edit_modal(
            value.case_id, value.draft_id, draft.text, _measure(deps, record, draft.text),
            agent=draft.author))
    except Exception as exc:
        await tell(deps, body, await refuse(deps, body, exc))
    await ack()


async def handle_approve_edit_submit(deps: Deps, ack: Ack, body: dict[str, Any]) -> None:
    """Re-check the edited text against the network's limit; over it, nothing is saved."""
    view = body.get("view") or {}
    try:
        value = ButtonValue.unpack(view.get("private_metadata"))
        actor = await actor_of(deps, body)
        record = await load_case(deps.services, value.case_id)
        text = _typed_text(view)
        length = _measure(deps, record, text)
        if not length.ok:
            await ack(response_action="errors", errors={BLOCK_TEXT: length.detail})
            return
        await approve_draft(deps.services, value.case_id, value.draft_id or 0, actor,
                            edited_text=text, length=length)
    except Exception as exc:
        reason = await refuse(deps, body, exc)
        await ack(response_action="errors", errors={BLOCK_TEXT: reason})
        return
    finally:
        deps.wake()
    await ack()


async def handle_reject(deps: Deps, ack: Ack, body: dict[str, Any]) -> None:
    """Ask for the reason first; the lead check happens now and again on submit."""
    try:
        value = _draft_button(body)
        actor = await actor_of(deps, body)
        draft = await _load_draft(deps, value)
        check_may_decide(actor, draft.author)
        await deps.notifier.open_view(body["trigger_id"],
                                      reject_modal(value.case_id, value.draft_id))
    except Exception as exc:
        await tell(deps, body, await refuse(deps, body, exc))
    await ack()


async def handle_reject_submit(deps: Deps, ack: Ack, body: dict[str, Any]) -> None:
    view = body.get("view") or {}
    try:
        value = ButtonValue.unpack(view.get("private_metadata"))
        actor = await actor_of(deps, body)
        await reject_draft(deps.services, value.case_id, value.draft_id or 0, actor,
                           field_value(view, BLOCK_REASON) or "")
    except Exception as exc:
        reason = await refuse(deps, body, exc)
        await ack(response_action="errors", errors={BLOCK_REASON: reason})
        return
    finally:
        deps.wake()
    await ack()


async def handle_retry(deps: Deps, ack: Ack, body: dict[str, Any]) -> None:
    try:
        value = ButtonValue.unpack(first_action(body).get("value"))
        actor = await actor_of(deps, body)
        await retry_reply(deps.services, value.case_id, actor)
    except Exception as exc:
        await tell(deps, body, await refuse(deps, body, exc))
    finally:
        deps.wake()
    await ack()


def register(app: AsyncApp, deps: Deps) -> None:
    table: list[tuple[str, Callable[..., Awaitable[None]]]] = [
        (ACTION_DRAFT, handle_draft),
        (ACTION_TEMPLATE_PICK, handle_draft_change),
        (ACTION_DRAFT_INPUT, handle_draft_change),
        (ACTION_APPROVE, handle_approve),
        (ACTION_APPROVE_EDIT, handle_approve_edit),
        (ACTION_REJECT, handle_reject),
        (ACTION_RETRY, handle_retry),
    ]
    for action_id, handler in table:
        app.action(action_id)(_bind(deps, handler))
    app.view(VIEW_DRAFT)(_bind(deps, handle_draft_submit))
    app.view(VIEW_APPROVE_EDIT)(_bind(deps, handle_approve_edit_submit))
    app.view(VIEW_REJECT)(_bind(deps, handle_reject_submit))


def _bind(deps: Deps, handler: Callable[..., Awaitable[None]]
          ) -> Callable[[Ack, dict[str, Any]], Awaitable[None]]:
    async def listener(ack: Ack, body: dict[str, Any]) -> None:
        await handler(deps, ack, body)

    return listener
