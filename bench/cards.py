"""Which mentions reached the fake Slack, when and where: every benchmark mention carries a
token in its text, and the emulator records each Web API call it received."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import col

from bot.sandbox.emulator import SlackEmulator
from db.models import OutboxRow

TOKEN = re.compile(r"bench([a-z0-9]+?)x(\d+)x")


@dataclass(frozen=True, slots=True)
class Seen:
    at: float  # wall clock seconds, when the emulator received the post
    channel: str
    order: int  # position among all calls


def posts(emulator: SlackEmulator, since: int = 0) -> list[tuple[int, float, str, str]]:
    """(position, wall time, channel, status) of every chat.postMessage from `since` on."""
    found = []
    for position, call in enumerate(emulator.calls[since:], start=since):
        if call.method == "chat.postMessage":
            found.append((position, call.at.timestamp(), str(call.args.get("channel", "")),
                          str(call.status)))
    return found


def carded(emulator: SlackEmulator, tag: str, since: int = 0) -> dict[int, Seen]:
    """Mention index → the first accepted chat.postMessage that carried its token."""
    seen: dict[int, Seen] = {}
    for position, call in enumerate(emulator.calls[since:], start=since):
        if call.method != "chat.postMessage" or not call.ok:
            continue
        for match in TOKEN.finditer(json.dumps(call.args)):
            if match.group(1) == tag:
                index = int(match.group(2))
                if index not in seen:
                    seen[index] = Seen(call.at.timestamp(), str(call.args.get("channel", "")),
                                       position)
    return seen


def max_rate(times_by_channel: dict[str, list[float]], window: float) -> float:
    """The highest number of posts per second in one channel averaged over any `window`."""
    best = 0
    for times in times_by_channel.values():
        ordered = sorted(times)
        start = 0
        for end, stamp in enumerate(ordered):
            while stamp - ordered[start] >= window:
                start += 1
            best = max(best, end - start + 1)
    return best / window


def by_channel(entries: list[tuple[int, float, str, str]], ok_only: bool = True
               ) -> dict[str, list[float]]:
    grouped: dict[str, list[float]] = defaultdict(list)
    for _position, at, channel, status in entries:
        if not ok_only or status == "200":
            grouped[channel].append(at)
    return grouped


async def outbox_waiting(database_url: str) -> int:
    """Outbox rows not yet settled (pending or leased), read from the server's database."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            stmt = select(func.count()).select_from(OutboxRow).where(
                col(OutboxRow.status).in_(["pending", "leased"]))
            return int((await conn.execute(stmt)).scalar_one())
    finally:
        await engine.dispose()
