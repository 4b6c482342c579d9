"""Refused requests go into the audit log too: every decision the bot takes is on record.

A refusal is about a request, not a step in a case's history, and the case it names may be
forged or missing; so the event carries no `case_id` foreign key and keeps the id it was
given in its payload instead.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.services.context import Services

log = logging.getLogger(__name__)

REFUSED = "refused"
_FIELD = 300


async def record_refusal(
    services: Services,
    *,
    actor_id: str,
    operation: str,
    reason: str,
    case_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Write one `refused` audit event; a failure to write is logged, never raised, so the
    person still hears why nothing happened."""
    payload = {"operation": operation[:_FIELD], "case_id": case_id, "reason": reason[:_FIELD],
               **{k: (str(v)[:_FIELD] if v is not None else None)
                  for k, v in (detail or {}).items()}}
    try:
        async with services.db.transaction() as tx:
            await tx.audit(case_id=None, actor=(actor_id or "unknown")[:64], action=REFUSED,
                           at=services.clock(), payload=payload)
    except Exception as exc:
        log.warning("could not record a refusal of %s: %s", operation[:_FIELD],
                    exc.__class__.__name__)
