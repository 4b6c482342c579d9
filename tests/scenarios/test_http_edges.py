"""Requests Slack would never send, retries it does send, and the health endpoints."""

from __future__ import annotations

import json

from bot.sandbox.client import Signing
from bot.slack.ids import ACTION_CLAIM
from tests.scenarios.test_claim_flow import audit, button, case_row, mention
from tests.stack import ANN, MENTIONS, Stack


async def test_forged_or_stale_slack_requests_get_401_and_change_nothing(stack: Stack) -> None:
    status, _ = await stack.post_webhook(json.dumps(mention()).encode())
    assert status == 200
    await stack.drain()
    card = stack.cards()[0]
    value = button(card, "Claim")["value"]
    for signing in (Signing.BAD_SIGNATURE, Signing.STALE_TIMESTAMP, Signing.UNSIGNED):
        response = await stack.emulator.click(ANN, MENTIONS, card.ts, ACTION_CLAIM, value,
                                              signing=signing)
        assert response.status == 401
        command = await stack.emulator.send_command(ANN, "status", signing=signing)
        assert command.status == 401
    assert (await case_row(stack, 1)).state == "new"
    assert [e.action for e in await audit(stack, 1)] == ["ingest"]


async def test_retried_event_is_applied_once(stack: Stack) -> None:
    event = {"type": "app_home_opened", "user": ANN, "channel": "D0ANN", "tab": "home"}
    async with stack.queued_then_drained():
        first = await stack.emulator.send_event(event, event_id="Ev0001")
        again = await stack.emulator.send_event(event, event_id="Ev0001", retry_num=1,
                                                retry_reason="http_timeout")
    assert (first.status, again.status) == (200, 200)
    assert len(stack.emulator.calls_to("views.publish")) == 1
    assert stack.emulator.home(ANN) is not None
    async with stack.components.db.transaction() as tx:
        assert not await tx.remember_delivery("event:Ev0001", stack.clock())


async def test_health_and_readiness(stack: Stack) -> None:
    async with stack.http.get(f"{stack.url}healthz") as response:
        assert response.status == 200
    async with stack.http.get(f"{stack.url}readyz") as response:
        assert response.status == 200
        assert (await response.json())["database"] is True


async def test_status_command_answers_ephemerally(stack: Stack) -> None:
    await stack.post_webhook(json.dumps(mention()).encode())
    response = await stack.emulator.send_command(ANN, "status")
    body = json.loads(response.text)
    assert body["response_type"] == "ephemeral"
    assert "new *1*" in body["text"] and "Oldest unclaimed:* #1" in body["text"]
    unknown = json.loads((await stack.emulator.send_command(ANN, "frobnicate")).text)
    assert unknown["text"].startswith("I don't know `frobnicate`")


async def test_oversized_text_is_shown_truncated_and_escaped(stack: Stack) -> None:
    hostile = mention(text="<!channel> ‮gnp.exe " + "👩‍👩‍👧‍👦" * 3000)
    status, _ = await stack.post_webhook(json.dumps(hostile).encode())
    assert status == 200
    await stack.drain()
    blocks = json.dumps(stack.cards()[0].blocks, ensure_ascii=False)
    assert "<!channel>" not in blocks and "&lt;!channel&gt;" in blocks
    assert "\u202e" not in blocks
    assert stack.emulator.violations == []
