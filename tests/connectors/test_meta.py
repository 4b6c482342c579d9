from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import pytest

from bot.connectors.base import (
    Connector,
    PermanentError,
    RateLimited,
    ReplyRequest,
    TransientError,
)
from bot.connectors.meta import (
    MENTION_PLACEHOLDER,
    MetaConnector,
    Skipped,
    build,
    config_problems,
    parse_webhook,
    usage_wait,
    verify_challenge,
    verify_signature,
)
from bot.domain.mention import Mention
from bot.settings import SourceConfig
from tests.connectors.fakes.meta import (
    APP_SECRET,
    PAGE_TOKEN,
    FakeGraph,
    load,
    load_bytes,
    sign,
)

VERIFY_TOKEN = "meatball-7b1e"


@pytest.fixture
async def fake() -> AsyncIterator[FakeGraph]:
    server = FakeGraph()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def connector(fake: FakeGraph, session: aiohttp.ClientSession, **kwargs: Any) -> MetaConnector:
    options: dict[str, Any] = {"name": "acme-meta", "session": session,
                               "access_token": PAGE_TOKEN, "app_secret": APP_SECRET,
                               "verify_token": VERIFY_TOKEN, "graph_url": fake.base_url,
                               "timeout": 0.5}
    options.update(kwargs)
    return MetaConnector(**options)


def mentions(items: list[Mention | Skipped]) -> list[Mention]:
    return [item for item in items if isinstance(item, Mention)]


def reasons(items: list[Mention | Skipped]) -> list[str]:
    return [item.reason for item in items if isinstance(item, Skipped)]


def form(body: Any) -> dict[str, str]:
    return dict(parse_qsl(body if isinstance(body, str) else "", keep_blank_values=True))


def reply(mention: Mention, text: str = "Sorry! Please check your messages.") -> ReplyRequest:
    return ReplyRequest(case_id=3, mention=mention, text=text, idempotency_key="case-3-r1")


# -- handshake and signature ----------------------------------------------------------------

def test_challenge_handshake() -> None:
    query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN,
             "hub.challenge": "1158201444"}
    assert verify_challenge(query, VERIFY_TOKEN) == "1158201444"
    assert verify_challenge({**query, "hub.verify_token": "guess"}, VERIFY_TOKEN) is None
    assert verify_challenge({**query, "hub.mode": "unsubscribe"}, VERIFY_TOKEN) is None
    assert verify_challenge({k: v for k, v in query.items() if k != "hub.challenge"},
                            VERIFY_TOKEN) is None
    assert verify_challenge({**query, "hub.verify_token": ""}, "") is None


def test_signature_good_bad_missing_and_one_flipped_bit() -> None:
    body = load_bytes("page_feed_comment.json")
    header = sign(body)
    assert verify_signature(APP_SECRET, body, header)
    assert verify_signature(APP_SECRET, body, header.upper().replace("SHA256=", "sha256="))
    assert not verify_signature(b"another-secret", body, header)
    assert not verify_signature(APP_SECRET, body, None)
    assert not verify_signature(APP_SECRET, body, "")
    assert not verify_signature(APP_SECRET, body, header.removeprefix("sha256="))
    assert not verify_signature(b"", body, sign(body, b""))
    flipped_body = bytearray(body)
    flipped_body[10] ^= 0x01
    assert not verify_signature(APP_SECRET, bytes(flipped_body), header)
    digest = bytearray(bytes.fromhex(header.removeprefix("sha256=")))
    digest[0] ^= 0x01
    assert not verify_signature(APP_SECRET, body, "sha256=" + digest.hex())


# -- parsing --------------------------------------------------------------------------------

