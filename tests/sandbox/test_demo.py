"""The demo source: the bundled mentions, their pace, and the reply sink behind the loop."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.checks import check_config
from bot.connectors.base import PermanentError, ReplyRequest
from bot.connectors.demo import DemoConnector, load_demo_mentions, pace_problem
from bot.sandbox.demo import DemoFeed
from bot.settings import SourceConfig, load_settings
from bot.slack.ids import ACTION_APPROVE, ACTION_CLAIM, ACTION_DRAFT, ACTION_TEMPLATE_PICK
from tests.scenarios.test_claim_flow import button
from tests.stack import ANN, APPROVALS, LEAD, MENTIONS, Stack, start_stack

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_bundled_mentions_tell_a_story() -> None:
    mentions = load_demo_mentions()
    assert 20 <= len(mentions) <= 30
    networks = Counter(m.source for m in mentions)
    assert {"x", "mastodon", "bluesky", "reddit", "rss"} <= set(networks)
    assert any(m.author.followers >= 1_000_000 and m.author.verified for m in mentions)
    outage = [m for m in mentions
              if any(w in m.text.lower() for w in ("down", "outage", "won't load"))
              and "back up" not in m.text]
    assert len(outage) >= 6
    assert len({(m.source, m.external_id) for m in mentions}) == len(mentions)


async def test_mentions_are_handed_out_when_due() -> None:
    ticks = Ticks()
    demo = DemoConnector("demo", pace_seconds=10, clock=ticks, now=lambda: NOW)
    first = await demo.fetch(None)
    assert [m.external_id for m in first.mentions] == [demo.mentions[0].external_id]
    assert first.cursor == "1" and not first.more
    assert first.mentions[0].created_at == NOW  # replayed posts are new posts
    assert (await demo.fetch("1")).mentions == []
    assert demo.seconds_to_next("1") == 10
    ticks.now += 25
    second = await demo.fetch("1")
    assert len(second.mentions) == 2 and second.cursor == "3"
    assert demo.seconds_to_next(str(len(demo.mentions))) is None
    assert len(demo.sink.replayed) == 3


async def test_replies_publish_once_and_feeds_cannot_be_answered() -> None:
    demo = DemoConnector("demo", pace_seconds=0)
    mastodon = next(m for m in demo.mentions if m.source == "mastodon")
    request = ReplyRequest(case_id=7, mention=mastodon, text="Hi!", idempotency_key="k1")
    first = await demo.post_reply(request)
    again = await demo.post_reply(request)
    assert first == again and len(demo.sink.replies) == 1
    assert demo.sink.replies[0].in_reply_to == mastodon
    rss = next(m for m in demo.mentions if m.source == "rss")
    assert demo.reply_allowed(rss)[0] is False
    with pytest.raises(PermanentError, match="cannot be answered"):
        await demo.post_reply(ReplyRequest(8, rss, "Hi", "k2"))
    x_post = next(m for m in demo.mentions if m.source == "x")
    bluesky = next(m for m in demo.mentions if m.source == "bluesky")
    assert demo.reply_limits_for_mention(x_post).max_length == 280
    assert demo.reply_limits_for_mention(bluesky).max_bytes == 3000
    with pytest.raises(ValueError, match="pace_seconds"):
        DemoConnector("demo", pace_seconds=-1)


def test_a_broken_bundled_line_names_its_line(tmp_path: Path) -> None:
    data = tmp_path / "demo.jsonl"
    data.write_text(json.dumps({"source": "x", "external_id": "1", "text": "hi",
                                "created_at": "2026-11-22T08:00:00Z"}) + "\n{oops\n")
    with pytest.raises(ValueError, match=r"demo.jsonl:2"):
        load_demo_mentions(data)


@pytest.fixture
async def demo_stack(database_url: str, tmp_path: Path) -> AsyncIterator[Stack]:
    demo = SourceConfig(name="demo", kind="demo", pace_seconds=0)
    async with start_stack(database_url, tmp_path, sources=[demo]) as stack:
        yield stack


async def test_demo_mentions_become_cards_and_replies_reach_the_sink(demo_stack: Stack) -> None:
    stack = demo_stack
    demo = stack.components.connectors["demo"]
    assert isinstance(demo, DemoConnector)
    feed = DemoFeed(demo, stack.components.services, stack.components.dispatcher.wake)
    cursor = await feed.step(None)
    assert cursor == str(len(demo.mentions))
    assert await feed.step(cursor) == cursor  # nothing new, nothing doubled
    await stack.drain()
    cards = stack.cards()
    # A follow-up may join its parent's case instead of opening its own.
    follow_ups = sum(1 for m in demo.mentions if m.in_reply_to)
    assert len(demo.mentions) - follow_ups <= len(cards) <= len(demo.mentions)

    card = next(c for c in cards if "charged twice" in json.dumps(c.blocks))
    await stack.emulator.click(ANN, MENTIONS, card.ts, ACTION_CLAIM, button(card, "Claim")["value"])
    await stack.drain()
    card = stack.emulator.message(MENTIONS, card.ts)
    await stack.emulator.click(ANN, MENTIONS, card.ts, ACTION_DRAFT,
                               button(card, "Draft reply")["value"])
    view = stack.emulator.open_views(ANN)[-1]
    updates = len(stack.emulator.calls_to("views.update"))
    await stack.emulator.select_in_view(ANN, view.id, ACTION_TEMPLATE_PICK, "refund_dm")
    await stack.emulator.wait_for_call("views.update", updates + 1)
    view = stack.emulator.open_views(ANN)[-1]
    days = next(b for b in view.blocks if b.get("block_id") == "var__order_days")
    response = await stack.emulator.submit_view(
        ANN, view.id, {"var__order_days": {days["element"]["action_id"]: "30"}})
    assert response.status == 200 and not response.text.strip()
    await stack.drain()
    request = stack.emulator.messages(APPROVALS)[-1]
    value = button(request, "Approve")["value"]
    await stack.emulator.click(LEAD, APPROVALS, request.ts, ACTION_APPROVE, value)
    await stack.emulator.click(LEAD, APPROVALS, request.ts, ACTION_APPROVE, value)
    await stack.drain()
    assert [r.network for r in demo.sink.replies] == ["mastodon"]
    assert "within 30 days" in demo.sink.replies[0].text
    assert demo.sink.replies[0].in_reply_to.external_id == "113500000000000001"
    assert "Our reply" in json.dumps(stack.emulator.message(MENTIONS, card.ts).blocks)
    assert stack.emulator.violations == []


def test_a_bad_pace_is_a_config_problem(tmp_path: Path) -> None:
    assert pace_problem(0) is None and pace_problem(2.5) is None
    assert pace_problem(-1) and pace_problem("fast") and pace_problem(True)
    config = tmp_path / "mentiondesk.toml"
    config.write_text('[[sources]]\nname = "demo"\nkind = "demo"\npace_seconds = "fast"\n')
    problems = check_config(load_settings({"MENTIONDESK_CONFIG": str(config)}))
    assert any("sources[0] (demo).pace_seconds: pace_seconds must be a number" in p
               for p in problems), problems
