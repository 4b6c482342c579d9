"""Cases with cards already in the fake Slack, made through the product's own code: the
composition root, `ingest_batch` and the outbox dispatcher posting to the emulator."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import select
from sqlmodel import col

from bench.load import mention
from bench.procs import BOT_TOKEN, SIGNING_SECRET, SOURCE, WEBHOOK_SECRET, write_config
from bot.connectors.generic import parse_webhook_mentions
from bot.domain.mention import Mention
from bot.sandbox.emulator import SlackEmulator
from bot.services.ingest import ingest_batch
from bot.settings import Environment, Settings, load_file_config
from bot.wiring import Components, build
from db.models import CaseRow

CHUNK = 500
# Seeding is set-up, not what is measured: its cards go out without Slack's pace.
SEED_CONFIG = """
[reliability]
pace_scale = 1000.0
"""


@dataclass(frozen=True, slots=True)
class Card:
    case_id: int
    channel: str
    ts: str


def settings_for(workdir: Path, database_url: str, slack_api_url: str) -> Settings:
    """The benchmark server's settings, except that seeding is not paced."""
    env = Environment(
        slack_bot_token=SecretStr(BOT_TOKEN), slack_signing_secret=SecretStr(SIGNING_SECRET),
        slack_api_url=slack_api_url, database_url=database_url,
    )
    file = load_file_config(write_config(workdir, SEED_CONFIG, "seed.toml"), missing_ok=False)
    return Settings(env=env, file=file, secrets={"BENCH_WEBHOOK_SECRET": WEBHOOK_SECRET})


def mentions(tag: str, count: int) -> list[Mention]:
    """Parsed by the webhook parser, exactly as a webhook body would be."""
    raw = json.dumps([mention(tag, i) for i in range(count)]).encode()
    return [m for m in parse_webhook_mentions(raw) if isinstance(m, Mention)]


async def seed_cards(workdir: Path, database_url: str, emulator: SlackEmulator, count: int,
                     tag: str = "seed") -> list[Card]:
    """`count` new cases whose cards the dispatcher has posted to the emulator."""
    components: Components = await build(settings_for(workdir, database_url, emulator.api_url))
    try:
        batch = mentions(tag, count)
        for start in range(0, len(batch), CHUNK):
            await ingest_batch(components.services, batch[start:start + CHUNK],
                               source_name=SOURCE)
        await components.dispatcher.drain(max_rounds=count + 100)
        async with components.db.transaction() as tx:
            rows = (await tx.session.execute(
                select(col(CaseRow.id), col(CaseRow.channel), col(CaseRow.message_ts))
                .order_by(col(CaseRow.id)))).all()
    finally:
        await components.close()
    cards = [Card(int(r[0] or 0), str(r[1]), str(r[2])) for r in rows if r[2]]
    if len(cards) < count:
        raise RuntimeError(f"only {len(cards)} of {count} seeded cards were posted")
    return cards
