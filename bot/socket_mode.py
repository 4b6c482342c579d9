"""Socket Mode: Slack requests arrive over a WebSocket the bot opens with `SLACK_APP_TOKEN`.

Useful behind a firewall with no public URL. The same Bolt app handles the requests; the
only differences from HTTP mode are here: no signature (the app-token connection vouches for
each envelope) and the Events API's `event_id` dedup, which HTTP mode does before Bolt too.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt.adapter.socket_mode.internals import build_headers
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.wiring import Components

log = logging.getLogger(__name__)


class SocketModeGateway:
    """Owns the Socket Mode connection and feeds its envelopes to the Bolt app."""

    def __init__(self, components: Components, app_token: str) -> None:
        self.components = components
        web_client = AsyncWebClient(token=app_token,
                                    base_url=components.settings.env.slack_api_url)
        self.client = SocketModeClient(app_token=app_token, web_client=web_client,
                                       auto_reconnect_enabled=True, ping_interval=10)
        self.client.socket_mode_request_listeners.append(self._on_request)

    async def start(self) -> None:
        await self.client.connect()
        log.info("connected to Slack in Socket Mode")

    async def close(self) -> None:
        await self.client.close()

    async def _on_request(self, client: AsyncBaseSocketModeClient,
                          request: SocketModeRequest) -> None:
        try:
            if request.type == "events_api" and not await self._first_delivery(request):
                await client.send_socket_mode_response(
                    SocketModeResponse(envelope_id=request.envelope_id))
                return
            bolt_request = AsyncBoltRequest(mode="socket_mode", body=request.payload,
                                            headers=build_headers(request))
            response = await self.components.bolt.async_dispatch(bolt_request)
        except Exception:
            # Not acknowledged: Slack redelivers events, and the user sees an error for a
            # click, which is better than pretending it worked.
            log.exception("Socket Mode request %s failed", request.type)
            return
        if response.status != 200:
            log.warning("Socket Mode request %s answered %s", request.type, response.status)
            return
        await client.send_socket_mode_response(
            SocketModeResponse(envelope_id=request.envelope_id, payload=_payload(response)))

    async def _first_delivery(self, request: SocketModeRequest) -> bool:
        payload = request.payload
        if not isinstance(payload, dict) or payload.get("type") != "event_callback":
            return True
        return await self.components.intake.first_delivery(payload)


def _payload(response: Any) -> dict[str, Any] | None:
    """Bolt's response body as the ack payload (a view_submission's response_action, say)."""
    if not response.body:
        return None
    content_type = (response.headers.get("content-type") or [""])[0]
    if content_type.startswith("application/json"):
        body = json.loads(response.body)
        return body if isinstance(body, dict) else None
    return {"text": response.body}
