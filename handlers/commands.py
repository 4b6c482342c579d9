"""`/mentions …`: answered in the acknowledgement itself, ephemerally, within Slack's 3 s.

`report` and `export` acknowledge at once and deliver afterwards (handlers/reports.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.domain.lifecycle import POLICY, NotAllowed, Role, authorize
from bot.services.queries import FIND_LIMIT, find_cases, is_handle_query, my_cases
from bot.services.reports import team_status
from bot.slack.cards import network_label
from bot.slack.find_text import found_text
from bot.slack.kpi_text import status_text as format_status
from bot.slack.text import escape_and_truncate
from db.store import CaseRecord
from handlers.common import actor_of, explain, refuse
from handlers.deps import Deps
from handlers.reports import Deferred, Respond, prepare, run_deferred

Ack = Callable[..., Awaitable[Any]]

HELP = (
    "*mentiondesk* — `/mentions <subcommand>`\n"
    "• `status` open cases by state, the oldest unclaimed, SLA risk, each agent's load, "
    "each source's health\n"
    "• `mine` the cases you hold\n"
    "• `find <text or @handle>` cases by author or text, e.g. `/mentions find @ann`\n"
    "• `templates` the reply templates\n"
    "• `report [today|7d|30d|YYYY-MM-DD..YYYY-MM-DD] [network]` KPIs for leads, e.g. "
    "`/mentions report 7d mastodon`\n"
    "• `export [audit] [range]` a CSV of the cases (or the audit log) as a file\n"
    "• `help` this message"
)


def _line(record: CaseRecord) -> str:
    case, mention = record.case, record.mention
    handle = escape_and_truncate(mention.author_handle or "unknown", 60)
    text = escape_and_truncate(" ".join(mention.text.split()), 80)
    return f"• #{case.id} · {network_label(mention.source)} · {handle} · _{case.state}_ — {text}"


async def status_text(deps: Deps) -> str:
    return format_status(await team_status(deps.services))


async def answer(deps: Deps, body: dict[str, Any]) -> str | Deferred:
    words = (body.get("text") or "").strip().split(maxsplit=1)
    sub = words[0].lower() if words else "help"
    rest = words[1] if len(words) > 1 else ""
    actor = await actor_of(deps, body)
    try:
        authorize(actor, sub if sub in POLICY else "help")
    except NotAllowed as exc:
        await refuse(deps, body, exc)
        return ("Only members of the care team can use `/mentions`."
                if actor.role is Role.NONE else str(exc))
    if sub == "status":
        return await status_text(deps)
    if sub in ("report", "export"):
        return await prepare(deps, body, actor, sub, rest)
    if sub == "mine":
        cases = await my_cases(deps.services, actor.user_id)
        return "\n".join(_line(c) for c in cases) if cases else "You hold no open cases."
    if sub == "find":
        if not rest.strip():
            return "Tell me what to look for, e.g. `/mentions find @ann`."
        found = await find_cases(deps.services, rest)
        return found_text(rest, found, by_handle=is_handle_query(rest), limit=FIND_LIMIT)
    extra = deps.extras.get("commands", {})
    if sub in extra:
        return str(await extra[sub](deps, body, actor, rest))
    prefix = "" if sub == "help" else f"I don't know `{escape_and_truncate(sub, 40)}`.\n"
    return prefix + HELP


async def handle_mentions(deps: Deps, ack: Ack, body: dict[str, Any],
                          respond: Respond | None = None) -> None:
    try:
        result = await answer(deps, body)
    except Exception as exc:
        result = explain(exc)
    if isinstance(result, Deferred):
        await ack(text=result.ack_text, response_type="ephemeral")
        if respond is not None:
            await run_deferred(result, respond)
        return
    await ack(text=result, response_type="ephemeral")


def register(app: AsyncApp, deps: Deps) -> None:
    @app.command("/mentions")
    async def _mentions(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        await handle_mentions(deps, ack, body, respond)
