"""The triage benchmark keeps running against the wired pipeline (tiny N, no timing asserts)."""

from __future__ import annotations

import pytest

from bench import triage_bench


def test_benchmark_runs_end_to_end(capsys: pytest.CaptureFixture[str]) -> None:
    triage_bench.main(60)
    out = capsys.readouterr().out
    for label in ("compute_signals", "grouping", "spike detection",
                  "ingest_batch x50, triage off", "ingest_batch x50, triage on"):
        assert label in out
