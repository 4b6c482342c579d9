"""`/webhooks/meta` over real HTTP: the subscription handshake, signature checks, ingest."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.settings import SourceConfig
from db.models import MentionRow
from tests.connectors.fakes.meta import APP_SECRET, PAGE_TOKEN, FakeGraph, load_bytes, sign
from tests.stack import Stack, start_stack

VERIFY_TOKEN = "meta-verify-7f3a"


@pytest.fixture
async def stack(database_url: str, tmp_path: Path, graph: FakeGraph) -> AsyncIterator[Stack]:
    source = SourceConfig(name="acme-meta", kind="meta", base_url=graph.base_url,
                          token_env="META_PAGE_TOKEN", secret_env="META_APP_SECRET",
                          verify_token_env="META_VERIFY_TOKEN", allow_private_url=True,
                          instagram_user_id="17841400000000000")
    secrets = {"META_PAGE_TOKEN": PAGE_TOKEN, "META_APP_SECRET": APP_SECRET.decode(),
               "META_VERIFY_TOKEN": VERIFY_TOKEN}
    async with start_stack(database_url, tmp_path, sources=[source], secrets=secrets) as s:
        yield s


async def post(stack: Stack, body: bytes, signature: str | None, path: str = "meta"
               ) -> tuple[int, object]:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    async with stack.http.post(f"{stack.url}webhooks/{path}", data=body,
                               headers=headers) as response:
        return response.status, await response.json(content_type=None)


async def stored(stack: Stack) -> list[str]:
    async with stack.components.db.transaction() as tx:
        rows = (await tx.session.execute(
            MentionRow.__table__.select())).all()  # type: ignore[attr-defined]
    return [row.external_id for row in rows]


async def test_handshake_echoes_the_challenge_only_for_our_token(stack: Stack) -> None:
    query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN,
             "hub.challenge": "1158201444"}
    async with stack.http.get(f"{stack.url}webhooks/meta", params=query) as response:
        assert response.status == 200
        assert await response.text() == "1158201444"
    for bad in ({**query, "hub.verify_token": "guess"}, {**query, "hub.mode": "unsubscribe"},
                {k: v for k, v in query.items() if k != "hub.verify_token"}):
        async with stack.http.get(f"{stack.url}webhooks/meta", params=bad) as response:
            assert response.status == 403
            assert "1158201444" not in await response.text()
    # The source's own name works too; unknown names do not.
    async with stack.http.get(f"{stack.url}webhooks/acme-meta", params=query) as response:
        assert response.status == 200
    async with stack.http.get(f"{stack.url}webhooks/web", params=query) as response:
        assert response.status == 404


async def test_bad_or_missing_signature_is_refused_and_stores_nothing(stack: Stack) -> None:
    body = load_bytes("page_feed_comment.json")
    tampered = body.replace(b"Help?", b"Help!")

    assert (await post(stack, body, None))[0] == 401
    assert (await post(stack, body, sign(body, b"another-app-secret")))[0] == 401
    assert (await post(stack, tampered, sign(body)))[0] == 401
    assert await stored(stack) == []
    assert stack.cards() == []


async def test_signed_comment_becomes_a_case_with_a_card_once(stack: Stack) -> None:
    body = load_bytes("page_feed_comment.json")

    status, answer = await post(stack, body, sign(body))
    again = await post(stack, body, sign(body))  # Meta redelivers
    await stack.drain()

    assert status == 200 and answer == {"accepted": 1, "duplicates": 0, "skipped": 0}
    assert again == (200, {"accepted": 0, "duplicates": 1, "skipped": 0})
    assert await stored(stack) == ["912345678901234_1187654321098765"]
    (card,) = stack.cards()
    assert "My Acme Hub stopped working" in str(card.blocks)
    assert "*Facebook*" in str(card.blocks)


async def test_signed_body_that_is_not_a_notification_is_a_400(stack: Stack) -> None:
    body = b'{"object": "page"}'
    status, answer = await post(stack, body, sign(body))
    assert status == 400
    assert "entry" in str(answer)
    assert await stored(stack) == []


async def test_changes_that_are_not_mentions_are_acknowledged_and_skipped(stack: Stack) -> None:
    body = load_bytes("page_feed_other.json")
    status, answer = await post(stack, body, sign(body))
    assert status == 200
    assert answer == {"accepted": 0, "duplicates": 0, "skipped": 4}
    assert await stored(stack) == []
