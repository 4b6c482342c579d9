"""Ingest: a batch of mentions becomes rows, cases, audit events and card posts in one commit.

Triage runs inside the same transaction (bot/services/triage.py): signals are stored with the
mention, priority and its reasons and the routed channel with the case; spam is sent for
review or closed; near-identical mentions join a group led by the first one's card; spikes
queue one alert each. Triage can degrade, never block: a mention is always stored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from bot.domain.lifecycle import SYSTEM, Action, Outcome, State, apply
from bot.domain.mention import Mention
from bot.services.context import Services
from bot.services.effects import Effect
from bot.services.groups import take_out_of_group
from bot.services.triage import (
    Assessment,
    Round,
    Triage,
    history_of,
    history_since,
    reasons_for,
    spam_autoclosed,
)
from bot.triage.signals import AuthorHistory
from db import triage_store
from db.leases import Lease, hold_fence
from db.models import CaseRow
from db.store import StoredMention, Tx

log = logging.getLogger(__name__)

Router = Callable[[StoredMention], str | None]


@dataclass(frozen=True, slots=True)
class IngestResult:
    created: list[int]
    duplicates: int
    joined: list[int]
    grouped: list[int] = field(default_factory=list)
    """Cases created as members of a group (no card of their own); also in `created`."""
    spam_closed: list[int] = field(default_factory=list)
    alerts: int = 0


async def ingest_batch(
    services: Services,
    mentions: Sequence[Mention],
    *,
    source_name: str,
    cursor: tuple[str, str | None] | None = None,
    fence: Lease | None = None,
    route: Router | None = None,
) -> IngestResult:
    """Persist mentions first; everything else (cards, triage effects) follows from the rows.

    A (source, external_id) seen before is skipped. A mention answering an earlier mention of
    the same author joins that case (reopening it when closed) instead of opening a new one.
    `cursor`, when given, is saved in the same transaction so a crash never skips or repeats.
    `fence`, when given, must still be held at commit (`LeaseLost` otherwise, nothing saved).
    `route`, when given, overrides the configured routing rules for the channel.
    """
    now = services.clock()
    triage = services.triage
    async with triage.batch(), services.db.transaction() as tx:
        if fence is not None:
            await hold_fence(tx, fence)
        state = await triage.start(tx, now)
        assessments = await _assess(tx, triage, mentions, now)
        rows = await tx.insert_mentions(mentions, source_name, now,
                                        [a.mention_values() for a in assessments])
        by_key = {(m.source, m.external_id): a for m, a in zip(mentions, assessments,
                                                                strict=True)}
        batch = _Batch(services, triage, state, tx, source_name, now, route)
        for row in parents_first(rows):
            await batch.plan(row, by_key[(row.source, row.external_id)])
        async with tx.write_batch():
            await batch.store()
            await batch.enqueue_alerts()
        await triage.finish(tx, state, now)
        if cursor is not None:
            await tx.save_cursor(cursor[0], cursor[1], now)
    if rows:
        log.info("ingested %d mentions from %s: %d new cases, %d skipped as seen before",
                 len(rows), source_name, len(batch.created), len(mentions) - len(rows))
    return IngestResult(
        created=batch.created,
        duplicates=len(mentions) - len(rows),
        joined=batch.joined,
        grouped=batch.grouped,
        spam_closed=batch.spam_closed,
        alerts=len(state.alerts),
    )


def parents_first(rows: Sequence[StoredMention]) -> list[StoredMention]:
    """The batch in its own order, except that a reply comes after the mention it answers
    when both are in the batch (so the reply can join that mention's case)."""
    by_key = {(row.source, row.external_id): row for row in rows}
    placed: set[tuple[str, str]] = set()
    ordered: list[StoredMention] = []
    for row in rows:
        chain: list[StoredMention] = []
        current: StoredMention | None = row
        while current is not None and (current.source, current.external_id) not in placed:
            placed.add((current.source, current.external_id))
            chain.append(current)
            parent = current.in_reply_to
            current = by_key.get((current.source, parent)) if parent else None
        ordered.extend(reversed(chain))
    return ordered


async def _assess(tx: Tx, triage: Triage, mentions: Sequence[Mention], now: datetime
                  ) -> list[Assessment]:
    """Signals for every mention, each seeing the author's earlier cases and posts (those
    earlier in this batch included)."""
    authors = {(m.source, m.author.handle) for m in mentions}
    found = await triage_store.author_cases(tx, authors, history_since(now))
    seen: dict[tuple[str, str], list[str]] = {}
    result = []
    for mention in mentions:
        key = (mention.source, mention.author.handle)
        base = history_of(found.get(key))
        earlier = seen.setdefault(key, [])
        history = AuthorHistory(
            case_count=base.case_count + len(earlier),
            recent_texts=(*earlier, *base.recent_texts),
        )
        result.append(triage.assess(mention, history))
        earlier.append(mention.text[:2_000])
    return result


@dataclass(slots=True)
class _NewCase:
    """The columns ingest sets on a new case row (the rest keep their defaults); plain
    values, since an ORM object per case cost more than inserting it."""

    mention_id: int
    source: str
    source_name: str
    author_handle: str
    channel: str
    published_at: datetime
    now: datetime
    priority: str
    priority_score: int
    priority_reasons: list[str]
    sentiment: str
    group_id: int | None
    trend_topic: str | None
    id: int | None = None
    version: int = 1

    def values(self) -> dict[str, object]:
        return {"mention_id": self.mention_id, "source": self.source,
                "source_name": self.source_name, "author_handle": self.author_handle,
                "state": State.NEW.value, "version": self.version, "channel": self.channel,
                "published_at": self.published_at, "created_at": self.now,
                "updated_at": self.now, "priority": self.priority,
                "priority_score": self.priority_score,
                "priority_reasons": self.priority_reasons, "sentiment": self.sentiment,
                "group_id": self.group_id, "trend_topic": self.trend_topic}


@dataclass(slots=True)
class _Planned:
    """A case about to be stored; members of a group led by a case of this same batch get
    their `group_id` once the lead has its id."""

    row: StoredMention
    assessment: Assessment
    case: _NewCase
    group_key: str | None = None
    lead: _Planned | None = None
    is_lead: bool = False
    follow_ups: list[StoredMention] = field(default_factory=list)
    """Replies by the same author to this mention within the same batch: they join it."""


@dataclass
class _Batch:
    """The case side of one ingest: what each stored mention becomes.

    Cases are planned one by one (so a batch's own retweets group together), then inserted
    in two statements: leads and singles first, then members that need a lead's id."""

    services: Services
    triage: Triage
    state: Round
    tx: Tx
    source_name: str
    now: datetime
    route: Router | None
    created: list[int] = field(default_factory=list)
    joined: list[int] = field(default_factory=list)
    grouped: list[int] = field(default_factory=list)
    spam_closed: list[int] = field(default_factory=list)
    planned: list[_Planned] = field(default_factory=list)
    _batch_leads: dict[str, _Planned] = field(default_factory=dict)
    _by_mention: dict[tuple[str, str], _Planned] = field(default_factory=dict)
    _closed_leads: set[int] = field(default_factory=set)

    async def plan(self, row: StoredMention, assessment: Assessment) -> None:
        tx, now = self.tx, self.now
        mention = row.mention
        trend = self.triage.observe(self.state, assessment, row.published_at, now)
        existing = None
        if row.in_reply_to:
            parent = self._thread_parent(row)
            if parent is not None:
                # The parent's case has no id yet: the follow-up is recorded once it does.
                parent.follow_ups.append(row)
                self._by_mention[(row.source, row.external_id)] = parent
                return
            existing = await tx.find_open_case_for_author_thread(
                row.source, row.author_handle, [row.in_reply_to]
            )
        if existing is not None and existing.id is not None:
            await _join(tx, existing, row, now)
            self.joined.append(existing.id)
            return

        lead_id: int | None = None
        lead_channel: str | None = None
        in_batch: _Planned | None = None
        key = None if assessment.spam else self.triage.find_group(self.state, mention, now)
        if key is not None:
            in_batch = self._batch_leads.get(key)
            if in_batch is None:
                found = self.triage.lead_of(key)
                lead = await self._lead(found) if found is not None else None
                if lead is None:
                    key = None
                else:
                    lead_id, lead_channel = lead
            else:
                lead_channel = in_batch.case.channel
        case = _NewCase(
            mention_id=row.id,
            source=row.source,
            source_name=self.source_name,
            author_handle=row.author_handle,
            channel=lead_channel or self._channel(row, assessment),
            published_at=row.published_at,
            now=now,
            priority=assessment.priority.level.value,
            priority_score=assessment.priority.score,
            priority_reasons=reasons_for(assessment),
            sentiment=assessment.sentiment,
            group_id=lead_id,
            trend_topic=trend,
        )
        planned = _Planned(row, assessment, case, group_key=key, lead=in_batch)
        if not assessment.spam:
            if key is None:
                key = f"m:{row.source}:{row.external_id}"
                planned.is_lead = True
                self._batch_leads[key] = planned
            self.triage.remember(self.state, mention, key, now)
        self.planned.append(planned)
        self._by_mention[(row.source, row.external_id)] = planned

    def _thread_parent(self, row: StoredMention) -> _Planned | None:
        """The case planned earlier in this batch that `row` answers, by the same author."""
        parent = self._by_mention.get((row.source, row.in_reply_to or ""))
        if (parent is None or not row.author_handle
                or parent.row.author_handle != row.author_handle
                or spam_autoclosed(parent.assessment)):
            return None
        if parent.lead is not None or parent.case.group_id is not None:
            # The customer wrote again: that needs a card, not a line in a group's thread.
            parent.lead = None
            parent.case.group_id = None
        return parent

    async def store(self) -> None:
        tx = self.tx
        await _insert_cases(tx, [p.case for p in self.planned if p.lead is None])
        members = [p for p in self.planned if p.lead is not None]
        for planned in members:
            planned.case.group_id = planned.lead.case.id if planned.lead else None
        await _insert_cases(tx, [p.case for p in members])
        leads = {f"m:{p.row.source}:{p.row.external_id}": p.case.id or 0
                 for p in self.planned if p.is_lead}
        last = max((p.case.id or 0 for p in self.planned), default=0)
        self.triage.stored(leads, last, self.now)
        touched: set[int] = set()
        for planned in self.planned:
            await self._record(planned, touched)

    async def _record(self, planned: _Planned, touched: set[int]) -> None:
        tx, now, case, assessment = self.tx, self.now, planned.case, planned.assessment
        assert case.id is not None
        self.created.append(case.id)
        await tx.audit(
            case_id=case.id,
            actor=SYSTEM.user_id,
            action="ingest",
            to_state=State.NEW,
            at=now,
            payload=self._ingest_payload(planned.row, assessment, case),
        )
        for follow_up in planned.follow_ups:
            await tx.audit(case_id=case.id, actor=SYSTEM.user_id, action="follow_up",
                           from_state=State.NEW, to_state=State.NEW, at=now,
                           payload={"mention_id": follow_up.id,
                                    "external_id": follow_up.external_id})
            self.joined.append(case.id)
        if spam_autoclosed(assessment):
            await self._close_as_spam(case, assessment)
            return
        if case.group_id is not None:
            self.grouped.append(case.id)
            if case.group_id in self._closed_leads:
                await self._close_as_duplicate(case)
            if case.group_id not in touched:
                # One card update and one thread update per lead per batch.
                touched.add(case.group_id)
                await tx.enqueue(Effect.CARD_UPDATE, now=now, case_id=case.group_id)
                await tx.enqueue(Effect.GROUP_UPDATE, now=now, case_id=case.group_id)
            return
        await tx.enqueue(
            Effect.CARD_POST, now=now, case_id=case.id, dedup_key=f"card.post:{case.id}"
        )

    def _channel(self, row: StoredMention, assessment: Assessment) -> str:
        if self.route is not None:
            chosen = self.route(row)
            if chosen:
                return chosen
        decision = assessment.decision
        if decision.spam_action is not None:
            return self.triage.setup.spam_policy.review_channel or self.services.default_channel
        if decision.rule_index is not None and decision.channel:
            return decision.channel
        return self.services.default_channel

    async def _lead(self, lead_id: int) -> tuple[int, str] | None:
        """The group's lead case and its channel (a vanished lead starts a new group)."""
        channel = self.state.lead_channels.get(lead_id)
        if channel is None:
            lead = await triage_store.group_lead(self.tx, lead_id)
            if lead is None or lead.group_id is not None:
                return None
            channel = lead.channel
            self.state.lead_channels[lead_id] = channel
            if lead.state == State.CLOSED:
                # The team has closed the storm: later copies are closed with it.
                self._closed_leads.add(lead_id)
        return lead_id, channel

    def _ingest_payload(self, row: StoredMention, assessment: Assessment, case: _NewCase
                        ) -> dict[str, object]:
        payload: dict[str, object] = {"source": row.source, "external_id": row.external_id,
                                      "priority": case.priority, "channel": case.channel}
        if assessment.decision.rule_index is not None:
            payload["rule"] = assessment.decision.rule_index
        if case.group_id is not None:
            payload["group_id"] = case.group_id
        if assessment.spam and assessment.signals is not None:
            payload["spam"] = list(assessment.signals.spam_reasons)
        if assessment.signals is None:
            payload["triage"] = "failed"
        return payload

    async def _close_as_spam(self, case: _NewCase, assessment: Assessment) -> None:
        assert case.id is not None
        to_state = apply(State.NEW, Action.CLOSE)
        await self.tx.compare_and_set(case.id, case.version, state=to_state,
                                      outcome=Outcome.SPAM.value, closed_at=self.now,
                                      updated_at=self.now)
        reasons = list(assessment.signals.spam_reasons) if assessment.signals else []
        await self.tx.audit(case_id=case.id, actor=SYSTEM.user_id, action=Action.CLOSE,
                            from_state=State.NEW, to_state=to_state, at=self.now,
                            payload={"outcome": Outcome.SPAM.value, "auto": True,
                                     "reasons": reasons})
        self.spam_closed.append(case.id)

    async def _close_as_duplicate(self, case: _NewCase) -> None:
        assert case.id is not None
        to_state = apply(State.NEW, Action.CLOSE)
        await self.tx.compare_and_set(case.id, case.version, state=to_state,
                                      outcome=Outcome.DUPLICATE.value, closed_at=self.now,
                                      updated_at=self.now)
        await self.tx.audit(case_id=case.id, actor=SYSTEM.user_id, action=Action.CLOSE,
                            from_state=State.NEW, to_state=to_state, at=self.now,
                            payload={"outcome": Outcome.DUPLICATE.value, "auto": True,
                                     "duplicate_of": case.group_id})

    async def enqueue_alerts(self) -> None:
        """One outbox row per spike; the dedup key keeps it once even if state were lost."""
        for alert in self.state.alerts:
            started = alert.started_at.strftime("%Y%m%dT%H%M")
            await self.tx.enqueue(
                Effect.ALERT_POST,
                now=self.now,
                dedup_key=f"spike:{alert.topic[:120]}:{started}",
                payload={
                    "topic": alert.topic,
                    "count": alert.count,
                    "baseline": alert.baseline,
                    "ratio": alert.ratio,
                    "window_seconds": int(alert.window.total_seconds()),
                    "started_at": alert.started_at.isoformat(),
                    "since": (self.now - alert.window).isoformat(),
                },
            )


async def _insert_cases(tx: Tx, cases: Sequence[_NewCase]) -> None:
    """One statement for the lot; each case gets its id."""
    for case, case_id in zip(cases, await tx.insert_cases([c.values() for c in cases]),
                             strict=True):
        case.id = case_id


async def _join(tx: Tx, case: CaseRow, row: StoredMention, now: datetime) -> None:
    """Record a follow-up on an existing case; a closed case reopens."""
    assert case.id is not None
    payload = {"mention_id": row.id, "external_id": row.external_id}
    if case.state == State.CLOSED:
        to_state = apply(State.CLOSED, Action.REOPEN)
        if await tx.compare_and_set(
            case.id, case.version, state=to_state, outcome=None, closed_at=None, updated_at=now
        ):
            await tx.audit(case_id=case.id, actor=SYSTEM.user_id, action=Action.REOPEN,
                           from_state=State.CLOSED, to_state=to_state, at=now, payload=payload)
    else:
        await tx.audit(case_id=case.id, actor=SYSTEM.user_id, action="follow_up",
                       from_state=case.state, to_state=case.state, at=now, payload=payload)
    if case.group_id is not None:
        # A grouped case the customer wrote to again gets its own card.
        record = await tx.get_case(case.id)
        if record is not None:
            await take_out_of_group(tx, record, case.group_id, SYSTEM, now,
                                    reason="follow_up")
    await tx.enqueue(Effect.CARD_UPDATE, now=now, case_id=case.id)
