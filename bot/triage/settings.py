"""The `[triage]` table of the config file, typed, and its mapping onto the pure triage values.

Pydantic checks every key where it is written, so `check-config` reports a broken routing rule
as `triage.routing[2].match.languages[0]: …` at deploy time rather than failing on a mention.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    field_validator,
    model_validator,
)

from bot.triage.config import (
    DEFAULT_URGENCY_WORDS,
    BotLikeRule,
    PriorityThresholds,
    PriorityWeights,
    TriageConfig,
)
from bot.triage.grouping import GroupingConfig
from bot.triage.priority import PriorityLevel
from bot.triage.routing import RoutingRule, RuleMatch, SpamAction, SpamPolicy
from bot.triage.spikes import SpikeConfig

_LANGUAGE = re.compile(r"^[a-z]{2}$")
_CHANNEL = re.compile(r"^[CGD][A-Z0-9]{2,}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _words(value: list[str]) -> list[str]:
    for word in value:
        if not word.strip():
            raise ValueError("must not contain an empty word")
    return [word.strip() for word in value]


# The defaults live once, on the pure values triage runs on.
_WEIGHTS, _THRESHOLDS, _BOT_LIKE = PriorityWeights(), PriorityThresholds(), BotLikeRule()


class WeightsSettings(_Strict):
    """Points each signal adds to the score (see bot/triage/priority.py)."""

    base: int = _WEIGHTS.base
    negative: int = _WEIGHTS.negative
    very_negative: int = _WEIGHTS.very_negative
    positive: int = _WEIGHTS.positive
    urgency_first: int = _WEIGHTS.urgency_first
    urgency_each_more: int = _WEIGHTS.urgency_each_more
    urgency_max: int = _WEIGHTS.urgency_max
    follower_tiers: list[tuple[int, int]] = Field(
        default_factory=lambda: [(a, b) for a, b in _WEIGHTS.follower_tiers]
    )
    vip: int = _WEIGHTS.vip
    known_customer: int = _WEIGHTS.known_customer
    verified: int = _WEIGHTS.verified
    spam: int = _WEIGHTS.spam

    @field_validator("follower_tiers")
    @classmethod
    def _tiers(cls, value: list[tuple[int, int]]) -> list[tuple[int, int]]:
        for minimum, _points in value:
            if minimum < 0:
                raise ValueError("a follower tier starts at 0 followers or more")
        return value


class ThresholdsSettings(_Strict):
    urgent: int = _THRESHOLDS.urgent
    high: int = _THRESHOLDS.high
    normal: int = _THRESHOLDS.normal

    @model_validator(mode="after")
    def _ordered(self) -> ThresholdsSettings:
        if not self.urgent > self.high > self.normal:
            raise ValueError("thresholds must satisfy urgent > high > normal")
        return self


class BotLikeSettings(_Strict):
    min_handle_digits: int = Field(default=_BOT_LIKE.min_handle_digits, ge=1)
    max_followers: int = Field(default=_BOT_LIKE.max_followers, ge=0)


class MatchSettings(_Strict):
    """All given conditions must hold; within one, any listed value will do."""

    networks: list[str] = Field(default_factory=list)
    languages: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    priority: list[PriorityLevel] = Field(default_factory=list)
    vip: StrictBool | None = None

    @field_validator("networks", "languages", "keywords", "priority", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("networks", "keywords")
    @classmethod
    def _non_empty(cls, value: list[str]) -> list[str]:
        return _words(value)

    @field_validator("languages")
    @classmethod
    def _languages(cls, value: list[str]) -> list[str]:
        for code in value:
            if not _LANGUAGE.match(code):
                raise ValueError(f"'{code}' is not a two-letter ISO 639-1 code like 'en'")
        return value

    @property
    def is_catch_all(self) -> bool:
        return not (self.networks or self.languages or self.keywords or self.priority
                    or self.vip is not None)


class RuleSettings(_Strict):
    """One `[[triage.routing]]` entry: the first rule that matches picks the channel."""

    channel: str
    match: MatchSettings = Field(default_factory=MatchSettings)

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        if not _CHANNEL.match(value.strip()):
            raise ValueError(f"'{value}' is not a Slack channel id (C…, G… or D…)")
        return value.strip()


class GroupingSettings(_Strict):
    enabled: bool = True
    window_minutes: float = Field(default=15, gt=0, le=24 * 60)
    threshold: float = Field(default=0.6, gt=0, le=1)
    min_chars: int = Field(default=12, ge=1)
    thread_list_limit: int = Field(default=20, ge=1, le=40)
    """How many grouped cases the lead card's thread message lists by name."""


class SpikeSettings(_Strict):
    enabled: bool = True
    topics: list[str] = Field(default_factory=list)
    """Keywords watched for spikes, besides the urgency words (when `urgency_topics`)."""
    urgency_topics: bool = True
    bucket_minutes: float = Field(default=5, gt=0, le=24 * 60)
    window_buckets: int = Field(default=3, ge=1, le=288)
    min_count: int = Field(default=10, ge=1)
    ratio: float = Field(default=3.0, gt=1)
    cooldown_minutes: float = Field(default=120, ge=0)
    warmup_minutes: float = Field(default=60, ge=0)
    samples: int = Field(default=3, ge=0, le=10)

    @field_validator("topics")
    @classmethod
    def _topics(cls, value: list[str]) -> list[str]:
        return _words(value)