def test_parse_page_feed_comment() -> None:
    (mention,) = parse_webhook(load("page_feed_comment.json"))
    assert isinstance(mention, Mention)
    assert mention.source == "facebook"
    assert mention.external_id == "912345678901234_1187654321098765"
    assert mention.text == "My Acme Hub stopped working after the update. Help?"
    assert mention.author.handle == "7712345098765432"
    assert mention.author.name == "Marta Silva"
    assert mention.created_at == datetime(2026, 11, 22, 9, 41, tzinfo=UTC)
    assert mention.url == ("https://www.facebook.com/acmehome/posts/pfbid02abcXYZ"
                           "?comment_id=1187654321098765")
    assert mention.in_reply_to == "104218392217161_912345678901234"
    assert mention.thread_id == "104218392217161_912345678901234"


def test_parse_page_feed_changes_that_are_not_new_comments() -> None:
    items = parse_webhook(load("page_feed_other.json"))
    assert mentions(items) == []
    assert reasons(items) == [
        "feed change reaction/add is not a new comment",
        "feed change comment/edited is not a new comment",
        "feed comment 912345678901234_1187654321099999 was written by the Page itself",
        "feed comment 912345678901234_1187654321097777 has no message (photo or sticker only?)",
    ]


def test_parse_instagram_comments() -> None:
    items = parse_webhook(load("instagram_comments.json"))
    (mention,) = mentions(items)
    assert mention.source == "instagram"
    assert mention.external_id == "17865799348089039"
    assert mention.text == "@acmehome my hub is blinking red since yesterday"
    assert mention.author.handle == "@jules.makes"
    assert mention.in_reply_to == "17865799348080000"
    assert mention.thread_id == "18012345678901234"
    assert mention.created_at == datetime(2026, 11, 22, 9, 45, tzinfo=UTC)
    assert reasons(items) == ["instagram comment 17865799348089111 was written by our own account"]


def test_parse_instagram_comment_in_business_login_shape() -> None:
    payload = load("instagram_comments.json")
    entry = payload["entry"][0]
    flat = {"object": "instagram", "entry": [
        {"id": entry["id"], "time": entry["time"], **entry["changes"][0]}]}
    (mention,) = parse_webhook(flat)
    assert isinstance(mention, Mention) and mention.external_id == "17865799348089039"


def test_parse_instagram_mentions() -> None:
    items = parse_webhook(load("instagram_mentions.json"))
    in_comment, in_caption = mentions(items)
    assert in_comment.external_id == "mention:17918195224117851:17894227972186120"
    assert in_comment.text == MENTION_PLACEHOLDER
    assert in_comment.thread_id == "17918195224117851"
    assert in_comment.extra["needs_lookup"] is True
    assert in_caption.external_id == "mention:17918195224119999"
    assert in_caption.extra["in"] == "caption"
    assert reasons(items) == ["instagram field 'story_insights' is not handled"]


@pytest.mark.parametrize("payload", [None, [], {"object": "page"}, {"entry": "x"}])
def test_parse_refuses_what_is_not_a_notification(payload: Any) -> None:
    with pytest.raises(PermanentError):
        parse_webhook(payload)


def test_parse_skips_malformed_pieces_with_reasons() -> None:
    items = parse_webhook({"object": "page", "entry": [
        "junk",
        {"id": "1", "time": 1795340400, "changes": [
            {"field": "feed"},
            {"field": "feed", "value": {"item": "comment", "verb": "add", "message": "hi"}},
            {"field": "feed", "value": {"item": "comment", "verb": "add", "comment_id": "1_2",
                                        "message": "hi", "created_time": "yesterday"}},
        ]},
        {"id": "1", "time": 1795340400, "messaging": [{"message": {"text": "dm"}}]},
    ]})
    assert mentions(items) == []
    assert reasons(items)[:3] == ["entry 0: not an object", "a change without a value object",
                                  "feed comment without 'comment_id'"]
    assert reasons(items)[3].startswith("feed: created_at is not an ISO-8601 timestamp")
    assert reasons(items)[4] == "entry 2: messaging events are not handled"
    assert parse_webhook({"object": "whatsapp_business_account", "entry": []}) == [
        Skipped("notifications for object 'whatsapp_business_account' are not handled")]


