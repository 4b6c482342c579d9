"""Crash safety and scale-out with real worker processes on PostgreSQL: SIGKILL, SIGSTOP past
the lease, SIGTERM, and (opt-in, MENTIONDESK_PG_RESTART_TEST=1) a PostgreSQL restart.

Scaled for CI time (the issue's figures are larger; the mechanism does not change with the
count): SIGKILL ×2 with 120 mentions and 10 approved replies over 3 workers (one restart);
SIGSTOP past the lease with 80 mentions and 6 replies; SIGTERM with 100 mentions; the opt-in
PostgreSQL restart with 300 mentions. Cards go at 50/s; `pace_scale` lifts the other Slack
budgets tenfold (pacing itself is proven in test_pacing.py), so reconciling and card updates do
not dominate the run.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.sandbox.emulator import SlackEmulator
from bot.services.ingest import ingest_batch
from bot.wiring import Components, build
from tests.conftest import PG_URL, fresh_postgres
from tests.reliability.harness import (
    card_case_ids,
    emulator_running,
    max_in_window,
    mentions,
    post_times,
    reliable_settings,
    report,
)
from tests.reliability.workers import (
    IdempotentSink,
    Workers,
    approve_replies,
    idempotent_sink,
    write_config,
)

pytestmark = [pytest.mark.postgres,
              pytest.mark.skipif(not PG_URL and not os.environ.get("CI"),
                                 reason="TEST_DATABASE_URL is not set")]
CHANNEL = "C0MENTIONS"
PACE = {"post_per_second": 5.0, "pace_scale": 10.0, "post_burst": 5,
        "digest_after_seconds": 600.0}


@dataclass
class Run:
    emulator: SlackEmulator
    sink: IdempotentSink
    workers: Workers
    components: Components


@asynccontextmanager
async def cluster(tmp_path: Path, lease_seconds: float) -> AsyncIterator[Run]:
    """A fresh PostgreSQL database, migrated once here; workers are started by the test."""
    if not PG_URL:
        pytest.fail("CI must run the PostgreSQL tests: TEST_DATABASE_URL is not set")
    async with fresh_postgres() as url, emulator_running() as emulator, \
            idempotent_sink() as sink:
        settings = reliable_settings(url, emulator.api_url, sink.url, **PACE)
        components = await build(settings)  # migrates; its dispatcher never runs here
        config = write_config(tmp_path / "mentiondesk.toml", sink.url,
                              lease_seconds=lease_seconds, **PACE)
        workers = Workers(url, emulator.api_url, config, tmp_path)
        try:
            yield Run(emulator, sink, workers, components)
        finally:
            await workers.stop_all()
            await components.close()


def _figures(name: str, run: Run, expected_cards: int, expected_replies: int) -> tuple[int, int]:
    cards = card_case_ids(run.emulator.messages(CHANNEL))
    duplicates = sum(n - 1 for n in cards.values() if n > 1)
    pace = max_in_window(post_times(run.emulator.calls, CHANNEL), 1.0)
    report(name, delivered=len(cards), duplicates=duplicates,
           lost=expected_cards - len(cards), replies_published=len(run.sink.published),
           reply_requests=run.sink.requests, replies_expected=expected_replies,
           max_posts_in_1s=pace)
    return len(cards), duplicates


async def _wait_cards(run: Run, count: int, timeout: float = 60) -> None:  # noqa: ASYNC109
    try:
        await run.emulator.wait_for(lambda: len(run.emulator.messages(CHANNEL)) >= count,
                                    timeout=timeout)
    except TimeoutError:
        print(run.workers.output())
        async with run.components.db.transaction() as tx:
            rows = await tx.session.execute(text(
                "select kind, status, lease_owner, lease_token, attempts, last_error "
                "from outbox where status != 'done' limit 20"))
            print("cards:", len(run.emulator.messages(CHANNEL)), list(rows))
        raise


async def test_three_workers_one_killed_twice_lose_and_double_nothing(tmp_path: Path) -> None:
    async with cluster(tmp_path, lease_seconds=4) as run:
        services = run.components.services
        result = await ingest_batch(services, mentions(120, prefix="k"), source_name="web")
        replied = sorted(result.created)[:10]
        await approve_replies(services, replied)
        procs = [run.workers.start() for _ in range(3)]
        await _wait_cards(run, 40)
        run.workers.kill(procs[0])
        run.workers.start()  # a restart after the crash
        await _wait_cards(run, 80)
        run.workers.kill(procs[1])  # the two left finish the run
        await _wait_cards(run, 120)
        await run.emulator.wait_for(lambda: len(run.sink.published) >= 10, timeout=60)
        async with services.db.transaction() as tx:
            states = await tx.count_by_state()
        delivered, duplicates = _figures("SIGKILL ×2", run, 120, 10)
    assert delivered == 120 and duplicates == 0
    assert len(run.sink.published) == 10
    assert {body["body"]["case_id"] for body in run.sink.published.values()} == set(replied)
    assert states.get("replied") == 10


async def test_a_worker_frozen_past_its_lease_causes_no_double_side_effect(
    tmp_path: Path,
) -> None:
    async with cluster(tmp_path, lease_seconds=3) as run:
        services = run.components.services
        result = await ingest_batch(services, mentions(80, prefix="f"), source_name="web")
        await approve_replies(services, sorted(result.created)[:6])
        frozen = run.workers.start()
        await _wait_cards(run, 15)
        frozen.send_signal(signal.SIGSTOP)  # holds leases on rows it had started
        run.workers.start()
        # Taken-over rows reconcile through conversations.history (Slack tier 3, paced).
        await _wait_cards(run, 80, timeout=120)
        await run.emulator.wait_for(lambda: len(run.sink.published) >= 6, timeout=60)
        frozen.send_signal(signal.SIGCONT)
        frozen.send_signal(signal.SIGTERM)  # it wakes with stale leases, then stops
        await asyncio.to_thread(frozen.wait, 30)
        delivered, duplicates = _figures("SIGSTOP past lease", run, 80, 6)
        log = (tmp_path / "worker-0.log").read_text(errors="replace")
    assert delivered == 80 and duplicates == 0
    assert len(run.sink.published) == 6
    assert frozen.returncode == 0, log[-2000:]


async def test_sigterm_stops_taking_work_and_exits_within_25_seconds(tmp_path: Path) -> None:
    async with cluster(tmp_path, lease_seconds=60) as run:
        services = run.components.services
        await ingest_batch(services, mentions(100, prefix="s"), source_name="web")
        worker = run.workers.start()
        await _wait_cards(run, 20)
        loop = asyncio.get_running_loop()
        started = loop.time()
        worker.send_signal(signal.SIGTERM)
        await asyncio.to_thread(worker.wait, 30)
        took = loop.time() - started
        async with services.db.transaction() as tx:
            counts = await tx.outbox_counts()
        posted = len(run.emulator.messages(CHANNEL))
        report("SIGTERM", exit_seconds=round(took, 2), delivered=posted,
               left_leased=counts.get("leased", 0), left_pending=counts.get("pending", 0))
        # No lease is left for 60 s: the rest goes at once to the next worker.
        assert counts.get("leased", 0) == 0
        assert worker.returncode == 0 and took < 25
        run.workers.start()
        await _wait_cards(run, 100)
        delivered, duplicates = _figures("SIGTERM then restart", run, 100, 0)
    assert delivered == 100 and duplicates == 0


@pytest.mark.restarts_postgres
@pytest.mark.skipif(os.environ.get("MENTIONDESK_PG_RESTART_TEST") != "1",
                    reason="restarts the shared PostgreSQL: set MENTIONDESK_PG_RESTART_TEST=1")
async def test_postgresql_restart_mid_run_loses_and_doubles_nothing(tmp_path: Path) -> None:
    async with cluster(tmp_path, lease_seconds=5) as run:
        services = run.components.services
        await ingest_batch(services, mentions(300, prefix="r"), source_name="web")
        run.workers.start()
        run.workers.start()
        await _wait_cards(run, 50)
        version = sorted(os.listdir("/etc/postgresql"))[-1]
        await asyncio.to_thread(subprocess.run, [
            "pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart",
            "-m", "fast"], check=True, timeout=60)
        loop = asyncio.get_running_loop()
        restarted = loop.time()
        before = len(run.emulator.messages(CHANNEL))
        await _wait_cards(run, before + 10, timeout=30)
        recovered = loop.time() - restarted
        await _wait_cards(run, 300)
        delivered, duplicates = _figures("PostgreSQL restart", run, 300, 0)
        report("PostgreSQL restart", throughput_back_after_s=round(recovered, 2))
    assert delivered == 300 and duplicates == 0
    assert recovered < 10
