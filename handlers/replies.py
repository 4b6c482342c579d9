"""Listeners for the reply loop: draft modal, template pick, approve, reject, retry."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.domain.lifecycle import Action, NotAllowed, State, check_may_act, check_may_decide
from bot.render import RenderError, ReplyContext, render_reply
from bot.services.cases import load_case
from bot.services.drafting import FieldErrors, compose_draft, limits_for, measure
from bot.services.replies import approve_draft, reject_draft, retry_reply, save_draft
from bot.slack.ids import (
    ACTION_APPROVE,
    ACTION_DRAFT,
    ACTION_REJECT,
    ACTION_RETRY,
    ACTION_TEMPLATE_PICK,
    BLOCK_REASON,
    BLOCK_TEMPLATE,
    BLOCK_TEXT,
    VAR_BLOCK_PREFIX,
    VIEW_DRAFT,
    VIEW_REJECT,
    ButtonValue,
)
from bot.slack.modals import draft_modal, parse_draft_metadata, reject_modal
from db.store import CaseRecord, mention_of
from handlers.common import actor_of, explain, first_action, tell
from handlers.deps import Deps
from handlers.views import field_value

Ack = Callable[..., Awaitable[Any]]
DRAFTABLE = (State.CLAIMED, State.REPLIED)


def _values(view: dict[str, Any]) -> dict[str, str]:
    state = (view.get("state") or {}).get("values") or {}
    return {
        block[len(VAR_BLOCK_PREFIX):]: value
        for block in state
        if block.startswith(VAR_BLOCK_PREFIX) and (value := field_value(view, block)) is not None
    }


KNOWN_NETWORKS = frozenset({"x", "mastodon", "bluesky", "reddit", "rss", "hackernews",
                            "facebook", "instagram"})


def _templates(deps: Deps, record: CaseRecord) -> list[Any]:
    """Templates for this network; mentions from webhook sources count as `generic`."""
    source = record.mention.source.lower()
    network = source if source in KNOWN_NETWORKS else "generic"
    return deps.renderer.reply_templates(network)  # type: ignore[attr-defined,no-any-return]


def _view(deps: Deps, record: CaseRecord, name: str | None, values: dict[str, str],
          agent: str) -> dict[str, Any]:
    templates = _templates(deps, record)
    selected = next((t for t in templates if t.name == name), None)
    if selected is None and len(templates) == 1:
        selected = templates[0]
    preview, detail = None, ""
    if selected is not None:
        merged = {v.name: v.default for v in selected.variables if v.default} | values
        context = ReplyContext(mention=mention_of(record.mention), case_id=record.case.id or 0,
                               agent_id=agent, brand=deps.extras.get("brand", {}))
        try:
            preview = render_reply(selected, context, merged)
            limits = limits_for(deps.extras.get("connectors", {}), record)
            detail = measure(limits, record, preview).detail
        except RenderError as exc:
            detail = f"Preview after the fields are filled in ({exc.message})"
    return draft_modal(record, templates, selected, values=values, preview=preview,
                       length_detail=detail)


async def handle_draft(deps: Deps, ack: Ack, body: dict[str, Any]) -> None:
    """Open the modal at once: it must land inside Slack's 3-second trigger window."""
    try:
        value = ButtonValue.unpack(first_action(body).get("value"))
        actor = await actor_of(deps, body)
        record = await load_case(deps.services, value.case_id)
        check_may_act(actor, Action.SUBMIT_DRAFT, record.case.assignee)
        if record.case.state not in DRAFTABLE:
            raise NotAllowed("Claim the case before drafting a reply.")
        await deps.notifier.open_view(body["trigger_id"],
                                      _view(deps, record, None, {}, actor.user_id))
    except Exception as exc:
        await tell(deps, body, explain(exc))
    await ack()


async def handle_template_pick(deps: Deps, ack: Ack, body: dict[str, Any]) -> None:
    await ack()
    view = body.get("view") or {}
    try:
        case_id, _ = parse_draft_metadata(view.get("private_metadata"))
        record = await load_case(deps.services, case_id)
        actor = await actor_of(deps, body)
        name = first_action(body).get("selected_option", {}).get("value")
        new_view = _view(deps, record, name, _values(view), actor.user_id)
        await deps.notifier.call("views.update", view_id=view["id"], hash=view.get("hash"),
                                 view=new_view)
    except Exception as exc:
        explain(exc)


