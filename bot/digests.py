"""Storm digests: when a channel's cards cannot all be posted within the configured delay at
Slack's pace, the newest mentions are summed up in one digest card instead
("37 new mentions about 'outage' — 5 urgent"), and listed in its thread with a Claim button
each. Nothing is dropped: every mention is still a case, findable and claimable; a claimed case
gets its own full card in the digest's thread.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.domain.lifecycle import State
from bot.outbox import may_have_happened
from bot.services.context import Clock, utc_now
from bot.slack.cards import network_label
from bot.slack.ids import ACTION_CLAIM, ButtonValue
from bot.slack.notifier import SlackNotifier
from bot.slack.text import escape_and_truncate
from db import digest_store
from db.models import CaseRow, DigestRow, MentionRow, OutboxRow
from db.store import Database, Tx

log = logging.getLogger(__name__)

DIGEST_POST = "digest.post"
DIGEST_EVENT_TYPE = "mentiondesk_digest"
_WORD = re.compile(r"[^\W\d_][\w'-]{3,}", re.UNICODE)
_STOP = frozenset(
    [
        "this",
        "that",
        "with",
        "have",
        "from",
        "your",
        "what",
        "when",
        "will",
        "just",
        "they",
        "them",
        "their",
        "there",
        "been",
        "were",
        "about",
        "would",
        "could",
        "should",
        "into",
        "than",
        "then",
        "also",
        "only",
        "very",
        "more",
        "most",
        "some",
        "such",
        "here",
        "because",
        "while",
        "after",
        "before",
        "again",
        "still",
        "even",
        "much",
        "many",
        "https",
        "http",
        "www",
    ]
)


@dataclass(frozen=True, slots=True)
class DigestPolicy:
    """`post_per_second` is the channel's card pace; a backlog that needs longer than
    `after_seconds` at that pace is digested, `min_size` cases at least."""

    post_per_second: float = 1.0
    after_seconds: float = 120.0
    page_size: int = 20
    min_size: int = 5

    @property
    def capacity(self) -> int:
        """How many individual cards fit in the delay."""
        return max(1, math.floor(self.post_per_second * self.after_seconds))


def topic_of(texts: Sequence[str]) -> str:
    """The word most of these mentions share (a crude but honest summary)."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update({w.lower() for w in _WORD.findall(text)} - _STOP)
    if not counts:
        return ""
    return counts.most_common(1)[0][0]


def summary_text(size: int, topic: str, urgent: int) -> str:
    about = f" about '{topic}'" if topic else ""
    tail = f" — {urgent} urgent" if urgent else ""
    noun = "mention" if size == 1 else "mentions"
    return f"{size} new {noun}{about}{tail}"


class Digester:
    """Decides, per channel, which card posts become a digest (run before each dispatch)."""

    def __init__(self, db: Database, policy: DigestPolicy, clock: Clock = utc_now) -> None:
        self.db = db
        self.policy = policy
        self.clock = clock

    async def sweep(self) -> list[int]:
        """Digest every channel's excess backlog; returns the new digests' ids."""
        async with self.db.transaction() as tx:
            backlog = await digest_store.card_backlog(tx)
        made: list[int] = []
        for channel, count in backlog.items():
            excess = count - self.policy.capacity
            if excess >= self.policy.min_size:
                digest_id = await self.db.retrying(
                    lambda tx, c=channel, n=excess: self._digest(tx, c, n)
                )
                if digest_id is not None:
                    made.append(digest_id)
        return made

    async def _digest(self, tx: Tx, channel: str, excess: int) -> int | None:
        posts = await digest_store.newest_pending_posts(tx, channel, excess)
        if len(posts) < self.policy.min_size:
            return None
        details = await digest_store.texts_and_priorities(tx, [c for _, c in posts])
        urgent = sum(1 for _, priority in details if priority == "urgent")
        now = self.clock()
        digest = await digest_store.create_digest(
            tx,
            channel,
            posts,
            topic_of([t for t, _ in details]),
            urgent,
            self.policy.page_size,
            now,
        )
        await tx.enqueue(
            DIGEST_POST, now=now, payload={"digest_id": digest.id}, dedup_key=f"digest:{digest.id}"
        )
        await tx.audit(
            case_id=None,
            actor="mentiondesk",
            action="digest",
            at=now,
            payload={"digest_id": digest.id, "channel": channel, "cases": len(posts)},
        )
        log.info(
            "channel %s is %d cards behind: %d new mentions go into digest #%s",
            channel,
            excess,
            len(posts),
            digest.id,
        )
        return digest.id


