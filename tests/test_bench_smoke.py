"""The benchmark suite still works: its smoke mode runs every benchmark briefly, in a
subprocess, and writes a valid JSON document. Times are not judged here (benchmarks are not
tests); the pure helpers the figures rest on are checked exactly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.cards import max_rate
from bench.core import BENCHMARK_IDS, Figure, at_least, at_most, percentile

ROOT = Path(__file__).resolve().parent.parent


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 99.9) == 100
    assert percentile([7.0], 99) == 7


def test_max_rate_averages_over_the_window() -> None:
    burst = {"C1": [0.0, 0.1, 0.2, 5.0], "C2": [0.0, 20.0]}
    assert max_rate(burst, 1.0) == 3.0
    assert max_rate(burst, 10.0) == 0.4


def test_figures_report_misses_by_how_much() -> None:
    assert at_most(50).verdict(100) == "missed (2.0x the limit)"
    assert at_least(1000).verdict(250) == "missed (25.0% of target)"
    assert at_most(0).verdict(0) == "met"
    figure = Figure("P1", "ack p99", "ms", at_most(50), "Bolt", [10.0, 30.0, 20.0], [5.0])
    assert (figure.median, figure.ratio) == (20.0, 4.0)
    assert figure.status(judged=False) == "not judged (smoke)"
    figure.pending = "not built yet"
    assert figure.status(judged=True) == "feature pending"


def test_smoke_mode_runs_every_benchmark(tmp_path: Path) -> None:
    out = tmp_path / "smoke.json"
    # SQLite only: the smoke run proves the suite works; its PostgreSQL variants double the
    # time without exercising anything the SQLite run does not.
    env = {k: v for k, v in os.environ.items() if k != "TEST_DATABASE_URL"}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["profile"] == "smoke"
    assert document["machine"]["cores"] >= 1
    benchmarks = document["benchmarks"]
    assert sorted(benchmarks, key=lambda b: int(b[1:])) == list(BENCHMARK_IDS)
    for bench, result in benchmarks.items():
        assert result["error"] is None, f"{bench}: {result['error']}"
        assert result["figures"], f"{bench} produced no figures"
        for figure in result["figures"]:
            assert figure["runs"] or figure["pending"], f"{bench}: {figure['name']} is empty"