async def test_accept_checks_the_signature_first(fake: FakeGraph, session: aiohttp.ClientSession
                                                 ) -> None:
    meta = connector(fake, session)
    body = load_bytes("page_feed_comment.json")
    assert len(mentions(meta.accept(body, sign(body)))) == 1
    with pytest.raises(PermanentError, match="signature"):
        meta.accept(body, sign(body, b"wrong"))
    with pytest.raises(PermanentError, match="not JSON"):
        meta.accept(b"{oops", sign(b"{oops"))
    assert meta.challenge({"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN,
                           "hub.challenge": "42"}) == "42"


# -- replying -------------------------------------------------------------------------------

async def test_facebook_reply(fake: FakeGraph, session: aiohttp.ClientSession) -> None:
    meta = connector(fake, session)
    assert isinstance(meta, Connector)
    (mention,) = mentions(parse_webhook(load("page_feed_comment.json")))

    posted = await meta.post_reply(reply(mention))

    assert posted.external_id == "912345678901234_1187654321100002"
    (call,) = fake.requests
    assert (call.method, call.path) == (
        "POST", "/v21.0/912345678901234_1187654321098765/comments")
    assert form(call.body) == {"message": "Sorry! Please check your messages."}
    assert call.headers["Authorization"] == f"Bearer {PAGE_TOKEN}"
    assert call.query == {}


async def test_instagram_comment_reply(fake: FakeGraph, session: aiohttp.ClientSession) -> None:
    (mention,) = mentions(parse_webhook(load("instagram_comments.json")))
    posted = await connector(fake, session).post_reply(reply(mention, "Check your DMs!"))
    assert posted.external_id == "1187654321100002"
    call, lookup = fake.requests
    assert call.path == "/v21.0/17865799348089039/replies"
    assert form(call.body) == {"message": "Check your DMs!"}
    # Instagram comments have no permalink: the card links the post the reply sits under.
    assert (lookup.method, lookup.path) == ("GET", "/v21.0/18012345678901234")
    assert lookup.arg("fields") == "permalink"
    assert posted.url == f"https://www.instagram.com/p/{fake.shortcode}/"


async def test_instagram_mention_reply(fake: FakeGraph, session: aiohttp.ClientSession) -> None:
    in_comment, in_caption = mentions(parse_webhook(load("instagram_mentions.json")))
    meta = connector(fake, session)
    await meta.post_reply(reply(in_comment, "Yes, since 4.1!"))
    await meta.post_reply(reply(in_caption, "Thanks for the shout-out!"))
    first, second = fake.requests
    assert first.path == second.path == "/v21.0/17841405822304914/mentions"
    assert form(first.body) == {"comment_id": "17894227972186120",
                                "media_id": "17918195224117851", "message": "Yes, since 4.1!"}
    assert form(second.body) == {"media_id": "17918195224119999",
                                 "message": "Thanks for the shout-out!"}


async def test_complete_looks_up_the_mentioned_comment(
    fake: FakeGraph, session: aiohttp.ClientSession
) -> None:
    in_comment, _ = mentions(parse_webhook(load("instagram_mentions.json")))
    full = await connector(fake, session).complete(in_comment)
    assert full.text == "@acmehome does the Hub work with Matter yet?"
    assert full.author.handle == "@pat.codes"
    assert full.created_at == datetime(2026, 11, 22, 9, 45, 30, tzinfo=UTC)
    assert "needs_lookup" not in full.extra
    assert full.external_id == in_comment.external_id
    (call,) = fake.requests
    assert call.path == "/v21.0/17841405822304914"
    assert call.arg("fields") == (
        "mentioned_comment.comment_id(17894227972186120){text,username,timestamp}")


