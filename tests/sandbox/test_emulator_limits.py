from __future__ import annotations

import logging
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.sandbox import SlackEmulator
from bot.sandbox.limits import check_message_blocks, check_view


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def button(text: str = "Claim", value: str = "v", action_id: str = "a") -> dict[str, Any]:
    return {"type": "button", "text": {"type": "plain_text", "text": text},
            "value": value, "action_id": action_id}


def select(options: int, text: str = "opt") -> dict[str, Any]:
    return {"type": "static_select", "action_id": "s",
            "placeholder": {"type": "plain_text", "text": "Pick"},
            "options": [{"text": {"type": "plain_text", "text": text}, "value": str(i)}
                        for i in range(options)]}


BAD_MESSAGE_BLOCKS = [
    ([section("x")] * 51, "/blocks", "no more than 50 items allowed"),
    ([section("x" * 3001)], "/blocks/0/text/text", "must be less than 3001 characters"),
    ([{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
     "/blocks/0/text/text", "must be less than 151 characters"),
    ([{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}],
     "/blocks/0/text/type", "must be one of plain_text"),
    ([{"type": "actions", "elements": [button(text="b" * 76)]}],
     "/blocks/0/elements/0/text/text", "must be less than 76 characters"),
    ([{"type": "actions", "elements": [button(value="v" * 2001)]}],
     "/blocks/0/elements/0/value", "must be less than 2001 characters"),
    ([{"type": "actions", "elements": [button(action_id="a" * 256)]}],
     "/blocks/0/elements/0/action_id", "must be less than 256 characters"),
    ([{"type": "actions", "elements": [button(), button()]}],
     "/blocks/0/elements/1/action_id", "duplicate action_id 'a'"),
    ([{"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11}],
     "/blocks/0/elements", "no more than 10 items allowed"),
    ([{"type": "actions", "elements": [select(101)]}],
     "/blocks/0/elements/0/options", "no more than 100 items allowed"),
    ([{"type": "actions", "elements": [select(2, text="o" * 76)]}],
     "/blocks/0/elements/0/options/0/text/text", "must be less than 76 characters"),
    ([section("")], "/blocks/0/text/text", "must be more than 0 characters"),
    ([{"type": "sectoin", "text": {"type": "mrkdwn", "text": "typo"}}],
     "/blocks/0/type", "unsupported block type 'sectoin' for a message"),
    ([{**section("a"), "block_id": "x"}, {**section("b"), "block_id": "x"}],
     "/blocks/1/block_id", "duplicate block_id 'x'"),
]


@pytest.mark.parametrize(("blocks", "pointer", "reason"), BAD_MESSAGE_BLOCKS)
def test_message_limits(blocks: list[dict[str, Any]], pointer: str, reason: str) -> None:
    problems = check_message_blocks(blocks)

    assert (pointer, reason) in [(p.pointer, p.reason) for p in problems]


def test_valid_message_blocks_pass() -> None:
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "New mention"}},
        section("x" * 3000),
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 10},
        {"type": "actions", "elements": [button(action_id="a"), button(action_id="b"),
                                         select(100)]},
        {"type": "divider"},
    ]
    assert check_message_blocks(blocks) == []


def modal(**overrides: Any) -> dict[str, Any]:
    view: dict[str, Any] = {
        "type": "modal", "title": {"type": "plain_text", "text": "Draft"},
        "submit": {"type": "plain_text", "text": "Save"}, "blocks": [section("x")],
    }
    view.update(overrides)
    return view


BAD_VIEWS = [
    (modal(title={"type": "plain_text", "text": "t" * 25}), "/view/title/text"),
    (modal(submit={"type": "plain_text", "text": "s" * 25}), "/view/submit/text"),
    (modal(close={"type": "plain_text", "text": "c" * 25}), "/view/close/text"),
    (modal(private_metadata="m" * 3001), "/view/private_metadata"),
    (modal(callback_id="c" * 256), "/view/callback_id"),
    (modal(blocks=[section("x")] * 101), "/view/blocks"),
    (modal(submit=None, blocks=[{"type": "input",
                                 "label": {"type": "plain_text", "text": "L"},
                                 "element": {"type": "plain_text_input"}}]),
     "/view/submit"),
]


@pytest.mark.parametrize(("view", "pointer"), BAD_VIEWS)
def test_view_limits(view: dict[str, Any], pointer: str) -> None:
    assert pointer in [p.pointer for p in check_view(view)]


def test_valid_views_pass() -> None:
    assert check_view(modal(blocks=[section("x")] * 100, private_metadata="m" * 3000)) == []
    assert check_view({"type": "home", "blocks": [section("hi")]}) == []


async def test_oversize_blocks_answer_invalid_blocks_loudly(
    slack: AsyncWebClient, emulator: SlackEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="bot.sandbox"), pytest.raises(
        SlackApiError
    ) as refused:
        await slack.chat_postMessage(channel="C0MENTIONS", text="t",
                                     blocks=[section("x" * 3001)])

    assert refused.value.response["error"] == "invalid_blocks"
    assert refused.value.response["errors"] == [
        "must be less than 3001 characters [json-pointer:/blocks/0/text/text]"]
    assert emulator.violations == [
        "chat.postMessage: must be less than 3001 characters [json-pointer:/blocks/0/text/text]"]
    assert "json-pointer:/blocks/0/text/text" in caplog.text
    assert emulator.messages("C0MENTIONS") == []


async def test_long_text_and_bad_metadata_are_refused(slack: AsyncWebClient,
                                                      emulator: SlackEmulator) -> None:
    with pytest.raises(SlackApiError) as too_long:
        await slack.chat_postMessage(channel="C0MENTIONS", text="x" * 40_001)
    with pytest.raises(SlackApiError) as bad_metadata:
        await slack.chat_postMessage(channel="C0MENTIONS", text="x",
                                     metadata={"event_type": "case"})
    with pytest.raises(SlackApiError) as empty:
        await slack.api_call("chat.postMessage", json={"channel": "C0MENTIONS"})

    assert too_long.value.response["error"] == "msg_too_long"
    assert bad_metadata.value.response["error"] == "invalid_metadata_format"
    assert empty.value.response["error"] == "no_text"
    assert len(emulator.violations) == 2


async def test_update_with_bad_blocks_keeps_the_message(slack: AsyncWebClient,
                                                        emulator: SlackEmulator) -> None:
    posted = await slack.chat_postMessage(channel="C0MENTIONS", text="ok")
    with pytest.raises(SlackApiError):
        await slack.chat_update(channel="C0MENTIONS", ts=posted["ts"], text="t",
                                blocks=[section("x")] * 51)

    message = emulator.message("C0MENTIONS", posted["ts"])
    assert message is not None and (message.text, message.edit_count) == ("ok", 0)
