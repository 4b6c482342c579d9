"""`/mentions templates`: the reply templates leads have approved, and where each applies."""

from __future__ import annotations

from typing import Any

from bot.domain.lifecycle import Actor
from bot.slack.text import escape_and_truncate
from handlers.deps import Deps


async def templates_command(deps: Deps, _body: dict[str, Any], _actor: Actor, _rest: str
                            ) -> str:
    templates = deps.renderer.reply_templates()  # type: ignore[attr-defined]
    if not templates:
        return "There are no reply templates yet: leads add them in `templates/replies/`."
    lines = ["*Reply templates*"]
    for t in templates:
        networks = ", ".join(t.networks)
        flag = " · pre-approved" if t.preapproved else ""
        fields = ", ".join(v.name for v in t.variables) or "no fields"
        lines.append(f"• *{escape_and_truncate(t.title, 80)}* (`{t.name}`) — {networks}{flag}"
                     f" — {escape_and_truncate(fields, 200)}")
    return "\n".join(lines)
