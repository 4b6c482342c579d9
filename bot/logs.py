"""Logging set-up: one record a line (JSON for log shippers, text for a terminal), the case
id on every line written while a case is being worked, tokens scrubbed."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import IO, Literal

from pythonjsonlogger.json import JsonFormatter

LogFormat = Literal["auto", "json", "text"]

_TOKEN = re.compile(r"xox[abposr]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+")
_CASE: ContextVar[int | None] = ContextVar("case_id", default=None)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s case=%(case_id)s %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(case_id)s %(message)s"


@contextmanager
def case_context(case_id: int | None) -> Iterator[None]:
    """Every log line written inside (in this task and the tasks it starts) carries the
    case id."""
    token = _CASE.set(case_id)
    try:
        yield
    finally:
        _CASE.reset(token)


def current_case() -> int | None:
    return _CASE.get()


class _Scrub(logging.Filter):
    """Last line of defence: a token that slipped into a message is masked. Also stamps
    the current case id on the record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if _TOKEN.search(message):
            record.msg = _TOKEN.sub("xox…[redacted]", message)
            record.args = None
        if not hasattr(record, "case_id"):
            record.case_id = _CASE.get()
        return True


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, "case_id", None) is None:
            record.case_id = "-"
            try:
                return super().format(record)
            finally:
                record.case_id = None
        return super().format(record)


def formatter(fmt: Literal["json", "text"]) -> logging.Formatter:
    if fmt == "json":
        return JsonFormatter(JSON_FIELDS, rename_fields={"asctime": "time",
                                                         "levelname": "level",
                                                         "name": "logger"},
                             timestamp=False)
    return _TextFormatter(TEXT_FORMAT)


def resolve_format(fmt: LogFormat, stream: IO[str]) -> Literal["json", "text"]:
    """`auto`: text on a terminal (a person reads it), JSON otherwise (a log shipper does)."""
    if fmt != "auto":
        return fmt
    isatty = getattr(stream, "isatty", None)
    return "text" if callable(isatty) and isatty() else "json"


def setup(level: str = "INFO", fmt: LogFormat = "auto", stream: IO[str] | None = None) -> None:
    out = stream if stream is not None else sys.stderr
    handler = logging.StreamHandler(out)
    handler.addFilter(_Scrub())
    handler.setFormatter(formatter(resolve_format(fmt, out)))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiohttp.access", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
