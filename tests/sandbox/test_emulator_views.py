from __future__ import annotations

from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.sandbox import SlackEmulator
from tests.sandbox.conftest import FakeClock


def modal(title: str = "Draft reply", **extra: Any) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": "draft",
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": "Save"},
        "blocks": [{
            "type": "input", "block_id": "reply",
            "label": {"type": "plain_text", "text": "Reply"},
            "element": {"type": "plain_text_input", "action_id": "text"},
        }],
        **extra,
    }


HOME = {"type": "home", "blocks": [
    {"type": "section", "text": {"type": "mrkdwn", "text": "*3* cases waiting"}}]}


async def test_open_then_update_by_view_id(slack: AsyncWebClient,
                                           emulator: SlackEmulator) -> None:
    opened = await slack.views_open(trigger_id=emulator.issue_trigger("U0AGENT1"),
                                    view=modal(private_metadata="case:1"))
    view_id = opened["view"]["id"]
    updated = await slack.views_update(view_id=view_id, hash=opened["view"]["hash"],
                                       view=modal("Draft reply (2)"))

    assert view_id.startswith("V")
    assert opened["view"]["private_metadata"] == "case:1"
    assert opened["view"]["state"] == {"values": {}}
    assert updated["view"]["id"] == view_id
    assert updated["view"]["hash"] != opened["view"]["hash"]
    assert emulator.views[view_id].view["title"]["text"] == "Draft reply (2)"
    assert [v.id for v in emulator.open_views("U0AGENT1")] == [view_id]
    with pytest.raises(SlackApiError) as stale:
        await slack.views_update(view_id=view_id, hash=opened["view"]["hash"], view=modal())
    assert stale.value.response["error"] == "hash_conflict"


async def test_trigger_expires_after_three_seconds(slack: AsyncWebClient,
                                                   emulator: SlackEmulator,
                                                   clock: FakeClock) -> None:
    trigger = emulator.issue_trigger("U0AGENT1")
    clock.advance(3.5)

    with pytest.raises(SlackApiError) as expired:
        await slack.views_open(trigger_id=trigger, view=modal())
    with pytest.raises(SlackApiError) as invented:
        await slack.views_open(trigger_id="123.456.abc", view=modal())

    assert expired.value.response["error"] == "expired_trigger_id"
    assert invented.value.response["error"] == "invalid_trigger_id"
    assert emulator.views == {}


async def test_trigger_within_three_seconds_is_usable_once(slack: AsyncWebClient,
                                                           emulator: SlackEmulator,
                                                           clock: FakeClock) -> None:
    trigger = emulator.issue_trigger("U0AGENT1")
    clock.advance(2.9)
    await slack.views_open(trigger_id=trigger, view=modal())

    with pytest.raises(SlackApiError) as reused:
        await slack.views_open(trigger_id=trigger, view=modal())
    assert reused.value.response["error"] == "exchanged_trigger_id"


async def test_push_stacks_up_to_three(slack: AsyncWebClient, emulator: SlackEmulator) -> None:
    root = await slack.views_open(trigger_id=emulator.issue_trigger("U0LEAD1"), view=modal())
    for _ in range(2):
        await slack.views_push(trigger_id=emulator.issue_trigger("U0LEAD1"), view=modal())

    with pytest.raises(SlackApiError) as full:
        await slack.views_push(trigger_id=emulator.issue_trigger("U0LEAD1"), view=modal())
    stack = emulator.open_views("U0LEAD1")
    assert full.value.response["error"] == "push_limit_reached"
    assert [v.root_id for v in stack] == [root["view"]["id"]] * 3
    assert stack[1].previous_id == root["view"]["id"]


async def test_publish_home_keeps_one_view_per_user(slack: AsyncWebClient,
                                                    emulator: SlackEmulator) -> None:
    first = await slack.views_publish(user_id="U0AGENT2", view=HOME)
    second = await slack.views_publish(user_id="U0AGENT2", view=HOME)

    home = emulator.home("U0AGENT2")
    assert home is not None
    assert first["view"]["id"] == second["view"]["id"] == home.id
    assert second["view"]["type"] == "home"
    assert emulator.home("U0AGENT1") is None


async def test_invalid_modal_is_refused_and_recorded(slack: AsyncWebClient,
                                                     emulator: SlackEmulator) -> None:
    with pytest.raises(SlackApiError) as refused:
        await slack.views_open(trigger_id=emulator.issue_trigger("U0AGENT1"),
                               view=modal("A title far longer than twenty-four"))

    assert refused.value.response["error"] == "invalid_arguments"
    messages = refused.value.response["response_metadata"]["messages"]
    assert messages == ["[ERROR] must be less than 25 characters "
                        "[json-pointer:/view/title/text]"]
    assert emulator.violations == [
        "views.open: must be less than 25 characters [json-pointer:/view/title/text]"]
    assert emulator.views == {}


async def test_home_with_submit_button_is_refused(slack: AsyncWebClient,
                                                  emulator: SlackEmulator) -> None:
    with pytest.raises(SlackApiError):
        await slack.views_publish(user_id="U0AGENT1",
                                  view={**HOME, "submit": {"type": "plain_text", "text": "Go"}})
    assert emulator.violations
