from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.sandbox import SlackEmulator


class FakeClock:
    """The emulator's clock, moved by hand so trigger expiry needs no sleeping."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def emulator(clock: FakeClock) -> AsyncIterator[SlackEmulator]:
    emu = SlackEmulator(signing_secret="test-secret", bot_token="xoxb-test", clock=clock)
    await emu.start()
    yield emu
    await emu.stop()


@pytest.fixture
def slack(emulator: SlackEmulator) -> AsyncWebClient:
    return AsyncWebClient(token=emulator.bot_token, base_url=emulator.api_url)
