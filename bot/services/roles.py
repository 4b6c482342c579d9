"""Who is a lead, who is an agent: decided on the server for every action, never from a card.

Leads are configured user ids and/or members of a Slack user group; group lookups are cached
briefly, and a failed lookup denies (it never grants).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable

from bot.domain.lifecycle import Actor, Role

log = logging.getLogger(__name__)

GroupLookup = Callable[[str], Awaitable[list[str]]]
FAILURE_RETRY_SECONDS = 5.0
"""A failed lookup is asked again this soon: long enough not to call Slack on every click
of an outage, short enough that a lead is not refused for a whole cache period after it."""


class RolePolicy:
    def __init__(
        self,
        *,
        leads: Iterable[str] = (),
        lead_usergroup: str = "",
        agents: Iterable[str] = (),
        agent_usergroup: str = "",
        team_id: str | None = None,
        lookup: GroupLookup | None = None,
        cache_seconds: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.leads = frozenset(leads)
        self.lead_usergroup = lead_usergroup
        self.agents = frozenset(agents)
        self.agent_usergroup = agent_usergroup
        self.team_id = team_id
        self.lookup = lookup
        self.cache_seconds = cache_seconds
        self.monotonic = monotonic
        self._cache: dict[str, tuple[float, frozenset[str] | None]] = {}
        """group → (until when, members or None for a failed lookup)"""

    async def _members(self, group: str) -> frozenset[str] | None:
        """Members of a user group, or None when they cannot be known right now."""
        if not group or self.lookup is None:
            return None
        now = self.monotonic()
        cached = self._cache.get(group)
        if cached is not None and now < cached[0]:
            return cached[1]
        try:
            members: frozenset[str] | None = frozenset(await self.lookup(group))
            keep = self.cache_seconds
        except Exception as exc:
            log.warning("user group %s lookup failed (%s); denying lead rights",
                        group, exc.__class__.__name__)
            members = None
            keep = min(self.cache_seconds, FAILURE_RETRY_SECONDS)
        self._cache[group] = (now + keep, members)
        return members

    async def resolve(self, user_id: str | None, team_id: str | None = None) -> Actor:
        if not user_id or (self.team_id and team_id and team_id != self.team_id):
            return Actor(user_id=user_id or "unknown", role=Role.NONE)
        if user_id in self.leads:
            return Actor(user_id, Role.LEAD)
        lead_group = await self._members(self.lead_usergroup)
        if lead_group and user_id in lead_group:
            return Actor(user_id, Role.LEAD)
        if not self.agents and not self.agent_usergroup:
            return Actor(user_id, Role.AGENT)
        if user_id in self.agents:
            return Actor(user_id, Role.AGENT)
        agent_group = await self._members(self.agent_usergroup)
        if agent_group and user_id in agent_group:
            return Actor(user_id, Role.AGENT)
        return Actor(user_id, Role.NONE)
