"""P2: interactive acknowledgements (Claim with its transaction) and modal opening.

Open loop at a constant rate of signed button clicks sent by the emulator on real cards:
every other click is a Claim (its compare-and-set transaction commits before the ack), the
others are a lead pressing Close, which opens the outcome modal with the click's trigger_id
before acknowledging. A modal counts as opened in time when the emulator accepted its
`views.open` (it refuses triggers older than 3 s) within 3 s of the scheduled click.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bench.context import Context, fake_slack
from bench.core import Recorder, at_least, at_most, percentile
from bench.load import Latencies, Sample, open_loop, wall_of
from bench.procs import AGENTS, LEAD, Server, start_product, start_reference
from bench.seed import Card, seed_cards
from bot.sandbox.emulator import SlackEmulator
from bot.slack.ids import ACTION_CLAIM, ACTION_CLOSE, ButtonValue

TITLE = "interactive ack (Claim with its transaction) and modal opening"
REFERENCE = "Bolt ack, no database"
RATE = 50.0


def _clicks(emulator: SlackEmulator, cards: list[Card]) -> Any:
    async def send(index: int) -> int:
        card = cards[index // 2]
        if index % 2 == 0:
            user, action = AGENTS[(index // 2) % len(AGENTS)], ACTION_CLAIM
        else:
            user, action = LEAD, ACTION_CLOSE
        response = await emulator.click(user, card.channel, card.ts, action)
        return response.status

    return send


async def _run(emulator: SlackEmulator, server: Server, cards: list[Card],
               duration: float) -> tuple[list[Sample], float]:
    emulator.request_url = server.events_url
    return await open_loop(RATE, duration, _clicks(emulator, cards))


def _modals(emulator: SlackEmulator, cards: list[Card], samples: list[Sample],
            since: int) -> tuple[int, int, float]:
    """(close clicks, modals opened within 3 s, slowest opening in ms)."""
    scheduled = {cards[s.index // 2].case_id: wall_of(s.scheduled)
                 for s in samples if s.index % 2 == 1}
    opened: dict[int, float] = {}
    for call in emulator.calls[since:]:
        if call.method != "views.open" or not call.ok:
            continue
        view = call.args.get("view")
        meta = view.get("private_metadata") if isinstance(view, dict) else None
        try:
            case_id = ButtonValue.unpack(meta).case_id
        except ValueError:
            continue
        if case_id in scheduled:
            opened[case_id] = (call.at.timestamp() - scheduled[case_id]) * 1000
    in_time = sum(1 for ms in opened.values() if ms <= 3000)
    slowest = max(opened.values()) if opened else float("nan")
    return len(scheduled), in_time, slowest


async def run(ctx: Context, rec: Recorder) -> None:
    duration = ctx.profile.pick(1.0, 10.0, 60.0)
    per_run = int(RATE * duration) // 2 + 1
    warm = int(RATE * 1.0) // 2 + 1
    async with fake_slack() as emulator, ctx.database() as url:
        cards = await seed_cards(ctx.workdir, url, emulator, warm + per_run * ctx.profile.repeats)
        ctx.log(f"{len(cards)} cards seeded")
        product, reference = await asyncio.gather(
            start_product(ctx.workdir, database_url=url, slack_api_url=emulator.api_url),
            start_reference(ctx.workdir, "bolt", slack_api_url=emulator.api_url))
        try:
            await _run(emulator, product, cards[:warm], 1.0)
            await product.settle()
            await _run(emulator, reference, cards[:warm], 1.0)
            for run_no in range(ctx.profile.repeats):
                mine_cards = cards[warm + run_no * per_run:warm + (run_no + 1) * per_run]
                since = len(emulator.calls)
                samples, elapsed = await _run(emulator, product, mine_cards, duration)
                closes, in_time, slowest = _modals(emulator, mine_cards, samples, since)
                await product.settle()
                ref_samples, ref_elapsed = await _run(emulator, reference, mine_cards, duration)
                claim = Latencies.of([s for s in samples if s.index % 2 == 0], elapsed)
                close = Latencies.of([s for s in samples if s.index % 2 == 1], elapsed)
                ref_claim = Latencies.of([s for s in ref_samples if s.index % 2 == 0],
                                         ref_elapsed)
                ref_close = Latencies.of([s for s in ref_samples if s.index % 2 == 1],
                                         ref_elapsed)
                all_ms = [s.latency * 1000 for s in samples]
                ctx.log(f"run {run_no + 1}: claim p99 {claim.p99:.1f} ms (reference "
                        f"{ref_claim.p99:.1f}), modals {in_time}/{closes} in time, "
                        f"slowest {slowest:.0f} ms")
                rec.add("interactive ack p99 (all clicks)", "ms", percentile(all_ms, 99),
                        target=at_most(100), reference=REFERENCE,
                        ref_value=percentile([s.latency * 1000 for s in ref_samples], 99))
                rec.add("Claim ack p50", "ms", claim.p50, reference=REFERENCE,
                        ref_value=ref_claim.p50)
                rec.add("Claim ack p99", "ms", claim.p99, target=at_most(100),
                        reference=REFERENCE, ref_value=ref_claim.p99)
                rec.add("Close ack p99 (after views.open)", "ms", close.p99,
                        reference=REFERENCE, ref_value=ref_close.p99)
                rec.add("modals opened within 3 s", "%",
                        100.0 * in_time / closes if closes else 0.0, target=at_least(100))
                rec.add("slowest modal opening", "ms", slowest, target=at_most(3000),
                        reference="Slack's trigger window", ref_value=3000)
                rec.add("failed clicks", "count", claim.sent - claim.ok + close.sent - close.ok,
                        target=at_most(0))
                lag = percentile([(s.started - s.scheduled) * 1000 for s in samples], 99)
                rec.add("generator: start lag p99", "ms", lag)
        finally:
            await product.stop()
            await reference.stop()
    rec.note(f"{RATE:.0f} clicks/s for {duration:g} s per run on SQLite (half Claim by "
             "agents, half Close by a lead, which opens the modal); clicks are sent by the "
             "emulator on cards the dispatcher posted")
