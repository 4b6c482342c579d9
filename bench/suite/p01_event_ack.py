"""P1: event acknowledgement latency, with the event recorded before the ack.

Open loop at a constant rate of signed `message` events into `/slack/events` of the real
process; the reference is a Bolt app from the same libraries that acknowledges without any
database work. Both run side by side and are loaded in turn, run after run.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import col

from bench.context import Context, fake_slack
from bench.core import Recorder, at_most
from bench.load import (
    Latencies,
    Sample,
    SlackSigner,
    client,
    home_opened_event,
    open_loop,
    post_signed,
)
from bench.procs import SIGNING_SECRET, Server, start_product, start_reference
from db.models import SlackDeliveryRow

TITLE = "event ack latency (event recorded before the ack)"
REFERENCE = "Bolt ack, no database"
TIMEOUT = 10.0


async def _load(http: object, server: Server, emulator: object, tag: str, rate: float,
                duration: float) -> tuple[Latencies, list[Sample]]:
    signer = SlackSigner(SIGNING_SECRET)
    send = post_signed(http, server.events_url, signer,  # type: ignore[arg-type]
                       lambda i: home_opened_event(emulator, tag, i))  # type: ignore[arg-type]
    samples, elapsed = await open_loop(rate, duration, send, timeout=TIMEOUT)
    return Latencies.of(samples, elapsed), samples


async def recorded_events(database_url: str, prefix: str) -> set[str]:
    """The event keys the product wrote to slack_delivery for this benchmark's runs."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            stmt = select(col(SlackDeliveryRow.key)).where(
                col(SlackDeliveryRow.key).like(f"event:Ev{prefix}%"))
            return {str(key) for key in (await conn.execute(stmt)).scalars()}
    finally:
        await engine.dispose()


async def run(ctx: Context, rec: Recorder) -> None:
    rate = 200.0
    duration = ctx.profile.pick(1.5, 10.0, 60.0)
    async with fake_slack() as emulator, ctx.database() as url:
        product, reference = await asyncio.gather(
            start_product(ctx.workdir, database_url=url, slack_api_url=emulator.api_url),
            start_reference(ctx.workdir, "bolt", slack_api_url=emulator.api_url))
        try:
            async with client() as http:
                await _load(http, product, emulator, "p1w", rate, 1.0)
                await product.settle()
                await _load(http, reference, emulator, "p1x", rate, 1.0)
                sent = acked = 0
                acked_keys: set[str] = set()
                for run_no in range(ctx.profile.repeats):
                    mine, samples = await _load(http, product, emulator, f"p1r{run_no}",
                                                rate, duration)
                    acked_keys |= {f"event:Evp1r{run_no}{s.index:08d}" for s in samples if s.ok}
                    await product.settle()
                    ref, _ = await _load(http, reference, emulator, f"p1b{run_no}", rate,
                                         duration)
                    ctx.log(f"run {run_no + 1}: p99 {mine.p99:.1f} ms (reference "
                            f"{ref.p99:.1f} ms), {mine.achieved_rate:.0f}/s started, "
                            f"generator lag p99 {mine.lag_p99:.1f} ms")
                    rec.add("generator: requests started per second", "req/s",
                            mine.achieved_rate, reference="schedule", ref_value=rate)
                    rec.add("generator: start lag p99", "ms", mine.lag_p99,
                            reference=REFERENCE, ref_value=ref.lag_p99)
                    rec.add("ack p50", "ms", mine.p50, reference=REFERENCE, ref_value=ref.p50)
                    rec.add("ack p99", "ms", mine.p99, target=at_most(50),
                            reference=REFERENCE, ref_value=ref.p99)
                    rec.add("ack p99.9", "ms", mine.p999, target=at_most(300),
                            reference=REFERENCE, ref_value=ref.p999)
                    rec.add("ack max", "ms", mine.max, reference=REFERENCE, ref_value=ref.max)
                    rec.add("acks over 3 s or failed", "count", mine.over_3s,
                            target=at_most(0), reference=REFERENCE, ref_value=ref.over_3s)
                    sent += mine.sent
                    acked += mine.ok
        finally:
            await product.stop()
            await reference.stop()
        recorded = await recorded_events(url, "p1r")
    found = len(acked_keys & recorded)
    rec.note(f"{rate:.0f} events/s for {duration:g} s per run on SQLite; {acked} of {sent} "
             f"acknowledged with 200 within {TIMEOUT:g} s (the rest count as failed, their "
             f"latency as {TIMEOUT:g} s: a lower bound); {found} of the acknowledged found in "
             "slack_delivery (the product writes the event id before it acknowledges)")
    rec.add("acknowledged events found recorded", "%",
            100.0 * found / len(acked_keys) if acked_keys else 0.0)
