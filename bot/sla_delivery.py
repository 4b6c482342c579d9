"""Effect handlers for SLA timers: the nudge in the card's thread, the escalation to leads.

Escalations go to `slack.alerts_channel` (the leads' channel for spikes, source health and SLA
breaches); the approvals channel stays for decisions only.
"""

from __future__ import annotations

from typing import Any

from bot.domain.lifecycle import OPEN_STATES
from bot.domain.sla import SlaPolicy, format_duration
from bot.outbox import EffectHandler
from bot.services.context import Clock, utc_now
from bot.services.effects import Effect
from bot.slack.cards import network_label
from bot.slack.notifier import SlackNotifier
from bot.slack.text import escape_and_truncate
from db.models import OutboxRow
from db.store import CaseRecord, Database


class SlaDelivery:
    def __init__(self, db: Database, notifier: SlackNotifier, policy: SlaPolicy,
                 alerts_channel: str, clock: Clock = utc_now) -> None:
        self.db = db
        self.notifier = notifier
        self.policy = policy
        self.alerts_channel = alerts_channel
        self.clock = clock

    async def _open_case(self, row: OutboxRow) -> CaseRecord | None:
        """The case, unless it was answered or closed after the timer fired."""
        async with self.db.transaction() as tx:
            record = await tx.get_case(row.case_id or 0)
        if record is None or record.case.state not in OPEN_STATES:
            return None
        return None if record.case.first_reply_at is not None else record

    def _what(self, record: CaseRecord) -> str:
        case = record.case
        handle = escape_and_truncate(record.mention.author_handle or "unknown author", 60)
        return (f"case #{case.id} ({case.priority}, {network_label(record.mention.source)}, "
                f"{handle})")

    async def nudge(self, row: OutboxRow) -> None:
        record = await self._open_case(row)
        if record is None:
            return
        case = record.case
        left = format_duration(case.sla_due_at - self.clock()) if case.sla_due_at else "little"
        if case.assignee:
            text = (f"<@{case.assignee}> {self._what(record)} still needs a first reply: "
                    f"{left} left before the SLA is breached.")
        else:
            text = (f":alarm_clock: {self._what(record)} is unclaimed and needs a first reply: "
                    f"{left} left before the SLA is breached.")
        kwargs: dict[str, Any] = {"channel": case.channel, "text": text,
                                  "unfurl_links": False, "unfurl_media": False}
        if case.message_ts:
            kwargs["thread_ts"] = case.message_ts
            kwargs["reply_broadcast"] = case.assignee is None
        await self.notifier.call("chat.postMessage", **kwargs)

    async def escalate(self, row: OutboxRow) -> None:
        record = await self._open_case(row)
        if record is None:
            return
        case = record.case
        target = self.policy.target(case.priority)
        limit = f" of {format_duration(target)}" if target else ""
        who = f"claimed by <@{case.assignee}>" if case.assignee else "nobody has claimed it"
        where = ""
        if case.message_ts:
            link = await self._permalink(case.channel, case.message_ts)
            where = f" <{link}|Open the card>" if link else f" (in <#{case.channel}>)"
        text = (f":rotating_light: SLA breached: {self._what(record)} has no first reply "
                f"within the target{limit}; {who}.{where}")
        await self.notifier.post_message(self.alerts_channel, text)

    async def _permalink(self, channel: str, ts: str) -> str | None:
        try:
            data = await self.notifier.call("chat.getPermalink", form=True, channel=channel,
                                            message_ts=ts)
        except Exception:
            return None
        link = str(data.get("permalink") or "")
        return link if link.startswith(("https://", "http://")) else None

    def handlers(self) -> dict[str, EffectHandler]:
        return {Effect.SLA_NUDGE: self.nudge, Effect.SLA_ESCALATE: self.escalate}
