"""Triage through the whole stack: webhooks in, cards, threads and alerts in the Slack emulator.

Each test runs on SQLite and PostgreSQL (the `database_url` fixture) with the real aiohttp app,
Bolt, the outbox dispatcher and the emulator, all on loopback.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bot.services.ingest import ingest_batch
from bot.wiring import build
from db.models import AuditEventRow, CaseRow, MentionRow, OutboxRow
from tests.stack import MENTIONS, Stack, start_stack

ALERTS = "C0ALERTS"
REVIEW = "C0REVIEW"
BILLING = "C0BILLING"
ORIGINAL = "Our checkout has been down for an hour and I was charged twice, sort it out"


def mention(n: int | str, text: str, *, handle: str | None = None, followers: int = 120,
            at: str = "2026-11-22T09:00:00Z", source: str = "x", url: str = "") -> dict[str, Any]:
    return {
        "source": source,
        "external_id": str(n),
        "url": url or f"https://social.example/status/{n}",
        "author": {"handle": handle or f"@fan{n}", "name": "", "followers": followers,
                   "verified": False},
        "text": text,
        "created_at": at,
        "in_reply_to": None,
        "lang": "en",
    }


async def post(stack: Stack, *items: dict[str, Any]) -> dict[str, Any]:
    status, body = await stack.post_webhook(json.dumps(list(items)).encode())
    assert status == 200, body
    return body


async def cases(stack: Stack) -> list[CaseRow]:
    async with stack.components.db.transaction() as tx:
        return list((await tx.session.execute(select(CaseRow).order_by(CaseRow.id))).scalars())


def text_of(message: Any) -> str:
    return json.dumps(message.blocks, ensure_ascii=False)


def now_iso(stack: Stack) -> str:
    return stack.clock.now.isoformat().replace("+00:00", "Z")


async def test_a_hundred_retweets_make_one_card_and_a_hundred_cases(
        database_url: str, tmp_path: Path) -> None:
    async with start_stack(database_url, tmp_path) as stack:
        for n in range(100):
            handle = f"@retweeter{n}"
            await post(stack, mention(1000 + n, f"RT @angry_ann: {ORIGINAL}", handle=handle,
                                      at=now_iso(stack)))
            stack.clock.advance(seconds=0.5)
            if n % 10 == 0:
                await stack.drain()
        await stack.drain()

        rows = await cases(stack)
        assert len(rows) == 100
        lead = rows[0]
        assert lead.group_id is None
        assert all(row.group_id == lead.id for row in rows[1:])
        assert {row.channel for row in rows} == {MENTIONS}

        cards = stack.cards()
        assert len(cards) == 1, "grouped mentions must not get cards of their own"
        assert "+99 similar" in text_of(cards[0])
        thread = stack.emulator.replies(MENTIONS, cards[0].ts)
        listing = [m for m in thread if m.ts != cards[0].ts]
        assert len(listing) == 1, "one thread message, edited in place"
        assert "99 similar mentions" in text_of(listing[0])
        assert "@retweeter99" in text_of(listing[0])  # newest first
        # Posting volume: one card, one thread message; the rest are edits.
        assert len(stack.emulator.calls_to("chat.postMessage")) == 2
        assert stack.emulator.violations == []


async def test_retweets_in_one_batch_and_across_two_workers_share_one_lead(
        database_url: str, tmp_path: Path) -> None:
    """Two processes ingesting the same storm at once still agree on one group."""
    async with start_stack(database_url, tmp_path) as stack:
        await post(stack, mention("hello", "Just saying hello to the team", at=now_iso(stack)))
        other = await build(stack.components.settings, clock=stack.clock, migrate=False)
        try:
            batches = [[_as_mention(mention(f"{w}-{n}", f"RT @ann: {ORIGINAL} …",
                                            at=now_iso(stack))) for n in range(10)]
                       for w in range(6)]
            workers = [stack.components.services, other.services] * 3
            await asyncio.gather(*[ingest_batch(services, batch, source_name="web")
                                   for services, batch in zip(workers, batches, strict=True)])
            await other.dispatcher.drain()
        finally:
            await other.close()
        await stack.drain()
        rows = await cases(stack)
        assert len(rows) == 61
        assert [row.id for row in rows if row.group_id is None] == [rows[0].id, rows[1].id]
        assert len(stack.cards()) == 2
        # Two dispatchers posted the two cards, in either order.
        assert sorted("+59 similar" in text_of(card) for card in stack.cards()) == [False, True]


async def test_grouping_survives_a_restart(database_url: str, tmp_path: Path) -> None:
    """A second process (or a restarted one) rebuilds groups from the database."""
    async with start_stack(database_url, tmp_path) as stack:
        await post(stack, mention(1, ORIGINAL, handle="@ann", at=now_iso(stack)))
        await stack.drain()
        stack.clock.advance(minutes=2)
        restarted = await build(stack.components.settings, clock=stack.clock, migrate=False)
        try:
            result = await ingest_batch(
                restarted.services, [_as_mention(mention(2, f"RT @ann: {ORIGINAL}",
                                                         at=now_iso(stack)))],
                source_name="web")
            assert result.grouped == result.created
            await restarted.dispatcher.drain()
        finally:
            await restarted.close()
        rows = await cases(stack)
        assert [row.group_id for row in rows] == [None, rows[0].id]
        assert len(stack.cards()) == 1
        # Outside the window, the same text starts a new group with its own card.
        stack.clock.advance(minutes=30)
        await post(stack, mention(3, f"RT @ann: {ORIGINAL}", at=now_iso(stack)))
        await stack.drain()
        rows = await cases(stack)
        assert rows[-1].group_id is None
        assert len(stack.cards()) == 2


async def test_spam_is_closed_automatically_and_recorded(database_url: str,
                                                         tmp_path: Path) -> None:
    async with start_stack(database_url, tmp_path, triage={"spam": "autoclose"}) as stack:
        body = await post(stack, mention(1, "https://deals.example/win #promo #free",
                                         at=now_iso(stack)))
        assert body["accepted"] == 1
        await stack.drain()
        [case] = await cases(stack)
        assert (case.state, case.outcome) == ("closed", "spam")
        assert stack.cards() == []
        async with stack.components.db.transaction() as tx:
            events = await tx.audit_events(case.id or 0)
            stored = await tx.session.get(MentionRow, case.mention_id)
        assert [(e.action, e.from_state, e.to_state) for e in events] == [
            ("ingest", None, "new"), ("close", "new", "closed")]
        assert events[1].payload["reasons"] == ["link only"]
        assert stored is not None and stored.spam is True


async def test_spam_goes_to_the_review_channel(database_url: str, tmp_path: Path) -> None:
    async with start_stack(database_url, tmp_path, review_channel=REVIEW) as stack:
        stack.emulator.add_channel(REVIEW, "spam-review")
        await post(stack, mention(1, "https://deals.example/win", at=now_iso(stack)))
        await stack.drain()
        [case] = await cases(stack)
        assert (case.state, case.channel) == ("new", REVIEW)
        [card] = stack.cards(REVIEW)
        assert "possible spam: link only" in text_of(card)
        assert stack.cards(MENTIONS) == []


async def test_routing_rules_pick_the_channel_and_the_card_explains_priority(
        database_url: str, tmp_path: Path) -> None:
    triage = {
        "vip_handles": ["@bigshot"],
        "routing": [{"channel": BILLING, "match": {"keywords": ["refund", "invoice"]}}],
    }
    async with start_stack(database_url, tmp_path, triage=triage) as stack:
        stack.emulator.add_channel(BILLING, "billing")
        await post(
            stack,
            mention(1, "I want a refund now, this is a scam!!", handle="@bigshot",
                    followers=48_200, at=now_iso(stack)),
            mention(2, "Thanks for the quick help yesterday, lovely team", at=now_iso(stack)),
        )
        await stack.drain()
        first, second = await cases(stack)
        assert (first.channel, first.priority) == (BILLING, "urgent")
        assert first.sentiment == "negative"
        assert first.priority_reasons == [
            "VIP", "very negative", "says 'refund', 'scam'", "48k followers"]
        assert (second.channel, second.priority, second.sentiment) == (
            MENTIONS, "low", "positive")
        [card] = stack.cards(BILLING)
        shown = text_of(card)
        assert (":red_circle: *Urgent* · VIP · very negative · says 'refund', 'scam' · "
                "48k followers") in shown
        assert "first case from this author" in shown
        assert "lone voice" in shown
        assert stack.emulator.violations == []


async def test_customer_history_on_the_card(database_url: str, tmp_path: Path) -> None:
    async with start_stack(database_url, tmp_path) as stack:
        await post(stack, mention(1, "Where is my parcel? Ordered two weeks ago",
                                  handle="@ann", at=now_iso(stack)))
        await stack.drain()
        async with stack.components.db.transaction() as tx:
            await tx.compare_and_set(1, 1, state="closed", outcome="resolved",
                                     closed_at=stack.clock.now)
        stack.clock.advance(days=3)
        await post(stack, mention(2, "The parcel arrived broken, I want my money back",
                                  handle="@ann", at=now_iso(stack)))
        await stack.drain()
        second = (await cases(stack))[1]
        assert "known customer (1 case)" in second.priority_reasons
        shown = text_of(stack.cards()[-1])
        assert "1 earlier case" in shown
        assert "last: #1 resolved" in shown


async def test_one_spike_alert_across_batches_and_a_restart(database_url: str,
                                                            tmp_path: Path) -> None:
    triage = {"spikes": {"topics": ["checkout"], "bucket_minutes": 5, "window_buckets": 3,
                         "min_count": 10, "warmup_minutes": 0, "cooldown_minutes": 120}}
    hostile = "checkout broken <!channel> <https://evil.example|bank> *bold*"
    async with start_stack(database_url, tmp_path, triage=triage) as stack:
        # A quiet hour: one checkout mention every 20 minutes.
        for n in range(4):
            await post(stack, mention(f"quiet{n}", f"checkout question number {n}",
                                      at=now_iso(stack)))
            stack.clock.advance(minutes=20)
        await stack.drain()
        assert stack.emulator.messages(ALERTS) == []

        # Two batches of complaints within a few minutes.
        await post(stack, *[mention(f"a{n}", f"checkout fails again, attempt {n}",
                                    at=now_iso(stack)) for n in range(7)])
        stack.clock.advance(minutes=1)
        await post(stack, *[mention(f"b{n}", f"{hostile} {n}", handle=f"@loud{n}",
                                    followers=10_000 + n, at=now_iso(stack))
                            for n in range(7)])
        await stack.drain()
        [alert] = stack.emulator.messages(ALERTS)

        # A restarted process keeps the same spike state: more of the same stays one alert.
        stack.clock.advance(minutes=1)
        restarted = await build(stack.components.settings, clock=stack.clock, migrate=False)
        try:
            for batch in range(2):
                await ingest_batch(restarted.services, [
                    _as_mention(mention(f"c{batch}-{n}", f"checkout still failing {n}",
                                        at=now_iso(stack))) for n in range(8)],
                    source_name="web")
            await restarted.dispatcher.drain()
        finally:
            await restarted.close()
        await stack.drain()
        assert len(stack.emulator.messages(ALERTS)) == 1

        shown = text_of(alert)
        assert "Spike: 'checkout'" in shown
        assert "the usual" in shown
        assert "negative" in shown and "Open cases:" in shown
        assert "<!channel>" not in shown and "&lt;!channel&gt;" in shown
        assert "<https://evil.example" not in shown
        assert stack.emulator.violations == []
        async with stack.components.db.transaction() as tx:
            rows = (await tx.session.execute(
                select(OutboxRow).where(OutboxRow.kind == "alert.post"))).scalars().all()
            trending = (await tx.session.execute(
                select(func.count()).select_from(CaseRow)
                .where(CaseRow.trend_topic == "checkout"))).scalar_one()
        assert len(rows) == 1 and rows[0].dedup_key.startswith("spike:checkout:")
        assert trending > 0
        # The cards of the wave say so; the quiet-hour question was a lone voice.
        assert any("part of a trend: 'checkout'" in text_of(card) for card in stack.cards())


async def test_hostile_and_odd_text_never_blocks_ingest(database_url: str,
                                                        tmp_path: Path) -> None:
    odd = ["", "😀😀😀", "x" * 100_000, "注文した商品がまだ届きません", "مرحبا، طلبي لم يصل",
           "\u202egpj.exe <!here> &amp; <@U0LEAD1>"]
    async with start_stack(database_url, tmp_path) as stack:
        body = await post(stack, *[mention(n, text, handle=f"@odd{n}", at=now_iso(stack))
                                   for n, text in enumerate(odd)])
        assert body["accepted"] == len(odd)
        await stack.drain()
        rows = await cases(stack)
        assert len(rows) == len(odd)
        async with stack.components.db.transaction() as tx:
            stored = (await tx.session.execute(
                select(MentionRow).order_by(MentionRow.id))).scalars().all()
        assert stored[0].sentiment == "neutral" and stored[0].language == "en"
        assert stored[1].sentiment == "positive"
        assert all(card for card in stack.cards())
        assert stack.emulator.violations == []
        for card in stack.cards():
            assert "<!here>" not in text_of(card) and "<@U0LEAD1>" not in text_of(card)


async def test_every_ingest_is_audited_with_its_triage(database_url: str,
                                                       tmp_path: Path) -> None:
    async with start_stack(database_url, tmp_path) as stack:
        await post(stack, mention(1, "The app is broken and I want a refund", at=now_iso(stack)))
        async with stack.components.db.transaction() as tx:
            [event] = (await tx.session.execute(select(AuditEventRow))).scalars().all()
        assert event.payload["priority"] == "urgent"  # 20 + negative 25 + two urgency words 35
        assert event.payload["channel"] == MENTIONS


def _as_mention(data: dict[str, Any]) -> Any:
    from bot.domain.mention import mention_from_dict

    return mention_from_dict(data)
