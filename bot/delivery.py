"""Effect handlers: what each outbox row does in Slack (and, for replies, on the network)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from bot.outbox import EffectHandler, may_have_happened, unfenced
from bot.services.context import Clock, utc_now
from bot.services.effects import Effect
from bot.slack.cards import BlockRenderer, render_card
from bot.slack.notifier import CARD_EVENT_TYPE, SlackNotifier
from bot.slack.triage_card import CardExtras, load_card_extras
from db import digest_store
from db.models import OutboxRow
from db.store import CaseRecord, Database
from db.triage_store import group_size

log = logging.getLogger(__name__)


class CardDelivery:
    """Posts and updates case cards. A card always shows the case as it is at send time."""

    def __init__(
        self, db: Database, notifier: SlackNotifier, renderer: BlockRenderer,
        clock: Clock = utc_now,
        can_reply: Callable[[CaseRecord], bool] = lambda _record: True,
    ) -> None:
        self.db = db
        self.notifier = notifier
        self.renderer = renderer
        self.clock = clock
        self.can_reply = can_reply  # no `Draft reply` on cards whose source cannot answer

    async def _extras(self, record: CaseRecord) -> CardExtras:
        """Triage context shown on the card (history, grouped mentions), read at send time."""
        async with self.db.snapshot() as tx:
            return await load_card_extras(tx, record)

    async def _load(self, case_id: int) -> tuple[CaseRecord, str | None] | None:
        async with self.db.snapshot() as tx:
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
        card = render_card(self.renderer, record, reply_text=reply, now=self.clock(),
                           can_reply=self.can_reply(record),
                           extras=await self._extras(record))
        if case.message_ts:
            await self.notifier.update_card(case.channel, case.message_ts, card)
            return
        ts = None
        if may_have_happened(row):
            # An earlier attempt (ours, or a dispatcher that died or froze holding the lease)
            # may have been accepted by Slack with its answer lost.
            ts = await self.notifier.find_card(case.channel, case.id or 0,
                                               since=row.created_at)
        if ts is None:
            ts = await self.notifier.post_card(case.channel, card, case.id or 0)
        async with self.db.transaction() as tx:
            first = await tx.claim_message_ts(case.id or 0, ts, self.clock())
            recorded = None if first else await tx.get_case(case.id or 0)
            if first and await group_size(tx, case.id or 0):
                # Similar mentions grouped before the card existed: list them in its thread
                # now (their group.update found no card to thread under).
                await tx.enqueue(Effect.GROUP_UPDATE, now=self.clock(), case_id=case.id)
        if recorded is not None and recorded.case.message_ts != ts:
            # A dispatcher frozen past its lease posted after the one that took over: the
            # card recorded first stays, this copy goes.
            log.warning("case %s got a second card; deleting it", case.id)
            with unfenced():
                await self.notifier.call("chat.delete", channel=case.channel, ts=ts)

    async def update(self, row: OutboxRow) -> None:
        loaded = await self._load(row.case_id or 0)
        if loaded is None:
            return
        record, reply = loaded
        if not record.case.message_ts:
            # A pending card.post renders the latest state; a case listed in a digest gets
            # its own card in the digest's thread once someone acts on it.
            await self._card_in_digest(row, record, reply)
            return
        card = render_card(self.renderer, record, reply_text=reply, now=self.clock(),
                           can_reply=self.can_reply(record),
                           extras=await self._extras(record))
        await self.notifier.update_card(record.case.channel, record.case.message_ts, card)

    async def _card_in_digest(self, row: OutboxRow, record: CaseRecord,
                              reply: str | None) -> None:
        case = record.case
        async with self.db.snapshot() as tx:
            digest = await digest_store.digest_of_case(tx, case.id or 0)
        if digest is None or not digest.message_ts:
            return
        ts = None
        if may_have_happened(row):
            ts = await self._find_in_thread(digest.channel, digest.message_ts, case.id or 0)
        if ts is None:
            card = render_card(self.renderer, record, reply_text=reply, now=self.clock(),
                               can_reply=self.can_reply(record),
                           extras=await self._extras(record))
            data = await self.notifier.call(
                "chat.postMessage", channel=digest.channel, thread_ts=digest.message_ts,
                text=card.text, blocks=card.blocks, unfurl_links=False, unfurl_media=False,
                metadata={"event_type": CARD_EVENT_TYPE,
                          "event_payload": {"case_id": case.id}})
            ts = str(data["ts"])
        async with self.db.transaction() as tx:
            await tx.set_case_fields(case.id or 0, message_ts=ts, carded_at=self.clock())

    async def _find_in_thread(self, channel: str, thread_ts: str, case_id: int) -> str | None:
        data = await self.notifier.call("conversations.replies", form=True, channel=channel,
                                        ts=thread_ts, limit=1000, include_all_metadata=True)
        for message in data.get("messages", []):
            meta = message.get("metadata") or {}
            payload = meta.get("event_payload") or {}
            if meta.get("event_type") == CARD_EVENT_TYPE and payload.get("case_id") == case_id:
                return str(message["ts"])
        return None

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
