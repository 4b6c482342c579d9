"""P9: memory and disk footprint under steady traffic.

20 signed events per second plus 2 interactions per second (Claims on real cards) into the
running process; its resident memory is sampled from /proc twice a second and the SQLite
write-ahead log's size beside it. Growth is the end-of-run memory minus the memory when the
first fifth of the run (the warm-up) was over. The reference is the Bolt app without a
database under the same event load.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from pathlib import Path

from bench.context import Context, fake_slack
from bench.core import Recorder, at_most
from bench.load import SlackSigner, client, home_opened_event, open_loop, post_signed
from bench.procs import AGENTS, SIGNING_SECRET, Server, start_product, start_reference
from bench.seed import seed_cards
from bot.sandbox.emulator import SlackEmulator
from bot.slack.ids import ACTION_CLAIM

TITLE = "footprint (20 events/s + 2 interactions/s)"
EVENTS = 20.0
CLICKS = 2.0


def _file_mb(path: Path) -> float:
    with contextlib.suppress(OSError):
        return path.stat().st_size / 2**20
    return 0.0


async def _traffic(emulator: SlackEmulator, server: Server, tag: str, duration: float,
                   cards: list[object] | None) -> None:
    signer = SlackSigner(SIGNING_SECRET)
    async with client() as http:
        events = post_signed(http, server.events_url, signer,
                             lambda i: home_opened_event(emulator, tag, i))
        loads = [open_loop(EVENTS, duration, events)]
        if cards:
            async def click(index: int) -> int:
                card = cards[index % len(cards)]
                response = await emulator.click(AGENTS[index % 2], card.channel,  # type: ignore[attr-defined]
                                                card.ts, ACTION_CLAIM)  # type: ignore[attr-defined]
                return response.status

            emulator.request_url = server.events_url
            loads.append(open_loop(CLICKS, duration, click))
        await asyncio.gather(*loads)


async def _sample(server: Server, wal: Path | None, stop: asyncio.Event,
                  into: list[tuple[float, float, float]]) -> None:
    began = time.monotonic()
    while not stop.is_set():
        into.append((time.monotonic() - began, server.rss_mb(),
                     _file_mb(wal) if wal else 0.0))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)


async def _measure(emulator: SlackEmulator, server: Server, tag: str, duration: float,
                   cards: list[object] | None, wal: Path | None
                   ) -> list[tuple[float, float, float]]:
    samples: list[tuple[float, float, float]] = []
    stop = asyncio.Event()
    sampler = asyncio.create_task(_sample(server, wal, stop, samples))
    try:
        await _traffic(emulator, server, tag, duration, cards)
    finally:
        stop.set()
        await sampler
    return samples


async def run(ctx: Context, rec: Recorder) -> None:
    duration = ctx.profile.pick(2.0, 30.0, 600.0)
    runs = ctx.profile.pick(1, ctx.profile.repeats, 1)
    reference_duration = min(duration, 10.0)
    for run_no in range(runs):
        async with fake_slack() as emulator, ctx.database() as url:
            db_path = Path(url.split("///", 1)[1])
            wal = db_path.with_name(db_path.name + "-wal")
            cards = await seed_cards(ctx.workdir, url, emulator,
                                     int(CLICKS * duration) + 1, tag=f"p9s{run_no}")
            product, reference = await asyncio.gather(
                start_product(ctx.workdir, database_url=url, slack_api_url=emulator.api_url),
                start_reference(ctx.workdir, "bolt", slack_api_url=emulator.api_url))
            try:
                samples = await _measure(emulator, product, f"p9r{run_no}", duration,
                                         list(cards), wal)
                await product.stop()
                ref_samples = await _measure(emulator, reference, f"p9b{run_no}",
                                             reference_duration, None, None)
            finally:
                await product.stop()
                await reference.stop()
        rss = [s[1] for s in samples]
        warm = [s for s in samples if s[0] >= duration / 5] or samples
        tail = [s[1] for s in samples[-4:]]
        growth = statistics.median(tail) - warm[0][1]
        wal_max = max(s[2] for s in samples)
        ref_peak = max(s[1] for s in ref_samples)
        ctx.log(f"run {run_no + 1}: peak RSS {max(rss):.0f} MB (reference {ref_peak:.0f}), "
                f"growth after warm-up {growth:+.1f} MB, WAL max {wal_max:.1f} MB")
        rec.add("peak RSS", "MB", max(rss), target=at_most(200),
                reference="Bolt app, no database", ref_value=ref_peak)
        rec.add("RSS growth after warm-up", "MB", growth, target=at_most(5))
        rec.add("SQLite WAL, largest", "MB", wal_max, target=at_most(16))
        rec.add("SQLite WAL at the end", "MB", samples[-1][2])
    rec.note(f"{EVENTS:g} app_home_opened events/s + {CLICKS:g} Claim clicks/s for "
             f"{duration:g} s, {runs} run(s); growth is judged against 5 MB and the WAL "
             "against 16 MB (four times SQLite's 1,000-page autocheckpoint): our reading of "
             "'no growth' and 'bounded'")
