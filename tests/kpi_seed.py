"""A seeded data set with hand-computed KPIs (see tests/services/test_reports.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.services.context import Services
from bot.services.sla import SlaTimers
from bot.settings import SlaConfig
from db.models import CaseRow, MentionRow
from tests.stack import ANN, BOB

UTC_ZONE = ZoneInfo("UTC")
NOW = datetime(2026, 11, 12, 9, 0, tzinfo=UTC)  # Thursday
SLA = SlaConfig.model_validate({
    "targets": {"normal": "1h"},
    "business_hours": {"timezone": "UTC", "start": "09:00", "end": "17:00"},
})


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, second, tzinfo=UTC)


# published, network, agent, outcome, first reply after, closed after, carded after
CASES = [
    (at(10, 9), "mastodon", ANN, "resolved", timedelta(minutes=10), timedelta(hours=1),
     timedelta(seconds=30)),
    (at(10, 10), "mastodon", ANN, "resolved", timedelta(minutes=30), timedelta(hours=2),
     timedelta(seconds=90)),
    (at(10, 23, 59, 59), "x", BOB, "answered", timedelta(minutes=90), timedelta(minutes=200),
     timedelta(seconds=10)),
    (at(11, 12), "x", BOB, None, None, None, timedelta(seconds=20)),
    (at(11, 13), "x", None, "spam", None, timedelta(minutes=5), timedelta(seconds=30)),
    (at(12, 0), "x", None, None, None, None, None),  # the period's end: not in it
    (at(9, 23, 59, 59), "mastodon", ANN, "resolved", timedelta(minutes=60),
     timedelta(minutes=90), timedelta(seconds=60)),
    (at(8, 8), "x", BOB, "no_action", None, timedelta(minutes=30), timedelta(seconds=30)),
]


async def seed(services: Services) -> None:
    """Insert the cases, arm their SLA timers (business hours), then answer and close them."""
    async with services.db.transaction() as tx:
        for i, (published, network, agent, _o, _r, _c, carded) in enumerate(CASES, start=1):
            mention = MentionRow(source=network, external_id=str(i), text="hello",
                                 published_at=published, received_at=published)
            tx.session.add(mention)
            await tx.session.flush()
            tx.session.add(CaseRow(
                mention_id=mention.id or 0, source=network, state="claimed" if agent else "new",
                assignee=agent, published_at=published, created_at=published,
                updated_at=published, carded_at=published + carded if carded else None))
    await SlaTimers(services, SLA.policy()).arm()
    await SlaTimers(services, SLA.policy()).arm()
    async with services.db.transaction() as tx:
        for i, (published, _n, _a, outcome, reply, close, _c) in enumerate(CASES, start=1):
            values: dict[str, object] = {}
            if reply is not None:
                values["first_reply_at"] = published + reply
                values["state"] = "replied"
            if close is not None:
                values.update(closed_at=published + close, outcome=outcome, state="closed")
            if values:
                await tx.set_case_fields(i, **values)


