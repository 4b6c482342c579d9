"""P10: cold start, from process start to the first successful acknowledgement.

`python -m bot run` on a fresh SQLite file (so the migrations run too) is started and a
signed event is sent every 20 ms until one is answered 200. The reference is the Bolt app
without a database started the same way: interpreter start plus the shared libraries.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import aiohttp

from bench.context import Context, fake_slack
from bench.core import Recorder, at_most
from bench.load import SlackSigner, home_opened_event
from bench.procs import SIGNING_SECRET, Server, start_product, start_reference
from bot.sandbox.emulator import SlackEmulator

TITLE = "cold start (process start → first successful ack)"


async def _first_ack(server: Server, emulator: SlackEmulator, tag: str,
                     limit: float = 60.0) -> float:
    signer = SlackSigner(SIGNING_SECRET)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        attempt = 0
        while time.perf_counter() - server.spawned < limit:
            if server.process.returncode is not None:
                raise RuntimeError(f"{server.name} exited: {server.tail()}")
            body = home_opened_event(emulator, tag, attempt)
            attempt += 1
            with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                async with http.post(server.events_url, data=body,
                                     headers=signer.headers(body, "application/json")) as r:
                    if r.status == 200:
                        return time.perf_counter() - server.spawned
            await asyncio.sleep(0.02)
    raise RuntimeError(f"{server.name} gave no successful ack within {limit:g} s")


async def run(ctx: Context, rec: Recorder) -> None:
    async with fake_slack() as emulator:
        for run_no in range(ctx.profile.repeats):
            async with ctx.database() as url:
                product = await start_product(ctx.workdir, database_url=url,
                                              slack_api_url=emulator.api_url, wait=False)
                try:
                    mine = await _first_ack(product, emulator, f"p10r{run_no}")
                finally:
                    await product.stop()
            reference = await start_reference(ctx.workdir, "bolt",
                                              slack_api_url=emulator.api_url, wait=False)
            try:
                ref = await _first_ack(reference, emulator, f"p10b{run_no}")
            finally:
                await reference.stop()
            ctx.log(f"run {run_no + 1}: {mine:.2f} s (reference {ref:.2f} s)")
            rec.add("start → first ack, fresh database", "s", mine, target=at_most(3.0),
                    reference="Bolt app, no database", ref_value=ref)
    rec.note("fresh SQLite database each run: the time includes creating the schema")
