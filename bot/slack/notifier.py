"""Talks to the Slack Web API for the bot; maps Slack's failures onto the connector errors.

Card messages carry message metadata naming their case, so a post whose answer was lost can be
found again (reconciled) instead of being posted twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.connectors.base import PermanentError, RateLimited, TransientError
from bot.slack.cards import Card

CARD_EVENT_TYPE = "mentiondesk_case"
HISTORY_PAGE = 200  # Slack's recommended page size for conversations.history
HISTORY_MAX_PAGES = 50
CLOCK_SKEW = timedelta(minutes=5)  # our clock against Slack's message timestamps
_TRANSIENT_ERRORS = {"internal_error", "fatal_error", "service_unavailable", "request_timeout"}


def _map_error(method: str, exc: Exception) -> Exception:
    if isinstance(exc, SlackApiError):
        response = exc.response
        status = getattr(response, "status_code", 200)
        error = response.get("error", "unknown_error") if response is not None else "unknown"
        if status == 429 or error == "ratelimited":
            headers = getattr(response, "headers", {}) or {}
            retry_after = float(headers.get("Retry-After", headers.get("retry-after", 1)) or 1)
            return RateLimited(f"{method}: rate limited", retry_after)
        if status >= 500 or error in _TRANSIENT_ERRORS:
            return TransientError(f"{method}: {error} (HTTP {status})")
        return PermanentError(f"{method}: {error}")
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ClientError | OSError):
        return TransientError(f"{method}: {exc.__class__.__name__}")
    return exc


class SlackNotifier:
    """The bot's outgoing Slack calls."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    async def call(self, method: str, *, form: bool = False, **kwargs: Any) -> dict[str, Any]:
        """POST `method`; read methods that Slack refuses as JSON go as a form (`form=True`)."""
        try:
            if form:
                response = await self.client.api_call(method, data=kwargs)
            else:
                response = await self.client.api_call(method, json=kwargs)
        except Exception as exc:
            mapped = _map_error(method, exc)
            if mapped is exc:
                raise
            raise mapped from exc
        return dict(response.data) if isinstance(response.data, dict) else {}

    async def post_card(self, channel: str, card: Card, case_id: int) -> str:
        data = await self.call(
            "chat.postMessage",
            channel=channel,
            text=card.text,
            blocks=card.blocks,
            unfurl_links=False,
            unfurl_media=False,
            metadata={"event_type": CARD_EVENT_TYPE, "event_payload": {"case_id": case_id}},
        )
        return str(data["ts"])

    async def find_card(self, channel: str, case_id: int,
                        since: datetime | None = None) -> str | None:
        """The ts of an existing card for `case_id`, from message metadata, if any."""
        return await self.find_by_metadata(channel, CARD_EVENT_TYPE,
                                           lambda payload: payload.get("case_id") == case_id,
                                           since=since)

    async def find_by_metadata(
        self, channel: str, event_type: str, matches: Callable[[dict[str, Any]], bool], *,
        since: datetime | None = None,
    ) -> str | None:
        """Pages back through the channel's history (to `since`, less a margin for clock
        skew) for a message of ours whose metadata matches. Paging matters: a busy channel
        can take hundreds of messages while a lost post waits for its retry."""
        args: dict[str, Any] = {"channel": channel, "limit": HISTORY_PAGE,
                                "include_all_metadata": True}
        if since is not None:
            args["oldest"] = f"{(since - CLOCK_SKEW).timestamp():.6f}"
        for _ in range(HISTORY_MAX_PAGES):
            data = await self.call("conversations.history", form=True, **args)
            for message in data.get("messages", []):
                meta = message.get("metadata") or {}
                if meta.get("event_type") == event_type and matches(
                        meta.get("event_payload") or {}):
                    return str(message["ts"])
            cursor = (data.get("response_metadata") or {}).get("next_cursor")
            if not data.get("has_more") or not cursor:
                return None
            args["cursor"] = cursor
        return None

    async def update_card(self, channel: str, ts: str, card: Card) -> None:
        await self.call("chat.update", channel=channel, ts=ts, text=card.text, blocks=card.blocks)

    async def post_message(
        self,
        channel: str,
        text: str,
        *,
        blocks: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
    ) -> str:
        kwargs: dict[str, Any] = {"channel": channel, "text": text, "unfurl_links": False,
                                  "unfurl_media": False}
        if blocks is not None:
            kwargs["blocks"] = blocks
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
        data = await self.call("chat.postMessage", **kwargs)
        return str(data["ts"])

    async def update_message(
        self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]] | None = None
    ) -> None:
        kwargs: dict[str, Any] = {"channel": channel, "ts": ts, "text": text}
        if blocks is not None:
            kwargs["blocks"] = blocks
        await self.call("chat.update", **kwargs)

    async def ephemeral(self, channel: str, user: str, text: str) -> None:
        await self.call("chat.postEphemeral", channel=channel, user=user, text=text)

    async def open_view(self, trigger_id: str, view: dict[str, Any]) -> None:
        await self.call("views.open", trigger_id=trigger_id, view=view)

    async def usergroup_members(self, usergroup: str) -> list[str]:
        data = await self.call("usergroups.users.list", form=True, usergroup=usergroup)
        return [str(u) for u in data.get("users", [])]
