"""The thread under a group's lead card: one message listing the grouped cases, edited in place.

A retweet storm makes one card; the people who re-posted it are still cases, reachable here
(with their link and case number) without a card each flooding the channel.
"""

from __future__ import annotations

from typing import Any

from bot.outbox import EffectHandler
from bot.services.context import Clock, utc_now
from bot.services.effects import Effect
from bot.slack.cards import compact_number, network_label, safe_link, slack_date
from bot.slack.group_ids import open_button
from bot.slack.notifier import SlackNotifier
from bot.slack.text import escape_and_truncate
from db import triage_store
from db.models import OutboxRow
from db.store import CaseRecord, Database

MEMBER_TEXT_LIMIT = 140


def member_line(record: CaseRecord) -> str:
    case, mention = record.case, record.mention
    handle = escape_and_truncate(mention.author_handle or "unknown author", 80)
    parts = [f"*{network_label(mention.source)}* · {handle}"]
    if mention.author_followers:
        parts.append(f"{compact_number(mention.author_followers)} followers")
    link = safe_link(mention.url, "open")
    if link:
        parts.append(link)
    parts += [f"case #{case.id}", slack_date(mention.published_at)]
    if case.state != "new":
        parts.append(f"_{case.state}_")
    text = mention.text.strip()
    line = " · ".join(parts)
    if text:
        line += "\n>" + escape_and_truncate(" ".join(text.split()), MEMBER_TEXT_LIMIT)
    return line


def member_block(lead_id: int, record: CaseRecord) -> dict[str, Any]:
    """One listed case; an open one gets `Open` to become a claimable card of its own."""
    case_id = record.case.id or 0
    block: dict[str, Any] = {"type": "section", "block_id": f"group_member_{case_id}",
                             "text": {"type": "mrkdwn", "text": member_line(record)}}
    if record.case.state != "closed":
        block["accessory"] = open_button(lead_id, case_id)
    return block


def group_blocks(lead_id: int, total: int, members: list[CaseRecord]) -> list[dict[str, Any]]:
    noun = "mention" if total == 1 else "mentions"
    blocks: list[dict[str, Any]] = [{
        "type": "section",
        "text": {"type": "mrkdwn",
                 "text": f":repeat: *{total} similar {noun}* grouped with case #{lead_id} "
                         "(newest first). Each is its own case: `Open` gives it a card "
                         "of its own, `/mentions find @handle` shows it."},
    }]
    blocks += [member_block(lead_id, m) for m in members]
    if total > len(members):
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": f"…and {total - len(members)} more"}]})
    return blocks


class GroupDelivery:
    def __init__(self, db: Database, notifier: SlackNotifier, *, list_limit: int = 20,
                 clock: Clock = utc_now) -> None:
        self.db = db
        self.notifier = notifier
        self.list_limit = list_limit
        self.clock = clock

    async def update(self, row: OutboxRow) -> None:
        lead_id = row.case_id or 0
        async with self.db.transaction() as tx:
            lead = await tx.get_case(lead_id)
            if lead is None:
                return
            total = await triage_store.group_size(tx, lead_id)
            members = await triage_store.group_members(tx, lead_id, self.list_limit)
        case = lead.case
        if not case.message_ts:
            # No card to thread under yet: posting it enqueues this update again. Or none
            # will come (listed in a digest): the cases still exist and `find` shows them.
            return
        if total == 0:
            return
        blocks = group_blocks(lead_id, total, members)
        text = f"{total} similar mentions grouped with case #{lead_id}"
        if case.group_thread_ts:
            await self.notifier.update_message(case.channel, case.group_thread_ts, text, blocks)
            return
        ts = await self.notifier.post_message(case.channel, text, blocks=blocks,
                                              thread_ts=case.message_ts)
        async with self.db.transaction() as tx:
            await tx.set_case_fields(lead_id, group_thread_ts=ts)

    def handlers(self) -> dict[str, EffectHandler]:
        return {Effect.GROUP_UPDATE: self.update}
