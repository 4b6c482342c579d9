"""Mastodon streaming end to end: the local instance pushes server-sent events, the worker
holding the source's lease turns them into cards at once, and catch-up polls fill every gap
a dropped stream leaves — each mention exactly once, the cursor only ever moving forward."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import ClientSession

from bot.connectors.mastodon import MastodonConnector
from bot.polling import Polling, polling_for
from bot.services.sources import source_health
from bot.settings import SourceConfig
from bot.streaming import SourceStreamer
from tests.connectors.fakes.mastodon import TOKEN, FakeMastodon
from tests.scenarios.test_polling import (
    ALERTS,
    SOURCE,
    cursor_of,
    mastodon_source,
    mentions_of,
)
from tests.stack import Stack, start_stack

WAIT = 15.0


@pytest.fixture
async def fake() -> AsyncIterator[FakeMastodon]:
    server = FakeMastodon()
    server.live = True
    await server.start()
    yield server
    await server.close()


def streaming_source(fake: FakeMastodon) -> SourceConfig:
    # Polls only when the stream asks for one (poll_seconds is an hour): every other
    # mention must come through the stream.
    return mastodon_source(fake, streaming=True, poll_seconds=3600, stream_retry_seconds=0.05)


@pytest.fixture
async def stack(database_url: str, tmp_path: Path, fake: FakeMastodon) -> AsyncIterator[Stack]:
    async with start_stack(database_url, tmp_path, sources=[streaming_source(fake)],
                           secrets={"MASTO_TOKEN": TOKEN}) as running:
        yield running


@asynccontextmanager
async def worker(stack: Stack) -> AsyncIterator[tuple[Polling, SourceStreamer]]:
    """The background side of one process: pollers, the stream and the outbox dispatcher."""
    polling = polling_for(stack.components)
    polling.holder = "w1"
    (streamer,) = polling.streamers
    assert isinstance(streamer, SourceStreamer)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(polling.run(stop)),
             asyncio.create_task(stack.components.dispatcher.run(stop))]
    try:
        yield polling, streamer
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), WAIT)


async def live(streamer: SourceStreamer) -> None:
    await asyncio.wait_for(streamer.live.wait(), WAIT)


async def cards_with(stack: Stack, *texts: str) -> None:
    def shown() -> bool:
        blocks = [json.dumps(c.blocks) for c in stack.cards()]
        return all(any(t in b for b in blocks) for t in texts)

    await stack.emulator.wait_for(shown, timeout=WAIT)


def position(cursor: str | None) -> str | None:
    return json.loads(cursor or "{}").get("notifications")


async def test_streamed_mentions_become_cards_without_a_poll(stack: Stack,
                                                             fake: FakeMastodon) -> None:
    async with worker(stack) as (_, streamer):
        await live(streamer)
        polls = len(fake.seen("/api/v1/notifications"))
        stream_request = fake.seen("/streaming/user/notification")[0]
        assert stream_request.headers["Authorization"] == f"Bearer {TOKEN}"

        fake.post_mention(1, 101, "ann@example.social", "@acme my <b>parcel</b> is lost")
        fake.post_mention(2, 102, "bob", "@acme refund please")
        await cards_with(stack, "my parcel is lost", "refund please")

        assert len(fake.seen("/api/v1/notifications")) == polls  # no poll was needed
    ann = next(c for c in stack.cards() if "parcel" in json.dumps(c.blocks))
    assert "@ann@example.social" in json.dumps(ann.blocks)  # normalised like a polled one
    assert await mentions_of(stack) == ["101", "102"]
    # The cursor followed the stream, so a restart polls from after the streamed mentions.
    assert position(await cursor_of(stack)) == "2"
    assert fake.streams_opened == 1


async def test_stream_drop_is_caught_up_exactly_once(stack: Stack, fake: FakeMastodon) -> None:
    async with worker(stack) as (_, streamer):
        await live(streamer)
        fake.post_mention(1, 101, "ann", "streamed before the drop")
        await cards_with(stack, "streamed before the drop")

        # The stream breaks and stays unavailable for a while; two mentions are posted then.
        fake.stream_available = False
        fake.drop_streams()
        fake.post_mention(2, 102, "bob", "posted while the stream was down")
        fake.post_mention(3, 103, "cy", "also posted while down")
        refused = len(fake.seen("/streaming/user/notification")) + 2
        await stack.emulator.wait_for(
            lambda: len(fake.seen("/streaming/user/notification")) >= refused, timeout=WAIT)
        fake.stream_available = True

        await fake.wait_streams(2)
        await live(streamer)
        await cards_with(stack, "posted while the stream was down", "also posted while down")
        catch_up = fake.seen("/api/v1/notifications")[-1]
        fake.post_mention(4, 104, "dee", "streamed after the reconnect")
        await cards_with(stack, "streamed after the reconnect")

    assert catch_up.arg("min_id") == "1"  # from the cursor the stream had moved
    taken = await mentions_of(stack)
    assert sorted(taken) == ["101", "102", "103", "104"] and len(taken) == 4
    assert len(stack.cards()) == 4
    assert position(await cursor_of(stack)) == "4"
    # The drop and the refused reconnects were noticed, then cured by the open stream.
    (health,) = await source_health(stack.components.db, [streaming_source(fake)],
                                    stack.clock())
    assert health.healthy and health.failures == 0


async def test_unreadable_stream_data_is_logged_once_and_the_stream_goes_on(
    stack: Stack, fake: FakeMastodon, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    async with worker(stack) as (_, streamer):
        await live(streamer)
        fake.push("notification", '{"id": "1", "type": "mention", "status": {')
        fake.post_mention(2, 102, "bob", "after the broken event")
        await cards_with(stack, "after the broken event")

    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [f"source {SOURCE}: mastodon: streamed notification skipped: "
                        "data is not JSON"]
    assert fake.streams_opened == 1  # the same connection went on
    assert await mentions_of(stack) == ["102"]


async def test_a_stream_that_keeps_failing_shows_in_source_health(
    stack: Stack, fake: FakeMastodon,
) -> None:
    fake.stream_available = False
    async with worker(stack):
        await stack.emulator.wait_for(
            lambda: len(fake.seen("/streaming/user/notification")) >= 4, timeout=WAIT)
    await stack.drain()

    (health,) = await source_health(stack.components.db, [streaming_source(fake)],
                                    stack.clock())
    assert not health.healthy and health.failures >= 3
    assert "stream" in health.reason and "503" in health.reason
    texts = [m.text for m in stack.emulator.messages(ALERTS)]
    assert len(texts) == 1 and "is failing" in texts[0]
    # The polls that worked meanwhile did not hide it.
    assert len(fake.seen("/api/v1/notifications")) >= 1


async def test_cursor_only_moves_forward(fake: FakeMastodon) -> None:
    async with ClientSession() as session:
        masto = MastodonConnector(name=SOURCE, session=session, base_url=fake.url,
                                  token=TOKEN, stream_enabled=True)
        cursor = '{"notifications":"120","tag:acme":"7"}'
        assert masto.advance_cursor(cursor, "119") == cursor
        assert masto.advance_cursor(cursor, "120") == cursor
        assert masto.advance_cursor(cursor, "1000") == '{"notifications":"1000","tag:acme":"7"}'
        assert masto.advance_cursor(None, "5") == '{"notifications":"5"}'
