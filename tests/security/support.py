"""Helpers the security tests share: database snapshots, signed raw requests, counters."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlmodel import SQLModel

from bot.sandbox.client import sign
from tests.stack import SIGNING_SECRET, Stack


async def snapshot(stack: Stack) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table the bot owns: equal snapshots mean nothing was written."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    async with stack.components.db.engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            result = await conn.execute(text(f'SELECT * FROM "{table.name}"'))
            rows[table.name] = sorted((tuple(map(repr, r)) for r in result), key=repr)
    return rows


async def post_slack(stack: Stack, body: bytes, headers: dict[str, str],
                     content_type: str = "application/x-www-form-urlencoded") -> tuple[int, str]:
    """A raw request to /slack/events with exactly these headers."""
    async with stack.http.post(f"{stack.url}slack/events", data=body,
                               headers={"Content-Type": content_type, **headers}) as response:
        return response.status, await response.text()


def slack_headers(body: bytes, *, secret: str = SIGNING_SECRET,
                  at: int | None = None) -> dict[str, str]:
    return sign(secret, body, int(time.time()) if at is None else at)


def interaction_body(payload: dict[str, Any]) -> bytes:
    from urllib.parse import urlencode

    return urlencode({"payload": json.dumps(payload)}).encode()


@dataclass
class Tally:
    """Counts a test prints, so the figures in SECURITY.md come from a real run."""

    name: str
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def print(self) -> None:
        figures = ", ".join(f"{k}={v}" for k, v in self.counts.items())
        print(f"\n[security] {self.name}: {figures}")


def forged_click_body(stack: Stack, *, user_id: str, team_id: str, channel: str,
                      message_ts: str, action_id: str, value: str | None = None) -> bytes:
    """A `block_actions` body as Slack would send it, but for any user and workspace: what
    someone holding the signing secret (or another workspace of the same app) could send."""
    from bot.sandbox.blockkit import find_element
    from bot.sandbox.payloads import action_entry

    ws = stack.emulator.workspace
    message = ws.find_message(channel, message_ts)
    assert message is not None
    block, element = find_element(message.blocks or [], action_id, None)
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user_id, "username": "someone", "name": "someone", "team_id": team_id},
        "api_app_id": ws.app_id,
        "token": stack.emulator.verification_token,
        "trigger_id": f"{int(time.time())}.forged",
        "team": {"id": team_id, "domain": "elsewhere"},
        "enterprise": None,
        "is_enterprise_install": False,
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel,
                      "is_ephemeral": False},
        "channel": {"id": channel, "name": ws.channel_name(channel)},
        "message": stack.emulator.api.render(message),
        "state": {"values": {}},
        "response_url": f"{stack.emulator.base_url}response/forged",
        "actions": [action_entry(element, str(block.get("block_id")), ws.ids.ts(),
                                 value if value is not None else element.get("value"))],
    }
    return interaction_body(payload)


def forged_command_body(stack: Stack, *, user_id: str, team_id: str, text: str) -> bytes:
    from urllib.parse import urlencode

    return urlencode({
        "token": stack.emulator.verification_token, "team_id": team_id,
        "team_domain": "elsewhere", "channel_id": "C0MENTIONS", "channel_name": "mentions",
        "user_id": user_id, "user_name": "someone", "command": "/mentions", "text": text,
        "api_app_id": stack.emulator.workspace.app_id, "is_enterprise_install": "false",
        "response_url": f"{stack.emulator.base_url}response/forged",
        "trigger_id": f"{int(time.time())}.forged",
    }).encode()


async def send_signed(stack: Stack, body: bytes) -> tuple[int, str]:
    return await post_slack(stack, body, slack_headers(body))
