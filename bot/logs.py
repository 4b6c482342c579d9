"""Logging set-up: one line per record, case id when known, tokens scrubbed."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_TOKEN = re.compile(r"xox[abposr]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+")
_CASE: ContextVar[int | None] = ContextVar("case_id", default=None)


@contextmanager
def case_context(case_id: int | None) -> Iterator[None]:
    """Every log line written inside (in this task) carries `case=<id>`."""
    token = _CASE.set(case_id)
    try:
        yield
    finally:
        _CASE.reset(token)


class _Scrub(logging.Filter):
    """Last line of defence: a token that slipped into a message is masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if _TOKEN.search(message):
            record.msg = _TOKEN.sub("xox…[redacted]", message)
            record.args = None
        if not hasattr(record, "case_id"):
            current = _CASE.get()
            record.case_id = "-" if current is None else current
        return True


def setup(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.addFilter(_Scrub())
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s case=%(case_id)s %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiohttp.access", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
