"""`python -m bench [--smoke | --quick | --full] [--only P1,P3] [--out FILE]`

Runs the benchmarks P1..P10 on loopback, prints the table (median of the runs, min, max, the
reference measured in the same run and the ratio) and writes the JSON document.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import shlex
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.context import Context
from bench.core import BENCHMARK_IDS, PROFILES, Outcome, Recorder, document, table
from bench.procs import stop_all

MODULES = {
    "P1": "bench.suite.p01_event_ack",
    "P2": "bench.suite.p02_interactive",
    "P3": "bench.suite.p03_ack_ceiling",
    "P4": "bench.suite.p04_ingest",
    "P5": "bench.suite.p05_card_latency",
    "P6": "bench.suite.p06_pacing",
    "P7": "bench.suite.p07_reports",
    "P8": "bench.suite.p08_backlog",
    "P9": "bench.suite.p09_footprint",
    "P10": "bench.suite.p10_cold_start",
}
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "latest.json"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--smoke", dest="profile", action="store_const", const="smoke",
                      help="a second or two per benchmark at tiny scale: proves the suite works")
    mode.add_argument("--quick", dest="profile", action="store_const", const="quick",
                      help="about 10 s per run (the default)")
    mode.add_argument("--full", dest="profile", action="store_const", const="full",
                      help="the issue's durations (P6 and P9 take 10 minutes each)")
    parser.add_argument("--only", default="",
                        help="comma-separated ids, e.g. P1,P3 (default: all)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="runs per benchmark (default: 1 smoke, 3 otherwise)")
    parser.add_argument("--postgres", default=os.environ.get("TEST_DATABASE_URL", ""),
                        help="PostgreSQL URL to create scratch databases on (default: "
                             "$TEST_DATABASE_URL); without it PostgreSQL figures are skipped")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"JSON output (default: {DEFAULT_OUT.relative_to(Path.cwd())}"
                             if DEFAULT_OUT.is_relative_to(Path.cwd()) else "JSON output")
    return parser


def _selected(only: str) -> list[str]:
    if not only:
        return list(BENCHMARK_IDS)
    wanted = [part.strip().upper() for part in only.split(",") if part.strip()]
    unknown = [w for w in wanted if w not in MODULES]
    if unknown:
        raise SystemExit(f"python -m bench: unknown benchmark id(s): {', '.join(unknown)}")
    return wanted


async def _run_one(bench: str, ctx: Context) -> Outcome:
    module = importlib.import_module(MODULES[bench])
    title: str = module.TITLE
    run: Callable[[Context, Recorder], Awaitable[None]] = module.run
    recorder = Recorder(bench)
    print(f"{bench}: {title}", file=sys.stderr, flush=True)
    began = time.perf_counter()
    load_start = os.getloadavg()[0]
    error = None
    try:
        await run(ctx, recorder)
    except Exception as exc:
        error = f"{exc.__class__.__name__}: {exc}"
        traceback.print_exc(file=sys.stderr)
    finally:
        await stop_all()
    return Outcome(bench, title, list(recorder.figures.values()), recorder.notes,
                   time.perf_counter() - began, error, (load_start, os.getloadavg()[0]))


async def _main(ids: Sequence[str], ctx_args: dict[str, Any]) -> list[Outcome]:
    # SIGTERM cancels like Ctrl-C does, so every server process started is stopped again.
    task = asyncio.current_task()
    if task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    outcomes = []
    for bench in ids:
        with tempfile.TemporaryDirectory(prefix=f"mdbench-{bench.lower()}-") as scratch:
            ctx = Context(workdir=Path(scratch), **ctx_args)
            outcomes.append(await _run_one(bench, ctx))
    return outcomes


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    profile = PROFILES[args.profile or "quick"]
    if args.repeats is not None:
        if args.repeats < 1:
            raise SystemExit("python -m bench: --repeats must be at least 1")
        profile = replace(profile, repeats=args.repeats)
    ids = _selected(args.only)
    began = datetime.now(UTC)
    load_before = list(os.getloadavg())
    command = "python -m bench " + shlex.join(sys.argv[1:] if argv is None else list(argv))
    outcomes = asyncio.run(_main(ids, {"profile": profile,
                                       "postgres_url": args.postgres or None}))
    print()
    print(table(outcomes, profile.judged))
    for outcome in outcomes:
        for note in outcome.notes:
            print(f"{outcome.bench}: {note}")
    print("1-minute load average (start → end): " + ", ".join(
        f"{o.bench} {o.load[0]:.1f} → {o.load[1]:.1f}" for o in outcomes))
    out: Path = args.out or DEFAULT_OUT
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document(outcomes, profile, command.strip(), began,
                                             load_before), indent=2)
                   + "\n", encoding="utf-8")
    print(f"\nwritten to {out}")
    return 1 if any(o.error for o in outcomes) else 0


if __name__ == "__main__":
    raise SystemExit(main())
