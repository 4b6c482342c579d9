"""Forged and stale requests on every endpoint are refused and change nothing.

Real request bodies are recorded from the Slack emulator (a click, a modal submission, a slash
command, an event) and replayed with forged signatures over real HTTP; the database and the
emulator's call log must not move. The same bodies, validly signed, then take effect, which
proves the forgeries reached handlers that would have acted.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from aiohttp import web
from pydantic import SecretStr

from bot.connectors.signing import sign as sign_webhook
from bot.runner import serve
from bot.sandbox.client import sign as sign_slack
from bot.slack.ids import ACTION_CLAIM, ACTION_CLOSE
from tests.loopback import serving
from tests.scenarios.test_claim_flow import button, case_row, ingest_one, mention
from tests.security.support import Tally, interaction_body, post_slack, slack_headers, snapshot
from tests.stack import ANN, MENTIONS, SIGNING_SECRET, WEBHOOK_SECRET, Stack
from tests.stack import test_settings as stack_settings

Recorded = tuple[str, bytes, str]  # kind, body, content type


class Recorder:
    """Stands in for the bot so the emulator's exact request bodies can be kept."""

    def __init__(self) -> None:
        self.bodies: list[tuple[bytes, str]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append((await request.read(), request.content_type))
        return web.Response(status=200)


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    rec = Recorder()
    app = web.Application()
    app.router.add_post("/slack/events", rec.handle)
    async with serving(app) as base:
        rec.url = f"{base}/slack/events"
        yield rec


async def record_slack_requests(stack: Stack, recorder: Recorder) -> list[Recorded]:
    """One body of each kind Slack sends, as the emulator signs them."""
    await ingest_one(stack)
    card = stack.cards()[0]
    value = button(card, "Claim")["value"]
    await stack.emulator.click(ANN, MENTIONS, card.ts, ACTION_CLOSE, value)
    view = stack.emulator.open_views(ANN)[-1]
    bot_url = stack.emulator.request_url
    stack.emulator.request_url = recorder.url
    try:
        await stack.emulator.click(ANN, MENTIONS, card.ts, ACTION_CLAIM, value)
        await stack.emulator.submit_view(ANN, view.id, {"outcome": {"value": "spam"}})
        await stack.emulator.send_command(ANN, "status")
        await stack.emulator.open_home(ANN)
    finally:
        stack.emulator.request_url = bot_url
    kinds = ["block_actions", "view_submission", "command", "event_callback"]
    assert len(recorder.bodies) == len(kinds)
    return [(kind, body, ctype) for kind, (body, ctype) in zip(kinds, recorder.bodies,
                                                                strict=True)]


def flip_bit(data: bytes, index: int | None = None, bit: int = 0) -> bytes:
    at = len(data) // 2 if index is None else index
    return data[:at] + bytes([data[at] ^ (1 << bit)]) + data[at + 1:]


def _flip_hex(signature: str) -> str:
    last = signature[-1]
    return signature[:-1] + format(int(last, 16) ^ 1, "x")


def slack_forgeries(body: bytes) -> dict[str, tuple[bytes, dict[str, str]]]:
    now = int(time.time())
    good = slack_headers(body)
    return {
        "no signature": (body, {}),
        "timestamp only": (body, {"X-Slack-Request-Timestamp": str(now)}),
        "wrong secret": (body, sign_slack("not-the-signing-secret", body, now)),
        "stale -301 s": (body, slack_headers(body, at=now - 301)),
        "future +301 s": (body, slack_headers(body, at=now + 301)),
        "one flipped bit in body": (flip_bit(body), good),
        "one flipped bit in last byte": (flip_bit(body, len(body) - 1), good),
        "one flipped bit in signature": (body, {**good, "X-Slack-Signature":
                                                _flip_hex(good["X-Slack-Signature"])}),
        "timestamp not a number": (body, {**good, "X-Slack-Request-Timestamp": "12ab"}),
        "v1 scheme": (body, {**good, "X-Slack-Signature":
                             good["X-Slack-Signature"].replace("v0=", "v1=")}),
        "high bit flipped (not UTF-8)": (flip_bit(body, 3, 7), good),
    }


async def test_forged_and_stale_slack_requests_are_all_rejected(
    stack: Stack, recorder: Recorder
) -> None:
    recorded = await record_slack_requests(stack, recorder)
    before_rows = await snapshot(stack)
    before_calls = len(stack.emulator.calls)
    tally = Tally("forged Slack requests (/slack/events)")
    for kind, body, ctype in recorded:
        for name, (sent, headers) in slack_forgeries(body).items():
            status, text = await post_slack(stack, sent, headers, ctype)
            tally.add("tried")
            assert status == 401, (kind, name, status, text)
            assert "mentiondesk" not in text and "Open cases" not in text, (kind, name)
            tally.add("rejected")
    assert await snapshot(stack) == before_rows
    assert len(stack.emulator.calls) == before_calls
    tally.add("handler_effects", 0)
    tally.print()
    assert tally.counts["tried"] == tally.counts["rejected"] == 44

    # The same bodies, properly signed now, do take effect: the forgeries were real attempts.
    answers: dict[str, str] = {}
    for kind, body, ctype in recorded:
        if kind == "event_callback":
            async with stack.queued_then_drained():  # the Home open queues its publish
                status, answers[kind] = await post_slack(stack, body, slack_headers(body),
                                                         ctype)
        else:
            status, answers[kind] = await post_slack(stack, body, slack_headers(body), ctype)
        assert status == 200, (kind, answers[kind])
    assert (await case_row(stack, 1)).state == "closed"  # the claim, then the close
    assert "Open cases" in answers["command"]
    assert [c.args.get("user_id") for c in stack.emulator.calls_to("views.publish")] == [ANN]


async def test_forged_webhooks_are_rejected_and_store_nothing(stack: Stack) -> None:
    body = json.dumps(mention()).encode()
    good = sign_webhook(WEBHOOK_SECRET.encode(), body)
    other = json.dumps(mention(external_id="2")).encode()
    forgeries = {
        "no signature": (body, None),
        "empty signature": (body, ""),
        "prefix only": (body, "sha256="),
        "wrong secret": (body, sign_webhook(b"not-the-secret", body)),
        "signature of another body": (body, sign_webhook(WEBHOOK_SECRET.encode(), other)),
        "one flipped bit in body": (flip_bit(body), good),
        "one flipped bit in signature": (body, _flip_hex(good)),
        "truncated signature": (body, good[:-2]),
        "non-ASCII signature": (body, good[:-1] + "é"),
        "md5 scheme": (body, good.replace("sha256=", "md5=")),
    }
    before = await snapshot(stack)
    tally = Tally("forged webhooks (/webhooks/web)")
    for name, (sent, signature) in forgeries.items():
        headers = {"Content-Type": "application/json"}
        if signature is not None:
            headers["X-Mentiondesk-Signature"] = signature
        async with stack.http.post(f"{stack.url}webhooks/web", data=sent,
                                   headers=headers) as response:
            tally.add("tried")
            assert response.status == 401, (name, response.status)
            tally.add("rejected")
    assert await snapshot(stack) == before
    assert stack.emulator.calls_to("chat.postMessage") == []
    tally.print()
    assert tally.counts["rejected"] == len(forgeries)
    status, answer = await stack.post_webhook(body)
    assert (status, answer["accepted"]) == (200, 1)


async def test_oversized_bodies_get_413_over_real_http(stack: Stack) -> None:
    from bot.web import MAX_BODY

    big = b"{" + b" " * MAX_BODY + b"}"
    before = await snapshot(stack)
    for path, headers in (("webhooks/web", {"X-Mentiondesk-Signature":
                                            sign_webhook(WEBHOOK_SECRET.encode(), big)}),
                          ("slack/events", slack_headers(big))):
        async with stack.http.post(f"{stack.url}{path}", data=io.BytesIO(big),
                                   headers={"Content-Type": "application/json",
                                            **headers}) as response:
            assert response.status == 413, path
    assert await snapshot(stack) == before


async def test_response_url_outside_slack_is_refused(stack: Stack, recorder: Recorder) -> None:
    """A signed request naming a foreign response_url is refused before any listener runs."""
    recorded = await record_slack_requests(stack, recorder)
    _kind, body, ctype = recorded[0]
    payload = json.loads(parse_qs(body.decode())["payload"][0])
    payload["response_url"] = "http://169.254.169.254/latest/meta-data/"
    forged = interaction_body(payload)
    before = await snapshot(stack)
    status, text = await post_slack(stack, forged, slack_headers(forged), ctype)
    assert status == 400 and "response_url" in text
    assert await snapshot(stack) == before


async def test_missing_signing_secret_answers_503(database_url: str, tmp_path: Path) -> None:
    """Never fail open: without a secret nothing is verified, so nothing is accepted."""
    from bot.sandbox.emulator import SlackEmulator
    from bot.web import create_app
    from bot.wiring import build

    emulator = SlackEmulator(signing_secret=SIGNING_SECRET)
    api_url = await emulator.start()
    settings = stack_settings(database_url, api_url)
    settings = settings.model_copy(update={"env": settings.env.model_copy(
        update={"slack_signing_secret": None})})
    components = await build(settings)
    try:
        import aiohttp

        body = b"command=%2Fmentions&text=status&user_id=U0AGENT1"
        async with serving(create_app(components, background=False)) as base, \
                aiohttp.ClientSession() as http, http.post(
                    f"{base}/slack/events", data=body,
                    headers={"Content-Type": "application/x-www-form-urlencoded",
                             **sign_slack(SIGNING_SECRET, body)},
                ) as response:
            assert response.status == 503
    finally:
        await emulator.stop()


def test_server_refuses_to_start_without_signing_secret(capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    settings = stack_settings("sqlite+aiosqlite:///unused.db", "http://127.0.0.1:9/api/")
    settings = settings.model_copy(update={"env": settings.env.model_copy(
        update={"slack_signing_secret": None, "slack_app_token": None,
                "slack_bot_token": SecretStr("xoxb-x")})})
    assert serve(settings, mode="web") == 2
    assert "SLACK_SIGNING_SECRET" in capsys.readouterr().err


async def test_forged_meta_webhooks_are_rejected(database_url: str, tmp_path: Path) -> None:
    from bot.settings import SourceConfig
    from tests.connectors.fakes.meta import APP_SECRET, PAGE_TOKEN, FakeGraph, load_bytes
    from tests.connectors.fakes.meta import sign as sign_meta
    from tests.stack import start_stack

    graph = FakeGraph()
    await graph.start()
    source = SourceConfig(name="acme-meta", kind="meta", base_url=graph.base_url,
                          token_env="META_PAGE_TOKEN", secret_env="META_APP_SECRET",
                          verify_token_env="META_VERIFY_TOKEN", allow_private_url=True,
                          instagram_user_id="17841400000000000")
    secrets = {"META_PAGE_TOKEN": PAGE_TOKEN, "META_APP_SECRET": APP_SECRET.decode(),
               "META_VERIFY_TOKEN": "verify"}
    try:
        async with start_stack(database_url, tmp_path, sources=[source],
                               secrets=secrets) as stack:
            body = load_bytes("page_feed_comment.json")
            good = sign_meta(body)
            forgeries = {
                "no signature": (body, None),
                "wrong secret": (body, sign_meta(body, b"another-app-secret")),
                "one flipped bit in body": (flip_bit(body), good),
                "one flipped bit in signature": (body, _flip_hex(good)),
                "sha1 scheme": (body, good.replace("sha256=", "sha1=")),
                "non-ASCII signature": (body, good[:-1] + "é"),
            }
            before = await snapshot(stack)
            tally = Tally("forged webhooks (/webhooks/meta)")
            for name, (sent, signature) in forgeries.items():
                headers = {"Content-Type": "application/json"}
                if signature is not None:
                    headers["X-Hub-Signature-256"] = signature
                async with stack.http.post(f"{stack.url}webhooks/meta", data=sent,
                                           headers=headers) as response:
                    tally.add("tried")
                    assert response.status == 401, (name, response.status)
                    tally.add("rejected")
            assert await snapshot(stack) == before
            tally.print()
            async with stack.http.post(f"{stack.url}webhooks/meta", data=body, headers={
                    "Content-Type": "application/json", "X-Hub-Signature-256": good}) as ok:
                assert ok.status == 200
    finally:
        await graph.close()
