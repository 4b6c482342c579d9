"""The App Home: published when opened, refreshed (debounced) when the user's cases change."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from bot.slack.ids import ACTION_CLAIM, ACTION_RELEASE
from tests.scenarios.test_sla_timers import _claim_value, ingest
from tests.stack import ANN, MENTIONS, Stack


def home_text(stack: Stack, user: str) -> str:
    view = stack.emulator.home(user)
    assert view is not None
    return json.dumps(view.view["blocks"])


async def test_home_shows_queue_and_todays_kpis(stack: Stack) -> None:
    stack.clock.now = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    await ingest(stack)
    await stack.drain()
    await stack.open_home(ANN)
    text = home_text(stack, ANN)
    assert "You hold no open cases." in text
    assert "1 open \\u00b7 1 unclaimed" in text
    assert "*Today:* 1 received" in text


async def test_case_changes_refresh_the_home_once_per_window(stack: Stack) -> None:
    stack.clock.now = datetime(2026, 11, 24, 9, 0, 1, tzinfo=UTC)
    await ingest(stack)
    await stack.drain()
    card = stack.cards()[0]
    value = _claim_value(card)
    await stack.emulator.click(ANN, MENTIONS, card.ts, ACTION_CLAIM, value)
    await stack.drain()
    await stack.emulator.click(ANN, MENTIONS, card.ts, ACTION_RELEASE, value)
    await stack.drain()
    await stack.emulator.click(ANN, MENTIONS, card.ts, ACTION_CLAIM, value)
    await stack.drain()
    assert stack.emulator.calls_to("views.publish") == []  # due at the window's end
    stack.clock.advance(seconds=30)
    await stack.drain()
    publishes = stack.emulator.calls_to("views.publish")
    assert [c.args["user_id"] for c in publishes] == [ANN]
    assert "#1 \\u00b7 Mastodon" in home_text(stack, ANN)
    assert "claimed" in home_text(stack, ANN)
    stack.clock.advance(seconds=30)
    await stack.drain()
    assert len(stack.emulator.calls_to("views.publish")) == 1
