"""P8: backlog catch-up after a Slack outage.

Every Web API call the dispatcher makes fails (HTTP 503) while mentions arrive at 0.5 per
second per channel on five channels; then Slack recovers. The figure is the time from the
recovery until every card is posted (the outbox holds nothing more), and whether the cards
of each channel came out in the order their mentions arrived. The reference is the least time
the pacing itself allows: the largest channel backlog at 1 post/s after a burst of 3.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from bench.cards import Seen, carded, outbox_waiting
from bench.context import Context, fake_slack
from bench.core import Recorder, at_least, at_most
from bench.load import client, mention, open_loop, post_webhook
from bench.procs import SOURCE, WEBHOOK_SECRET, start_product
from bot.sandbox.emulator import SlackEmulator

TITLE = "backlog catch-up after a Slack outage"
PER_CHANNEL = 0.5
CHANNELS = 5
DOWN_METHODS = ("chat.postMessage", "chat.update", "conversations.history",
                "chat.getPermalink", "chat.postEphemeral", "views.publish")


def _slack_down(emulator: SlackEmulator) -> None:
    for method in DOWN_METHODS:
        emulator.fail(method, 503, times=10**9, error="service_unavailable")


def _order(seen: dict[int, Seen]) -> tuple[float, int]:
    """(share of channels whose cards appeared in mention order, cards that came out after
    a card of a later mention of the same channel)."""
    channels: dict[str, list[tuple[int, int]]] = {}
    for index, where in seen.items():
        channels.setdefault(where.channel, []).append((where.order, index))
    good = late = 0
    for entries in channels.values():
        indices = [i for _o, i in sorted(entries)]
        highest = -1
        behind = 0
        for index in indices:
            if index < highest:
                behind += 1
            highest = max(highest, index)
        late += behind
        good += behind == 0
    return (100.0 * good / len(channels) if channels else 0.0), late


async def run(ctx: Context, rec: Recorder) -> None:
    down = ctx.profile.pick(2.0, 20.0, 60.0)
    limit = ctx.profile.pick(60.0, 300.0, 600.0)
    runs = ctx.profile.pick(1, ctx.profile.repeats, ctx.profile.repeats)
    for run_no in range(runs):
        async with fake_slack() as emulator, ctx.database() as url:
            product = await start_product(ctx.workdir, database_url=url,
                                          slack_api_url=emulator.api_url)
            try:
                tag = f"p8r{run_no}"
                _slack_down(emulator)
                async with client() as http:
                    hook = f"{product.url}webhooks/{SOURCE}"

                    async def send(index: int, hook: str = hook, tag: str = tag) -> int:
                        return await post_webhook(http, hook, WEBHOOK_SECRET,
                                                  mention(tag, index, lane=index % CHANNELS))

                    samples, _ = await open_loop(PER_CHANNEL * CHANNELS, down, send)
                sent = {s.index for s in samples if s.ok}
                emulator.clear_faults()
                recovered = time.monotonic()
                cleared = None
                while time.monotonic() - recovered < limit:
                    if sent <= carded(emulator, tag).keys() and not await outbox_waiting(url):
                        cleared = time.monotonic() - recovered
                        break
                    await asyncio.sleep(0.5)
                seen = carded(emulator, tag)
            finally:
                await product.stop()
            backlog = max(Counter(i % CHANNELS for i in sent).values(), default=0)
            ideal = max(0.0, backlog - 3) / 1.0
            elapsed = cleared if cleared is not None else limit
            ctx.log(f"run {run_no + 1}: {len(sent)} mentions during {down:g} s down; "
                    + (f"cleared {cleared:.1f} s after recovery" if cleared is not None
                       else f"not cleared after {limit:g} s")
                    + f"; {len(seen)} carded")
            rec.add("backlog cleared after recovery", "s", elapsed, target=at_most(120),
                    reference="pacing floor", ref_value=ideal)
            in_order, late = _order(seen)
            rec.add("channels whose cards kept mention order", "%", in_order,
                    target=at_least(100))
            rec.add("cards posted after a later mention's card", "count", late,
                    target=at_most(0))
            rec.add("mentions without a card at the end", "count", len(sent - seen.keys()),
                    target=at_most(0))
            if cleared is None:
                rec.note(f"run {run_no + 1}: not cleared within {limit:g} s; the figure is "
                         "that limit (a lower bound)")
    rec.note(f"Slack down {down:g} s (every call answered 503) with {PER_CHANNEL:g} "
             f"mentions/s/channel on {CHANNELS} channels; {runs} run(s), fresh SQLite each")
