"""`/mentions report` and `/mentions export`: acknowledged at once, built afterwards.

The figures arrive through the command's response_url (ephemeral); the chart and CSV files
are uploaded to the requester's direct message with the bot, so team KPIs and the audit log
are never posted in a shared channel by accident. A chart that fails never blocks the text.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bot.charts import report_chart
from bot.domain.lifecycle import Actor
from bot.services.export import audit_csv, cases_csv
from bot.services.reports import Period, RangeError, build_report, parse_report_args
from bot.settings import SlaConfig
from bot.slack.files import upload_file
from bot.slack.kpi_text import report_text
from handlers.common import explain, user_id
from handlers.deps import Deps

log = logging.getLogger(__name__)
Respond = Callable[..., Awaitable[Any]]

USAGE = {
    "report": "Usage: `/mentions report [today|7d|30d|YYYY-MM-DD..YYYY-MM-DD] [network]`, "
              "e.g. `/mentions report 30d mastodon`",
    "export": "Usage: `/mentions export [audit] [today|7d|30d|YYYY-MM-DD..YYYY-MM-DD]`, "
              "e.g. `/mentions export 2026-11-01..2026-11-30`",
}


@dataclass(frozen=True, slots=True)
class Deferred:
    """An answer given in two steps: `ack_text` now, `run` after the acknowledgement."""

    ack_text: str
    run: Callable[[Respond], Awaitable[None]]


def sla_config(deps: Deps) -> SlaConfig:
    config = deps.extras.get("sla")
    return config if isinstance(config, SlaConfig) else SlaConfig()


async def prepare(deps: Deps, body: dict[str, Any], actor: Actor, sub: str, rest: str
                  ) -> str | Deferred:
    """Check the arguments now (bad input answers with usage at once), work later."""
    config = sla_config(deps)
    words = rest.split()
    audit = sub == "export" and bool(words) and words[0].lower() == "audit"
    if audit:
        words = words[1:]
    try:
        period, network = parse_report_args(words, deps.services.clock(), config.timezone)
    except RangeError as exc:
        return f"{exc}\n{USAGE[sub]}"
    user = user_id(body) or actor.user_id
    if sub == "report":
        async def run_report(respond: Respond) -> None:
            await _report(deps, user, period, network, respond)

        return Deferred(f"Building the report for {period.label}…", run_report)
    if network and audit:
        return f"The audit log is exported whole, without a network.\n{USAGE[sub]}"

    async def run_export(respond: Respond) -> None:
        await _export(deps, user, period, network, audit, respond)

    return Deferred(f"Preparing the {'audit log' if audit else 'case'} export for "
                    f"{period.label}…", run_export)


async def _dm(deps: Deps, user: str) -> str:
    data = await deps.notifier.call("conversations.open", users=user)
    return str(data["channel"]["id"])


async def _upload(deps: Deps, user: str, filename: str, content: bytes, title: str,
                  comment: str) -> None:
    await upload_file(deps.notifier, api_url=str(deps.extras.get("slack_api_url", "")),
                      channel=await _dm(deps, user), filename=filename, content=content,
                      title=title, initial_comment=comment)


async def _report(deps: Deps, user: str, period: Period, network: str | None,
                  respond: Respond) -> None:
    config = sla_config(deps)
    report = await build_report(deps.services, period, network,
                                sla_target=config.policy().target("normal"))
    await respond(text=report_text(report), response_type="ephemeral", replace_original=False)
    if report.empty:
        return
    try:
        png = await asyncio.to_thread(report_chart, report)
        await _upload(deps, user, f"mentiondesk-report-{_slug(period)}.png", png,
                      f"mentiondesk report — {period.label}", "The report's chart.")
    except Exception as exc:
        log.warning("report chart not delivered: %s", exc.__class__.__name__)
        await respond(text="The chart could not be made or uploaded; the figures above are "
                           "complete.", response_type="ephemeral", replace_original=False)


async def _export(deps: Deps, user: str, period: Period, network: str | None, audit: bool,
                  respond: Respond) -> None:
    if audit:
        content = await audit_csv(deps.services, period)
        kind = "audit log"
    else:
        content = await cases_csv(deps.services, period, network)
        kind = "cases"
    rows = content.count("\n") - 1
    if rows <= 0:
        await respond(text=f"Nothing to export: no {kind} in the period ({period.label}).",
                      response_type="ephemeral", replace_original=False)
        return
    name = f"mentiondesk-{'audit' if audit else 'cases'}-{_slug(period)}.csv"
    await _upload(deps, user, name, content.encode("utf-8"), f"mentiondesk {kind} — "
                  f"{period.label}", f"{rows} rows ({kind}, {period.label}).")
    await respond(text=f"Export of {rows} {kind} rows sent to you in a direct message.",
                  response_type="ephemeral", replace_original=False)


def _slug(period: Period) -> str:
    start = period.start.astimezone(period.zone).date()
    end = period.end.astimezone(period.zone).date()
    return f"{start.isoformat()}_{end.isoformat()}"


async def run_deferred(deferred: Deferred, respond: Respond) -> None:
    try:
        await deferred.run(respond)
    except Exception as exc:
        log.warning("deferred command failed: %s", exc.__class__.__name__)
        await respond(text=explain(exc), response_type="ephemeral", replace_original=False)
