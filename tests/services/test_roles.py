"""Lead rights from a Slack user group: cached while known, asked again soon after a failure."""

from __future__ import annotations

from bot.domain.lifecycle import Role
from bot.services.roles import FAILURE_RETRY_SECONDS, RolePolicy


class Group:
    """A user group lookup that fails while `down`, counting the calls it receives."""

    def __init__(self) -> None:
        self.down = False
        self.calls = 0

    async def __call__(self, group: str) -> list[str]:
        self.calls += 1
        if self.down:
            raise ConnectionError("usergroups.users.list unreachable")
        return ["U0LEAD2"]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


async def test_a_failed_lookup_denies_and_is_retried_before_the_cache_period() -> None:
    group, clock = Group(), Clock()
    policy = RolePolicy(lead_usergroup="S0LEADS", lookup=group, cache_seconds=60,
                        monotonic=clock)
    group.down = True
    assert (await policy.resolve("U0LEAD2")).role is not Role.LEAD
    clock.now += FAILURE_RETRY_SECONDS / 2
    assert (await policy.resolve("U0LEAD2")).role is not Role.LEAD
    assert group.calls == 1  # an outage is not asked about on every click
    group.down = False
    clock.now += FAILURE_RETRY_SECONDS
    assert (await policy.resolve("U0LEAD2")).role is Role.LEAD
    assert group.calls == 2


async def test_known_members_are_kept_for_the_cache_period() -> None:
    group, clock = Group(), Clock()
    policy = RolePolicy(lead_usergroup="S0LEADS", lookup=group, cache_seconds=60,
                        monotonic=clock)
    assert (await policy.resolve("U0LEAD2")).role is Role.LEAD
    clock.now += 59
    assert (await policy.resolve("U0LEAD2")).role is Role.LEAD
    assert group.calls == 1
    clock.now += 2
    await policy.resolve("U0LEAD2")
    assert group.calls == 2
