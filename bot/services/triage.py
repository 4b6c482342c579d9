"""Triage inside ingest: signals, priority, route, group and spike watch for each new mention.

The pure functions live in `bot.triage`; this module feeds them what the database knows and
keeps the two pieces of state they need honest across processes:

- grouping is rebuilt from recent case rows (a process only caches what it has read, and
  catches up on rows other processes wrote before each batch);
- the spike detector's baselines and cool-downs live in one `triage_state` row that ingest
  locks for the length of its transaction, so two workers never both alert.

Nothing here may stop a mention from being stored: any failure degrades to neutral signals,
the default channel and no group.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.domain.mention import Mention
from bot.triage.grouping import GroupIndex
from bot.triage.priority import Priority, PriorityLevel, score_priority
from bot.triage.routing import RouteDecision, SpamAction, route
from bot.triage.sentiment import SentimentLabel
from bot.triage.settings import TriageSetup
from bot.triage.signals import Analyzers, AuthorHistory, Signals, compute_signals
from bot.triage.spikes import SpikeAlert, SpikeDetector, TopicTrend
from bot.triage.text import keyword_matcher
from db import triage_store
from db.store import Tx

log = logging.getLogger(__name__)

HISTORY_DAYS = 1
"""How far back an author's texts count when looking for the same post pasted again."""
MAX_TOPIC_CHARS = 10_000
MAX_REASONS = 4


@dataclass(frozen=True, slots=True)
class Assessment:
    """What triage concluded about one mention."""

    signals: Signals | None
    priority: Priority
    decision: RouteDecision
    topics: tuple[str, ...] = ()

    @property
    def spam(self) -> bool:
        return self.decision.spam_action is not None

    @property
    def sentiment(self) -> str:
        return self.signals.sentiment_label.value if self.signals else SentimentLabel.NEUTRAL

    def mention_values(self) -> dict[str, Any]:
        """Columns of the mention row (see db/models.py MentionRow)."""
        signals = self.signals
        data: dict[str, Any] = {"topics": list(self.topics)}
        if signals is None:
            data["failed"] = True
        else:
            data.update(
                sentiment=round(signals.sentiment, 4),
                urgency_words=list(signals.urgency_words),
                followers=signals.followers,
                verified=signals.verified,
                known_customer=signals.is_known_customer,
                case_count=signals.case_count,
                vip=signals.is_vip,
                spam_reasons=list(signals.spam_reasons),
                link_only=signals.link_only,
                repeated_text=signals.repeated_text,
                bot_like=signals.bot_like,
            )
        return {
            "sentiment": self.sentiment,
            "sentiment_score": round(signals.sentiment, 4) if signals else 0.0,
            "language": signals.language if signals else None,
            "spam": self.spam,
            "signals": data,
        }


@dataclass(slots=True)
class Round:
    """One ingest batch's view of the shared triage state."""

    detector: SpikeDetector | None
    groups: GroupIndex | None
    alerts: list[SpikeAlert] = field(default_factory=list)
    lead_channels: dict[int, str] = field(default_factory=dict)
    loaded: dict[str, Any] = field(default_factory=dict)
    """The spike state as read, to tell whether it needs writing back."""