def _case_section(case: CaseRow, mention: MentionRow) -> dict[str, Any]:
    author = escape_and_truncate(mention.author_handle or "unknown author", 80)
    text = escape_and_truncate(mention.text.replace("\n", " "), 280)
    head = f"*#{case.id}* · {network_label(mention.source)} · {author}"
    if case.priority and case.priority != "normal":
        head += f" · priority *{case.priority}*"
    section: dict[str, Any] = {
        "type": "section",
        "block_id": f"digest_case_{case.id}",
        "text": {"type": "mrkdwn", "text": f"{head}\n{text}"},
    }
    if case.state == State.NEW:
        section["accessory"] = {
            "type": "button",
            "action_id": ACTION_CLAIM,
            "style": "primary",
            "text": {"type": "plain_text", "text": "Claim"},
            "value": ButtonValue(case.id or 0).pack(),
        }
    return section


class DigestDelivery:
    """Posts a digest card, then its pages of cases in the card's thread, resuming where an
    interrupted attempt stopped (pages carry metadata, so a lost answer is found again)."""

    def __init__(self, db: Database, notifier: SlackNotifier) -> None:
        self.db = db
        self.notifier = notifier

    async def post(self, row: OutboxRow) -> None:
        digest_id = int(row.payload.get("digest_id", 0))
        async with self.db.transaction() as tx:
            digest = await digest_store.get_digest(tx, digest_id)
        if digest is None:
            return
        retried = may_have_happened(row)
        ts = digest.message_ts
        posted_pages: set[int] = set()
        if ts is None and retried:
            ts = await self._find_summary(digest, row.created_at)
        if ts is None:
            ts = await self._post(
                digest.channel,
                summary_text(digest.size, digest.topic, digest.urgent),
                self._summary_blocks(digest),
                self._meta(digest, None),
            )
        if digest.message_ts != ts:
            async with self.db.transaction() as tx:
                await digest_store.set_digest(tx, digest_id, message_ts=ts)
        if retried:
            posted_pages = await self._posted_pages(digest, ts)
        async with self.db.transaction() as tx:
            pages = await digest_store.page_count(tx, digest_id)
        for page in range(digest.pages_posted, pages):
            if page in posted_pages:
                continue
            async with self.db.transaction() as tx:
                cases = await digest_store.page_cases(tx, digest_id, page)
            if cases:
                blocks = [_case_section(c, m) for c, m in cases]
                await self._post(
                    digest.channel,
                    f"Mentions {page + 1}/{pages} of this digest",
                    blocks,
                    self._meta(digest, page),
                    thread_ts=ts,
                )
            async with self.db.transaction() as tx:
                await digest_store.set_digest(tx, digest_id, pages_posted=page + 1)

    async def _post(
        self,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]],
        metadata: dict[str, Any],
        thread_ts: str | None = None,
    ) -> str:
        kwargs: dict[str, Any] = {
            "channel": channel,
            "text": text,
            "blocks": blocks,
            "metadata": metadata,
            "unfurl_links": False,
            "unfurl_media": False,
        }
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
        data = await self.notifier.call("chat.postMessage", **kwargs)
        return str(data["ts"])

    def _summary_blocks(self, digest: DigestRow) -> list[dict[str, Any]]:
        text = escape_and_truncate(summary_text(digest.size, digest.topic, digest.urgent), 2900)
        return [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{text}*"}},
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": "Too many at once to post one by one: each case is listed in this "
                        "thread with a Claim button.",
                    }
                ],
            },
        ]

    @staticmethod
    def _meta(digest: DigestRow, page: int | None) -> dict[str, Any]:
        payload: dict[str, Any] = {"digest_id": digest.id}
        if page is not None:
            payload["page"] = page
        return {"event_type": DIGEST_EVENT_TYPE, "event_payload": payload}

    async def _find_summary(self, digest: DigestRow, since: datetime) -> str | None:
        return await self.notifier.find_by_metadata(
            digest.channel, DIGEST_EVENT_TYPE,
            lambda payload: payload.get("digest_id") == digest.id and "page" not in payload,
            since=since)

    async def _posted_pages(self, digest: DigestRow, ts: str) -> set[int]:
        data = await self.notifier.call(
            "conversations.replies",
            form=True,
            channel=digest.channel,
            ts=ts,
            limit=1000,
            include_all_metadata=True,
        )
        pages: set[int] = set()
        for message in data.get("messages", []):
            meta = message.get("metadata") or {}
            payload = meta.get("event_payload") or {}
            if meta.get("event_type") == DIGEST_EVENT_TYPE and "page" in payload:
                pages.add(int(payload["page"]))
        return pages
