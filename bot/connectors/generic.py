"""The generic source: mentions arrive by signed webhook, replies leave by signed POST.

Any site without its own connector (a review site, a forum, a shop's contact form) can feed
mentions in the CONTRACT mention format and, if it offers a `reply_url`, receive approved
replies. Both directions carry `X-Mentiondesk-Signature: sha256=<hex>` over the raw body.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp

from bot.connectors.base import (
    Page,
    PermanentError,
    PostedReply,
    RateLimited,
    ReplyLimits,
    ReplyRequest,
    TransientError,
)
from bot.connectors.signing import SIGNATURE_HEADER, sign
from bot.domain.length import counter_for
from bot.domain.mention import Mention, MentionError, mention_from_dict

MAX_MENTIONS_PER_REQUEST = 1000
DEFAULT_RETRY_AFTER = 60.0
IDEMPOTENCY_HEADER = "Idempotency-Key"
_REASON_KEYS = ("error", "message", "reason", "detail")
_MAX_REASON = 200


class ReplyRejected(PermanentError):
    """The reply endpoint answered 4xx; `status` and `reason` say why, for the agent to read."""

    def __init__(self, message: str, *, status: int, reason: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


# ---------------------------------------------------------------------------------------------
# Inbound


def parse_webhook_body(raw: bytes) -> list[dict[str, Any] | MentionError]:
    """The body's mention objects, each already checked by `mention_from_dict`.

    One object or a JSON array of them. A body that is not JSON (or not UTF-8, or neither an
    object nor an array, or too long) raises `MentionError`; a bad element becomes a
    `MentionError` in its place, so one bad record does not refuse the rest.
    """
    results: list[dict[str, Any] | MentionError] = []
    for item in _items(raw):
        if isinstance(item, MentionError):
            results.append(item)
        else:
            results.append(item[0])
    return results


def parse_webhook_mentions(raw: bytes) -> list[Mention | MentionError]:
    """Like `parse_webhook_body`, but each good element comes back as a `Mention`."""
    results: list[Mention | MentionError] = []
    for item in _items(raw):
        results.append(item if isinstance(item, MentionError) else item[1])
    return results


def _items(raw: bytes) -> list[tuple[dict[str, Any], Mention] | MentionError]:
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise MentionError("the body is not UTF-8 text") from exc
    except json.JSONDecodeError as exc:
        raise MentionError(
            f"the body is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from exc
    if isinstance(data, dict):
        elements: list[Any] = [data]
    elif isinstance(data, list):
        elements = data
    else:
        raise MentionError("the body must be a mention object or a JSON array of them")
    if len(elements) > MAX_MENTIONS_PER_REQUEST:
        raise MentionError(
            f"the body holds {len(elements)} mentions; send at most "
            f"{MAX_MENTIONS_PER_REQUEST} per request"
        )
    items: list[tuple[dict[str, Any], Mention] | MentionError] = []
    for index, element in enumerate(elements):
        try:
            items.append((element, mention_from_dict(element)))
        except MentionError as exc:
            where = f"item {index}: " if isinstance(data, list) else ""
            items.append(MentionError(f"{where}{exc}"))
    return items


# ---------------------------------------------------------------------------------------------
# Outbound


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    headers: Any
    body: bytes


class GenericConnector:
    """A webhook-fed source; replies go to `reply_url` when one is configured."""

    def __init__(
        self,
        name: str,
        *,
        session: aiohttp.ClientSession,
        reply_url: str | None,
        secret: bytes,
        timeout: float = 10,
        max_length: int | None = None,
    ) -> None:
        self.name = name
        self.can_reply = reply_url is not None
        self._session = session
        self._reply_url = reply_url
        self._secret = secret
        self._timeout = timeout
        self._limits = counter_for("generic", max_length)

    async def fetch(self, cursor: str | None) -> Page:
        """Nothing to poll: mentions arrive on `POST /webhooks/<name>`."""
        return Page(mentions=(), cursor=cursor, more=False)

    def reply_limits(self) -> ReplyLimits:
        return self._limits

    def reply_allowed(self, mention: Mention) -> tuple[bool, str]:
        if self._reply_url is None:
            return False, (
                f"source {self.name!r} has no reply_url, so replies must be posted by hand"
            )
        return True, ""

    def reply_payload(self, request: ReplyRequest) -> bytes:
        """The exact bytes POSTed (and signed) for `request`."""
        payload = {
            "case_id": request.case_id,
            "source": request.mention.source,
            "external_id": request.mention.external_id,
            "in_reply_to_url": request.mention.url,
            "text": request.text,
        }
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    async def post_reply(self, request: ReplyRequest) -> PostedReply:
        if self._reply_url is None:
            raise PermanentError(f"source {self.name!r} has no reply_url to post replies to")
        body = self.reply_payload(request)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            SIGNATURE_HEADER: sign(self._secret, body),
            IDEMPOTENCY_HEADER: request.idempotency_key,
        }
        answer = await self._send(self._reply_url, body, headers)
        if 200 <= answer.status < 300:
            return _posted_reply(answer.body, request.idempotency_key)
        raise self._error_for(answer)

    async def _send(self, url: str, body: bytes, headers: dict[str, str]) -> _Answer:
        try:
            async with self._session.post(
                url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                allow_redirects=False,
            ) as response:
                return _Answer(response.status, response.headers, await response.read())
        except TimeoutError as exc:
            raise TransientError(
                f"{self.name}: the reply endpoint did not answer within {self._timeout:g}s"
            ) from exc
        except aiohttp.ClientError as exc:
            raise TransientError(
                f"{self.name}: could not reach the reply endpoint ({exc.__class__.__name__})"
            ) from exc

    def _error_for(self, answer: _Answer) -> Exception:
        status = answer.status
        wait = retry_after_seconds(answer.headers.get("Retry-After"))
        if status == 429 or (status == 503 and wait is not None):
            return RateLimited(
                f"{self.name}: the reply endpoint asked us to slow down (HTTP {status})",
                DEFAULT_RETRY_AFTER if wait is None else wait,
            )
        if status == 408 or status >= 500:
            return TransientError(f"{self.name}: the reply endpoint failed (HTTP {status})")
        reason = _reason(answer.body)
        message = f"{self.name}: the reply endpoint refused the reply (HTTP {status})"
        return ReplyRejected(
            f"{message}: {reason}" if reason else message, status=status, reason=reason
        )


def _posted_reply(body: bytes, idempotency_key: str) -> PostedReply:
    try:
        data = json.loads(body) if body.strip() else None
    except (ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict):
        return PostedReply(external_id=idempotency_key)
    raw_id = data.get("id")
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int) or str(raw_id) == "":
        external_id = idempotency_key
    else:
        external_id = str(raw_id)
    url = data.get("url")
    return PostedReply(external_id=external_id, url=url if isinstance(url, str) else "")


def _reason(body: bytes) -> str:
    """A short, single-line reason from an error body (JSON field or the text itself)."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text) if text else None
    except ValueError:
        data = None
    if isinstance(data, dict):
        for key in _REASON_KEYS:
            value = data.get(key)
            if isinstance(value, str) and value.strip():
                text = value
                break
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                text = value["message"]
                break
    line = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return line if len(line) <= _MAX_REASON else line[: _MAX_REASON - 1] + "…"


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta-seconds or an HTTP date."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)
