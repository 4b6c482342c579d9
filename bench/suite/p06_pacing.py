"""P6: Slack posting discipline.

A burst of 100 mentions for one channel (one webhook batch), then 4 mentions per second
spread over five channels. The fake Slack answers 429 when a channel gets more than 3 posts
within one second (Slack allows about one per second with short bursts); the figures are the
429s the product received and the highest posting rate in one channel averaged over any 10 s.
Real time, not compressed: the pacing budgets live in the product's database clock.
"""

from __future__ import annotations

import time

from bench.cards import by_channel, max_rate, outbox_waiting, posts
from bench.context import Context, fake_slack
from bench.core import Recorder, at_most
from bench.load import client, mention, open_loop, post_webhook
from bench.procs import CHANNELS, SOURCE, WEBHOOK_SECRET, start_product

TITLE = "Slack posting discipline (burst, then 4 cards/s over 5 channels)"
EMULATOR_BURST = 3
RATE = 4.0


async def run(ctx: Context, rec: Recorder) -> None:
    burst = ctx.profile.pick(12, 100, 100)
    duration = ctx.profile.pick(2.0, 30.0, 600.0)
    runs = ctx.profile.pick(1, ctx.profile.repeats, 1)
    for run_no in range(runs):
        async with fake_slack() as emulator, ctx.database() as url:
            emulator.rate_limit("chat.postMessage", per_channel_per_second=EMULATOR_BURST)
            product = await start_product(ctx.workdir, database_url=url,
                                          slack_api_url=emulator.api_url)
            try:
                async with client() as http:
                    hook = f"{product.url}webhooks/{SOURCE}"
                    tag = f"p6r{run_no}"
                    began = time.time()
                    status = await post_webhook(http, hook, WEBHOOK_SECRET,
                                                [mention(tag, i) for i in range(burst)])
                    if status != 200:
                        raise RuntimeError(f"the burst webhook was answered {status}")

                    async def send(index: int, hook: str = hook, tag: str = tag) -> int:
                        return await post_webhook(
                            http, hook, WEBHOOK_SECRET,
                            mention(tag, burst + index, lane=index % 5))

                    await open_loop(RATE, duration, send)
                    ended = time.time()
                waiting = await outbox_waiting(url)
            finally:
                await product.stop()
            entries = posts(emulator)
            limited = sum(1 for e in entries if e[3] == "429")
            times = by_channel(entries)
            rate10 = max_rate(times, 10.0)
            rate1 = max_rate(times, 1.0)
            ctx.log(f"run {run_no + 1}: {len(entries)} posts, {limited} answered 429, max "
                    f"{rate10:.2f}/s/channel over 10 s, {waiting} outbox rows still waiting")
            rec.add("429 answers received", "count", limited, target=at_most(0))
            rec.add("max posts/s in one channel, 10 s average", "msg/s", rate10,
                    target=at_most(1.0), reference="Slack's 1 msg/s/channel", ref_value=1.0)
            rec.add("max posts in one channel within 1 s", "msg", rate1,
                    reference="emulator's burst limit", ref_value=EMULATOR_BURST)
            rec.add("posts accepted per second of run", "msg/s",
                    sum(len(t) for t in times.values()) / max(1e-9, ended - began))
            rec.add("outbox rows waiting at the end", "count", waiting)
            counts = [len(times.get(channel, [])) for channel in CHANNELS]
            ctx.log(f"run {run_no + 1}: posts per channel {counts}")
            rec.add("posts in the least-served channel", "msg", min(counts),
                    reference="in the most-served", ref_value=max(counts))
    rec.note(f"burst of {burst} into one channel, then {RATE:g}/s over 5 channels for "
             f"{duration:g} s, {runs} run(s), each on a fresh SQLite database; not compressed")
