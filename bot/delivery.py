"""Effect handlers: what each outbox row does in Slack (and, for replies, on the network)."""

from __future__ import annotations

import logging

from bot.outbox import EffectHandler
from bot.services.context import Clock, utc_now
from bot.services.effects import Effect
from bot.slack.cards import BlockRenderer, render_card
from bot.slack.notifier import SlackNotifier
from db.models import OutboxRow
from db.store import CaseRecord, Database

log = logging.getLogger(__name__)


class CardDelivery:
    """Posts and updates case cards. A card always shows the case as it is at send time."""

    def __init__(
        self, db: Database, notifier: SlackNotifier, renderer: BlockRenderer,
        clock: Clock = utc_now,
    ) -> None:
        self.db = db
        self.notifier = notifier
        self.renderer = renderer
        self.clock = clock

    async def _load(self, case_id: int) -> tuple[CaseRecord, str | None] | None:
        async with self.db.transaction() as tx:
            record = await tx.get_case(case_id)
            if record is None:
                return None
            draft = await tx.latest_draft(case_id)
        reply = draft.text if draft is not None and draft.status == "approved" else None
        return record, reply

    async def post(self, row: OutboxRow) -> None:
        loaded = await self._load(row.case_id or 0)
        if loaded is None:
            return
        record, reply = loaded
        case = record.case
        card = render_card(self.renderer, record, reply_text=reply)
        if case.message_ts:
            await self.notifier.update_card(case.channel, case.message_ts, card)
            return
        ts = None
        if row.attempts > 0 or row.last_error:
            # An earlier attempt may have been accepted by Slack with its answer lost.
            ts = await self.notifier.find_card(case.channel, case.id or 0)
        if ts is None:
            ts = await self.notifier.post_card(case.channel, card, case.id or 0)
        async with self.db.transaction() as tx:
            await tx.set_case_fields(case.id or 0, message_ts=ts, carded_at=self.clock())

    async def update(self, row: OutboxRow) -> None:
        loaded = await self._load(row.case_id or 0)
        if loaded is None:
            return
        record, reply = loaded
        if not record.case.message_ts:
            return  # the pending card.post renders the latest state
        card = render_card(self.renderer, record, reply_text=reply)
        await self.notifier.update_card(record.case.channel, record.case.message_ts, card)

    async def notice(self, row: OutboxRow) -> None:
        """A short message in the card's thread (or to a channel), e.g. a rejection reason."""
        payload = row.payload
        text = str(payload.get("text", ""))
        thread_ts = None
        channel = str(payload.get("channel", ""))
        if row.case_id is not None and payload.get("in_thread", True):
            loaded = await self._load(row.case_id)
            if loaded is not None and loaded[0].case.message_ts:
                channel = channel or loaded[0].case.channel
                thread_ts = loaded[0].case.message_ts
        if not channel:
            return
        await self.notifier.post_message(channel, text, thread_ts=thread_ts)

    def handlers(self) -> dict[str, EffectHandler]:
        return {
            Effect.CARD_POST: self.post,
            Effect.CARD_UPDATE: self.update,
            Effect.NOTICE: self.notice,
        }
