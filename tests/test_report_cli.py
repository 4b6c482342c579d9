"""`mentiondesk report` as an admin runs it: text, JSON and CSV, and bad ranges."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from tests.test_cli import line, run


def test_report_prints_figures_in_each_format(tmp_path: Path) -> None:
    data = tmp_path / "m.jsonl"
    data.write_text("\n".join([line(1), line(2), line(3)]) + "\n")
    assert run(["ingest", str(data)], tmp_path).returncode == 0

    as_json = run(["report", "2026-11-22", "--format", "json"], tmp_path)
    assert as_json.returncode == 0, as_json.stderr
    figures = json.loads(as_json.stdout)
    assert figures["period"]["label"] == "2026-11-22"
    assert (figures["current"]["received"], figures["current"]["replied"]) == (3, 0)
    assert figures["previous"]["received"] == 0
    assert [d["received"] for d in figures["daily"]] == [3]

    as_csv = run(["report", "--since", "2026-11-22", "--format", "csv", "--network", "x"],
                 tmp_path)
    assert as_csv.returncode == 0, as_csv.stderr
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert sorted(r["external_id"] for r in rows) == ["1", "2", "3"]

    text = run(["report", "2026-11-22"], tmp_path)
    assert text.returncode == 0
    assert "Volume: 3 received" in text.stdout and "*" not in text.stdout

    empty = run(["report", "2026-11-01"], tmp_path)
    assert empty.stdout.startswith("No mentions were published in the period (2026-11-01")


def test_bad_range_is_a_usage_error(tmp_path: Path) -> None:
    result = run(["report", "last-week"], tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == ("mentiondesk: 'last-week' is not a period: use today, 7d, "
                                     "30d or YYYY-MM-DD..YYYY-MM-DD.")
    result = run(["report", "2026-11-05..2026-11-01"], tmp_path)
    assert (result.returncode, result.stderr.strip()) == (
        2, "mentiondesk: The range ends before it starts.")