class Triage:
    """Built once per process by the composition root (models load on first use)."""

    def __init__(self, setup: TriageSetup | None = None, analyzers: Analyzers | None = None
                 ) -> None:
        self.setup = setup or TriageSetup()
        self.analyzers = analyzers or Analyzers()
        self._lock = asyncio.Lock()
        self._groups: GroupIndex | None = None
        self._groups_seen = 0
        self._aliases: OrderedDict[str, tuple[int, datetime]] = OrderedDict()

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[None]:
        """One ingest at a time in this process; a failed batch forgets the cached groups
        (they may name cases that were rolled back) and rebuilds them from the database."""
        async with self._lock:
            try:
                yield
            except BaseException:
                self._groups = None
                self._groups_seen = 0
                self._aliases = OrderedDict()
                raise

    # -- per mention ------------------------------------------------------------------
    def assess(self, mention: Mention, history: AuthorHistory) -> Assessment:
        """Never raises: whatever breaks, the mention is neutral, normal and default-routed."""
        setup = self.setup
        try:
            if not setup.enabled:
                raise _Disabled
            signals = compute_signals(mention, config=setup.config, history=history,
                                      analyzers=self.analyzers)
            priority = score_priority(signals, setup.config)
            decision = route(mention, signals, priority, setup.rules, setup.default_channel,
                             setup.spam_policy)
            topics = keyword_matcher(setup.spike_topics).find(
                (mention.text or "")[:MAX_TOPIC_CHARS]) if setup.spikes else ()
            return Assessment(signals, priority, decision, tuple(topics))
        except _Disabled:
            pass
        except Exception:
            log.exception("triage failed for %s:%s; treating it as neutral",
                          mention.source, mention.external_id)
        return Assessment(
            signals=None,
            priority=Priority(PriorityLevel.NORMAL, 0, ()),
            decision=RouteDecision(channel=setup.default_channel, rule_index=None),
        )

    # -- shared state -----------------------------------------------------------------
    async def start(self, tx: Tx, now: datetime) -> Round:
        """Lock the shared state for this transaction and bring grouping up to date."""
        data = await triage_store.lock_state(tx, triage_store.SPIKE_STATE, now)
        detector = None
        if self.setup.spikes is not None:
            try:
                detector = SpikeDetector.from_dict(data, self.setup.spikes)
            except (KeyError, TypeError, ValueError):
                log.warning("spike state could not be read; learning the baselines afresh")
                detector = SpikeDetector(self.setup.spikes)
        return Round(detector=detector, groups=await self._catch_up(tx, now), loaded=data)

    async def finish(self, tx: Tx, state: Round, now: datetime) -> None:
        """Save the spike state when the batch changed it (most batches watch no topic)."""
        if state.detector is not None:
            data = state.detector.to_dict()
            if data != state.loaded:
                await triage_store.save_state(tx, triage_store.SPIKE_STATE, data, now)

    async def _catch_up(self, tx: Tx, now: datetime) -> GroupIndex | None:
        config = self.setup.grouping
        if config is None:
            return None
        if self._groups is None:
            self._groups = GroupIndex(config)
            self._groups_seen = 0
        if await triage_store.last_case_id(tx) <= self._groups_seen:
            return self._groups  # nobody else stored a case since this process looked
        rows = await triage_store.recent_cases(
            tx, after_id=self._groups_seen, since=now - config.window, limit=config.max_entries)
        for row in rows:
            mention = Mention(source=row.source, external_id=row.external_id, text=row.text,
                              created_at=row.created_at)
            self._groups.add(mention, row.created_at, str(row.group_id or row.case_id))
            self._groups_seen = max(self._groups_seen, row.case_id)
        return self._groups

    def find_group(self, state: Round, mention: Mention, now: datetime) -> str | None:
        """The key of the recent group this mention repeats: a lead case id, or the mention
        key of a lead stored earlier in this batch (`m:` + key) until its id is known."""
        if state.groups is None:
            return None
        try:
            return state.groups.find_group(mention, now)
        except Exception:
            log.exception("grouping failed; the mention gets its own card")
            return None

    def lead_of(self, key: str) -> int | None:
        """The lead case id a group key stands for (None: a lead of the current batch)."""
        if key.startswith("m:"):
            alias = self._aliases.get(key)
            return alias[0] if alias else None
        return int(key)

    def remember(self, state: Round, mention: Mention, group_key: str, now: datetime) -> None:
        if state.groups is not None:
            state.groups.add(mention, now, group_key)

    def stored(self, leads: dict[str, int], last_case_id: int, now: datetime) -> None:
        """After the batch's cases got ids: its leads' `m:` keys resolve from now on."""
        horizon = now - (self.setup.grouping.window if self.setup.grouping else timedelta(0))
        aliases = self._aliases
        # Oldest first (insertion order): drop from the front until one is recent enough.
        while aliases and next(iter(aliases.values()))[1] < horizon:
            aliases.popitem(last=False)
        for key, case_id in leads.items():
            aliases[key] = (case_id, now)
            aliases.move_to_end(key)
        self._groups_seen = max(self._groups_seen, last_case_id)

    def observe(self, state: Round, assessment: Assessment, at: datetime, now: datetime
                ) -> str | None:
        """Counts the mention's topics; returns the first topic now trending, if any."""
        detector = state.detector
        if detector is None or assessment.spam or not assessment.topics:
            return None
        when = min(at, now)
        trend = None
        for topic in assessment.topics:
            alert = detector.observe(topic, when)
            if alert is not None:
                state.alerts.append(alert)
            if trend is None and detector.state_of(topic, now) is TopicTrend.TREND:
                trend = topic
        return trend


def history_of(found: triage_store.AuthorCases | None) -> AuthorHistory:
    if found is None:
        return AuthorHistory()
    return AuthorHistory(case_count=found.count, recent_texts=found.recent_texts)


def history_since(now: datetime) -> datetime:
    return now - timedelta(days=HISTORY_DAYS)


def reasons_for(assessment: Assessment) -> list[str]:
    return list(assessment.priority.reasons[:MAX_REASONS])


def spam_autoclosed(assessment: Assessment) -> bool:
    return assessment.decision.spam_action is SpamAction.AUTOCLOSE


class _Disabled(Exception):
    """Triage is switched off in the config."""
