"""Generic source: webhook parsing, signatures, and replies against a local signed reply sink."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.connectors.base import (
    Connector,
    PermanentError,
    PostedReply,
    RateLimited,
    ReplyRequest,
    TransientError,
)
from bot.connectors.generic import (
    GenericConnector,
    ReplyRejected,
    parse_webhook_body,
    parse_webhook_mentions,
    retry_after_seconds,
)
from bot.connectors.signing import SIGNATURE_HEADER, sign, verify
from bot.domain.mention import Author, Mention, MentionError
from tests.loopback import serving

DATA = Path(__file__).resolve().parents[1] / "data" / "generic"
SECRET = b"reply-sink-secret"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# --- signing -----------------------------------------------------------------------------


def test_sign_matches_the_rfc_4231_hmac_sha256_vector() -> None:
    assert sign(b"Jefe", b"what do ya want for nothing?") == (
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


def test_verify_accepts_only_the_right_signature() -> None:
    body = b'{"a":1}'
    good = sign(SECRET, body)
    assert verify(SECRET, body, good)
    assert verify(SECRET, body, "  " + good.upper().replace("SHA256=", "sha256=") + " ")
    assert not verify(SECRET, body + b" ", good)
    assert not verify(b"other", body, good)
    assert not verify(SECRET, body, good.removeprefix("sha256="))
    assert not verify(SECRET, body, "sha1=" + good.removeprefix("sha256="))
    assert not verify(SECRET, body, None)
    assert not verify(SECRET, body, "")
    assert not verify(b"", body, sign(b"", body))


# --- inbound -----------------------------------------------------------------------------


def test_parse_webhook_body_single_object() -> None:
    raw = json.dumps(
        {"source": "forum", "external_id": "1", "text": "hi", "created_at": "2026-11-22T08:15:00Z"}
    ).encode()
    (item,) = parse_webhook_body(raw)
    assert isinstance(item, dict) and item["external_id"] == "1"
    (mention,) = parse_webhook_mentions(raw)
    assert isinstance(mention, Mention)
    assert mention.created_at == datetime(2026, 11, 22, 8, 15, tzinfo=UTC)


def test_parse_webhook_body_array_keeps_good_items_and_reports_bad_ones() -> None:
    raw = (DATA / "webhook_batch.json").read_bytes()
    first, second, third = parse_webhook_mentions(raw)
    assert isinstance(first, Mention)
    assert first.author == Author(handle="maria.k", name="María K.", followers=0)
    assert first.text == "Delivery took three weeks 😞 <!channel>"
    assert isinstance(second, MentionError)
    assert str(second) == "item 1: missing required field 'created_at'"
    assert isinstance(third, Mention) and third.external_id == "78"
    dicts = parse_webhook_body(raw)
    assert isinstance(dicts[0], dict) and isinstance(dicts[1], MentionError)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "the body is not valid JSON"),
        (b"", "the body is not valid JSON"),
        (b"\xff\xfe", "the body is not UTF-8 text"),
        (b'"just a string"', "must be a mention object or a JSON array"),
        (b"[" + b",".join([b"{}"] * 1001) + b"]", "send at most 1000"),
    ],
)
def test_parse_webhook_body_refuses_unusable_bodies(raw: bytes, message: str) -> None:
    with pytest.raises(MentionError, match=message):
        parse_webhook_body(raw)


def test_parse_webhook_body_empty_array() -> None:
    assert parse_webhook_body(b"[]") == []


# --- outbound: a local reply sink --------------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class ReplySink:
    """A site's reply endpoint: checks our signature, then answers as the test tells it."""

    answer: Handler | None = None
    received: list[Received] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.received.append(Received(dict(request.headers), body))
        if not verify(SECRET, body, request.headers.get(SIGNATURE_HEADER)):
            return web.json_response({"error": "bad signature"}, status=401)
        assert self.answer is not None
        return await self.answer(request)