class TriageSettings(_Strict):
    """`[triage]`: signals, priority weights, routing, spam, grouping and spike alerts."""

    enabled: bool = True
    urgency_words: list[str] = Field(default_factory=lambda: list(DEFAULT_URGENCY_WORDS))
    vip_handles: list[str] = Field(default_factory=list)
    excluded_handles: list[str] = Field(default_factory=list)
    excluded_keywords: list[str] = Field(default_factory=list)
    very_negative_at_or_below: float = Field(default=-0.5, ge=-1, le=0)
    repeated_text_min_copies: int = Field(default=2, ge=1)
    spam: SpamAction = SpamAction.REVIEW
    """`review`: spam gets a card in slack.review_channel; `autoclose`: closed as `spam`."""
    weights: WeightsSettings = Field(default_factory=WeightsSettings)
    thresholds: ThresholdsSettings = Field(default_factory=ThresholdsSettings)
    bot_like: BotLikeSettings = Field(default_factory=BotLikeSettings)
    routing: list[RuleSettings] = Field(default_factory=list)
    grouping: GroupingSettings = Field(default_factory=GroupingSettings)
    spikes: SpikeSettings = Field(default_factory=SpikeSettings)

    @field_validator("urgency_words", "excluded_keywords", "vip_handles", "excluded_handles")
    @classmethod
    def _lists(cls, value: list[str]) -> list[str]:
        return _words(value)

    def problems(self, section: str = "triage") -> list[str]:
        """What parses but cannot work as meant: rules no mention can ever reach."""
        found: list[str] = []
        for index, rule in enumerate(self.routing):
            if rule.match.is_catch_all and index < len(self.routing) - 1:
                found.append(
                    f"{section}.routing[{index}].match: matches every mention, so rules "
                    f"{index + 1}..{len(self.routing) - 1} never apply"
                )
        return found

    def setup(self, *, default_channel: str, review_channel: str) -> TriageSetup:
        """The pure values triage runs on."""
        config = TriageConfig(
            urgency_words=tuple(self.urgency_words),
            vip_handles=frozenset(self.vip_handles),
            excluded_handles=frozenset(self.excluded_handles),
            excluded_keywords=tuple(self.excluded_keywords),
            weights=PriorityWeights(**{
                **self.weights.model_dump(),
                "follower_tiers": tuple((int(a), int(b))
                                        for a, b in self.weights.follower_tiers)}),
            thresholds=PriorityThresholds(**self.thresholds.model_dump()),
            very_negative_at_or_below=self.very_negative_at_or_below,
            bot_like=BotLikeRule(**self.bot_like.model_dump()),
            repeated_text_min_copies=self.repeated_text_min_copies,
        )
        rules = tuple(
            RoutingRule(
                match=RuleMatch(
                    networks=frozenset(rule.match.networks),
                    languages=frozenset(rule.match.languages),
                    keywords=tuple(rule.match.keywords),
                    priorities=frozenset(rule.match.priority),
                    vip=rule.match.vip,
                ),
                channel=rule.channel,
            )
            for rule in self.routing
        )
        spikes = self.spikes
        topics = list(spikes.topics)
        if spikes.urgency_topics:
            topics += [w for w in self.urgency_words if w not in topics]
        return TriageSetup(
            enabled=self.enabled,
            config=config,
            rules=rules,
            default_channel=default_channel,
            spam_policy=SpamPolicy(action=self.spam, review_channel=review_channel),
            grouping=GroupingConfig(
                window=timedelta(minutes=self.grouping.window_minutes),
                threshold=self.grouping.threshold,
                min_chars=self.grouping.min_chars,
            ) if self.grouping.enabled else None,
            thread_list_limit=self.grouping.thread_list_limit,
            spikes=SpikeConfig(
                bucket=timedelta(minutes=spikes.bucket_minutes),
                window_buckets=spikes.window_buckets,
                min_count=spikes.min_count,
                ratio=spikes.ratio,
                cooldown=timedelta(minutes=spikes.cooldown_minutes),
                warmup=timedelta(minutes=spikes.warmup_minutes),
            ) if spikes.enabled and topics else None,
            spike_topics=tuple(topics),
            spike_samples=spikes.samples,
        )


@dataclass(frozen=True, slots=True)
class TriageSetup:
    """Everything the ingest pipeline needs to triage, as plain frozen values."""

    enabled: bool = True
    config: TriageConfig = field(default_factory=TriageConfig)
    rules: tuple[RoutingRule, ...] = ()
    default_channel: str = "C0MENTIONS"
    spam_policy: SpamPolicy = field(default_factory=SpamPolicy)
    grouping: GroupingConfig | None = field(default_factory=GroupingConfig)
    thread_list_limit: int = 20
    spikes: SpikeConfig | None = field(default_factory=SpikeConfig)
    spike_topics: tuple[str, ...] = DEFAULT_URGENCY_WORDS
    spike_samples: int = 3
