"""Secrets stay secret: a whole reply loop, failures included, logged at DEBUG, and neither
the log nor the database nor what Slack received holds a token or secret."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

from bot.slack.ids import ACTION_APPROVE, ACTION_CLAIM
from tests.scenarios.reply_sink import ReplySink
from tests.scenarios.test_claim_flow import button, mention
from tests.security.support import Tally, snapshot
from tests.stack import (
    ANN,
    APPROVALS,
    BOT_TOKEN,
    LEAD,
    MENTIONS,
    SIGNING_SECRET,
    WEBHOOK_SECRET,
    Stack,
    start_stack,
)

PATTERNS = [re.compile(r"xox[abeprs]-[A-Za-z0-9-]+"), re.compile(r"xapp-[A-Za-z0-9-]+"),
            re.compile(re.escape(BOT_TOKEN)), re.compile(re.escape(SIGNING_SECRET)),
            re.compile(re.escape(WEBHOOK_SECRET))]


def hits(text: str) -> list[str]:
    return [m.group() for p in PATTERNS for m in p.finditer(text)]


async def test_no_secret_in_logs_database_or_slack_payloads(
    database_url: str, tmp_path: Path, sink: ReplySink, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.security.test_authorization import draft_and_submit

    caplog.set_level(logging.DEBUG)
    async with start_stack(database_url, tmp_path, reply_url=sink.url) as stack:
        await run_loop_with_failures(stack, sink, draft_and_submit)
        rows = await snapshot(stack)
        slack = json.dumps([c.args for c in stack.emulator.calls], default=str)
    logged = "\n".join(
        r.getMessage() + str(r.exc_text or "")
        + str(r.__dict__.get("args") or "") for r in caplog.records)
    logged += caplog.text
    found = {"logs": hits(logged), "database": hits(repr(rows)), "slack": hits(slack)}
    Tally("secrets", {"log_records": len(caplog.records), "log_hits": len(found["logs"]),
                      "db_hits": len(found["database"]),
                      "slack_hits": len(found["slack"])}).print()
    assert len(caplog.records) > 50  # DEBUG really was on
    assert found == {"logs": [], "database": [], "slack": []}


async def run_loop_with_failures(stack: Stack, sink: ReplySink, draft_and_submit: object
                                 ) -> None:
    status, _ = await stack.post_webhook(json.dumps(mention(text="Token xoxb?")).encode())
    assert status == 200
    await stack.post_webhook(b"{not json", signature="sha256=" + "0" * 64)  # refused
    stack.emulator.fail("chat.postMessage", status=500, retry_after=None, times=1,
                        error="internal_error")
    await stack.drain()
    await stack.drain()
    card = stack.cards()[0]
    await stack.emulator.click(ANN, MENTIONS, card.ts, ACTION_CLAIM,
                               button(card, "Claim")["value"])
    await stack.drain()
    response = await draft_and_submit(stack, 1, ANN)  # type: ignore[operator]
    assert response.status == 200
    await stack.drain()
    request = stack.emulator.messages(APPROVALS)[0]
    sink.answer_status = 401  # the reply endpoint refuses: the error is logged and shown
    await stack.emulator.click(LEAD, APPROVALS, request.ts, ACTION_APPROVE,
                               button(request, "Approve")["value"])
    await stack.drain()
    await stack.emulator.send_command(ANN, "status")
