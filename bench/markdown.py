"""`python -m bench.markdown [FILE] [--short]`: a results JSON as a Markdown table, for
bench/README.md (full) and the main README (`--short`: one line per target)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bench.core import number

DEFAULT = Path(__file__).resolve().parent / "results" / "latest.json"


def _target(figure: dict[str, Any]) -> str:
    target = figure.get("target")
    if not target:
        return ""
    return f"{'≤' if target['op'] == '<=' else '≥'} {number(target['limit'])}"


def _value(figure: dict[str, Any]) -> str:
    median, low, high = figure["median"], figure["min"], figure["max"]
    if median is None:
        return "-"
    spread = "" if low == high else f" ({number(low)}–{number(high)})"
    return f"{number(median)}{spread}"


def render(document: dict[str, Any], short: bool = False) -> str:
    if short:
        lines = ["| id | figure | median | target | status |", "|---|---|---|---|---|"]
    else:
        lines = ["| id | figure | median (min–max) | unit | reference | ratio | target | status |",
                 "|---|---|---|---|---|---|---|---|"]
    for bench, result in document["benchmarks"].items():
        if result.get("error"):
            error = str(result["error"]).splitlines()[0][:160].replace("|", "/")
            lines.append(f"| {bench} | {result['title']} | error: {error} |"
                         + (" | |" if short else " | | | | |"))
        for figure in result["figures"]:
            if short and not figure.get("target"):
                continue
            status = figure["status"]
            if figure.get("pending"):
                status = f"feature pending: {figure['pending']}"
            if short:
                lines.append(f"| {bench} | {figure['name']} | {number(figure['median'])} "
                             f"{figure['unit']} | {_target(figure)} | {status} |")
                continue
            ref = ""
            if figure.get("reference"):
                ref = f"{figure['reference']}: {number(figure['reference_median'])}"
            ratio = f"{figure['ratio']:.2f}x" if figure.get("ratio") is not None else ""
            lines.append(f"| {bench} | {figure['name']} | {_value(figure)} | {figure['unit']} "
                         f"| {ref} | {ratio} | {_target(figure)} | {status} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.markdown")
    parser.add_argument("file", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--short", action="store_true")
    args = parser.parse_args()
    print(render(json.loads(args.file.read_text(encoding="utf-8")), short=args.short))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
