"""Bluesky connector: parsing recorded answers, facets, session handling and HTTP behaviour."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.connectors.base import (
    Connector,
    PermanentError,
    RateLimited,
    ReplyRequest,
    TransientError,
)
from bot.connectors.bluesky import (
    BlueskyConnector,
    build,
    byte_span,
    config_problems,
    link_facets,
    parse_notifications,
    parse_search,
    tid_from_key,
)
from bot.domain.mention import Author, Mention
from bot.settings import SourceConfig
from tests.connectors.fakes.bluesky import BRAND_DID, IDENTIFIER, PASSWORD, FakeBluesky

DATA = Path(__file__).parent.parent / "data" / "bluesky"
TID = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


@pytest.fixture
async def fake() -> AsyncIterator[FakeBluesky]:
    server = FakeBluesky()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def connector(fake: FakeBluesky, session: aiohttp.ClientSession, **overrides: Any
              ) -> BlueskyConnector:
    options: dict[str, Any] = {"name": "brand-bsky", "session": session,
                               "identifier": IDENTIFIER, "password": PASSWORD,
                               "base_url": fake.url, "timeout": 2.0}
    options.update(overrides)
    return BlueskyConnector(**options)


def reply_request(mention: Mention, text: str = "Sorry! DM us.", key: str = "case-3:1"
                  ) -> ReplyRequest:
    return ReplyRequest(case_id=3, mention=mention, text=text, idempotency_key=key)


def ids(mentions: Any) -> list[str]:
    return [m.external_id.rsplit("/", 1)[-1] for m in mentions]


# --- parsing -----------------------------------------------------------------------------


def test_parse_recorded_notifications() -> None:
    result = parse_notifications(load("notifications.json"))

    mention, reply = result.mentions
    assert mention.external_id == "at://did:plc:ann123/app.bsky.feed.post/3lbq2xkwzpc2a"
    assert mention.text == "@acme.example 🚚 late again: https://example.com/orders/12345"
    assert mention.author == Author(handle="@ann.bsky.social", name="Ann 🌻", verified=True)
    assert mention.url == "https://bsky.app/profile/ann.bsky.social/post/3lbq2xkwzpc2a"
    assert mention.lang == "en"
    assert mention.created_at == datetime(2026, 11, 22, 8, 15, tzinfo=UTC)
    assert mention.thread_id == mention.external_id
    assert mention.in_reply_to is None
    assert reply.in_reply_to == "at://did:plc:acme/app.bsky.feed.post/3lbpzzzzzzz2a"
    assert reply.thread_id == "at://did:plc:root/app.bsky.feed.post/3lbpaaaaaaa2r"
    assert reply.extra["reason"] == "reply"
    # The like is passed over silently; the quote without an author is skipped with a reason.
    assert len(result.items) == 4
    assert len(result.skipped) == 1 and "author" in result.skipped[0]
    assert result.cursor == "2026-11-22T08:00:00.000Z"


def test_parse_recorded_search() -> None:
    result = parse_search(load("search_posts.json"), listen="q:acme")
    (post,) = result.mentions
    assert post.author.handle == "@cat.bsky.social"
    assert post.lang == "fr"
    assert post.extra["listen"] == "q:acme"
    assert result.cursor == "25"


@pytest.mark.parametrize("body", [[], {"notifications": "x"}, {"error": "InvalidRequest"}])
def test_parse_malformed_body_raises(body: Any) -> None:
    with pytest.raises(PermanentError):
        parse_notifications(body)
    with pytest.raises(PermanentError):
        parse_search(body, listen="q:x")


def test_link_facets_use_utf8_byte_offsets() -> None:
    text = "🚚 é https://example.com/a."
    (facet,) = link_facets(text)
    assert facet["index"] == {"byteStart": 8, "byteEnd": 29}
    assert facet["features"] == [{"$type": "app.bsky.richtext.facet#link",
                                  "uri": "https://example.com/a"}]
    assert text.encode()[8:29] == b"https://example.com/a"
    assert byte_span("ab", 1, 2) == {"byteStart": 1, "byteEnd": 2}


def test_record_keys_are_deterministic_tids() -> None:
    assert tid_from_key("case-3:1") == tid_from_key("case-3:1")
    assert tid_from_key("case-3:1") != tid_from_key("case-3:2")
    for key in ("a", "case-3:1", "x" * 200):
        assert TID.match(tid_from_key(key))


# --- listening ---------------------------------------------------------------------------


async def test_connector_satisfies_protocol(fake: FakeBluesky,
                                            session: aiohttp.ClientSession) -> None:
    assert isinstance(connector(fake, session), Connector)


async def test_first_poll_then_nothing_new_with_one_session(
    fake: FakeBluesky, session: aiohttp.ClientSession
) -> None:
    fake.add_notification(1, "ann.bsky.social", "@acme.example hi")
    fake.add_notification(2, "bob.bsky.social", "replying", reason="reply")
    fake.add_notification(3, "cat.bsky.social", "liked", reason="like")
    b = connector(fake, session)

    first = await b.fetch(None)
    assert ids(first.mentions) == ["3lbq000000001", "3lbq000000002"]
    request = fake.seen("listNotifications")[0]
    assert request.query["reasons"] == ["mention", "reply", "quote"]
    assert request.headers["Authorization"] == "Bearer access-1"

    again = await b.fetch(first.cursor)
    assert again.mentions == []
    third = await b.fetch(again.cursor)
    assert third.mentions == []
    assert len(fake.seen("createSession")) == 1


async def test_paging_sweep_takes_only_new_and_cursor_covers_returned(
    fake: FakeBluesky, session: aiohttp.ClientSession
) -> None:
    fake.add_notification(1, "ann.bsky.social", "seed")
    b = connector(fake, session, page_size=4)
    cursor = (await b.fetch(None)).cursor
    for n in range(2, 12):
        fake.add_notification(n, "bob.bsky.social", f"post {n}")

    pages = []
    while True:
        page = await b.fetch(cursor)
        pages.append(page)
        cursor = page.cursor
        if len(pages) == 1:
            fake.add_notification(50, "cat.bsky.social", "arrived mid-sweep")
        if not page.more:
            break

    assert [len(p.mentions) for p in pages] == [4, 4, 2]
    taken = [i for p in pages for i in ids(p.mentions)]
    assert sorted(taken) == [f"3lbq{n:09d}" for n in range(2, 12)]
    assert json.loads(pages[0].cursor or "")["notifications"]["page"]
    assert "page" not in json.loads(cursor or "")["notifications"]

    following = await b.fetch(cursor)
    assert ids(following.mentions) == ["3lbq000000050"]


async def test_restart_in_the_middle_of_paging_takes_every_post_once(
    fake: FakeBluesky, session: aiohttp.ClientSession
) -> None:
    fake.add_notification(1, "ann.bsky.social", "seed")
    cursor = (await connector(fake, session).fetch(None)).cursor
    for n in range(2, 25):
        fake.add_notification(n, "bob.bsky.social", f"post {n}")

    first = await connector(fake, session, page_size=5).fetch(cursor)
    assert first.more is True
    taken = ids(first.mentions)
    cursor = first.cursor
    while True:
        page = await connector(fake, session, page_size=5).fetch(cursor)
        taken += ids(page.mentions)
        cursor = page.cursor
        if not page.more:
            break

    assert len(taken) == len(set(taken)) == 23


async def test_keyword_search_is_swept_separately(fake: FakeBluesky,
                                                  session: aiohttp.ClientSession) -> None:
    fake.add_notification(1, "ann.bsky.social", "@acme.example acme boots")
    fake.add_post(2, "cat.bsky.social", "acme boots rock")
    b = connector(fake, session, keywords=["acme boots"])

    first = await b.fetch(None)
    assert sorted(ids(first.mentions)) == ["3lbq000000001", "3lbq000000002"]
    search = fake.seen("searchPosts")[0]
    assert search.arg("q") == "acme boots" and search.arg("sort") == "latest"

    fake.add_post(3, "dan.bsky.social", "acme boots again")
    second = await b.fetch(first.cursor)
    assert ids(second.mentions) == ["3lbq000000003"]


async def test_session_refreshed_once_when_access_token_expires(
    fake: FakeBluesky, session: aiohttp.ClientSession
) -> None:
    fake.add_notification(1, "ann.bsky.social", "seed")
    b = connector(fake, session)
    cursor = (await b.fetch(None)).cursor
    fake.expire_access()
    fake.add_notification(2, "ann.bsky.social", "after expiry")

    page = await b.fetch(cursor)
    await b.fetch(page.cursor)

    assert ids(page.mentions) == ["3lbq000000002"]
    assert len(fake.seen("createSession")) == 1
    refreshes = fake.seen("refreshSession")
    assert len(refreshes) == 1
    assert refreshes[0].headers["Authorization"] == "Bearer refresh-1"
    assert fake.seen("listNotifications")[-1].headers["Authorization"] == "Bearer access-2"


async def test_wrong_password_is_permanent(fake: FakeBluesky,
                                           session: aiohttp.ClientSession) -> None:
    with pytest.raises(PermanentError, match="Invalid identifier or password"):
        await connector(fake, session, password="nope").fetch(None)


async def test_rate_limited_uses_ratelimit_reset(fake: FakeBluesky,
                                                 session: aiohttp.ClientSession) -> None:
    reset = int(time.time()) + 300
    fake.script(path="listNotifications", status=429,
                body={"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"},
                headers={"ratelimit-reset": str(reset), "ratelimit-remaining": "0",
                         "ratelimit-limit": "3000"})
    with pytest.raises(RateLimited) as caught:
        await connector(fake, session).fetch(None)
    assert 290 <= caught.value.retry_after <= 301


async def test_server_error_and_timeout_are_transient(fake: FakeBluesky,
                                                      session: aiohttp.ClientSession) -> None:
    fake.script(path="listNotifications", status=502, body="bad gateway")
    with pytest.raises(TransientError):
        await connector(fake, session).fetch(None)
    fake.script(path="listNotifications", hang=True)
    with pytest.raises(TransientError, match="no answer"):
        await connector(fake, session, timeout=0.2).fetch(None)


async def test_malformed_body_raises_and_cursor_is_not_advanced(
    fake: FakeBluesky, session: aiohttp.ClientSession
) -> None:
    fake.add_notification(1, "ann.bsky.social", "seed")
    b = connector(fake, session)
    cursor = (await b.fetch(None)).cursor
    fake.add_notification(2, "ann.bsky.social", "next")
    fake.script(path="listNotifications", body="{not json")
    with pytest.raises(TransientError):
        await b.fetch(cursor)
    fake.script(path="listNotifications", body={"notifications": None})
    with pytest.raises(PermanentError):
        await b.fetch(cursor)
    assert ids((await b.fetch(cursor)).mentions) == ["3lbq000000002"]


async def test_unreadable_notification_is_skipped_with_reason(
    fake: FakeBluesky, session: aiohttp.ClientSession
) -> None:
    fake.add_notification(1, "ann.bsky.social", "seed")
    b = connector(fake, session)
    cursor = (await b.fetch(None)).cursor
    broken = fake.add_notification(2, "ann.bsky.social", "no author")
    fake.notifications[-1].pop("author")
    fake.add_notification(3, "bob.bsky.social", "fine")
    page = await b.fetch(cursor)
    assert ids(page.mentions) == ["3lbq000000003"]
    assert len(b.last_skipped) == 1 and broken["uri"] in b.last_skipped[0]


# --- replying ----------------------------------------------------------------------------


async def test_reply_to_a_reply_uses_its_root_and_byte_offset_facets(
    fake: FakeBluesky, session: aiohttp.ClientSession
) -> None:
    root = fake.add_post(1, "acme.example", "Our winter range")
    fake.add_notification(2, "ann.bsky.social", "late!", reason="reply", reply={
        "root": {"uri": root["uri"], "cid": root["cid"]},
        "parent": {"uri": root["uri"], "cid": root["cid"]},
    })
    b = connector(fake, session)
    mention = (await b.fetch(None)).mentions[0]
    text = "Sorry 🙏 @acme.example will fix: https://help.example/x"

    posted = await b.post_reply(reply_request(mention, text))

    (create,) = fake.seen("createRecord")
    body = create.body
    rkey = tid_from_key("case-3:1")
    assert body["repo"] == BRAND_DID
    assert body["collection"] == "app.bsky.feed.post"
    assert body["rkey"] == rkey
    record = body["record"]
    assert record["$type"] == "app.bsky.feed.post"
    assert record["text"] == text
    assert record["reply"] == {
        "root": {"uri": root["uri"], "cid": root["cid"]},
        "parent": {"uri": mention.external_id, "cid": fake.posts[mention.external_id]["cid"]},
    }
    assert record["facets"] == [
        {"index": {"byteStart": 11, "byteEnd": 24},
         "features": [{"$type": "app.bsky.richtext.facet#mention", "did": BRAND_DID}]},
        {"index": {"byteStart": 35, "byteEnd": 57},
         "features": [{"$type": "app.bsky.richtext.facet#link",
                       "uri": "https://help.example/x"}]},
    ]
    assert text.encode()[11:24] == b"@acme.example"
    assert text.encode()[35:57] == b"https://help.example/x"
    assert datetime.fromisoformat(record["createdAt"].replace("Z", "+00:00")).tzinfo
    assert posted.external_id == f"at://{BRAND_DID}/app.bsky.feed.post/{rkey}"
    assert posted.url == f"https://bsky.app/profile/acme.example/post/{rkey}"


async def test_reply_to_a_top_level_post_uses_it_as_root(
    fake: FakeBluesky, session: aiohttp.ClientSession
) -> None:
    view = fake.add_notification(1, "ann.bsky.social", "@acme.example help")
    b = connector(fake, session)
    mention = (await b.fetch(None)).mentions[0]
    await b.post_reply(reply_request(mention, "On it @nobody.invalid"))
    record = fake.seen("createRecord")[0].body["record"]
    ref = {"uri": view["uri"], "cid": view["cid"]}
    assert record["reply"] == {"root": ref, "parent": ref}
    assert "facets" not in record  # the handle does not resolve: no facet


async def test_retried_reply_returns_the_record_already_written(
    fake: FakeBluesky, session: aiohttp.ClientSession
) -> None:
    fake.add_notification(1, "ann.bsky.social", "@acme.example help")
    mention = (await connector(fake, session).fetch(None)).mentions[0]
    first = await connector(fake, session).post_reply(reply_request(mention))
    again = await connector(fake, session).post_reply(reply_request(mention))
    assert again == first
    assert len(fake.records) == 1
    assert len(fake.seen("createRecord")) == 2
    assert fake.seen("getRecord")[-1].arg("rkey") == tid_from_key("case-3:1")


async def test_reply_refused_is_permanent_with_reason(fake: FakeBluesky,
                                                      session: aiohttp.ClientSession) -> None:
    fake.add_notification(1, "ann.bsky.social", "@acme.example help")
    mention = (await connector(fake, session).fetch(None)).mentions[0]
    with pytest.raises(PermanentError, match="must not be longer than 300 graphemes"):
        await connector(fake, session).post_reply(reply_request(mention, "x" * 301))


async def test_reply_to_deleted_post_is_permanent(fake: FakeBluesky,
                                                  session: aiohttp.ClientSession) -> None:
    mention = Mention(source="bluesky", external_id="at://did:plc:x/app.bsky.feed.post/3abc",
                      text="gone", created_at=datetime.now(UTC))
    with pytest.raises(PermanentError, match="deleted"):
        await connector(fake, session).post_reply(reply_request(mention))
    assert fake.seen("createRecord") == []


async def test_reply_limits(fake: FakeBluesky, session: aiohttp.ClientSession) -> None:
    limits = connector(fake, session).reply_limits()
    assert (limits.max_length, limits.max_bytes) == (300, 3000)
    assert limits.count("👨‍👩‍👧 hi") == 4


# --- configuration -----------------------------------------------------------------------


def source(**values: Any) -> SourceConfig:
    base: dict[str, Any] = {"name": "brand-bsky", "kind": "bluesky",
                            "identifier": IDENTIFIER, "secret_env": "BSKY_APP_PASSWORD"}
    base.update(values)
    return SourceConfig.model_validate(base)


def test_config_problems() -> None:
    problems = "\n".join(config_problems(source(identifier=None, base_url="nope"), {}))
    assert "identifier" in problems
    assert "BSKY_APP_PASSWORD is not set" in problems
    assert "base_url" in problems
    assert config_problems(source(), {"BSKY_APP_PASSWORD": "x"}) == []


async def test_build(fake: FakeBluesky, session: aiohttp.ClientSession) -> None:
    b = build(source(base_url=fake.url), session, {"BSKY_APP_PASSWORD": PASSWORD})
    fake.add_notification(1, "ann.bsky.social", "hi")
    assert len((await b.fetch(None)).mentions) == 1
    with pytest.raises(PermanentError):
        build(source(), session, {})