@pytest.fixture
async def sink() -> AsyncIterator[ReplySink]:
    state = ReplySink()
    app = web.Application()
    app.router.add_post("/replies", state.handle)
    async with serving(app) as base:
        state.url = f"{base}/replies"
        yield state
        state.release.set()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def mention() -> Mention:
    return Mention(
        source="trustpilot",
        external_id="tp-9001",
        text="Delivery took three weeks",
        created_at=datetime(2026, 11, 22, 8, 15, tzinfo=UTC),
        author=Author(handle="maria.k"),
        url="https://reviews.example/r/9001",
    )


def request(text: str = "Sorry María, we're on it 🙏") -> ReplyRequest:
    return ReplyRequest(case_id=12, mention=mention(), text=text, idempotency_key="reply-12-1")


def connector(
    session: aiohttp.ClientSession, url: str | None, *, secret: bytes = SECRET, timeout: float = 5
) -> GenericConnector:
    return GenericConnector("web", session=session, reply_url=url, secret=secret, timeout=timeout)


def answer_with(status: int, body: Any = None, headers: dict[str, str] | None = None) -> Handler:
    async def respond(_: web.Request) -> web.StreamResponse:
        if body is None:
            return web.Response(status=status, headers=headers)
        if isinstance(body, str):
            return web.Response(status=status, text=body, headers=headers)
        return web.json_response(body, status=status, headers=headers)

    return respond


async def test_reply_is_posted_signed_with_the_contract_payload(
    sink: ReplySink, session: aiohttp.ClientSession
) -> None:
    sink.answer = answer_with(201, {"id": "r-55", "url": "https://reviews.example/r/9001#r-55"})
    posted = await connector(session, sink.url).post_reply(request())
    assert posted == PostedReply(external_id="r-55", url="https://reviews.example/r/9001#r-55")
    (received,) = sink.received
    assert received.json == {
        "case_id": 12,
        "source": "trustpilot",
        "external_id": "tp-9001",
        "in_reply_to_url": "https://reviews.example/r/9001",
        "text": "Sorry María, we're on it 🙏",
    }
    assert received.headers[SIGNATURE_HEADER] == sign(SECRET, received.body)
    assert received.headers["Idempotency-Key"] == "reply-12-1"
    assert received.headers["Content-Type"].startswith("application/json")


@pytest.mark.parametrize(
    "answer",
    [
        answer_with(200),
        answer_with(200, "<html>ok</html>"),
        answer_with(202, ["not", "an", "object"]),
        answer_with(200, {"id": True, "url": 5}),
    ],
)
async def test_reply_without_a_usable_answer_falls_back_to_the_idempotency_key(
    sink: ReplySink, session: aiohttp.ClientSession, answer: Handler
) -> None:
    sink.answer = answer
    posted = await connector(session, sink.url).post_reply(request())
    assert posted == PostedReply(external_id="reply-12-1", url="")


async def test_numeric_reply_id_is_kept_as_text(
    sink: ReplySink, session: aiohttp.ClientSession
) -> None:
    sink.answer = answer_with(200, {"id": 991})
    assert (await connector(session, sink.url).post_reply(request())).external_id == "991"


@pytest.mark.parametrize("status", [500, 502, 503, 408])
async def test_server_errors_are_transient(
    sink: ReplySink, session: aiohttp.ClientSession, status: int
) -> None:
    sink.answer = answer_with(status, "oops")
    with pytest.raises(TransientError) as caught:
        await connector(session, sink.url).post_reply(request())
    assert not isinstance(caught.value, RateLimited)
    assert f"HTTP {status}" in str(caught.value)


async def test_429_with_retry_after_seconds(
    sink: ReplySink, session: aiohttp.ClientSession
) -> None:
    sink.answer = answer_with(429, {"error": "slow down"}, {"Retry-After": "7"})
    with pytest.raises(RateLimited) as caught:
        await connector(session, sink.url).post_reply(request())
    assert caught.value.retry_after == 7


async def test_429_without_retry_after_waits_a_default(
    sink: ReplySink, session: aiohttp.ClientSession
) -> None:
    sink.answer = answer_with(429)
    with pytest.raises(RateLimited) as caught:
        await connector(session, sink.url).post_reply(request())
    assert caught.value.retry_after == 60


