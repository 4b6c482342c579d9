"""Shared pieces of the reliability tests: the bot with real pacing settings on a real clock,
mention factories, and the figures every test prints (delivered, duplicates, lost, pace)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.domain.mention import Author, Mention
from bot.sandbox.emulator import ApiCall, SlackEmulator
from bot.settings import ReliabilityConfig, Settings
from bot.slack.notifier import CARD_EVENT_TYPE
from bot.web import create_app
from bot.wiring import Components, build
from tests.loopback import serving
from tests.stack import BOT_TOKEN, SIGNING_SECRET, test_settings

_WORDS = [
    "billing",
    "app",
    "login",
    "refund",
    "delivery",
    "parcel",
    "support",
    "order",
    "invoice",
    "password",
    "screen",
    "checkout",
    "coupon",
    "account",
    "upgrade",
    "payment",
    "shipping",
    "tracking",
    "mobile",
    "desktop",
    "printer",
    "router",
    "driver",
    "battery",
    "charger",
    "warranty",
    "manual",
    "receipt",
    "store",
    "kiosk",
    "voucher",
]


def reliable_settings(
    database_url: str, api_url: str, reply_url: str | None = None, **reliability: Any
) -> Settings:
    """The scenario settings, but with these reliability settings (real pacing by default)."""
    settings = test_settings(database_url, api_url, reply_url)
    file = settings.file.model_copy(update={"reliability": ReliabilityConfig(**reliability)})
    return settings.model_copy(update={"file": file})


def mentions(count: int, *, prefix: str = "m", topic: str = "outage") -> list[Mention]:
    """Distinct mentions (different enough that triage does not group them)."""
    rng = random.Random(prefix)
    now = datetime.now(UTC)
    out = []
    for i in range(count):
        # Six of 31 words alone make some pairs 0.6-similar: a random reference keeps
        # every text its own.
        words = " ".join(rng.sample(_WORDS, 6)) + f" ref {rng.getrandbits(96):024x}"
        out.append(
            Mention(
                source="forum",
                external_id=f"{prefix}{i}",
                created_at=now,
                text=f"{topic} {words} #{i}",
                url=f"https://forum.example/t/{prefix}{i}",
                author=Author(handle=f"@user{prefix}{i}", name=f"User {i}", followers=10 + i),
            )
        )
    return out


@dataclass
class Bot:
    emulator: SlackEmulator
    components: Components
    url: str


@asynccontextmanager
async def running_bot(settings: Settings, emulator: SlackEmulator) -> AsyncIterator[Bot]:
    """The real app over HTTP (no background dispatcher: tests run it when they want)."""
    components = await build(settings)
    async with serving(create_app(components, background=False)) as base:
        emulator.request_url = f"{base}/slack/events"
        yield Bot(emulator, components, f"{base}/")


@asynccontextmanager
async def emulator_running() -> AsyncIterator[SlackEmulator]:
    emulator = SlackEmulator(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN)
    await emulator.start()
    try:
        yield emulator
    finally:
        await emulator.stop()


def card_case_ids(messages: Iterable[Any]) -> Counter[int]:
    """How many card messages each case has (by the message metadata the bot sets)."""
    seen: Counter[int] = Counter()
    for message in messages:
        meta = message.metadata or {}
        if meta.get("event_type") == CARD_EVENT_TYPE:
            seen[int(meta["event_payload"]["case_id"])] += 1
    return seen


def max_in_window(times: Sequence[float], window: float) -> int:
    """The most events inside any window of `window` seconds."""
    best, start = 0, 0
    ordered = sorted(times)
    for end, at in enumerate(ordered):
        while at - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def post_times(calls: Iterable[ApiCall], channel: str) -> list[float]:
    """When Slack accepted a chat.postMessage for `channel` (seconds)."""
    return [
        c.at.timestamp()
        for c in calls
        if c.method == "chat.postMessage" and c.ok and c.args.get("channel") == channel
    ]


def report(name: str, **figures: object) -> None:
    """The figures the issue asks every test to print."""
    text = ", ".join(f"{k}={v}" for k, v in figures.items())
    print(f"\n[{name}] {text}")
