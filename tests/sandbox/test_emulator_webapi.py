from __future__ import annotations

import asyncio

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.sandbox import SlackEmulator

CLAIM_BLOCKS = [
    {"type": "section", "block_id": "mention",
     "text": {"type": "mrkdwn", "text": "*@ann* wrote: the app is down"}},
    {"type": "actions", "block_id": "buttons", "elements": [
        {"type": "button", "action_id": "mention.claim", "value": "case:1",
         "text": {"type": "plain_text", "text": "Claim"}},
    ]},
]


async def test_auth_test_names_the_bot(slack: AsyncWebClient, emulator: SlackEmulator) -> None:
    response = await slack.auth_test()

    assert response["user_id"] == "U0BOT"
    assert response["team_id"] == "T0MENTDSK"
    assert emulator.calls_to("auth.test")[0].ok


async def test_post_message_is_stored_and_listed_newest_first(
    slack: AsyncWebClient, emulator: SlackEmulator
) -> None:
    first = await slack.chat_postMessage(channel="C0MENTIONS", text="one")
    second = await slack.chat_postMessage(
        channel="C0MENTIONS", text="two", blocks=CLAIM_BLOCKS, unfurl_links=False,
        metadata={"event_type": "mention_card", "event_payload": {"case_id": 1}},
    )

    assert float(second["ts"]) > float(first["ts"])
    assert second["message"]["blocks"][1]["elements"][0]["action_id"] == "mention.claim"
    stored = emulator.messages("C0MENTIONS")
    assert [m.text for m in stored] == ["one", "two"]
    assert stored[1].unfurl_links is False
    history = await slack.conversations_history(channel="C0MENTIONS", limit=1,
                                                include_all_metadata=True)
    assert [m["text"] for m in history["messages"]] == ["two"]
    assert history["messages"][0]["metadata"]["event_payload"] == {"case_id": 1}
    assert history["has_more"] is True
    plain = await slack.conversations_history(channel="C0MENTIONS", oldest=first["ts"])
    assert [m["text"] for m in plain["messages"]] == ["two"]
    assert "metadata" not in plain["messages"][0]


async def test_thread_replies_and_permalink(slack: AsyncWebClient,
                                            emulator: SlackEmulator) -> None:
    parent = await slack.chat_postMessage(channel="C0MENTIONS", text="card")
    await slack.chat_postMessage(channel="C0MENTIONS", text="note", thread_ts=parent["ts"])

    replies = await slack.conversations_replies(channel="C0MENTIONS", ts=parent["ts"])
    link = await slack.chat_getPermalink(channel="C0MENTIONS", message_ts=parent["ts"])

    assert [m["text"] for m in replies["messages"]] == ["card", "note"]
    assert replies["messages"][0]["reply_count"] == 1
    assert [m.text for m in emulator.messages("C0MENTIONS")] == ["card"]
    assert [m.text for m in emulator.replies("C0MENTIONS", parent["ts"])] == ["note"]
    assert link["permalink"].endswith(f"/archives/C0MENTIONS/p{parent['ts'].replace('.', '')}")


async def test_update_keeps_latest_and_counts_edits(slack: AsyncWebClient,
                                                    emulator: SlackEmulator) -> None:
    posted = await slack.chat_postMessage(channel="C0MENTIONS", text="new", blocks=CLAIM_BLOCKS)
    await slack.chat_update(channel="C0MENTIONS", ts=posted["ts"], text="claimed by ann")
    updated = await slack.chat_update(channel="C0MENTIONS", ts=posted["ts"], text="closed")

    message = emulator.message("C0MENTIONS", posted["ts"])
    assert message is not None
    assert (message.text, message.edit_count) == ("closed", 2)
    assert message.blocks is not None  # chat.update without blocks keeps them
    assert updated["message"]["edited"]["user"] == "U0BOT"
    with pytest.raises(SlackApiError) as missing:
        await slack.chat_update(channel="C0MENTIONS", ts="1.000001", text="x")
    assert missing.value.response["error"] == "message_not_found"


