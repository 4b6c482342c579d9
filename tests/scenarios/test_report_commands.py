"""`/mentions status|report|export` over real HTTP through the emulator: fast ack, figures on
the response_url, a real PNG and CSV uploaded with the two-step upload, bad input → usage."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.sandbox.state import UploadedFile
from tests.kpi_seed import NOW, SLA, seed
from tests.stack import ANN, LEAD, FakeClock, Stack, start_stack

PNG = b"\x89PNG\r\n\x1a\n"
PERIOD = "2026-11-10..2026-11-11"


@pytest.fixture
async def kstack(database_url: str, tmp_path: Path) -> AsyncIterator[Stack]:
    async with start_stack(database_url, tmp_path, sla=SLA.model_dump(),
                           clock=FakeClock(NOW)) as stack:
        await seed(stack.components.services)
        yield stack


def ack_text(response: Any) -> str:
    assert response.status == 200
    body = response.json()
    assert body["response_type"] == "ephemeral"
    return str(body["text"])


async def posted(stack: Stack, count: int) -> list[str]:
    await stack.emulator.wait_for(lambda: len(stack.emulator.responses) >= count)
    return [str(r.body.get("text", "")) for r in stack.emulator.responses]


async def uploaded(stack: Stack, count: int = 1) -> list[UploadedFile]:
    def done() -> list[UploadedFile] | None:
        files = [f for f in stack.emulator.files.values() if f.completed]
        return files if len(files) >= count else None

    # Generous: the first chart in a process imports matplotlib (seconds on a busy machine).
    result = await stack.emulator.wait_for(done, timeout=30)
    assert result is not None
    return result


async def test_report_answers_fast_then_posts_figures_and_a_png(kstack: Stack) -> None:
    response = await kstack.emulator.send_command(LEAD, f"report {PERIOD}")
    assert ack_text(response) == f"Building the report for {PERIOD}…"
    [text] = await posted(kstack, 1)
    assert text.startswith(f"*Report* — {PERIOD}")
    assert "*Response rate:* 75%" in text
    assert "*Within SLA:* 75%" in text
    [chart] = await uploaded(kstack)
    assert chart.content is not None and chart.content.startswith(PNG)
    assert len(chart.content) > 5_000
    assert chart.name.endswith(".png") and chart.channels and chart.channels[0].startswith("D")
    calls = [c.method for c in kstack.emulator.calls
             if c.method.startswith("files.")]
    assert calls == ["files.getUploadURLExternal", "files.completeUploadExternal"]
    assert kstack.emulator.violations == []


async def test_chart_failure_does_not_block_the_figures(kstack: Stack) -> None:
    kstack.emulator.fail("files.getUploadURLExternal", 500, error="internal_error")
    await kstack.emulator.send_command(LEAD, f"report {PERIOD} mastodon")
    texts = await posted(kstack, 2)
    assert "*Volume:* 2 received" in texts[0]
    assert texts[1].startswith("The chart could not be made or uploaded")


async def test_bad_input_gets_usage_and_empty_periods_say_so(kstack: Stack) -> None:
    text = ack_text(await kstack.emulator.send_command(LEAD, "report 30days"))
    assert "is not a period" in text and "e.g. `/mentions report 30d mastodon`" in text
    text = ack_text(await kstack.emulator.send_command(LEAD, "report 2026-02-30"))
    assert "not a real date" in text
    text = ack_text(await kstack.emulator.send_command(LEAD, "frobnicate"))
    assert text.startswith("I don't know `frobnicate`") and "/mentions report 7d" in text
    await kstack.emulator.send_command(LEAD, "report 2026-10-01")
    [empty] = await posted(kstack, 1)
    assert empty.startswith("No mentions were published in the period (2026-10-01")
    assert [f for f in kstack.emulator.files.values() if f.completed] == []


async def test_export_uploads_one_csv_row_per_case_and_the_audit_log(kstack: Stack) -> None:
    ack_text(await kstack.emulator.send_command(LEAD, f"export {PERIOD}"))
    [cases] = await uploaded(kstack)
    assert cases.content is not None
    rows = list(csv.DictReader(io.StringIO(cases.content.decode())))
    assert [int(r["case_id"]) for r in rows] == [1, 2, 3, 4, 5]
    first = rows[0]
    assert (first["network"], first["assignee"], first["outcome"]) == ("mastodon", ANN,
                                                                     "resolved")
    assert float(first["first_response_s"]) == 600
    assert (first["within_sla"], rows[3]["within_sla"]) == ("yes", "")
    assert first["published_at"] == "2026-11-10T09:00:00+00:00"
    await kstack.emulator.send_command(LEAD, "export audit 2026-11-01..2026-11-30")
    texts = await posted(kstack, 2)
    assert texts[1] == "Nothing to export: no audit log in the period (2026-11-01..2026-11-30)."
    async with kstack.components.db.transaction() as tx:
        await tx.audit(case_id=1, actor=LEAD, action="close", at=NOW, from_state="claimed",
                       to_state="closed", payload={"note": "=cmd()"})
    await kstack.emulator.send_command(LEAD, "export audit 2026-11-01..2026-11-30")
    files = await uploaded(kstack, 2)
    audit = next(f for f in files if "audit" in f.name)
    assert audit.content is not None
    header = next(csv.reader(io.StringIO(audit.content.decode())))
    assert header == ["id", "case_id", "at", "actor", "action", "from_state", "to_state",
                      "payload"]
    [event] = list(csv.DictReader(io.StringIO(audit.content.decode())))
    assert (event["actor"], event["action"], event["payload"]) == (LEAD, "close",
                                                                   '{"note": "=cmd()"}')


async def test_status_shows_sla_risk_and_agents_may_not_export(kstack: Stack) -> None:
    text = ack_text(await kstack.emulator.send_command(ANN, "status"))
    assert "*SLA:* 0 at risk · 1 breached" in text
    assert "*Oldest unclaimed:* #6" in text
    refused = ack_text(await kstack.emulator.send_command(ANN, f"export {PERIOD}"))
    assert "lead" in refused.lower()
    assert kstack.emulator.files == {}
