"""P3: acknowledgement throughput ceiling.

Closed loop, 32 keep-alive connections, signed events through the product (signature check,
the event-id write, Bolt). References from the same load generator: a bare aiohttp handler
(the ceiling of the HTTP stack plus this generator on the same machine) and a Bolt app
without the database.
"""

from __future__ import annotations

import asyncio

from bench.context import Context, fake_slack
from bench.core import Recorder, at_least
from bench.load import SlackSigner, Throughput, client, closed_loop, home_opened_event, post_signed
from bench.procs import SIGNING_SECRET, Server, start_product, start_reference

TITLE = "ack throughput ceiling (closed loop, 32 connections)"
CONNECTIONS = 32
BARE = "bare aiohttp handler"


async def _blast(server: Server, emulator: object, tag: str, duration: float) -> Throughput:
    signer = SlackSigner(SIGNING_SECRET)
    async with client(CONNECTIONS) as http:
        send = post_signed(http, server.events_url, signer,
                           lambda i: home_opened_event(emulator, tag, i))  # type: ignore[arg-type]
        return await closed_loop(CONNECTIONS, duration, send)


async def run(ctx: Context, rec: Recorder) -> None:
    duration = ctx.profile.pick(1.0, 5.0, 20.0)
    async with fake_slack() as emulator, ctx.database() as url:
        servers = list(await asyncio.gather(
            start_product(ctx.workdir, database_url=url, slack_api_url=emulator.api_url),
            start_reference(ctx.workdir, "aiohttp", slack_api_url=emulator.api_url),
            start_reference(ctx.workdir, "bolt", slack_api_url=emulator.api_url),
        ))
        product, bare, bolt = servers
        try:
            for server in servers:
                await _blast(server, emulator, f"p3w{server.name[:3]}", 1.0)
                await server.settle()
            for run_no in range(ctx.profile.repeats):
                mine = await _blast(product, emulator, f"p3r{run_no}", duration)
                await product.settle()
                ceiling = await _blast(bare, emulator, f"p3a{run_no}", duration)
                no_db = await _blast(bolt, emulator, f"p3b{run_no}", duration)
                ctx.log(f"run {run_no + 1}: {mine.rate:.0f}/s (bare {ceiling.rate:.0f}/s, "
                        f"Bolt without database {no_db.rate:.0f}/s)")
                rec.add("acks/s with signature, DB write, Bolt", "req/s", mine.rate,
                        target=at_least(1000), reference=BARE, ref_value=ceiling.rate)
                rec.add("acks/s, Bolt without database", "req/s", no_db.rate,
                        reference=BARE, ref_value=ceiling.rate)
                rec.add("failed requests (product)", "count", mine.failed)
        finally:
            for server in servers:
                await server.stop()
    rec.note(f"{CONNECTIONS} connections for {duration:g} s per run on SQLite; the Python "
             "load generator shares the 2 cores with the server, so the bare handler's figure "
             "is the ceiling of this set-up, not of aiohttp")
