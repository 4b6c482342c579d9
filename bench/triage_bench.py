"""Per-mention cost of triage on synthetic mentions.

Run from the repository root: `.venv/bin/python -m bench.triage_bench [N]` (default 5,000).
Models load before timing starts; their load time is printed separately. The last lines run
the wired ingest pipeline (database included) with triage off and on.
"""

from __future__ import annotations

import asyncio
import random
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.domain.mention import Author, Mention
from bot.triage.config import TriageConfig
from bot.triage.grouping import GroupIndex
from bot.triage.language import LanguageDetector
from bot.triage.priority import score_priority
from bot.triage.routing import SpamPolicy, route, rules_from_raw
from bot.triage.sentiment import SentimentAnalyzer
from bot.triage.signals import Analyzers, AuthorHistory, compute_signals
from bot.triage.spikes import SpikeDetector

OPENINGS = [
    "@acme my order never arrived and nobody answers",
    "@acme I was charged twice, I want a refund",
    "Love the new @acme app, so much faster 😍",
    "@acme does the new plan include international shipping?",
    "@acme mi pedido no ha llegado todavía, muy decepcionado",
    "Merci @acme pour votre aide rapide !",
    "@acme meine Bestellung ist nie angekommen",
    "@acme 注文した商品がまだ届きません",
    "RT @acme: Our checkout is down for some customers, we're on it",
    "https://deals.example/x #promo",
]
TAILS = ["", " Please help.", " This is the third time!!", " 🙃", " #fail", " thanks"]
RAW_RULES = [
    {"channel": "C_VIP", "match": {"vip": True}},
    {"channel": "C_URGENT", "match": {"priority": ["urgent"]}},
    {"channel": "C_ES", "match": {"languages": ["es", "pt"]}},
    {"channel": "C_BILLING", "match": {"keywords": ["refund", "charged", "invoice"]}},
]


def synthetic(count: int, seed: int = 1) -> list[Mention]:
    rng = random.Random(seed)
    start = datetime(2026, 11, 22, tzinfo=UTC)
    return [
        Mention(
            source=rng.choice(["x", "mastodon", "bluesky", "reddit"]),
            external_id=str(n),
            text=f"{rng.choice(OPENINGS)}{rng.choice(TAILS)} #{n % 97}",
            created_at=start + timedelta(seconds=n),
            author=Author(
                handle=f"@user{rng.randrange(10**4)}",
                followers=int(rng.paretovariate(1.2) * 50),
                verified=rng.random() < 0.05,
            ),
        )
        for n in range(count)
    ]


def rate(label: str, count: int, work: Callable[[], object]) -> float:
    began = time.perf_counter()
    work()
    elapsed = time.perf_counter() - began
    per_second = count / elapsed
    print(f"{label:<42} {per_second:>10,.0f}/s  {elapsed * 1e6 / count:>8.1f} µs each")
    return per_second


def main(count: int) -> None:
    mentions = synthetic(count)
    config = TriageConfig(vip_handles=frozenset({"@user42"}))
    rules = rules_from_raw(RAW_RULES)
    policy = SpamPolicy(review_channel="C_SPAM")
    history = AuthorHistory(case_count=1, recent_texts=("@acme hello",) * 5)

    began = time.perf_counter()
    sentiment = SentimentAnalyzer()
    sentiment.score("warm up")
    loaded_sentiment = time.perf_counter() - began
    began = time.perf_counter()
    language = LanguageDetector()
    language.detect("warm up the language model please")
    loaded_language = time.perf_counter() - began
    analyzers = Analyzers(sentiment, language)
    print(f"load: VADER {loaded_sentiment * 1e3:.0f} ms, language model "
          f"{loaded_language * 1e3:.0f} ms; {count:,} mentions\n")

    rate("sentiment (VADER) only", count, lambda: [sentiment.score(m.text) for m in mentions])
    rate("language only", count, lambda: [language.detect(m.text) for m in mentions])
    signals = [
        compute_signals(m, config=config, history=history, analyzers=analyzers) for m in mentions
    ]
    rate("compute_signals (incl. both models)", count, lambda: [
        compute_signals(m, config=config, history=history, analyzers=analyzers) for m in mentions
    ])
    priorities = [score_priority(s, config) for s in signals]
    rate("score_priority", count, lambda: [score_priority(s, config) for s in signals])
    rate("route", count, lambda: [
        route(m, s, p, rules, "C_DEFAULT", policy)
        for m, s, p in zip(mentions, signals, priorities, strict=True)
    ])

    def pipeline() -> None:
        for mention in mentions:
            found = compute_signals(mention, config=config, history=history, analyzers=analyzers)
            level = score_priority(found, config)
            route(mention, found, level, rules, "C_DEFAULT", policy)

    rate("signals + priority + routing", count, pipeline)

    def grouping() -> None:
        index = GroupIndex()
        for mention in mentions:
            index.assign(mention, mention.created_at)

    rate("grouping (GroupIndex.assign)", count, grouping)

    def spikes() -> None:
        detector = SpikeDetector()
        for mention in mentions:
            detector.observe(f"topic{int(mention.external_id) % 10}", mention.created_at)

    rate("spike detection (observe)", count, spikes)

    print()
    asyncio.run(ingest(mentions[: min(count, 2_000)], analyzers))


async def ingest(mentions: list[Mention], analyzers: Analyzers, batch: int = 50) -> None:
    """The wired pipeline: `ingest_batch` on a fresh SQLite file, with triage on and off, so
    the difference is triage's share of each mention's ingest (queries and state included)."""
    from bot.services.context import Services
    from bot.services.ingest import ingest_batch
    from bot.services.triage import Triage
    from bot.triage.settings import TriageSettings
    from db.engine import make_engine
    from db.migrate import upgrade
    from db.store import Database

    for enabled in (False, True):
        with tempfile.TemporaryDirectory() as folder:
            engine = make_engine(f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}")
            await upgrade(engine)
            off = {} if enabled else {"grouping": {"enabled": False},
                                      "spikes": {"enabled": False}}
            setup = TriageSettings.model_validate({"enabled": enabled, **off}).setup(
                default_channel="C_DEFAULT", review_channel="C_SPAM")
            services = Services(db=Database(engine), triage=Triage(setup, analyzers))
            began = time.perf_counter()
            for start in range(0, len(mentions), batch):
                await ingest_batch(services, mentions[start:start + batch], source_name="x")
            elapsed = time.perf_counter() - began
            await engine.dispose()
        label = f"ingest_batch x{batch}, triage {'on' if enabled else 'off'} (SQLite)"
        print(f"{label:<42} {len(mentions) / elapsed:>10,.0f}/s  "
              f"{elapsed * 1e6 / len(mentions):>8.1f} µs each")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5_000)
