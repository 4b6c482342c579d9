"""The sandbox page's HTTP side against the real bot: state, actions and loud failures."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, web
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.sandbox.page import SandboxPage
from bot.slack.ids import ACTION_CLAIM
from tests.loopback import serving
from tests.scenarios.test_claim_flow import button, case_row, mention
from tests.stack import ANN, BOB, LEAD, MENTIONS, Stack, start_stack


class PageClient:
    def __init__(self, url: str, http: ClientSession, page: SandboxPage) -> None:
        self.url = url
        self.http = http
        self.page = page

    async def act(self, **body: Any) -> tuple[int, dict[str, Any]]:
        async with self.http.post(f"{self.url}sandbox/act", json=body) as response:
            return response.status, await response.json()

    async def state(self, user: str, since: int | None = None) -> dict[str, Any]:
        query = f"?user={user}" + (f"&since={since}" if since is not None else "")
        async with self.http.get(f"{self.url}sandbox/state{query}") as response:
            assert response.status == 200
            return await response.json()


@pytest.fixture
async def pstack(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[Stack, PageClient]]:
    async with start_stack(database_url, tmp_path) as stack:
        page = SandboxPage(stack.emulator, leads=[LEAD])
        app = web.Application()
        page.attach(app)
        async with serving(app) as base:
            yield stack, PageClient(f"{base}/", stack.http, page)


async def new_card(stack: Stack) -> Any:
    status, _ = await stack.post_webhook(json.dumps(mention()).encode())
    assert status == 200
    await stack.drain()
    return stack.cards()[0]


async def test_a_click_in_the_page_reaches_the_bot_as_a_signed_request(
        pstack: tuple[Stack, PageClient]) -> None:
    stack, client = pstack
    card = await new_card(stack)
    before = await client.state(ANN)
    assert before["users"][0]["id"] == ANN
    roles = {u["id"]: u["role"] for u in before["users"]}
    assert roles[LEAD] == "lead" and roles[ANN] == "agent"
    channel = next(c for c in before["channels"] if c["id"] == MENTIONS)
    assert channel["messages"][0]["ts"] == card.ts

    status, answer = await client.act(user=ANN, kind="click", channel=MENTIONS, ts=card.ts,
                                      action_id=ACTION_CLAIM,
                                      value=button(card, "Claim")["value"])
    assert (status, answer["ok"], answer["status"]) == (200, True, 200)
    await stack.drain()
    assert (await case_row(stack, 1)).assignee == ANN
    after = await client.state(ANN, since=before["version"])
    assert after["version"] > before["version"]
    blocks = json.dumps(next(c for c in after["channels"] if c["id"] == MENTIONS)["messages"])
    assert "Claimed by <@U0AGENT1>" in blocks
    assert after["violations"] == [] and after["incidents"] == []


async def test_ephemeral_answers_are_seen_only_by_their_user(
        pstack: tuple[Stack, PageClient]) -> None:
    _, client = pstack
    status, answer = await client.act(user=BOB, kind="command", text="help", channel=MENTIONS)
    assert status == 200 and answer["ok"]
    bob = next(c for c in (await client.state(BOB))["channels"] if c["id"] == MENTIONS)
    ann = next(c for c in (await client.state(ANN))["channels"] if c["id"] == MENTIONS)
    assert bob["ephemerals"] and "status" in bob["ephemerals"][-1]["text"]
    assert ann["ephemerals"] == []


async def test_bad_actions_are_reported_in_the_page_not_swallowed(
        pstack: tuple[Stack, PageClient]) -> None:
    stack, client = pstack
    status, answer = await client.act(user=ANN, kind="click", channel=MENTIONS,
                                      ts="1.000001", action_id=ACTION_CLAIM)
    assert status == 422 and "no message 1.000001" in answer["error"]
    status, answer = await client.act(user=ANN, kind="teleport")
    assert status == 422 and "unknown action" in answer["error"]
    status, answer = await client.act(user="U0NOBODY", kind="home")
    assert status == 422
    status, answer = await client.act(user=ANN, kind="submit", view_id="V0NOPE")
    assert status == 422 and "no open view" in answer["error"]
    incidents = (await client.state(ANN))["incidents"]
    assert [i["kind"] for i in incidents] == ["click", "teleport", "home", "submit"]
    assert [c.method for c in stack.emulator.calls] == ["auth.test"]  # nothing else happened


async def test_a_bot_refusing_the_request_is_an_incident(
        pstack: tuple[Stack, PageClient]) -> None:
    stack, client = pstack
    stack.emulator.request_url = f"{stack.url}no-such-endpoint"
    status, answer = await client.act(user=ANN, kind="command", text="status",
                                      channel=MENTIONS)
    assert status == 200 and answer["ok"] is False and answer["status"] == 404
    incident = (await client.state(ANN))["incidents"][-1]
    assert incident["text"].startswith("the bot answered HTTP 404")


async def test_payloads_slack_would_refuse_are_in_the_state(
        pstack: tuple[Stack, PageClient]) -> None:
    stack, client = pstack
    slack = AsyncWebClient(token=stack.emulator.bot_token, base_url=stack.emulator.api_url)
    with pytest.raises(SlackApiError):
        await slack.chat_postMessage(channel=MENTIONS, text="x",
                                     blocks=[{"type": "header", "text": {
                                         "type": "plain_text", "text": "h" * 151}}])
    with pytest.raises(SlackApiError) as unknown:
        await slack.api_call("mentiondesk.nothing")
    assert unknown.value.response["error"] == "unknown_method"
    violations = (await client.state(ANN))["violations"]
    assert any("chat.postMessage" in v for v in violations)
    assert any("unknown Web API method" in v for v in violations)


async def test_state_waits_for_a_change_when_asked(pstack: tuple[Stack, PageClient]) -> None:
    _, client = pstack
    version = (await client.state(ANN))["version"]
    waiting = asyncio.create_task(client.state(ANN, since=version))
    await client.act(user=ANN, kind="command", text="help", channel=MENTIONS)
    assert (await waiting)["version"] > version


async def test_the_page_answers_only_its_own_loopback_origin(
        pstack: tuple[Stack, PageClient]) -> None:
    _, client = pstack
    async with client.http.get(client.url, headers={"Host": "attacker.example"}) as response:
        assert response.status == 421
    async with client.http.post(f"{client.url}sandbox/act", json={"user": ANN, "kind": "home"},
                                headers={"Origin": "http://attacker.example"}) as response:
        assert response.status == 403
    async with client.http.post(f"{client.url}sandbox/act", data="kind=home",
                                headers={"Content-Type": "text/plain"}) as response:
        assert response.status == 415
    async with client.http.get(f"{client.url}sandbox/state?user=U0NOBODY") as response:
        assert response.status == 400
    async with client.http.get(client.url) as response:
        assert response.status == 200 and "mentiondesk sandbox" in await response.text()
    for name in ("sandbox.js", "blocks.js", "mrkdwn.js", "sandbox.css"):
        async with client.http.get(f"{client.url}static/{name}") as response:
            assert response.status == 200, name
    assert client.page.incidents == []
