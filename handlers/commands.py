"""`/mentions …`: answered in the acknowledgement itself, ephemerally, within Slack's 3 s."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.domain.lifecycle import Role, State
from bot.services.queries import find_cases, my_cases, team_status
from bot.slack.cards import network_label
from bot.slack.text import escape_and_truncate
from db.store import CaseRecord
from handlers.common import actor_of, explain
from handlers.deps import Deps

Ack = Callable[..., Awaitable[Any]]

HELP = (
    "*mentiondesk* — `/mentions <subcommand>`\n"
    "• `status` open cases by state, the oldest unclaimed, each agent's load\n"
    "• `mine` the cases you hold\n"
    "• `find <text or @handle>` cases by author or text, e.g. `/mentions find @ann`\n"
    "• `templates` the reply templates\n"
    "• `report [today|7d|30d]` and `export [range]` KPIs for leads\n"
    "• `help` this message"
)


def _age(since: datetime | None, now: datetime) -> str:
    if since is None:
        return "-"
    minutes = max(0, int((now - since).total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h {minutes % 60} min"
    return f"{minutes // 1440} days"


def _line(record: CaseRecord) -> str:
    case, mention = record.case, record.mention
    handle = escape_and_truncate(mention.author_handle or "unknown", 60)
    text = escape_and_truncate(" ".join(mention.text.split()), 80)
    return f"• #{case.id} · {network_label(mention.source)} · {handle} · _{case.state}_ — {text}"


async def status_text(deps: Deps) -> str:
    status = await team_status(deps.services)
    states = " · ".join(
        f"{s.value.replace('_', ' ')} *{status.by_state.get(s.value, 0)}*"
        for s in State if s != State.CLOSED
    )
    lines = [f"*Open cases:* {states}"]
    if status.oldest_unclaimed_id is not None:
        age = _age(status.oldest_unclaimed_since, status.now)
        lines.append(f"*Oldest unclaimed:* #{status.oldest_unclaimed_id}, waiting {age}")
    else:
        lines.append("*Oldest unclaimed:* none — the queue is clear")
    if status.load:
        load = ", ".join(f"<@{u}> {n}" for u, n in sorted(status.load.items()))
        lines.append(f"*Load:* {load}")
    parked = status.outbox.get("parked", 0)
    pending = status.outbox.get("pending", 0) + status.outbox.get("leased", 0)
    lines.append(f"*Outbox:* {pending} waiting, {parked} failed")
    lines.extend(
        f"*Source {escape_and_truncate(src.source, 64)}:* "
        + ("healthy" if not src.failures else
           f"failing ({src.failures}×): {escape_and_truncate(src.last_error or '', 200)}")
        for src in status.sources
    )
    return "\n".join(lines)


async def answer(deps: Deps, body: dict[str, Any]) -> str:
    words = (body.get("text") or "").strip().split(maxsplit=1)
    sub = words[0].lower() if words else "help"
    rest = words[1] if len(words) > 1 else ""
    actor = await actor_of(deps, body)
    if actor.role is Role.NONE:
        return "Only members of the care team can use `/mentions`."
    if sub == "status":
        return await status_text(deps)
    if sub == "mine":
        cases = await my_cases(deps.services, actor.user_id)
        return "\n".join(_line(c) for c in cases) if cases else "You hold no open cases."
    if sub == "find":
        if not rest.strip():
            return "Tell me what to look for, e.g. `/mentions find @ann`."
        found = await find_cases(deps.services, rest)
        return "\n".join(_line(c) for c in found) if found else "No case matches that."
    extra = deps.extras.get("commands", {})
    if sub in extra:
        return str(await extra[sub](deps, body, actor, rest))
    prefix = "" if sub == "help" else f"I don't know `{escape_and_truncate(sub, 40)}`.\n"
    return prefix + HELP


async def handle_mentions(deps: Deps, ack: Ack, body: dict[str, Any]) -> None:
    try:
        text = await answer(deps, body)
    except Exception as exc:
        text = explain(exc)
    await ack(text=text, response_type="ephemeral")


def register(app: AsyncApp, deps: Deps) -> None:
    @app.command("/mentions")
    async def _mentions(ack: Ack, body: dict[str, Any]) -> None:
        await handle_mentions(deps, ack, body)
