"""Talks to the Slack Web API for the bot; maps Slack's failures onto the connector errors.

Card messages carry message metadata naming their case, so a post whose answer was lost can be
found again (reconciled) instead of being posted twice.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.connectors.base import PermanentError, RateLimited, TransientError
from bot.slack.cards import Card

CARD_EVENT_TYPE = "mentiondesk_case"
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

    async def find_card(self, channel: str, case_id: int, limit: int = 200) -> str | None:
        """The ts of an existing card for `case_id`, from message metadata, if any."""
        data = await self.call(
            "conversations.history",
            form=True,
            channel=channel,
            limit=limit,
            include_all_metadata=True,
        )
        for message in data.get("messages", []):
            meta = message.get("metadata") or {}
            payload = meta.get("event_payload") or {}
            if meta.get("event_type") == CARD_EVENT_TYPE and payload.get("case_id") == case_id:
                return str(message["ts"])
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