async def test_rate_limit_error_waits_as_the_usage_header_says(
    fake: FakeGraph, session: aiohttp.ClientSession
) -> None:
    usage = {"104218392217161": [{"type": "pages", "call_count": 100, "total_cputime": 12,
                                  "total_time": 15, "estimated_time_to_regain_access": 7}]}
    fake.script(path="/comments", status=400, body=load("graph_error_rate_limit.json"),
                headers={"X-Business-Use-Case-Usage": json.dumps(usage)})
    (mention,) = mentions(parse_webhook(load("page_feed_comment.json")))
    with pytest.raises(RateLimited) as limited:
        await connector(fake, session).post_reply(reply(mention))
    assert limited.value.retry_after == 7 * 60


def test_usage_wait_defaults_to_a_minute() -> None:
    assert usage_wait({"X-App-Usage": '{"call_count":100,"total_time":20,"total_cputime":9}'}
                      ) == 60
    assert usage_wait({}) == 60
    assert usage_wait({"X-App-Usage": "not json"}) == 60


async def test_429_is_rate_limited(fake: FakeGraph, session: aiohttp.ClientSession) -> None:
    fake.script(path="/comments", status=429, body="")
    (mention,) = mentions(parse_webhook(load("page_feed_comment.json")))
    with pytest.raises(RateLimited):
        await connector(fake, session).post_reply(reply(mention))


@pytest.mark.parametrize(("name", "pattern"), [
    ("graph_error_permission.json", r"\(#200\) Permissions error \(code 200/1446036\)"),
    ("graph_error_token.json", r"access token.*Session has expired.*\(code 190/463\)"),
])
async def test_graph_refusal_is_permanent_with_the_reason(
    fake: FakeGraph, session: aiohttp.ClientSession, name: str, pattern: str
) -> None:
    fake.script(path="/comments", status=400, body=load(name))
    (mention,) = mentions(parse_webhook(load("page_feed_comment.json")))
    with pytest.raises(PermanentError, match=pattern):
        await connector(fake, session).post_reply(reply(mention))


async def test_server_error_and_timeout_are_transient(
    fake: FakeGraph, session: aiohttp.ClientSession
) -> None:
    (mention,) = mentions(parse_webhook(load("page_feed_comment.json")))
    meta = connector(fake, session, timeout=0.2)
    fake.script(path="/comments", status=500, body="")
    with pytest.raises(TransientError):
        await meta.post_reply(reply(mention))
    fake.script(path="/comments", hang=True)
    with pytest.raises(TransientError, match="timed out"):
        await meta.post_reply(reply(mention))


async def test_fetch_has_nothing_and_reply_rules(fake: FakeGraph, session: aiohttp.ClientSession
                                                 ) -> None:
    meta = connector(fake, session)
    page = await meta.fetch("keep-me")
    assert page.mentions == [] and page.cursor == "keep-me" and page.more is False
    other = Mention(source="reddit", external_id="t1_x", text="x",
                    created_at=datetime(2026, 11, 22, tzinfo=UTC))
    assert meta.reply_allowed(other)[0] is False
    with pytest.raises(PermanentError):
        await meta.post_reply(reply(other))
    assert fake.requests == []
    assert meta.reply_limits().max_length == 2200


async def test_config(fake: FakeGraph, session: aiohttp.ClientSession) -> None:
    text = "\n".join(config_problems(SourceConfig(name="m", kind="meta", token_env="T",
                                                  secret_env="S"), {}))
    for needle in ("T is not set", "S is not set", "verify_token_env"):
        assert needle in text
    source = SourceConfig(name="m", kind="meta", token_env="T", secret_env="S",
                          verify_token_env="V", base_url=fake.base_url)
    env = {"T": PAGE_TOKEN, "S": APP_SECRET.decode(), "V": VERIFY_TOKEN}
    assert config_problems(source, env) == []
    meta = build(source, session, env)
    body = load_bytes("instagram_comments.json")
    (mention,) = mentions(meta.accept(body, sign(body)))
    await meta.post_reply(reply(mention))
    assert fake.requests[-1].headers["Authorization"] == f"Bearer {PAGE_TOKEN}"
