"""What every benchmark shares: the run profile, figures with their targets and references,
the summary (median of the runs, min and max) and the table and JSON they end up in."""

from __future__ import annotations

import contextlib
import math
import os
import platform
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCHMARK_IDS = tuple(f"P{n}" for n in range(1, 11))


@dataclass(frozen=True, slots=True)
class Profile:
    """How long and how large: `smoke` proves the suite works, `quick` gives figures in
    minutes, `full` follows the issue's durations."""

    name: str
    repeats: int

    def pick(self, smoke: Any, quick: Any, full: Any) -> Any:
        return {"smoke": smoke, "quick": quick, "full": full}[self.name]

    @property
    def judged(self) -> bool:
        """Smoke runs are too short to say anything about a target."""
        return self.name != "smoke"


PROFILES = {
    "smoke": Profile("smoke", repeats=1),
    "quick": Profile("quick", repeats=3),
    "full": Profile("full", repeats=3),
}


@dataclass(frozen=True, slots=True)
class Target:
    """`value op limit`, e.g. p99 <= 50 ms, as the issue states it."""

    op: str
    limit: float

    def met(self, value: float) -> bool:
        return value <= self.limit if self.op == "<=" else value >= self.limit

    def verdict(self, value: float) -> str:
        if self.met(value):
            return "met"
        if self.op == "<=":
            if self.limit == 0:
                return f"missed ({value:g} > 0)"
            return f"missed ({value / self.limit:.1f}x the limit)"
        return f"missed ({value / self.limit:.1%} of target)" if self.limit else "missed"

    def text(self) -> str:
        return f"{'≤' if self.op == '<=' else '≥'} {number(self.limit)}"


def at_most(limit: float) -> Target:
    return Target("<=", limit)


def at_least(limit: float) -> Target:
    return Target(">=", limit)


@dataclass(slots=True)
class Figure:
    """One measured quantity across the runs, with the reference measured beside it."""

    bench: str
    name: str
    unit: str
    target: Target | None = None
    reference: str | None = None
    runs: list[float] = field(default_factory=list)
    reference_runs: list[float] = field(default_factory=list)
    pending: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def median(self) -> float | None:
        return statistics.median(self.runs) if self.runs else None

    @property
    def reference_median(self) -> float | None:
        return statistics.median(self.reference_runs) if self.reference_runs else None

    @property
    def ratio(self) -> float | None:
        value, ref = self.median, self.reference_median
        if value is None or ref is None or ref == 0:
            return None
        return value / ref

    def status(self, judged: bool) -> str:
        value = self.median
        if self.pending:
            return "feature pending"
        if value is None:
            return "no data"
        if self.target is None:
            return "-"
        if not judged:
            return "not judged (smoke)"
        return self.target.verdict(value)

    def as_json(self, judged: bool) -> dict[str, Any]:
        return {
            "bench": self.bench, "name": self.name, "unit": self.unit,
            "median": self.median, "min": min(self.runs) if self.runs else None,
            "max": max(self.runs) if self.runs else None, "runs": self.runs,
            "target": None if self.target is None else
            {"op": self.target.op, "limit": self.target.limit},
            "reference": self.reference, "reference_median": self.reference_median,
            "reference_runs": self.reference_runs, "ratio": self.ratio,
            "status": self.status(judged), "pending": self.pending, "notes": self.notes,
        }


class Recorder:
    """Collects one benchmark's figures run after run (created on first use, in order)."""

    def __init__(self, bench: str) -> None:
        self.bench = bench
        self.figures: dict[str, Figure] = {}
        self.notes: list[str] = []

    def figure(self, name: str, unit: str, *, target: Target | None = None,
               reference: str | None = None) -> Figure:
        if name not in self.figures:
            self.figures[name] = Figure(self.bench, name, unit, target, reference)
        return self.figures[name]

    def add(self, name: str, unit: str, value: float, *, target: Target | None = None,
            reference: str | None = None, ref_value: float | None = None) -> Figure:
        fig = self.figure(name, unit, target=target, reference=reference)
        fig.runs.append(float(value))
        if ref_value is not None:
            fig.reference_runs.append(float(ref_value))
        return fig

    def pending(self, why: str, *names: str) -> None:
        """Mark figures whose feature is not in the product yet (all when no names)."""
        for fig in self.figures.values():
            if not names or fig.name in names:
                fig.pending = why

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100): a value that was actually observed."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def machine() -> dict[str, Any]:
    """Cores, memory and load, read where Linux keeps them."""
    info: dict[str, Any] = {"cores": os.cpu_count(), "python": platform.python_version(),
                            "platform": platform.platform()}
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_mb"] = int(line.split()[1]) // 1024
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError):
        info["loadavg"] = list(os.getloadavg())
    return info


def number(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


@dataclass(slots=True)
class Outcome:
    """One benchmark's result: its figures, or the error that stopped it."""

    bench: str
    title: str
    figures: list[Figure]
    notes: list[str]
    seconds: float
    error: str | None = None
    load: tuple[float, float] = (0.0, 0.0)
    """1-minute load average when the benchmark started and ended (a shared machine shows)."""


def table(outcomes: Sequence[Outcome], judged: bool) -> str:
    """Plain-text table: one line per figure, reference and ratio beside it."""
    head = ("id", "figure", "median", "min", "max", "unit", "reference", "ref", "ratio",
            "target", "status")
    rows: list[tuple[str, ...]] = [head]
    for outcome in outcomes:
        if outcome.error:
            rows.append((outcome.bench, outcome.title, "-", "-", "-", "", "", "", "", "",
                         f"error: {outcome.error[:120]}"))
        for fig in outcome.figures:
            runs = fig.runs
            rows.append((
                outcome.bench, fig.name, number(fig.median),
                number(min(runs)) if runs else "-", number(max(runs)) if runs else "-",
                fig.unit, fig.reference or "", number(fig.reference_median),
                f"{fig.ratio:.2f}x" if fig.ratio is not None else "",
                fig.target.text() if fig.target else "", fig.status(judged),
            ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
             for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def document(outcomes: Sequence[Outcome], profile: Profile, command: str,
             began: datetime, load_before: list[float] | None = None) -> dict[str, Any]:
    """The JSON written to bench/results/: everything the table shows, plus every run."""
    return {
        "date": began.astimezone(UTC).isoformat(timespec="seconds"),
        "profile": profile.name,
        "repeats": profile.repeats,
        "command": command,
        "machine": machine(),
        "loadavg_before": load_before,
        "benchmarks": {
            o.bench: {
                "title": o.title,
                "seconds": round(o.seconds, 1),
                "loadavg_1min": list(o.load),
                "error": o.error,
                "notes": o.notes,
                "figures": [f.as_json(profile.judged) for f in o.figures],
            }
            for o in outcomes
        },
    }
