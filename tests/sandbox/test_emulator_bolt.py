"""Side B: a real Bolt app accepts the emulator's signed requests and payload shapes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.sandbox import Signing, SlackEmulator
from tests.loopback import serving

CARD = [
    {"type": "section", "text": {"type": "mrkdwn", "text": "New mention"}},
    {"type": "actions", "block_id": "case", "elements": [
        {"type": "button", "action_id": "mention.claim", "value": "case:7",
         "text": {"type": "plain_text", "text": "Claim"}},
    ]},
]

DRAFT_MODAL = {
    "type": "modal",
    "callback_id": "draft",
    "private_metadata": "case:7",
    "title": {"type": "plain_text", "text": "Draft reply"},
    "submit": {"type": "plain_text", "text": "Save"},
    "blocks": [
        {"type": "input", "block_id": "reply",
         "label": {"type": "plain_text", "text": "Reply"},
         "element": {"type": "plain_text_input", "action_id": "text"}},
        {"type": "input", "block_id": "tone", "optional": True,
         "label": {"type": "plain_text", "text": "Template"},
         "dispatch_action": True,
         "element": {"type": "static_select", "action_id": "template",
                     "placeholder": {"type": "plain_text", "text": "Pick"},
                     "options": [
                         {"text": {"type": "plain_text", "text": "Apology"}, "value": "apology"},
                         {"text": {"type": "plain_text", "text": "Thanks"}, "value": "thanks"},
                     ]}},
        {"type": "actions", "block_id": "more", "elements": [
            {"type": "button", "action_id": "draft.preview", "value": "preview",
             "text": {"type": "plain_text", "text": "Preview"}}]},
    ],
}


class Seen(list[dict[str, Any]]):
    """Bodies the Bolt listeners received, and the HTTP statuses their respond() got."""

    def __init__(self) -> None:
        super().__init__()
        self.statuses: list[int] = []


def build_bolt(emulator: SlackEmulator, seen: Seen) -> AsyncApp:
    app = AsyncApp(
        client=AsyncWebClient(token=emulator.bot_token, base_url=emulator.api_url),
        signing_secret=emulator.signing_secret,
        process_before_response=True,
    )

    @app.command("/mentions")
    async def command(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient,
                      respond: AsyncRespond) -> None:
        await ack(f"working on `{body['text']}`")
        seen.append(body)
        if body["text"] == "draft":
            await client.views_open(trigger_id=body["trigger_id"], view=DRAFT_MODAL)
        await respond(text="done", response_type="in_channel")

    @app.action("mention.claim")
    async def claim(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        seen.append(body)
        await client.chat_update(channel=body["channel"]["id"], ts=body["message"]["ts"],
                                 text=f"claimed by <@{body['user']['id']}>")

    @app.action("card.replace")
    async def replace(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        seen.append(body)
        seen.statuses.append((await respond(text="replaced", replace_original=True)).status_code)

    @app.action("card.oversize")
    async def oversize(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        seen.append(body)
        too_long = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]
        seen.statuses.append((await respond(text="t", blocks=too_long)).status_code)

    @app.action("template")
    async def template(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        seen.append(body)
        chosen = body["actions"][0]["selected_option"]["value"]
        await client.views_update(view_id=body["view"]["id"], hash=body["view"]["hash"],
                                  view={**DRAFT_MODAL, "private_metadata": chosen})

    @app.action("draft.preview")
    async def preview(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        seen.append(body)
        await client.views_push(trigger_id=body["trigger_id"], view={
            "type": "modal", "title": {"type": "plain_text", "text": "Preview"},
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]})

    @app.view("draft")
    async def submitted(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        seen.append(body)
        text = view["state"]["values"]["reply"]["text"]["value"]
        if text == "bad":
            await ack(response_action="errors", errors={"reply": "Say something kinder."})
        elif text == "again":
            await ack(response_action="update", view={**DRAFT_MODAL, "callback_id": "draft2"})
        else:
            await ack()

    @app.event("app_mention")
    async def mentioned(event: dict[str, Any], say: Any) -> None:
        seen.append(event)
        await say(text="On it.", thread_ts=event["ts"])

    @app.event("message")
    async def message(event: dict[str, Any]) -> None:
        seen.append(event)

    @app.event("app_home_opened")
    async def home(event: dict[str, Any], client: AsyncWebClient) -> None:
        seen.append(event)
        await client.views_publish(user_id=event["user"], view={
            "type": "home",
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Welcome"}}]})

    return app


@pytest.fixture
async def bot(emulator: SlackEmulator) -> AsyncIterator[Seen]:
    seen = Seen()
    bolt = build_bolt(emulator, seen)

    async def endpoint(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await bolt.async_dispatch(await to_bolt_request(request)))

    server = web.Application()
    server.router.add_post("/slack/events", endpoint)
    async with serving(server) as base:
        emulator.request_url = f"{base}/slack/events"
        yield seen


async def test_command_is_accepted_and_its_answers_land(emulator: SlackEmulator,
                                                        bot: Seen) -> None:
    response = await emulator.send_command("U0AGENT1", "status")

    assert response.status == 200
    assert bot[0]["user_id"] == "U0AGENT1"
    assert bot[0]["channel_name"] == "mentions"
    assert [e.text for e in emulator.ephemerals(user="U0AGENT1")] == ["working on `status`"]
    assert emulator.responses[0].body["text"] == "done"
    assert [m.text for m in emulator.messages("C0MENTIONS")] == ["done"]
    assert emulator.calls_to("auth.test")


async def test_command_opens_a_modal_with_its_trigger(emulator: SlackEmulator,
                                                      bot: Seen) -> None:
    await emulator.send_command("U0AGENT1", "draft")

    [modal] = emulator.open_views("U0AGENT1")
    assert modal.callback_id == "draft"
    assert emulator.violations == []


async def test_click_carries_the_stored_message(emulator: SlackEmulator,
                                                bot: Seen,
                                                slack: AsyncWebClient) -> None:
    posted = await slack.chat_postMessage(channel="C0MENTIONS", text="card", blocks=CARD)

    response = await emulator.click("U0AGENT2", "C0MENTIONS", posted["ts"], "mention.claim")

    assert response.status == 200
    action = bot[0]["actions"][0]
    assert (action["value"], action["block_id"], action["type"]) == (
        "case:7", "case", "button")
    assert bot[0]["container"] == {"type": "message", "message_ts": posted["ts"],
                                   "channel_id": "C0MENTIONS", "is_ephemeral": False}
    message = emulator.message("C0MENTIONS", posted["ts"])
    assert message is not None
    assert (message.text, message.edit_count) == ("claimed by <@U0AGENT2>", 1)


async def test_modal_select_then_submit(emulator: SlackEmulator,
                                        bot: Seen) -> None:
    await emulator.send_command("U0AGENT1", "draft")
    [modal] = emulator.open_views("U0AGENT1")

    await emulator.select_in_view("U0AGENT1", modal.id, "template", "thanks")
    assert emulator.views[modal.id].view["private_metadata"] == "thanks"

    bad = await emulator.submit_view("U0AGENT1", modal.id, {"text": "bad"})
    assert bad.json() == {"response_action": "errors",
                          "errors": {"reply": "Say something kinder."}}
    assert emulator.view_errors[modal.id] == {"reply": "Say something kinder."}
    assert emulator.open_views("U0AGENT1")

    good = await emulator.submit_view("U0AGENT1", modal.id, {"text": "Sorry about that"})
    values = bot[-1]["view"]["state"]["values"]
    assert good.status == 200
    assert values["reply"]["text"] == {"type": "plain_text_input", "value": "Sorry about that"}
    assert values["tone"]["template"]["selected_option"]["value"] == "thanks"
    assert emulator.open_views("U0AGENT1") == []


async def test_submit_with_update_and_push_from_a_button(emulator: SlackEmulator,
                                                         bot: Seen) -> None:
    await emulator.send_command("U0AGENT1", "draft")
    [modal] = emulator.open_views("U0AGENT1")

    await emulator.click_in_view("U0AGENT1", modal.id, "draft.preview")
    assert [v.view["title"]["text"] for v in emulator.open_views("U0AGENT1")] == [
        "Draft reply", "Preview"]

    await emulator.submit_view("U0AGENT1", modal.id, {"text": "again"})
    assert emulator.views[modal.id].callback_id == "draft2"

    with pytest.raises(ValueError, match="Reply"):
        await emulator.submit_view("U0AGENT1", modal.id, {"text": ""})


async def test_home_opened_event_publishes(emulator: SlackEmulator,
                                           bot: Seen) -> None:
    response = await emulator.open_home("U0LEAD1")
    retried = await emulator.send_event({"type": "app_home_opened", "user": "U0LEAD1",
                                         "tab": "home", "channel": "D1"},
                                        event_id="Ev1", retry_num=1,
                                        retry_reason="http_timeout")

    assert (response.status, retried.status) == (200, 200)
    home = emulator.home("U0LEAD1")
    assert home is not None and home.blocks[0]["text"]["text"] == "Welcome"
    assert bot[0]["type"] == "app_home_opened"


CARD_WITH_RESPONSES = [{"type": "actions", "block_id": "card", "elements": [
    {"type": "button", "action_id": "card.replace", "value": "r",
     "text": {"type": "plain_text", "text": "Replace"}},
    {"type": "button", "action_id": "card.oversize", "value": "o",
     "text": {"type": "plain_text", "text": "Oversize"}},
]}]


async def test_response_url_replaces_the_original(emulator: SlackEmulator,
                                                  bot: Seen,
                                                  slack: AsyncWebClient) -> None:
    posted = await slack.chat_postMessage(channel="C0APPROVALS", text="card",
                                          blocks=CARD_WITH_RESPONSES)

    await emulator.click("U0LEAD1", "C0APPROVALS", posted["ts"], "card.replace")

    message = emulator.message("C0APPROVALS", posted["ts"])
    assert bot.statuses == [200]
    assert message is not None and (message.text, message.blocks) == ("replaced", None)
    assert emulator.responses[0].body["replace_original"] is True


async def test_response_url_refuses_oversize_blocks(emulator: SlackEmulator,
                                                    bot: Seen,
                                                    slack: AsyncWebClient) -> None:
    posted = await slack.chat_postMessage(channel="C0APPROVALS", text="card",
                                          blocks=CARD_WITH_RESPONSES)

    await emulator.click("U0LEAD1", "C0APPROVALS", posted["ts"], "card.oversize")

    assert bot.statuses == [400]
    assert emulator.violations == [
        "response_url: must be less than 3001 characters [json-pointer:/blocks/0/text/text]"]
    assert emulator.ephemerals() == []


async def test_click_on_an_ephemeral_message(emulator: SlackEmulator,
                                             bot: Seen,
                                             slack: AsyncWebClient) -> None:
    sent = await slack.chat_postEphemeral(channel="C0MENTIONS", user="U0AGENT1", text="card",
                                          blocks=CARD_WITH_RESPONSES)

    await emulator.click("U0AGENT1", "C0MENTIONS", sent["message_ts"], "card.replace")

    assert bot[0]["container"]["is_ephemeral"] is True
    assert "message" not in bot[0]


async def test_people_talk_and_mention_the_bot(emulator: SlackEmulator,
                                               bot: Seen) -> None:
    responses = await emulator.say("U0AGENT1", "C0MENTIONS", "hey <@U0BOT> look")

    assert [r.status for r in responses] == [200, 200]
    assert [e["type"] for e in bot] == ["message", "app_mention"]
    [said] = emulator.messages("C0MENTIONS")
    assert said.user == "U0AGENT1"
    assert [r.text for r in emulator.replies("C0MENTIONS", said.ts)] == ["On it."]


async def test_url_verification_echoes_the_challenge(emulator: SlackEmulator,
                                                     bot: Seen) -> None:
    response = await emulator.url_verification("abc123")

    assert response.status == 200
    assert json.loads(response.text) == {"challenge": "abc123"}


@pytest.mark.parametrize("signing", [Signing.BAD_SIGNATURE, Signing.STALE_TIMESTAMP,
                                     Signing.UNSIGNED])
async def test_tampered_requests_get_401(emulator: SlackEmulator, bot: Seen,
                                         signing: Signing) -> None:
    response = await emulator.send_command("U0AGENT1", "status", signing=signing)

    assert response.status == 401
    assert bot == []
    assert emulator.ephemerals() == []
