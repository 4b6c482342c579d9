"""Effect handlers for approval requests and for publishing approved replies on the network."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from bot.connectors.base import Connector, PermanentError, ReplyRequest
from bot.outbox import EffectHandler
from bot.services.context import Services
from bot.services.drafting import limits_for, measure
from bot.services.effects import Effect
from bot.services.replies import record_reply_failed, record_reply_posted, reply_key
from bot.slack.approvals import approval_blocks
from bot.slack.notifier import SlackNotifier
from db.models import DraftRow, OutboxRow
from db.store import CaseRecord, mention_of

log = logging.getLogger(__name__)


class ReplyDelivery:
    def __init__(self, services: Services, notifier: SlackNotifier,
                 connectors: Mapping[str, Connector]) -> None:
        self.services = services
        self.notifier = notifier
        self.connectors = connectors

    async def _load(self, row: OutboxRow) -> tuple[CaseRecord, DraftRow] | None:
        draft_id = int(row.payload.get("draft_id", 0))
        async with self.services.db.transaction() as tx:
            record = await tx.get_case(row.case_id or 0)
            draft = await tx.get_draft(draft_id)
        if record is None or draft is None:
            return None
        return record, draft

    def length_detail(self, record: CaseRecord, text: str) -> str:
        return measure(limits_for(self.connectors, record), record, text).detail

    async def approval_post(self, row: OutboxRow) -> None:
        loaded = await self._load(row)
        if loaded is None:
            return None
        record, draft = loaded
        if draft.approval_ts:
            return await self.approval_update(row)
        blocks, text = approval_blocks(record, draft, self.length_detail(record, draft.text))
        channel = self.services.approvals_channel
        thread_ts = None
        if self.services.approval_in_thread and record.case.message_ts:
            channel, thread_ts = record.case.channel, record.case.message_ts
        ts = await self.notifier.post_message(channel, text, blocks=blocks, thread_ts=thread_ts)
        async with self.services.db.transaction() as tx:
            await tx.set_draft_fields(draft.id or 0, approval_channel=channel, approval_ts=ts)
        return None

    async def approval_update(self, row: OutboxRow) -> None:
        loaded = await self._load(row)
        if loaded is None:
            return
        record, draft = loaded
        if not draft.approval_ts or not draft.approval_channel:
            return
        blocks, text = approval_blocks(record, draft, self.length_detail(record, draft.text))
        await self.notifier.update_message(draft.approval_channel, draft.approval_ts, text,
                                           blocks)

    async def reply_post(self, row: OutboxRow) -> None:
        """Publish once: the draft's idempotency key goes with every attempt, and a case that
        already records this reply is left alone."""
        loaded = await self._load(row)
        if loaded is None:
            return
        record, draft = loaded
        if draft.status != "approved" or record.case.state != "approved":
            return
        connector = self.connectors.get(record.case.source_name)
        if connector is None or not connector.can_reply:
            raise PermanentError(f"source '{record.case.source_name}' cannot publish replies")
        mention = mention_of(record.mention)
        allowed, why = connector.reply_allowed(mention)
        if not allowed:
            raise PermanentError(why)
        posted = await connector.post_reply(
            ReplyRequest(case_id=record.case.id or 0, mention=mention, text=draft.text,
                         idempotency_key=reply_key(draft.id or 0))
        )
        await record_reply_posted(self.services, record.case.id or 0, draft.id or 0,
                                  posted.external_id, posted.url)

    async def reply_failed(self, row: OutboxRow, reason: str) -> None:
        if row.case_id is not None:
            await record_reply_failed(self.services, row.case_id, reason)

    def handlers(self) -> dict[str, EffectHandler]:
        return {
            Effect.APPROVAL_POST: self.approval_post,
            Effect.APPROVAL_UPDATE: self.approval_update,
            Effect.REPLY_POST: self.reply_post,
        }
