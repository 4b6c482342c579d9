"""App Home publishes, with Slack volume and the process's work kept bounded.

Opening the Home queues one `home.publish` row for that person (in the transaction that
records the event, before Slack gets its 200), due at once and shared by every open of theirs
within a few seconds: a burst of opens never runs the team's figures
per event on the listener's path, and the dispatcher paces `views.publish`.

After a card is posted or updated, the people it concerns (the assignee and whoever acted
last) get one `home.publish` row each, keyed by user and time window and due at the window's
end: however many cases change in a window, each person's Home is published at most once per
window, showing the state at the end of it.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.outbox import EffectHandler
from bot.services.context import Services
from bot.services.effects import Effect
from bot.slack.home import home_view
from bot.slack.notifier import SlackNotifier
from db import timers as outbox_store
from db.models import OutboxRow
from db.store import outbox_values

log = logging.getLogger(__name__)
USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
WINDOW = timedelta(seconds=30)
OPEN_WINDOW = timedelta(seconds=5)


def open_row(user: str, now: datetime) -> dict[str, Any] | None:
    """The outbox row (as `OutboxRow` columns) for `user` having just opened the Home, or
    None when `user` is not a user id. It is written with the event's id, before the ack
    (bot/event_intake.py); opens within `OPEN_WINDOW` share one row."""
    if not USER_ID.match(user):
        return None
    bucket = int(now.timestamp() // OPEN_WINDOW.total_seconds())
    return outbox_values(Effect.HOME_PUBLISH.value, now=now, payload={"user": user},
                         dedup_key=f"home-open:{user}:{bucket}")


def window_end(now: datetime, window: timedelta = WINDOW) -> datetime:
    seconds = window.total_seconds()
    bucket = int(now.timestamp() // seconds) + 1
    return datetime.fromtimestamp(bucket * seconds, tz=UTC)


class HomeDelivery:
    def __init__(self, services: Services, notifier: SlackNotifier, zone: ZoneInfo,
                 window: timedelta = WINDOW) -> None:
        self.services = services
        self.notifier = notifier
        self.zone = zone
        self.window = window

    async def publish(self, row: OutboxRow) -> None:
        user = str(row.payload.get("user", ""))
        if not USER_ID.match(user):
            return
        view = await home_view(self.services, user, self.zone)
        await self.notifier.call("views.publish", user_id=user, view=view)

    async def schedule_for_case(self, case_id: int) -> None:
        """Queue a debounced refresh for the people a case change concerns. Read first, in a
        snapshot: a new card concerns nobody yet, and then nothing is written."""
        now = self.services.clock()
        async with self.services.db.snapshot() as tx:
            record = await tx.get_case(case_id)
            events = await tx.audit_events(case_id)
        users = {record.case.assignee} if record is not None else set()
        if events:
            users.add(events[-1].actor)
        people = sorted(u for u in users if u and USER_ID.match(u))
        if not people:
            return
        due = window_end(now, self.window)
        async with self.services.db.transaction() as tx:
            for user in people:
                await outbox_store.enqueue_at(
                    tx, Effect.HOME_PUBLISH, available_at=due, now=now,
                    dedup_key=f"home:{user}:{int(due.timestamp())}", payload={"user": user})

    def refreshing(self, handlers: dict[str, EffectHandler]) -> dict[str, EffectHandler]:
        """Wrap card handlers so a delivered card change also schedules Home refreshes."""
        wrapped = dict(handlers)
        for kind in (Effect.CARD_POST, Effect.CARD_UPDATE):
            inner = handlers.get(kind)
            if inner is not None:
                wrapped[kind] = self._after(inner)
        return wrapped

    def _after(self, inner: EffectHandler) -> EffectHandler:
        async def handler(row: OutboxRow) -> None:
            await inner(row)
            if row.case_id is not None:
                try:
                    await self.schedule_for_case(row.case_id)
                except Exception:
                    log.exception("App Home refresh not scheduled for case %s", row.case_id)

        return handler

    def handlers(self) -> dict[str, EffectHandler]:
        return {Effect.HOME_PUBLISH: self.publish}
