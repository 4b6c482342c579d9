"""One HTTP call for the X, Mastodon and Bluesky connectors, with failures mapped at the edge.

Services never see aiohttp: timeouts, resets and 5xx become `TransientError`, 429 becomes
`RateLimited` with the wait the network asked for, and other statuses come back to the
connector, which knows what a 4xx means on its network.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp

from bot.connectors.base import PermanentError, RateLimited, TransientError, is_http_url

DEFAULT_RETRY_AFTER = 60.0
NOT_JSON: Any = object()

RetryAfter = Callable[[Mapping[str, str]], float | None]


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


async def call(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    network: str,
    timeout_seconds: float,
    retry_after: RetryAfter,
    headers: Mapping[str, str] | None = None,
    params: Any = None,
    json_body: Any = None,
) -> Response:
    """Send one request; 429 and 5xx raise, every other status is returned with its JSON."""
    try:
        async with session.request(
            method,
            url,
            headers=dict(headers or {}),
            params=params,
            json=json_body,
            timeout=aiohttp.ClientTimeout(total=timeout_seconds),
        ) as response:
            raw = await response.read()
            status, response_headers = response.status, response.headers
    except TimeoutError as exc:
        raise TransientError(f"{network}: no answer within {timeout_seconds:g}s") from exc
    except aiohttp.ClientError as exc:
        raise TransientError(f"{network}: connection failed ({exc.__class__.__name__})") from exc
    if status == 429:
        wait = retry_after(response_headers)
        raise RateLimited(
            f"{network}: rate limited", DEFAULT_RETRY_AFTER if wait is None else wait
        )
    if status >= 500:
        raise TransientError(f"{network}: server error {status}")
    try:
        body = json.loads(raw) if raw.strip() else None
    except (ValueError, UnicodeDecodeError):
        body = NOT_JSON
    return Response(status=status, headers=response_headers, body=body)


def json_or_raise(response: Response, network: str) -> Any:
    """The body of a successful answer; a body that is not JSON is a passing glitch."""
    if response.body is NOT_JSON:
        raise TransientError(f"{network}: answer was not JSON (HTTP {response.status})")
    return response.body


def refuse(response: Response, network: str, action: str) -> PermanentError:
    """A one-line reason for a 4xx, from the network's own error fields.

    `action` names what was attempted ("posting the reply").
    """
    reason = error_reason(response.body)
    if response.status == 401:
        prefix = "credentials refused"
    elif response.status == 403:
        prefix = "not allowed"
    elif response.status == 404:
        prefix = "not found"
    else:
        prefix = f"refused (HTTP {response.status})"
    detail = f": {reason}" if reason else ""
    return PermanentError(f"{network}: {action}: {prefix}{detail}")


def error_reason(body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    for key in ("detail", "message", "error_description", "error", "title", "reason"):
        value = body.get(key)
        if isinstance(value, str) and value.strip():
            return " ".join(value.split())[:300]
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        return error_reason(errors[0])
    return ""


def wait_until_epoch(header: str) -> RetryAfter:
    """Reset given as epoch seconds (X's `x-rate-limit-reset`, Bluesky's `ratelimit-reset`)."""

    def retry_after(headers: Mapping[str, str]) -> float | None:
        value = headers.get(header)
        if value is None:
            return retry_after_header(headers)
        try:
            return max(1.0, float(value) - time.time())
        except ValueError:
            return retry_after_header(headers)

    return retry_after


def wait_until_iso(header: str) -> RetryAfter:
    """Reset given as an ISO-8601 timestamp (Mastodon's `X-RateLimit-Reset`)."""

    def retry_after(headers: Mapping[str, str]) -> float | None:
        value = headers.get(header)
        if value is None:
            return retry_after_header(headers)
        try:
            reset = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return retry_after_header(headers)
        if reset.tzinfo is None:
            reset = reset.replace(tzinfo=UTC)
        return max(1.0, (reset - datetime.now(UTC)).total_seconds())

    return retry_after


def url_problem(value: str | None, field: str = "base_url") -> str | None:
    """Why a configured URL cannot be used, or None when it can."""
    if value is None:
        return None
    if not is_http_url(value):
        return f"{field} must be an http(s) URL, not {value!r}"
    return None


def retry_after_header(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(1.0, float(value))
    except ValueError:
        return None
