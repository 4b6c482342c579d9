"""/metrics: Prometheus text with the database-wide totals and this process's effect counts."""

from __future__ import annotations

import json

from prometheus_client.parser import text_string_to_metric_families

from tests.stack import Stack


async def test_metrics_count_mentions_cards_and_outbox(stack: Stack) -> None:
    body = json.dumps([{"source": "forum", "external_id": f"x{i}", "text": f"help {i}",
                        "created_at": "2026-11-22T08:00:00Z"} for i in range(3)]).encode()
    status, _ = await stack.post_webhook(body)
    assert status == 200
    async with stack.http.get(f"{stack.url}metrics") as response:
        before = await response.text()
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    await stack.drain()
    async with stack.http.get(f"{stack.url}metrics") as response:
        after = await response.text()

    def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}

    old, new = samples(before), samples(after)
    assert old[("mentiondesk_mentions_ingested_total", ())] == 3
    assert old[("mentiondesk_outbox_depth", (("kind", "card.post"), ("status", "pending")))] == 3
    assert new[("mentiondesk_cards_posted_total", ())] == 3
    assert new[("mentiondesk_outbox_effects_total",
                (("kind", "card.post"), ("outcome", "done")))] == 3
    assert new[("mentiondesk_slack_calls_total",
                (("method", "chat.postMessage"), ("outcome", "ok")))] == 3
    assert ("mentiondesk_outbox_depth", (("kind", "card.post"), ("status", "pending"))) not in new
    assert "xoxb" not in after
