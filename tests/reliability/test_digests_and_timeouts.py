"""Storm digests (nothing dropped, every case claimable from the digest's thread) and posts
whose answer comes after the client's timeout (reconciled by metadata: no second card)."""

from __future__ import annotations

import asyncio

from sqlalchemy import update

from bot.services.ingest import ingest_batch
from db.models import CaseRow, OutboxRow
from tests.reliability.harness import (
    card_case_ids,
    emulator_running,
    mentions,
    reliable_settings,
    report,
    running_bot,
)
from tests.stack import ANN

CHANNEL = "C0MENTIONS"


async def test_a_backlog_beyond_the_delay_becomes_a_digest_and_each_case_stays_claimable(
    database_url: str,
) -> None:
    async with emulator_running() as emulator:
        # 5 posts/s and 2 s of delay: 10 cards fit, the other 50 go into one digest.
        settings = reliable_settings(database_url, emulator.api_url, post_per_second=5.0,
                                     post_burst=3, digest_after_seconds=2.0)
        async with running_bot(settings, emulator) as bot:
            services = bot.components.services
            result = await ingest_batch(services, mentions(60, prefix="d"), source_name="web")
            async with services.db.transaction() as tx:
                await tx.session.execute(update(CaseRow).values(priority="normal"))
                await tx.session.execute(update(CaseRow).where(
                    CaseRow.id.in_(sorted(result.created)[-5:])).values(priority="urgent"))
            stop = asyncio.Event()
            task = asyncio.create_task(bot.components.dispatcher.run(stop))
            try:
                await emulator.wait_for(lambda: len(emulator.messages(CHANNEL)) >= 11,
                                        timeout=30)
                digest = next(m for m in emulator.messages(CHANNEL)
                              if (m.metadata or {}).get("event_type") == "mentiondesk_digest")
                await emulator.wait_for(
                    lambda: len(emulator.replies(CHANNEL, digest.ts)) >= 3, timeout=30)
                pages = emulator.replies(CHANNEL, digest.ts)
                listed = [int(b["block_id"].removeprefix("digest_case_"))
                          for page in pages for b in page.blocks or []
                          if str(b.get("block_id", "")).startswith("digest_case_")]
                target = listed[0]
                await emulator.click(ANN, CHANNEL, pages[0].ts, "mention.claim",
                                     block_id=f"digest_case_{target}")
                await emulator.wait_for(lambda: target in card_case_ids(
                    emulator.replies(CHANNEL, digest.ts)), timeout=30)
            finally:
                stop.set()
                await task
            async with services.db.transaction() as tx:
                claimed = await tx.get_case(target)

    cards = card_case_ids(emulator.messages(CHANNEL))
    reachable = set(cards) | set(listed)
    lost = set(result.created) - reachable
    duplicates = len(listed) - len(set(listed)) + sum(n - 1 for n in cards.values())
    report("storm digest", delivered=len(reachable), duplicates=duplicates, lost=len(lost),
           individual_cards=len(cards), digested=len(listed), digest_text=digest.text)
    assert len(cards) == 10 and len(listed) == 50
    assert not lost and duplicates == 0 and set(cards).isdisjoint(listed)
    assert digest.text == "50 new mentions about 'outage' — 5 urgent"
    assert claimed is not None and claimed.case.state == "claimed"
    assert claimed.case.assignee == ANN and claimed.case.message_ts is not None
    assert emulator.violations == []


async def test_posts_answered_after_the_client_timeout_make_no_second_card(
    database_url: str,
) -> None:
    # Ten channels: one channel's posts go one after another (to keep their order), so
    # each waits out the client's timeout in turn.
    channels = [CHANNEL, *(f"C0LATE{n}" for n in range(9))]
    async with emulator_running() as emulator:
        for channel in channels[1:]:
            emulator.add_channel(channel, channel.lower())
        settings = reliable_settings(database_url, emulator.api_url, pace_scale=1000.0,
                                     digest_after_seconds=600)
        async with running_bot(settings, emulator) as bot:
            bot.components.slack_client.timeout = 1  # answers come 1.5 s late
            batch = mentions(100, prefix="t")
            for n, channel in enumerate(channels):
                await ingest_batch(bot.components.services, batch[n::len(channels)],
                                   source_name="web", route=lambda _row, c=channel: c)
            emulator.delay("chat.postMessage", 1.5, times=100)
            await bot.components.dispatcher.drain()
            async with bot.components.db.transaction() as tx:
                outbox = await tx.outbox_counts()
    cards = card_case_ids(m for c in channels for m in emulator.messages(c))
    duplicates = sum(n - 1 for n in cards.values())
    timed_out = len(emulator.calls_to("chat.postMessage")) - len(cards)
    report("post after timeout", delivered=len(cards), duplicates=duplicates,
           lost=100 - len(cards), reconciled=len(emulator.calls_to("conversations.history")),
           posts_sent=len(emulator.calls_to("chat.postMessage")), extra_posts=timed_out)
    assert len(cards) == 100 and duplicates == 0
    assert outbox.get("pending", 0) == 0 and outbox.get("parked", 0) == 0


async def test_a_lost_answer_is_found_again_behind_hundreds_of_newer_messages(
    database_url: str,
) -> None:
    """A card whose answer was lost may wait for its retry while a busy channel takes
    hundreds of messages: the lookup pages back through history and posts nothing twice."""
    async with emulator_running() as emulator:
        settings = reliable_settings(database_url, emulator.api_url, pace_scale=1000.0,
                                     digest_after_seconds=600)
        async with running_bot(settings, emulator) as bot:
            services = bot.components.services
            result = await ingest_batch(services, mentions(1, prefix="lost"),
                                        source_name="web")
            (case_id,) = result.created
            client = bot.components.slack_client
            # The first try reached Slack; its answer never came back.
            first = await client.chat_postMessage(
                channel=CHANNEL, text="card",
                metadata={"event_type": "mentiondesk_case",
                          "event_payload": {"case_id": case_id}})
            for n in range(260):
                await client.chat_postMessage(channel=CHANNEL, text=f"other message {n}")
            async with services.db.transaction() as tx:
                await tx.session.execute(
                    update(OutboxRow).where(OutboxRow.case_id == case_id)
                    .values(attempts=1, last_error="chat.postMessage: TimeoutError"))
            await bot.components.dispatcher.drain()
            async with services.db.transaction() as tx:
                record = await tx.get_case(case_id)
    cards = card_case_ids(emulator.messages(CHANNEL))
    pages = len(emulator.calls_to("conversations.history"))
    report("lost answer, busy channel", cards=cards[case_id], history_pages=pages)
    assert cards[case_id] == 1
    assert record is not None and record.case.message_ts == first["ts"]
