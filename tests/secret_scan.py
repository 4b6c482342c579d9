"""Every log record of the whole test run is scanned for tokens and secrets.

A handler on the root logger (at INFO, where production runs) sees each record before any
output filter could scrub it; a hit fails the run at the end, naming the logger."""

from __future__ import annotations

import logging
import re

import pytest

# Token shapes plus the literal secrets the suite's stacks use (tests/stack.py and friends).
SECRET = re.compile(r"xox[abpre]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+|test-signing-secret|"
                    r"webhook-secret|sandbox-signing-secret")


class SecretScan(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.records = 0
        self.hits: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records += 1
        try:
            text = self.format(record)
        except Exception:  # a record that cannot format is not ours to judge here
            return
        found = SECRET.search(text)
        if found is not None:
            self.hits.append(f"{record.name}: …{found.group()[:12]}…")


SCAN = SecretScan()


def install() -> None:
    root = logging.getLogger()
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    root.addHandler(SCAN)


def hand_to_controller(config: pytest.Config) -> bool:
    """In an xdist worker: pass this worker's figures to the controller (which reports for
    the whole run). False when this process is not a worker."""
    output = getattr(config, "workeroutput", None)
    if output is None:
        return False
    output["secret_scan"] = {"records": SCAN.records, "hits": SCAN.hits}
    return True


def take_from_worker(output: dict[str, object]) -> None:
    figures = output.get("secret_scan")
    if isinstance(figures, dict):
        SCAN.records += int(figures.get("records", 0))
        SCAN.hits.extend(str(hit) for hit in figures.get("hits", []))


def report(session: pytest.Session) -> None:
    if hand_to_controller(session.config):
        return
    print(f"\n[security] log scan: {SCAN.records} records, {len(SCAN.hits)} with a secret")
    if SCAN.hits:
        for hit in SCAN.hits[:20]:
            print(f"[security] secret in a log line: {hit}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
