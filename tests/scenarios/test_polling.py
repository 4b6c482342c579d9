"""Pollers end to end: a local network server → cards in the Slack emulator, paging across a
restart, lease takeover with fencing, rate limits, backoff and source health alerts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.polling import Polling, backoff_seconds, polling_for
from bot.services.sources import source_health
from bot.settings import SourceConfig
from db.leases import current_lease
from db.models import CaseRow, MentionRow
from tests.connectors.fakes.mastodon import TOKEN, FakeMastodon
from tests.connectors.fakes.x import BRAND_HANDLE, BRAND_ID, FakeX
from tests.stack import Stack, start_stack

ALERTS = "C0ALERTS"
SOURCE = "brand-mastodon"


@pytest.fixture
async def fake() -> AsyncIterator[FakeMastodon]:
    server = FakeMastodon()
    await server.start()
    yield server
    await server.close()


def mastodon_source(fake: FakeMastodon, **options: Any) -> SourceConfig:
    values: dict[str, Any] = {
        "name": SOURCE, "kind": "mastodon", "base_url": fake.url, "token_env": "MASTO_TOKEN",
        "poll_seconds": 30, "allow_private_url": True, "timeout_seconds": 2,
    }
    values.update(options)
    return SourceConfig(**values)


@pytest.fixture
async def stack(database_url: str, tmp_path: Path, fake: FakeMastodon) -> AsyncIterator[Stack]:
    async with start_stack(database_url, tmp_path, sources=[mastodon_source(fake)],
                           secrets={"MASTO_TOKEN": TOKEN}) as running:
        yield running


def polling(stack: Stack, holder: str) -> Polling:
    built = polling_for(stack.components)
    built.holder = holder
    return built


async def mentions_of(stack: Stack, source_name: str = SOURCE) -> list[str]:
    async with stack.components.db.transaction() as tx:
        rows = (await tx.session.execute(
            MentionRow.__table__.select().where(  # type: ignore[attr-defined]
                MentionRow.source_name == source_name).order_by(MentionRow.id))).all()
    return [row.external_id for row in rows]


async def cursor_of(stack: Stack, source_name: str = SOURCE) -> str | None:
    async with stack.components.db.transaction() as tx:
        row = await tx.get_cursor(source_name)
    return row.cursor if row is not None else None


def alerts(stack: Stack) -> list[str]:
    return [m.text for m in stack.emulator.messages(ALERTS)]


# --- end to end ------------------------------------------------------------------------


async def test_poller_turns_network_mentions_into_cards(stack: Stack,
                                                        fake: FakeMastodon) -> None:
    fake.add_mention(1, 101, "ann@example.social", "@acme my parcel is lost")
    fake.add_mention(2, 102, "bob", "@acme <b>refund</b> please")
    poller = polling(stack, "w1")
    await poller.keep_leases()
    (source_poller,) = poller.pollers

    delay = await source_poller.poll_once()
    await stack.drain()

    assert delay == 30
    cards = stack.cards()
    assert len(cards) == 2
    ann = next(c for c in cards if "my parcel is lost" in str(c.blocks))
    assert "@ann@example.social" in str(ann.blocks)
    assert "*Mastodon*" in str(ann.blocks)
    bob = next(c for c in cards if c is not ann)
    assert "refund please" in str(bob.blocks)  # Mastodon's HTML became plain text

    # Nothing new: no request for cards, the cursor stays where it is.
    before = await cursor_of(stack)
    assert await source_poller.poll_once() == 30
    assert await stack.drain() == 0
    assert await cursor_of(stack) == before

    fake.add_mention(3, 103, "cy", "@acme hello again")
    await source_poller.poll_once()
    await stack.drain()
    assert len(stack.cards()) == 3
    assert fake.seen("/notifications")[-1].arg("min_id") == "2"


async def test_restart_in_the_middle_of_paging_neither_loses_nor_duplicates(
    database_url: str, tmp_path: Path, fake: FakeMastodon,
) -> None:
    source = mastodon_source(fake, page_size=5)
    async with start_stack(database_url, tmp_path, sources=[source],
                           secrets={"MASTO_TOKEN": TOKEN}) as stack:
        fake.add_mention(1, 101, "ann", "first")
        first = polling(stack, "first")
        await first.keep_leases()
        await first.pollers[0].poll_once()  # listening starts: takes the newest page
        for n in range(2, 14):  # 12 more arrive: three pages of five at most
            fake.add_mention(n, 100 + n, f"user{n}", f"post {n}")

        assert await first.pollers[0].poll_once() == 0.0  # page 1 of 3, more to come
        assert len(await mentions_of(stack)) == 6
        # The process dies here without releasing its lease. Another one takes over once
        # the lease has expired, and continues from the committed cursor.
        stack.clock.advance(seconds=11)
        second = polling(stack, "second")
        await second.keep_leases()
        assert second.pollers[0].lease is not None
        assert second.pollers[0].lease.fence == 2
        delays = [await second.pollers[0].poll_once() for _ in range(3)]

        assert delays == [0.0, 30, 30]
        taken = await mentions_of(stack)
        assert sorted(taken, key=int) == [str(100 + n) for n in range(1, 14)]
        assert len(taken) == len(set(taken)) == 13
        await stack.drain()
        assert len(stack.cards()) == 13


async def test_stale_holder_cannot_commit_after_takeover(stack: Stack,
                                                         fake: FakeMastodon) -> None:
    fake.add_mention(1, 101, "ann", "first")
    a = polling(stack, "a")
    await a.keep_leases()
    await a.pollers[0].poll_once()
    b = polling(stack, "b")
    await b.keep_leases()
    assert b.pollers[0].lease is None  # a's lease is still running

    stack.clock.advance(seconds=14)  # a is frozen: no renewal for longer than the TTL
    await b.keep_leases()
    fake.add_mention(2, 102, "bob", "second")
    await b.pollers[0].poll_once()
    cursor = await cursor_of(stack)
    fake.add_mention(3, 103, "cy", "third")

    # a wakes up and tries to commit a page: refused, nothing stored, its lease dropped.
    await a.pollers[0].poll_once()

    assert a.pollers[0].lease is None
    assert await cursor_of(stack) == cursor
    assert await mentions_of(stack) == ["101", "102"]
    row = await current_lease(stack.components.db, f"source:{SOURCE}")
    assert row is not None and row.holder == "b" and row.fence == 2
    # a's keeper sees the lease is taken and does not poll.
    await a.keep_leases()
    assert a.pollers[0].lease is None


# --- waiting, backoff, health ----------------------------------------------------------


async def test_rate_limit_waits_for_mastodons_reset_and_is_not_a_failure(
    stack: Stack, fake: FakeMastodon,
) -> None:
    poller = polling(stack, "w1")
    await poller.keep_leases()
    reset = datetime.now(UTC) + timedelta(seconds=120)
    fake.script(path="/notifications", status=429, body={"error": "Too many requests"},
                headers={"X-RateLimit-Reset": reset.isoformat().replace("+00:00", "Z")})

    delay = await poller.pollers[0].poll_once()

    assert 100 < delay <= 120
    (health,) = await source_health(stack.components.db, [mastodon_source(fake)],
                                    stack.clock())
    assert health.failures == 0


async def test_transient_errors_back_off_and_alert_once_after_three(
    stack: Stack, fake: FakeMastodon,
) -> None:
    poller = polling(stack, "w1")
    await poller.keep_leases()
    for _ in range(4):
        fake.script(path="/notifications", status=503, body={"error": "down"})

    delays = [await poller.pollers[0].poll_once() for _ in range(4)]
    await stack.drain()

    assert delays == [30, 60, 120, 240]
    assert backoff_seconds(30, 50) == 900
    assert await cursor_of(stack) is None
    texts = alerts(stack)
    assert len(texts) == 1
    assert "brand-mastodon" in texts[0] and "failing" in texts[0] and "503" in texts[0]


async def test_permanent_error_alerts_once_then_recovers_once(
    stack: Stack, fake: FakeMastodon, caplog: pytest.LogCaptureFixture,
) -> None:
    fake.add_mention(1, 101, "ann", "first")
    poller = polling(stack, "w1")
    await poller.keep_leases()
    fake.token = "rotated"  # our token no longer works: 401

    caplog.set_level("WARNING", logger="bot.polling")
    first = await poller.pollers[0].poll_once()
    second = await poller.pollers[0].poll_once()
    await stack.drain()

    assert first == second == 600
    assert await cursor_of(stack) is None
    assert len([r for r in caplog.records if "credentials refused" in r.getMessage()]) == 1
    texts = alerts(stack)
    assert len(texts) == 1 and "is failing" in texts[0] and "credentials refused" in texts[0]
    response = await stack.http.get(f"{stack.url}readyz")
    body = await response.json()
    assert response.status == 200
    assert body["sources_healthy"] is False
    assert [s["condition"] for s in body["sources"]] == ["waiting", "failing"]

    fake.token = TOKEN
    await poller.pollers[0].poll_once()
    await poller.pollers[0].poll_once()
    await poller.check_health()
    await stack.drain()

    texts = alerts(stack)
    assert len(texts) == 2 and "recovered" in texts[1]
    assert await mentions_of(stack) == ["101"]
    body = await (await stack.http.get(f"{stack.url}readyz")).json()
    assert body["sources_healthy"] is True


async def test_silent_source_warns_once_and_recovers_when_mentions_return(
    database_url: str, tmp_path: Path, fake: FakeMastodon,
) -> None:
    source = mastodon_source(fake, silence_alert_minutes=30)
    async with start_stack(database_url, tmp_path, sources=[source],
                           secrets={"MASTO_TOKEN": TOKEN}) as stack:
        poller = polling(stack, "w1")
        await poller.keep_leases()
        await poller.pollers[0].poll_once()  # nothing yet: watching starts now
        stack.clock.advance(minutes=20)
        await poller.check_health()
        await stack.drain()
        assert alerts(stack) == []

        stack.clock.advance(minutes=15)
        await poller.keep_leases()
        await poller.pollers[0].poll_once()
        await poller.check_health()
        await poller.check_health()
        await stack.drain()
        texts = alerts(stack)
        assert len(texts) == 1 and "is silent" in texts[0] and "35 min" in texts[0]

        fake.add_mention(1, 101, "ann", "hello")
        await poller.pollers[0].poll_once()
        await poller.check_health()
        await stack.drain()
        texts = alerts(stack)
        assert len(texts) == 2 and "recovered" in texts[1]


# --- X: cards of posts X will not let us answer -----------------------------------------


async def test_x_card_says_why_there_is_no_draft(database_url: str, tmp_path: Path) -> None:
    x = FakeX()
    await x.start()
    try:
        source = SourceConfig(
            name="brand-x", kind="x", base_url=x.url, token_env="X_BEARER",
            user_token_env="X_USER", user_id=BRAND_ID, handle=BRAND_HANDLE,
            keywords=["acme boots"], allow_private_url=True, timeout_seconds=2)
        x.add_mention(300, "ann", f"@{BRAND_HANDLE} my boots broke")
        x.searchable.append({**x.mentions[0]})
        x.searchable.append({**x.mentions[0], "id": "301", "conversation_id": "301",
                             "text": "acme boots are the worst"})
        async with start_stack(database_url, tmp_path, sources=[source],
                               secrets={"X_BEARER": "app-bearer",
                                        "X_USER": "user-token"}) as stack:
            poller = polling(stack, "w1")
            await poller.keep_leases()
            await poller.pollers[0].poll_once()
            await stack.drain()
            cards = {("301" if "worst" in str(c.blocks) else "300"): c for c in stack.cards()}
            assert set(cards) == {"300", "301"}
            assert "X only allows replies where the author mentioned or quoted the brand" in (
                str(cards["301"].blocks))
            assert "X only allows" not in str(cards["300"].blocks)
    finally:
        await x.close()


async def test_only_one_case_per_post_even_when_two_processes_poll(
    stack: Stack, fake: FakeMastodon,
) -> None:
    fake.add_mention(1, 101, "ann", "first")
    a, b = polling(stack, "a"), polling(stack, "b")
    await a.keep_leases()
    await b.keep_leases()
    await a.pollers[0].poll_once()
    await b.pollers[0].poll_once()  # holds no lease: does nothing

    async with stack.components.db.transaction() as tx:
        cases = (await tx.session.execute(CaseRow.__table__.select())).all()  # type: ignore[attr-defined]
    assert len(cases) == 1
    assert len(fake.seen("/notifications")) == 1



async def test_background_polling_runs_and_releases_its_lease_on_stop(
    stack: Stack, fake: FakeMastodon,
) -> None:
    fake.add_mention(1, 101, "ann", "@acme where is my order")
    stop = asyncio.Event()
    polling_task = asyncio.create_task(polling(stack, "bg").run(stop))
    dispatcher_task = asyncio.create_task(stack.components.dispatcher.run(stop))
    try:
        await stack.emulator.wait_for(lambda: len(stack.cards()) == 1)
    finally:
        stop.set()
        await asyncio.gather(polling_task, dispatcher_task)

    assert "where is my order" in str(stack.cards()[0].blocks)
    row = await current_lease(stack.components.db, f"source:{SOURCE}")
    assert row is not None and row.holder == "bg"
    # Released: another process may take over at once instead of waiting for the expiry.
    other = polling(stack, "next")
    await other.keep_leases()
    assert other.pollers[0].lease is not None and other.pollers[0].lease.fence == 2