async def handle_draft_submit(deps: Deps, ack: Ack, body: dict[str, Any]) -> None:
    view = body.get("view") or {}
    try:
        case_id, meta_template = parse_draft_metadata(view.get("private_metadata"))
        record = await load_case(deps.services, case_id)
        actor = await actor_of(deps, body)
        name = field_value(view, BLOCK_TEMPLATE, ACTION_TEMPLATE_PICK) or meta_template
        template = next((t for t in _templates(deps, record) if t.name == name), None)
        draft = compose_draft(
            record, template, _values(view), field_value(view, BLOCK_TEXT),
            limits_for(deps.extras.get("connectors", {}), record),
            agent_id=actor.user_id, brand=deps.extras.get("brand", {}),
        )
        await save_draft(deps.services, case_id, actor, draft)
    except FieldErrors as exc:
        await ack(response_action="errors", errors=exc.errors)
        return
    except Exception as exc:
        await ack(response_action="errors", errors={BLOCK_TEMPLATE: explain(exc)})
        return
    finally:
        deps.wake()
    await ack()


async def handle_approve(deps: Deps, ack: Ack, body: dict[str, Any]) -> None:
    try:
        value = ButtonValue.unpack(first_action(body).get("value"))
        if value.draft_id is None:
            raise ValueError("That button is not one mentiondesk made; nothing was changed.")
        actor = await actor_of(deps, body)
        await approve_draft(deps.services, value.case_id, value.draft_id, actor)
    except Exception as exc:
        await tell(deps, body, explain(exc))
    finally:
        deps.wake()
    await ack()


async def handle_reject(deps: Deps, ack: Ack, body: dict[str, Any]) -> None:
    """Ask for the reason first; the lead check happens now and again on submit."""
    try:
        value = ButtonValue.unpack(first_action(body).get("value"))
        if value.draft_id is None:
            raise ValueError("That button is not one mentiondesk made; nothing was changed.")
        actor = await actor_of(deps, body)
        async with deps.services.db.transaction() as tx:
            draft = await tx.get_draft(value.draft_id)
        if draft is None or draft.case_id != value.case_id or draft.status != "pending":
            raise ValueError("That draft is no longer the current one; nothing was changed.")
        check_may_decide(actor, draft.author)
        await deps.notifier.open_view(body["trigger_id"],
                                      reject_modal(value.case_id, value.draft_id))
    except Exception as exc:
        await tell(deps, body, explain(exc))
    await ack()


async def handle_reject_submit(deps: Deps, ack: Ack, body: dict[str, Any]) -> None:
    view = body.get("view") or {}
    try:
        value = ButtonValue.unpack(view.get("private_metadata"))
        actor = await actor_of(deps, body)
        await reject_draft(deps.services, value.case_id, value.draft_id or 0, actor,
                           field_value(view, BLOCK_REASON) or "")
    except Exception as exc:
        await ack(response_action="errors", errors={BLOCK_REASON: explain(exc)})
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
        await tell(deps, body, explain(exc))
    finally:
        deps.wake()
    await ack()


def register(app: AsyncApp, deps: Deps) -> None:
    table: list[tuple[str, Callable[..., Awaitable[None]]]] = [
        (ACTION_DRAFT, handle_draft),
        (ACTION_TEMPLATE_PICK, handle_template_pick),
        (ACTION_APPROVE, handle_approve),
        (ACTION_REJECT, handle_reject),
        (ACTION_RETRY, handle_retry),
    ]
    for action_id, handler in table:
        app.action(action_id)(_bind(deps, handler))
    app.view(VIEW_DRAFT)(_bind(deps, handle_draft_submit))
    app.view(VIEW_REJECT)(_bind(deps, handle_reject_submit))


def _bind(deps: Deps, handler: Callable[..., Awaitable[None]]
          ) -> Callable[[Ack, dict[str, Any]], Awaitable[None]]:
    async def listener(ack: Ack, body: dict[str, Any]) -> None:
        await handler(deps, ack, body)

    return listener
