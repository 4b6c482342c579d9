"""What listeners need, handed over by the composition root."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.services.context import Services
from bot.services.roles import RolePolicy
from bot.slack.cards import BlockRenderer
from bot.slack.notifier import SlackNotifier


@dataclass(frozen=True, slots=True)
class Deps:
    services: Services
    roles: RolePolicy
    notifier: SlackNotifier
    renderer: BlockRenderer
    wake: Callable[[], None] = lambda: None
    extras: dict[str, Any] = field(default_factory=dict)