async def test_ephemeral_delete_and_reactions(slack: AsyncWebClient,
                                              emulator: SlackEmulator) -> None:
    result = await slack.chat_postEphemeral(channel="C0MENTIONS", user="U0AGENT1",
                                            text="only you can see this")
    posted = await slack.chat_postMessage(channel="C0MENTIONS", text="bye")
    await slack.reactions_add(channel="C0MENTIONS", timestamp=posted["ts"], name="eyes")
    with pytest.raises(SlackApiError) as again:
        await slack.reactions_add(channel="C0MENTIONS", timestamp=posted["ts"], name="eyes")
    reacted = emulator.message("C0MENTIONS", posted["ts"])
    assert reacted is not None and reacted.reactions == {"eyes": ["U0BOT"]}
    await slack.chat_delete(channel="C0MENTIONS", ts=posted["ts"])

    assert again.value.response["error"] == "already_reacted"
    assert [e.text for e in emulator.ephemerals(user="U0AGENT1")] == ["only you can see this"]
    assert emulator.ephemerals(user="U0AGENT2") == []
    assert result["message_ts"] == emulator.ephemerals()[0].ts
    assert emulator.messages("C0MENTIONS") == []


async def test_people_channels_and_groups(slack: AsyncWebClient,
                                          emulator: SlackEmulator) -> None:
    emulator.add_usergroup("S0LEADS", ["U0LEAD1", "U0AGENT2"])

    user = await slack.users_info(user="U0AGENT1")
    members = await slack.users_list(limit=2)
    group = await slack.usergroups_users_list(usergroup="S0LEADS")
    info = await slack.conversations_info(channel="C0APPROVALS")
    dm = await slack.conversations_open(users="U0LEAD1")
    await slack.chat_postMessage(channel="U0LEAD1", text="psst")

    assert user["user"]["name"] == "ann"
    assert user["user"]["profile"]["display_name"] == "ann"
    assert len(members["members"]) == 2
    assert members["response_metadata"]["next_cursor"]
    assert group["users"] == ["U0LEAD1", "U0AGENT2"]
    assert info["channel"]["name"] == "approvals"
    assert [m.text for m in emulator.messages(dm["channel"]["id"])] == ["psst"]
    with pytest.raises(SlackApiError) as missing:
        await slack.users_info(user="U0NOPE")
    assert missing.value.response["error"] == "user_not_found"


async def test_unknown_method_and_bad_tokens(emulator: SlackEmulator) -> None:
    good = AsyncWebClient(token=emulator.bot_token, base_url=emulator.api_url)
    with pytest.raises(SlackApiError) as unknown:
        await good.api_call("chat.fly")
    with pytest.raises(SlackApiError) as wrong:
        await AsyncWebClient(token="xoxb-wrong", base_url=emulator.api_url).auth_test()
    async with aiohttp.ClientSession() as session, session.post(
        f"{emulator.api_url}auth.test"
    ) as anonymous:
        body = await anonymous.json()

    assert unknown.value.response.status_code == 200
    assert unknown.value.response["error"] == "unknown_method"
    assert wrong.value.response["error"] == "invalid_auth"
    assert body == {"ok": False, "error": "not_authed"}
    assert any("chat.fly" in v for v in emulator.violations)


async def test_form_encoded_arguments_with_json_strings(emulator: SlackEmulator) -> None:
    async with aiohttp.ClientSession() as session, session.post(
        f"{emulator.api_url}chat.postMessage",
        data={"token": emulator.bot_token, "channel": "C0ALERTS", "text": "spike",
              "blocks": '[{"type": "divider"}]'},
    ) as response:
        body = await response.json()

    assert body["ok"] is True
    assert emulator.messages("C0ALERTS")[0].blocks[0]["type"] == "divider"  # type: ignore[index]
    assert emulator.calls_to("chat.postMessage")[0].args["blocks"][0]["type"] == "divider"


async def test_wait_for_wakes_on_the_call(slack: AsyncWebClient,
                                          emulator: SlackEmulator) -> None:
    waiter = asyncio.create_task(
        emulator.wait_for(lambda: emulator.messages("C0ALERTS"), timeout=5))
    await slack.chat_postMessage(channel="C0ALERTS", text="now")

    assert [m.text for m in await waiter] == ["now"]
    with pytest.raises(TimeoutError):
        await emulator.wait_for(lambda: emulator.messages("C0APPROVALS"), timeout=0.05)


async def test_refuses_to_listen_beyond_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"):
        await SlackEmulator().start(host="0.0.0.0")
