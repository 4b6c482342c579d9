"""Facebook and Instagram end to end: a signed comment webhook → card → claim → draft → lead
approval → one Graph API reply through the outbox → the case is `replied` and its card links
the reply."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qsl

import pytest

from bot.settings import SourceConfig
from bot.slack.ids import ACTION_APPROVE
from tests.connectors.fakes.meta import APP_SECRET, PAGE_TOKEN, FakeGraph, load_bytes, sign
from tests.scenarios.reply_steps import approval_requests, card_of, claim, draft_and_submit
from tests.scenarios.test_claim_flow import audit, button, case_row
from tests.stack import LEAD, Stack, start_stack

VERIFY_TOKEN = "meta-verify-7f3a"
IG_USER = "17841405822304914"


@pytest.fixture
async def stack(database_url: str, tmp_path: Path, graph: FakeGraph) -> AsyncIterator[Stack]:
    source = SourceConfig(name="acme-meta", kind="meta", base_url=graph.base_url,
                          token_env="META_PAGE_TOKEN", secret_env="META_APP_SECRET",
                          verify_token_env="META_VERIFY_TOKEN", allow_private_url=True,
                          instagram_user_id=IG_USER, timeout_seconds=2)
    secrets = {"META_PAGE_TOKEN": PAGE_TOKEN, "META_APP_SECRET": APP_SECRET.decode(),
               "META_VERIFY_TOKEN": VERIFY_TOKEN}
    async with start_stack(database_url, tmp_path, sources=[source], secrets=secrets) as s:
        yield s


def form(body: object) -> dict[str, str]:
    """A Graph API request's form fields, as the fake server recorded the raw body."""
    return dict(parse_qsl(str(body)))


async def deliver(stack: Stack, fixture: str | bytes) -> None:
    body = load_bytes(fixture) if isinstance(fixture, str) else fixture
    async with stack.http.post(f"{stack.url}webhooks/meta", data=body,
                               headers={"Content-Type": "application/json",
                                        "X-Hub-Signature-256": sign(body)}) as response:
        assert response.status == 200, await response.text()
    await stack.drain()


async def approve(stack: Stack, *, twice: bool = False) -> None:
    (request,) = approval_requests(stack)
    value = button(request, "Approve")["value"]
    await stack.emulator.click(LEAD, request.channel, request.ts, ACTION_APPROVE, value)
    if twice:  # a double click: still one reply on the network
        await stack.emulator.click(LEAD, request.channel, request.ts, ACTION_APPROVE, value)
    await stack.drain()
    await stack.drain()


async def test_facebook_comment_is_answered_once_on_the_graph_api(stack: Stack,
                                                                  graph: FakeGraph) -> None:
    await deliver(stack, "page_feed_comment.json")
    assert "My Acme Hub stopped working" in json.dumps(card_of(stack, 1).blocks)

    await claim(stack)
    response = await draft_and_submit(stack, eta="by 6 pm")
    assert response.status == 200 and not response.text.strip()
    await stack.drain()
    await approve(stack, twice=True)

    posted = graph.seen("/comments", "POST")
    assert len(posted) == 1
    assert posted[0].path == "/v21.0/912345678901234_1187654321098765/comments"
    assert posted[0].headers["Authorization"] == f"Bearer {PAGE_TOKEN}"
    message = form(posted[0].body)["message"]
    assert message.startswith("Hi Marta Silva") and "by 6 pm" in message
    case = await case_row(stack, 1)
    assert case.state == "replied"
    assert case.reply_ref == "912345678901234_1187654321100002"
    link = ("https://www.facebook.com/acmehome/posts/pfbid02abcXYZ"
            "?comment_id=1187654321098765&reply_comment_id=1187654321100002")
    assert case.reply_url == link
    card = json.dumps(card_of(stack, 1).blocks)
    assert "Our reply" in card and "by 6 pm" in card
    assert f"<{link}|view reply>" in card
    actions = [e.action for e in await audit(stack, 1)]
    assert actions == ["ingest", "claim", "submit_draft", "approve", "mark_replied"]

    # The Page's own reply comes back as a webhook: no new card, no second reply.
    echo = json.loads(load_bytes("page_feed_comment.json"))
    value = echo["entry"][0]["changes"][0]["value"]
    value.update({"from": {"id": echo["entry"][0]["id"], "name": "Acme Home"},
                  "comment_id": case.reply_ref, "message": message})
    await deliver(stack, json.dumps(echo).encode())
    assert len(stack.cards()) == 1
    assert len(graph.seen("/comments", "POST")) == 1
    assert stack.emulator.violations == []


async def test_instagram_comment_is_answered_once_with_a_reply(stack: Stack,
                                                              graph: FakeGraph) -> None:
    await deliver(stack, "instagram_comments.json")
    assert len(stack.cards()) == 1  # our own comment in the same notification is skipped

    await claim(stack)
    await draft_and_submit(stack, eta="tonight")
    await stack.drain()
    await approve(stack)

    posted = graph.seen("/replies", "POST")
    assert len(posted) == 1
    assert posted[0].path == "/v21.0/17865799348089039/replies"
    assert "tonight" in form(posted[0].body)["message"]
    case = await case_row(stack, 1)
    assert case.state == "replied"
    assert case.reply_ref == "1187654321100002"
    assert case.reply_url == f"https://www.instagram.com/p/{graph.shortcode}/"
    card = json.dumps(card_of(stack, 1).blocks)
    assert "Our reply" in card and f"<{case.reply_url}|view reply>" in card
