"""Report figures on a seeded data set with hand-computed answers, on SQLite and PostgreSQL.

Business hours (Mon–Fri 09:00–17:00 UTC, 1 h target) decide the SLA due times; a case published
one second before midnight and one exactly at the period's end test the boundaries.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.services.context import Services
from bot.services.reports import (
    Period,
    RangeError,
    build_report,
    parse_period,
    parse_report_args,
    team_status,
)
from bot.slack.kpi_text import report_text
from db.engine import make_engine
from db.migrate import upgrade
from db.models import CaseRow, MentionRow
from db.store import Database
from tests.kpi_seed import NOW, UTC_ZONE, seed
from tests.stack import ANN, BOB, FakeClock


@pytest.fixture
async def services(database_url: str) -> AsyncIterator[Services]:
    engine = make_engine(database_url)
    await upgrade(engine)
    db = Database(engine)
    yield Services(db=db, clock=FakeClock(NOW))
    await db.dispose()


def period() -> Period:
    return parse_period("2026-11-10..2026-11-11", NOW, UTC_ZONE)


async def test_report_figures_match_the_hand_computed_answers(services: Services) -> None:
    await seed(services)
    report = await build_report(services, period(), sla_target=timedelta(hours=1))
    c = report.current
    assert (c.received, c.spam, c.counted, c.replied, c.closed) == (5, 1, 4, 3, 3)
    assert c.response_rate == pytest.approx(0.75)
    assert c.frt_median_s == pytest.approx(1800, abs=0.01)
    assert c.frt_p90_s == pytest.approx(4680, abs=0.01)  # 1800 + 0.8 × (5400 − 1800)
    assert c.frt_mean_s == pytest.approx(2600, abs=0.01)
    assert c.resolution_median_s == pytest.approx(7200, abs=0.01)
    assert c.lag_median_s == pytest.approx(25, abs=0.01)  # 10, 20, 30, 90
    # Business hours: the 23:59:59 mention is due Wednesday 10:00, answered at 01:29:59.
    assert (c.sla_met, c.sla_counted) == (3, 4)
    assert report.outcomes == {"resolved": 2, "answered": 1, "spam": 1}
    assert [(g.name, g.received, g.replied, g.frt_mean_s, g.within_sla)
            for g in report.by_agent] == [(ANN, 2, 2, 1200.0, 1.0), (BOB, 2, 1, 5400.0, 0.5)]
    assert [(g.name, g.received, g.replied) for g in report.by_network] == [
        ("mastodon", 2, 2), ("x", 2, 1)]
    assert [(d.day.isoformat(), d.received, d.frt_mean_s) for d in report.daily] == [
        ("2026-11-10", 3, pytest.approx(2600)), ("2026-11-11", 2, None)]
    p = report.previous
    assert (p.received, p.replied, p.response_rate) == (2, 1, 0.5)
    assert p.frt_median_s == pytest.approx(3600, abs=0.01)
    assert (p.sla_met, p.sla_counted) == (2, 2)  # one closed without a reply within the SLA
    assert report.sentiment is None or sum(report.sentiment.values()) == 5
    text = report_text(report)
    assert "*Response rate:* 75% (+25 pts)" in text
    assert "median 30 min (-30 min), 90th percentile 1 h 18 min" in text
    assert "*Within SLA:* 75% (-25 pts) (3 of 4)" in text


async def test_network_filter_and_empty_period(services: Services) -> None:
    await seed(services)
    report = await build_report(services, period(), "mastodon")
    assert (report.current.received, report.current.replied) == (2, 2)
    assert report.previous.received == 1
    empty = await build_report(services, parse_period("2026-10-01", NOW, UTC_ZONE))
    assert empty.empty
    assert report_text(empty).startswith("No mentions were published in the period (2026-10-01")


async def test_status_counts_sla_risk(services: Services) -> None:
    await seed(services)
    status = await team_status(services)
    # Open: case 4 (claimed, breached) and case 6 (new, due 12 Nov 10:00: not yet at risk).
    assert status.open_by_state == {"claimed": 1, "new": 1}
    assert (status.at_risk, status.breached) == (0, 1)
    assert status.load == {BOB: 1}
    assert status.oldest_unclaimed_id == 6


def test_periods() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    now = datetime(2026, 11, 12, 9, 30, tzinfo=UTC)
    today = parse_period("today", now, berlin)
    assert today.start == datetime(2026, 11, 11, 23, 0, tzinfo=UTC)
    assert today.previous().start == datetime(2026, 11, 11, 12, 29, 59, 999999, tzinfo=UTC)
    week = parse_period("7d", now, berlin)
    assert week.start == datetime(2026, 11, 5, 23, 0, tzinfo=UTC)
    assert week.end == now + timedelta(microseconds=1)
    assert len(week.days()) == 7
    span = parse_period("2026-11-01..2026-11-03", now, berlin)
    assert (span.end - span.start) == timedelta(days=3)
    assert parse_report_args(["x", "30d"], now, berlin)[1] == "x"
    for bad in ("2026-13-01", "2026-11-05..2026-11-01", "999d", "30days", "0d"):
        with pytest.raises(RangeError):
            parse_report_args([bad], now, berlin)


async def test_grouped_copies_count_as_received_but_not_against_the_team(
        services: Services) -> None:
    """A copy grouped under case 1 is closed on arrival and answered through case 1: it is a
    mention received, but not a second case to answer or a zero-second resolution."""
    await seed(services)
    published = datetime(2026, 11, 10, 9, 5, tzinfo=UTC)
    async with services.db.transaction() as tx:
        mention = MentionRow(source="mastodon", external_id="copy", text="hello",
                             published_at=published, received_at=published)
        tx.session.add(mention)
        await tx.session.flush()
        case = CaseRow(mention_id=mention.id or 0, source="mastodon", state="closed",
                       group_id=1, outcome="duplicate", published_at=published,
                       created_at=published, updated_at=published, closed_at=published)
        tx.session.add(case)
    report = await build_report(services, period(), sla_target=timedelta(hours=1))
    c = report.current
    assert (c.received, c.spam, c.duplicates, c.counted, c.replied, c.closed) == (
        6, 1, 1, 4, 3, 3)
    assert c.response_rate == pytest.approx(0.75)
    assert c.resolution_median_s == pytest.approx(7200, abs=0.01)
    assert (c.sla_met, c.sla_counted) == (3, 4)
    assert report.outcomes["duplicate"] == 1
    assert [(g.name, g.received, g.replied) for g in report.by_network] == [
        ("mastodon", 2, 2), ("x", 2, 1)]
    assert "*Response rate:* 75% (+25 pts)" in report_text(report)
    assert "1 grouped as copies" in report_text(report)
    network_only = await build_report(services, period(), "mastodon")
    assert (network_only.current.counted, network_only.current.response_rate) == (2, 1.0)
