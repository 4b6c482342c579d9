"""`mentiondesk report`: the figures of `/mentions report`, printed as text, CSV or JSON.

`--format csv` prints the case export (one row per case), like `/mentions export`.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import TextIO

from bot.services.context import Services
from bot.services.export import cases_csv
from bot.services.reports import RangeError, build_report, parse_period, parse_report_args
from bot.settings import Settings
from bot.slack.kpi_text import report_text
from db.engine import make_engine
from db.migrate import upgrade
from db.store import Database


class ReportUsageError(ValueError):
    pass


def run_report(settings: Settings, period_text: str, network: str | None, fmt: str,
               out: TextIO = sys.stdout) -> int:
    return asyncio.run(_run(settings, period_text, network, fmt, out))


async def _run(settings: Settings, period_text: str, network: str | None, fmt: str,
               out: TextIO) -> int:
    engine = make_engine(settings.env.database_url)
    db = Database(engine)
    try:
        await upgrade(engine)
        services = Services(db=db)
        sla = settings.file.sla
        try:
            period = parse_period(period_text, services.clock(), sla.timezone)
            if network is not None:
                network = parse_report_args([network], services.clock(), sla.timezone)[1]
        except RangeError as exc:
            raise ReportUsageError(str(exc)) from None
        if fmt == "csv":
            out.write(await cases_csv(services, period, network))
            return 0
        report = await build_report(services, period, network,
                                    sla_target=sla.policy().target("normal"))
        if fmt == "json":
            out.write(json.dumps(report.as_json(), indent=2) + "\n")
        else:
            out.write(report_text(report, md=False) + "\n")
        return 0
    finally:
        await db.dispose()