async def test_503_with_retry_after_date_is_rate_limited(
    sink: ReplySink, session: aiohttp.ClientSession
) -> None:
    sink.answer = answer_with(503, None, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    with pytest.raises(RateLimited) as caught:
        await connector(session, sink.url).post_reply(request())
    assert caught.value.retry_after == 0


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (400, {"error": "thread is locked"}, "thread is locked"),
        (422, {"error": {"message": "text too long"}}, "text too long"),
        (404, "no such review\n\tanymore", "no such review anymore"),
        (403, None, ""),
    ],
)
async def test_other_4xx_are_permanent_with_status_and_reason(
    sink: ReplySink, session: aiohttp.ClientSession, status: int, body: Any, reason: str
) -> None:
    sink.answer = answer_with(status, body)
    with pytest.raises(ReplyRejected) as caught:
        await connector(session, sink.url).post_reply(request())
    assert isinstance(caught.value, PermanentError)
    assert not isinstance(caught.value, TransientError)
    assert (caught.value.status, caught.value.reason) == (status, reason)
    assert f"HTTP {status}" in str(caught.value)


async def test_long_reason_is_shortened(sink: ReplySink, session: aiohttp.ClientSession) -> None:
    sink.answer = answer_with(400, "x" * 5000)
    with pytest.raises(ReplyRejected) as caught:
        await connector(session, sink.url).post_reply(request())
    assert len(caught.value.reason) == 200


async def test_wrong_secret_is_refused_by_the_sink(
    sink: ReplySink, session: aiohttp.ClientSession
) -> None:
    sink.answer = answer_with(200, {"id": "never"})
    with pytest.raises(ReplyRejected) as caught:
        await connector(session, sink.url, secret=b"wrong").post_reply(request())
    assert (caught.value.status, caught.value.reason) == (401, "bad signature")


async def test_timeout_is_transient(sink: ReplySink, session: aiohttp.ClientSession) -> None:
    async def hang(_: web.Request) -> web.StreamResponse:
        await sink.release.wait()
        return web.Response(status=200)

    sink.answer = hang
    with pytest.raises(TransientError, match=r"did not answer within 0\.2s") as caught:
        await connector(session, sink.url, timeout=0.2).post_reply(request())
    assert not isinstance(caught.value, RateLimited)
    assert len(sink.received) == 1


async def test_connection_refused_is_transient(session: aiohttp.ClientSession) -> None:
    async with serving(web.Application()) as base:
        pass  # the port was ours a moment ago; nothing listens on it now
    with pytest.raises(TransientError, match="could not reach"):
        await connector(session, f"{base}/replies").post_reply(request())


async def test_redirects_are_not_followed(sink: ReplySink, session: aiohttp.ClientSession) -> None:
    sink.answer = answer_with(302, None, {"Location": "http://127.0.0.1:1/elsewhere"})
    with pytest.raises(ReplyRejected) as caught:
        await connector(session, sink.url).post_reply(request())
    assert caught.value.status == 302
    assert len(sink.received) == 1


# --- connector surface -------------------------------------------------------------------


async def test_connector_surface(session: aiohttp.ClientSession) -> None:
    with_url = connector(session, "http://127.0.0.1:9/replies")
    without = connector(session, None)
    assert isinstance(with_url, Connector)
    assert with_url.can_reply and not without.can_reply
    assert with_url.reply_allowed(mention()) == (True, "")
    allowed, reason = without.reply_allowed(mention())
    assert not allowed and "no reply_url" in reason
    page = await with_url.fetch("cursor-1")
    assert (list(page.mentions), page.cursor, page.more) == ([], "cursor-1", False)
    limits = with_url.reply_limits()
    assert (limits.max_length, limits.unit) == (10_000, "characters")
    with pytest.raises(PermanentError, match="no reply_url"):
        await without.post_reply(request())


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("12", 12.0),
        ("1.5", 1.5),
        ("-3", 0.0),
        ("inf", None),
        ("soon", None),
        ("Sun, 22 Nov 2026 10:00:30 GMT", 30.0),
    ],
)
def test_retry_after_seconds(value: str | None, expected: float | None) -> None:
    now = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)
    assert retry_after_seconds(value, now=now) == expected
