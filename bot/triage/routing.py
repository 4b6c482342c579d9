"""Which channel a mention goes to: ordered rules, first match wins, then the default channel."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bot.domain.mention import Mention
from bot.triage.priority import PRIORITY_LEVELS, Priority, PriorityLevel
from bot.triage.signals import Signals
from bot.triage.text import keyword_matcher

MATCH_KEYS: tuple[str, ...] = ("networks", "languages", "keywords", "priority", "vip")
RULE_KEYS: tuple[str, ...] = ("match", "channel")
_LANGUAGE = re.compile(r"^[a-z]{2}$")


class SpamAction(StrEnum):
    REVIEW = "review"
    AUTOCLOSE = "autoclose"


@dataclass(frozen=True, slots=True)
class SpamPolicy:
    """Spam goes to a review channel for a human glance, or is closed without a card."""

    action: SpamAction = SpamAction.REVIEW
    review_channel: str = ""


@dataclass(frozen=True, slots=True)
class RuleMatch:
    """Every given condition must hold; within one, any listed value will do. Empty = any."""

    networks: frozenset[str] = frozenset()
    languages: frozenset[str] = frozenset()
    keywords: tuple[str, ...] = ()
    priorities: frozenset[PriorityLevel] = frozenset()
    vip: bool | None = None

    def __post_init__(self) -> None:
        # Network names and language codes compare case-insensitively however the rule was built.
        object.__setattr__(self, "networks", frozenset(n.casefold() for n in self.networks))
        object.__setattr__(self, "languages", frozenset(c.casefold() for c in self.languages))

    def matches(self, mention: Mention, signals: Signals, priority: Priority) -> bool:
        if self.networks and mention.source.casefold() not in self.networks:
            return False
        if self.languages and signals.language not in self.languages:
            return False
        if self.priorities and priority.level not in self.priorities:
            return False
        if self.vip is not None and signals.is_vip is not self.vip:
            return False
        return not self.keywords or bool(keyword_matcher(self.keywords).find(mention.text))


@dataclass(frozen=True, slots=True)
class RoutingRule:
    match: RuleMatch
    channel: str


@dataclass(frozen=True, slots=True)
class RouteDecision:
    """`channel` is None only when spam is auto-closed; `rule_index` None means the default."""

    channel: str | None
    rule_index: int | None
    spam_action: SpamAction | None = None


def route(
    mention: Mention,
    signals: Signals,
    priority: Priority,
    rules: list[RoutingRule] | tuple[RoutingRule, ...],
    default_channel: str,
    spam_policy: SpamPolicy | None = None,
) -> RouteDecision:
    if signals.spam_reasons:
        policy = spam_policy or SpamPolicy()
        if policy.action is SpamAction.AUTOCLOSE:
            return RouteDecision(channel=None, rule_index=None, spam_action=SpamAction.AUTOCLOSE)
        return RouteDecision(
            channel=policy.review_channel or default_channel,
            rule_index=None,
            spam_action=SpamAction.REVIEW,
        )
    for index, rule in enumerate(rules):
        if rule.match.matches(mention, signals, priority):
            return RouteDecision(channel=rule.channel, rule_index=index)
    return RouteDecision(channel=default_channel, rule_index=None)


def _string_list(value: Any, where: str, problems: list[str]) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        problems.append(f"{where}: expected a string or a list of strings")
        return []
    good: list[str] = []
    for position, item in enumerate(items):
        if not isinstance(item, str) or not item.strip():
            problems.append(f"{where}[{position}]: expected a non-empty string, got {item!r}")
        else:
            good.append(item.strip())
    return good


def _validate_match(match: Any, where: str, problems: list[str]) -> None:
    if not isinstance(match, dict):
        problems.append(f"{where}: expected a table of conditions")
        return
    for key in match:
        if key not in MATCH_KEYS:
            problems.append(f"{where}.{key}: unknown condition (use {', '.join(MATCH_KEYS)})")
    if "networks" in match:
        _string_list(match["networks"], f"{where}.networks", problems)
    if "keywords" in match:
        _string_list(match["keywords"], f"{where}.keywords", problems)
    if "languages" in match:
        for code in _string_list(match["languages"], f"{where}.languages", problems):
            if not _LANGUAGE.match(code):
                problems.append(
                    f"{where}.languages: {code!r} is not a two-letter ISO 639-1 code like 'en'"
                )
    if "priority" in match:
        allowed = ", ".join(PRIORITY_LEVELS)
        for level in _string_list(match["priority"], f"{where}.priority", problems):
            if level not in PRIORITY_LEVELS:
                problems.append(f"{where}.priority: {level!r} is not one of {allowed}")
    if "vip" in match and not isinstance(match["vip"], bool):
        problems.append(f"{where}.vip: expected true or false, got {match['vip']!r}")


def validate_rules(raw: Any, *, section: str = "routing") -> list[str]:
    """Every problem in the `[[routing]]` tables, each with where it is, for check-config."""
    if not isinstance(raw, list):
        return [f"{section}: expected a list of [[{section}]] tables"]
    problems: list[str] = []
    for index, entry in enumerate(raw):
        where = f"{section}[{index}]"
        if not isinstance(entry, dict):
            problems.append(f"{where}: expected a table with 'channel' and 'match'")
            continue
        for key in entry:
            if key not in RULE_KEYS:
                problems.append(f"{where}.{key}: unknown key (use {', '.join(RULE_KEYS)})")
        channel = entry.get("channel")
        if not isinstance(channel, str) or not channel.strip():
            problems.append(f"{where}.channel: a channel id is required")
        if "match" in entry:
            _validate_match(entry["match"], f"{where}.match", problems)
    return problems


def rules_from_raw(raw: Any, *, section: str = "routing") -> list[RoutingRule]:
    """Builds rules from TOML tables; raises ValueError listing every problem if any."""
    problems = validate_rules(raw, section=section)
    if problems:
        raise ValueError("; ".join(problems))
    rules: list[RoutingRule] = []
    for entry in raw:
        match: dict[str, Any] = entry.get("match", {})

        def strings(key: str, match: dict[str, Any] = match) -> list[str]:
            value = match.get(key, [])
            return [value.strip()] if isinstance(value, str) else [v.strip() for v in value]

        rules.append(
            RoutingRule(
                match=RuleMatch(
                    networks=frozenset(name.casefold() for name in strings("networks")),
                    languages=frozenset(strings("languages")),
                    keywords=tuple(strings("keywords")),
                    priorities=frozenset(PriorityLevel(level) for level in strings("priority")),
                    vip=match.get("vip"),
                ),
                channel=entry["channel"].strip(),
            )
        )
    return rules
