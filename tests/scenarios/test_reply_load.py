"""The draft modal opens inside Slack's 3-second trigger window even when many agents click at
once. The emulator refuses a trigger_id older than 3 s with `expired_trigger_id` (measured
with its own clock from the click), so its record is the judge, not the test's wall time."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.slack.ids import ACTION_CLAIM, ACTION_DRAFT, ButtonValue
from tests.scenarios.reply_sink import ReplySink
from tests.scenarios.reply_steps import forum_mention, ingest
from tests.scenarios.test_claim_flow import button, labels
from tests.stack import MENTIONS, Stack, start_stack

AGENTS = [f"U0LOAD{n:03d}" for n in range(50)]


def distinct_text(n: int) -> str:
    """Texts that share nothing, so triage keeps every mention a case of its own."""
    digest = hashlib.sha256(f"mention {n}".encode()).hexdigest()
    return f"{digest[:16]} {digest[16:32]} {digest[32:48]}"


@pytest.fixture
async def busy(database_url: str, tmp_path: Path, sink: ReplySink) -> AsyncIterator[Stack]:
    """Fifty cases, each claimed by a different agent."""
    async with start_stack(database_url, tmp_path, reply_url=sink.url) as stack:
        for n, agent in enumerate(AGENTS):
            stack.emulator.add_user(agent, f"agent{n}")
        await ingest(stack, *(
            forum_mention(f"load-{n}", author={"handle": f"@customer{n}", "name": f"C{n}"},
                          text=distinct_text(n))
            for n in range(len(AGENTS))))
        cards = stack.cards()
        assert len(cards) == len(AGENTS)
        await asyncio.gather(*(
            stack.emulator.click(agent, MENTIONS, card.ts, ACTION_CLAIM,
                                 button(card, "Claim")["value"])
            for agent, card in zip(AGENTS, cards, strict=True)))
        await stack.drain()
        yield stack


async def test_fifty_concurrent_draft_clicks_all_open_in_the_trigger_window(busy: Stack
                                                                             ) -> None:
    stack = busy
    cards = stack.cards()
    assert all("Draft reply" in labels(card) for card in cards)
    responses = await asyncio.gather(*(
        stack.emulator.click(agent, MENTIONS, card.ts, ACTION_DRAFT,
                             button(card, "Draft reply")["value"])
        for agent, card in zip(AGENTS, cards, strict=True)
    ))
    assert [r.status for r in responses] == [200] * len(AGENTS)

    opens = stack.emulator.calls_to("views.open")
    assert len(opens) == len(AGENTS)
    assert [c.error for c in opens if not c.ok] == []  # no expired_trigger_id, nothing else
    assert stack.emulator.violations == []
    assert stack.emulator.ephemerals() == []
    for agent, card in zip(AGENTS, cards, strict=True):
        [view] = stack.emulator.open_views(agent)
        case_id = ButtonValue.unpack(button(card, "Draft reply")["value"]).case_id
        assert json.loads(view.view["private_metadata"])["case"] == case_id
