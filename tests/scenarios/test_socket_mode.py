"""Socket Mode: the same flows with Slack's requests over the bot's WebSocket, not HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.sandbox.client import sign
from bot.slack.ids import ACTION_CLAIM, ACTION_CLOSE
from tests.scenarios.test_claim_flow import button, case_row, ingest_one, labels
from tests.stack import ANN, BOB, MENTIONS, SIGNING_SECRET, Stack, start_stack


@pytest.fixture
async def sstack(database_url: str, tmp_path: Path) -> AsyncIterator[Stack]:
    async with start_stack(database_url, tmp_path, socket_mode=True) as running:
        yield running


async def test_claim_and_close_over_the_socket(sstack: Stack) -> None:
    stack = sstack
    await ingest_one(stack)
    card = stack.cards()[0]
    value = button(card, "Claim")["value"]
    first = await stack.emulator.click(ANN, MENTIONS, card.ts, ACTION_CLAIM, value)
    second = await stack.emulator.click(BOB, MENTIONS, card.ts, ACTION_CLAIM, value)
    assert (first.status, second.status) == (200, 200)  # both acknowledged over the socket
    case = await case_row(stack, 1)
    assert (case.state, case.assignee) == ("claimed", ANN)
    assert [e.text for e in stack.emulator.ephemerals(MENTIONS, BOB)] == [
        f"Already claimed by <@{ANN}>."]
    await stack.drain()
    assert labels(stack.cards()[0]) == ["Release", "Close"]  # this source cannot reply

    await stack.emulator.click(ANN, MENTIONS, card.ts, ACTION_CLOSE, value)
    [view] = stack.emulator.open_views(ANN)
    response = await stack.emulator.submit_view(ANN, view.id, {"outcome": {"value": "resolved"}})
    assert response.status == 200
    assert (await case_row(stack, 1)).state == "closed"
    assert not stack.emulator.open_views(ANN)  # the empty ack closed the modal
    kinds = [e["type"] for e in stack.emulator.socket_mode.envelopes]
    assert kinds == ["interactive"] * 4
    assert stack.emulator.violations == []


async def test_redelivered_event_applies_once(sstack: Stack) -> None:
    stack = sstack
    event = {"type": "app_home_opened", "user": ANN, "tab": "home",
             "channel": stack.emulator.workspace.dm_channel(ANN).id}
    async with stack.queued_then_drained():
        for retry in (None, 1, 2):
            response = await stack.emulator.send_event(event, event_id="Ev0SOCKET1",
                                                       retry_num=retry)
            assert response.status == 200
    assert len(stack.emulator.calls_to("views.publish")) == 1
    retries = [e["retry_attempt"] for e in stack.emulator.socket_mode.envelopes]
    assert retries == [0, 1, 2]


async def test_reconnects_when_slack_asks(sstack: Stack) -> None:
    stack = sstack
    await stack.emulator.socket_mode.disconnect_all()
    await stack.emulator.wait_for_call("apps.connections.open", count=2)
    await stack.emulator.socket_mode.wait_connected()
    await ingest_one(stack)
    card = stack.cards()[0]
    await stack.emulator.click(ANN, MENTIONS, card.ts, ACTION_CLAIM, button(card, "Claim")["value"])
    assert (await case_row(stack, 1)).assignee == ANN


async def test_http_endpoint_stays_shut_without_a_signing_secret(sstack: Stack) -> None:
    """Socket Mode runs without a signing secret; HTTP requests must not fail open."""
    stack = sstack
    await ingest_one(stack)
    card = stack.cards()[0]
    payload = {"type": "block_actions", "user": {"id": ANN}, "team": {"id": "T0MENTDSK"},
               "actions": [{"action_id": ACTION_CLAIM, "value": button(card, "Claim")["value"]}]}
    body = f"payload={json.dumps(payload)}".encode()
    for secret in (SIGNING_SECRET, ""):
        headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(secret, body)}
        async with stack.http.post(f"{stack.url}slack/events", data=body,
                                   headers=headers) as response:
            assert response.status == 503
    assert (await case_row(stack, 1)).state == "new"
