from __future__ import annotations

import asyncio

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.sandbox import SlackEmulator
from tests.sandbox.conftest import FakeClock


async def test_429_carries_retry_after_and_is_not_applied(slack: AsyncWebClient,
                                                          emulator: SlackEmulator) -> None:
    emulator.fail("chat.postMessage", status=429, retry_after=7)

    with pytest.raises(SlackApiError) as limited:
        await slack.chat_postMessage(channel="C0MENTIONS", text="hi")
    await slack.chat_postMessage(channel="C0MENTIONS", text="hi")

    assert limited.value.response.status_code == 429
    assert limited.value.response.headers["Retry-After"] == "7"
    assert limited.value.response["error"] == "ratelimited"
    assert [c.status for c in emulator.calls_to("chat.postMessage")] == [429, 200]
    assert len(emulator.messages("C0MENTIONS")) == 1


async def test_slack_sdk_retry_handler_honours_the_429(emulator: SlackEmulator) -> None:
    emulator.fail("chat.update", status=429, retry_after=0)
    client = AsyncWebClient(token=emulator.bot_token, base_url=emulator.api_url,
                            retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)])
    posted = await client.chat_postMessage(channel="C0MENTIONS", text="a")

    await client.chat_update(channel="C0MENTIONS", ts=posted["ts"], text="b")

    assert [c.status for c in emulator.calls_to("chat.update")] == [429, 200]
    assert emulator.messages("C0MENTIONS")[0].text == "b"


async def test_500_fails_the_given_number_of_times(slack: AsyncWebClient,
                                                   emulator: SlackEmulator) -> None:
    emulator.fail("users.info", status=500, times=2)

    for _ in range(2):
        with pytest.raises(SlackApiError) as broken:
            await slack.users_info(user="U0AGENT1")
        assert broken.value.response.status_code == 500
    assert (await slack.users_info(user="U0AGENT1"))["ok"] is True


async def test_delay_applies_the_call_before_the_late_answer(emulator: SlackEmulator) -> None:
    emulator.delay("chat.postMessage", seconds=30)
    impatient = AsyncWebClient(token=emulator.bot_token, base_url=emulator.api_url,
                               timeout=0.2)  # type: ignore[arg-type]

    with pytest.raises(asyncio.TimeoutError):
        await impatient.chat_postMessage(channel="C0MENTIONS", text="did it post?")
    emulator.release_delays()

    posted = await emulator.wait_for(lambda: emulator.messages("C0MENTIONS"))
    assert [m.text for m in posted] == ["did it post?"]


async def test_per_channel_rate_limit(slack: AsyncWebClient, emulator: SlackEmulator,
                                      clock: FakeClock) -> None:
    emulator.rate_limit("chat.postMessage", per_channel_per_second=1)

    await slack.chat_postMessage(channel="C0MENTIONS", text="1")
    await slack.chat_postMessage(channel="C0ALERTS", text="other channel")
    with pytest.raises(SlackApiError) as limited:
        await slack.chat_postMessage(channel="C0MENTIONS", text="2")
    clock.advance(1.0)
    await slack.chat_postMessage(channel="C0MENTIONS", text="3")

    assert limited.value.response.status_code == 429
    assert limited.value.response.headers["Retry-After"] == "1"
    assert [m.text for m in emulator.messages("C0MENTIONS")] == ["1", "3"]


async def test_files_upload_v2_two_step(slack: AsyncWebClient, emulator: SlackEmulator) -> None:
    result = await slack.files_upload_v2(channel="C0APPROVALS", content=b"id,outcome\n1,ok\n",
                                         filename="report.csv", title="Weekly report",
                                         initial_comment="Here is the report")

    file_id = result["file"]["id"]
    stored = emulator.files[file_id]
    assert stored.content == b"id,outcome\n1,ok\n"
    assert (stored.name, stored.title, stored.channels) == (
        "report.csv", "Weekly report", ["C0APPROVALS"])
    shared = emulator.messages("C0APPROVALS")
    assert shared[0].text == "Here is the report"
    assert shared[0].files is not None and shared[0].files[0]["id"] == file_id
    assert [c.method for c in emulator.calls] == [
        "files.getUploadURLExternal", "files.completeUploadExternal"]


async def test_complete_without_upload_is_refused(slack: AsyncWebClient) -> None:
    url = await slack.files_getUploadURLExternal(filename="a.txt", length=3)

    with pytest.raises(SlackApiError) as refused:
        await slack.files_completeUploadExternal(files=[{"id": url["file_id"], "title": "a"}],
                                                 channel_id="C0ALERTS")
    assert refused.value.response["error"] == "file_not_found"
