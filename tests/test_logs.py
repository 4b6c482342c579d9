"""Structured logs: one JSON object a line, the case id on every line about a case, tokens
never printed."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bot import logs
from bot.slack.ids import ACTION_CLAIM
from handlers import _case_in_logs
from tests.scenarios.test_claim_flow import button, ingest_one
from tests.stack import ANN, MENTIONS, Stack


@contextmanager
def captured(fmt: logs.LogFormat = "json") -> Iterator[io.StringIO]:
    """The production handler (filter and formatter) on the root logger, writing to a buffer."""
    stream = io.StringIO()
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    logs.setup("INFO", fmt, stream)
    root.handlers.extend(h for h in saved if h not in root.handlers)
    try:
        yield stream
    finally:
        root.handlers[:] = saved
        root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line]


def test_json_lines_carry_level_logger_and_case_id() -> None:
    with captured() as stream:
        log = logging.getLogger("mentiondesk.test")
        with logs.case_context(42):
            log.info("claimed %s", "by ann")
        log.warning("no case here")
    first, second = lines(stream)
    assert first["case_id"] == 42 and first["message"] == "claimed by ann"
    assert first["level"] == "INFO" and first["logger"] == "mentiondesk.test"
    assert "time" in first
    assert second["case_id"] is None and second["level"] == "WARNING"


def test_tokens_are_masked_in_json_and_text() -> None:
    for fmt in ("json", "text"):
        with captured(fmt) as stream:  # type: ignore[arg-type]
            logging.getLogger("mentiondesk.test").warning(
                "bad call with %s", "xoxb-1234-5678-abcdefABCDEF")
        out = stream.getvalue()
        assert "xoxb-1234" not in out and "[redacted]" in out, out


def test_auto_is_json_off_a_terminal_and_text_is_one_readable_line() -> None:
    assert logs.resolve_format("auto", io.StringIO()) == "json"
    with captured("text") as stream:
        logging.getLogger("mentiondesk.test").info("hello")
    assert stream.getvalue().rstrip().endswith("INFO mentiondesk.test case=- hello")


async def test_the_middleware_names_the_case_of_a_click_or_a_form() -> None:
    seen: list[int | None] = []

    async def listener() -> None:
        seen.append(logs.current_case())

    bodies = [
        {"actions": [{"value": "case:7"}]},
        {"actions": [{"value": "case:8:draft:3"}]},
        {"type": "view_submission", "view": {"private_metadata": '{"case": 9}'}},
        {"type": "view_submission", "view": {"private_metadata": "case:10"}},
        {"actions": [{"value": "forged<!channel>"}]},
        {"command": "/mentions", "text": "status"},
    ]
    for body in bodies:
        await _case_in_logs(body, listener)
    assert seen == [7, 8, 9, 10, None, None]


async def test_a_claim_over_http_logs_json_lines_naming_the_case(stack: Stack) -> None:
    with captured() as stream:
        await ingest_one(stack)
        card = stack.cards()[0]
        response = await stack.emulator.click(ANN, MENTIONS, card.ts, ACTION_CLAIM,
                                              button(card, "Claim")["value"])
        assert response.status == 200
        await stack.drain()
    records = lines(stream)
    about_case = [r for r in records if r["case_id"] == 1]
    assert any(r["logger"] == "bot.services.cases" and "claim by" in r["message"]
               for r in about_case), records
    assert any(r["logger"] == "bot.services.ingest" for r in records), records
