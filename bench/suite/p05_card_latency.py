"""P5: mention → card latency.

A push source (the signed generic webhook) delivers one mention per request at a constant
rate, spread over five channels by the triage routing rules; the latency of each mention is
from its scheduled send time to the moment the fake Slack receives the card that carries it.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from xml.sax.saxutils import escape

from aiohttp import web

from bench.cards import carded
from bench.context import Context, fake_slack
from bench.core import Recorder, at_most, percentile
from bench.load import client, mention, open_loop, post_webhook, wall_of
from bench.procs import CHANNELS, SOURCE, WEBHOOK_SECRET, start_product

TITLE = "mention → card latency (webhook source, 5 channels)"
RATE = 10.0
REFERENCE = "webhook answered (mention stored)"


async def run(ctx: Context, rec: Recorder) -> None:
    duration = ctx.profile.pick(1.0, 10.0, 60.0)
    grace = ctx.profile.pick(5.0, 15.0, 30.0)
    poll_seconds = ctx.profile.pick(2.0, 5.0, 5.0)
    feed = Feed()
    await feed.start()
    async with fake_slack() as emulator, ctx.database() as url:
        product = await start_product(ctx.workdir, database_url=url,
                                      slack_api_url=emulator.api_url,
                                      config_extra=feed_source(feed.url, poll_seconds))
        try:
            async with client() as http:
                hook = f"{product.url}webhooks/{SOURCE}"
                for run_no in range(ctx.profile.repeats):
                    tag = f"p5r{run_no}"

                    async def send(index: int, tag: str = tag) -> int:
                        return await post_webhook(http, hook, WEBHOOK_SECRET,
                                                  mention(tag, index, lane=index % 5))

                    since = len(emulator.calls)
                    samples, _ = await open_loop(RATE, duration, send)
                    wanted = {s.index for s in samples if s.ok}
                    deadline = time.monotonic() + grace
                    while time.monotonic() < deadline:
                        if wanted <= carded(emulator, tag, since).keys():
                            break
                        await asyncio.sleep(0.2)
                    seen = carded(emulator, tag, since)
                    gave_up = time.time()
                    latencies = [
                        (seen[s.index].at if s.index in seen else gave_up) - wall_of(s.scheduled)
                        for s in samples
                    ]
                    missing = len(samples) - sum(1 for s in samples if s.index in seen)
                    channels = {v.channel for v in seen.values()}
                    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
                    ctx.log(f"run {run_no + 1}: p50 {p50:.2f} s, p99 {p99:.2f} s, "
                            f"{missing} without a card after {grace:g} s, "
                            f"{len(channels)} channels")
                    acks = [s.latency for s in samples]
                    rec.add("mention → card p50", "s", p50, target=at_most(0.5),
                            reference=REFERENCE, ref_value=percentile(acks, 50))
                    rec.add("mention → card p99", "s", p99, target=at_most(2.0),
                            reference=REFERENCE, ref_value=percentile(acks, 99))
                    rec.add("mentions without a card at the end", "count", missing,
                            target=at_most(0))
                    rec.add("channels reached", "count", len(channels),
                            reference="channels routed to", ref_value=len(CHANNELS))
                    if missing:
                        rec.note(f"run {run_no + 1}: {missing} mentions had no card "
                                 f"{grace:g} s after the last send; their latency counts as "
                                 "that wait (a lower bound)")
            await polled(ctx, rec, emulator, feed, poll_seconds)
        finally:
            await product.stop()
            await feed.stop()
    rec.note(f"{RATE:.0f} mentions/s for {duration:g} s per run, one per webhook request, "
             "routed round-robin to 5 channels (2 per second per channel, above the 1 "
             "post/s/channel pacing of P6); SQLite")


class Feed:
    """An RSS 2.0 feed on loopback that grows one item at a time (newest first)."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, float]] = []  # (guid, text, published wall time)
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/feed.xml", self._serve)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/feed.xml"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def _serve(self, _request: web.Request) -> web.Response:
        entries = "".join(
            f"<item><title>{escape(text)}</title><description>{escape(text)}</description>"
            f"<link>https://blog.example/{guid}</link><guid>{guid}</guid>"
            f"<pubDate>{format_datetime(datetime.fromtimestamp(at, UTC))}</pubDate></item>"
            for guid, text, at in reversed(self.items[-200:]))
        body = ("<?xml version='1.0'?><rss version='2.0'><channel><title>bench</title>"
                f"<link>https://blog.example/</link><description>b</description>{entries}"
                "</channel></rss>")
        return web.Response(body=body.encode(), content_type="application/rss+xml")


def feed_source(url: str, poll_seconds: float) -> str:
    return f"""
[[sources]]
name = "feed"
kind = "rss"
base_url = "{url}"
poll_seconds = {poll_seconds}
allow_private_url = true
"""


async def polled(ctx: Context, rec: Recorder, emulator: object, feed: Feed,
                 poll_seconds: float) -> None:
    """Items appear in the feed at 1/s; each is timed from its appearance to its card."""
    count = int(ctx.profile.pick(2, 10, 30))
    for run_no in range(ctx.profile.repeats):
        tag = f"p5f{run_no}"
        since = len(emulator.calls)  # type: ignore[attr-defined]
        added: dict[int, float] = {}
        for index in range(count):
            text = mention(tag, index, lane=index % 5)["text"]
            added[index] = time.time()
            feed.items.append((f"{tag}-{index}", text, added[index]))
            await asyncio.sleep(1.0)
        deadline = time.monotonic() + poll_seconds + 10
        while time.monotonic() < deadline:
            if added.keys() <= carded(emulator, tag, since).keys():  # type: ignore[arg-type]
                break
            await asyncio.sleep(0.2)
        seen = carded(emulator, tag, since)  # type: ignore[arg-type]
        now = time.time()
        waits = [(seen[i].at if i in seen else now) - at for i, at in added.items()]
        ctx.log(f"polled run {run_no + 1}: slowest {max(waits):.1f} s, "
                f"{count - len(seen)} missing")
        rec.add(f"polled source (RSS, every {poll_seconds:g} s) → card, max", "s", max(waits),
                target=at_most(poll_seconds + 2), reference="poll interval",
                ref_value=poll_seconds)
