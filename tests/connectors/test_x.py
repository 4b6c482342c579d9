"""X connector: parsing recorded answers, and HTTP behaviour against a local fake X API."""

from __future__ import annotations

import json
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
from bot.connectors.x import (
    REPLY_REFUSED,
    XConnector,
    build,
    config_problems,
    parse_timeline,
    search_query,
)
from bot.domain.mention import Author, Mention
from bot.settings import SourceConfig
from tests.connectors.fakes.x import BRAND_HANDLE, BRAND_ID, NOT_ENGAGED, FakeX

DATA = Path(__file__).parent.parent / "data" / "x"


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


@pytest.fixture
async def fake() -> AsyncIterator[FakeX]:
    server = FakeX()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def connector(fake: FakeX, session: aiohttp.ClientSession, **overrides: Any) -> XConnector:
    options: dict[str, Any] = {
        "name": "brand-x",
        "session": session,
        "bearer_token": "app-bearer",
        "user_token": "user-token",
        "user_id": BRAND_ID,
        "handle": BRAND_HANDLE,
        "base_url": fake.url,
        "timeout": 2.0,
    }
    options.update(overrides)
    return XConnector(**options)


def reply_request(mention: Mention, text: str = "Sorry! We're on it.", key: str = "case-1:1"
                  ) -> ReplyRequest:
    return ReplyRequest(case_id=1, mention=mention, text=text, idempotency_key=key)


# --- parsing -----------------------------------------------------------------------------


def test_parse_recorded_page_normalises_posts_and_skips_unreadable_ones() -> None:
    result = parse_timeline(load("mentions_page.json"), brand_user_id=BRAND_ID)

    assert [m.external_id for m in result.mentions] == [
        "1861000000000000004", "1861000000000000003"]
    reply, quote = result.mentions
    assert reply.text == (
        "@AcmeCare my order never arrived & support is silent https://example.com/orders/42")
    assert reply.author == Author(handle="@ann_example", name="Ann Example", followers=1200,
                                  verified=True)
    assert reply.url == "https://x.com/ann_example/status/1861000000000000004"
    assert reply.in_reply_to == "1861000000000000001"
    assert reply.thread_id == "1861000000000000001"
    assert reply.lang == "en"
    assert reply.created_at == datetime(2026, 11, 22, 8, 15, tzinfo=UTC)
    # The quoting author is missing from includes (suspended): kept, without a handle.
    assert quote.author.handle == ""
    assert quote.url == "https://x.com/i/web/status/1861000000000000003"
    assert quote.lang is None
    assert quote.extra["quotes_brand"] is True
    assert len(result.skipped) == 1
    assert "1861000000000000002" in result.skipped[0]
    assert "created_at" in result.skipped[0]
    assert result.newest_id == "1861000000000000004"
    assert result.next_token == "7140dibdnow9c7btw3w29grvxfcgvpb9n9coehpk7xz5i"


def test_parse_empty_page() -> None:
    result = parse_timeline(load("empty_page.json"))
    assert result.mentions == ()
    assert result.newest_id is None
    assert result.next_token is None


@pytest.mark.parametrize("body", [[], "x", {"data": {"id": "1"}}, {"errors": [{"detail": "x"}]}])
def test_parse_malformed_body_raises(body: Any) -> None:
    with pytest.raises(PermanentError):
        parse_timeline(body)


def test_search_query_quotes_phrases_and_excludes_brand() -> None:
    assert search_query(["acme", "acme support"], "@AcmeCare") == (
        '(acme OR "acme support") -is:retweet -from:AcmeCare')


# --- listening ---------------------------------------------------------------------------


async def test_connector_satisfies_protocol(fake: FakeX, session: aiohttp.ClientSession
                                            ) -> None:
    assert isinstance(connector(fake, session), Connector)


async def test_first_poll_takes_newest_page_then_nothing_new(
    fake: FakeX, session: aiohttp.ClientSession
) -> None:
    for n in range(3):
        fake.add_mention(100 + n, "ann", f"@AcmeCare hello {n}")
    x = connector(fake, session)

    first = await x.fetch(None)
    assert [m.external_id for m in first.mentions] == ["100", "101", "102"]
    assert first.more is False
    request = fake.seen("/mentions")[0]
    assert request.headers["Authorization"] == "Bearer app-bearer"
    assert request.arg("since_id") is None
    assert request.arg("expansions") == "author_id,referenced_tweets.id"
    assert "conversation_id" in (request.arg("tweet.fields") or "")

    again = await x.fetch(first.cursor)
    assert again.mentions == []
    assert fake.seen("/mentions")[-1].arg("since_id") == "102"


async def test_paging_sweeps_with_one_since_id_and_cursor_covers_only_returned(
    fake: FakeX, session: aiohttp.ClientSession
) -> None:
    fake.add_mention(100, "ann", "@AcmeCare old")
    x = connector(fake, session, page_size=10)
    start = (await x.fetch(None)).cursor
    for n in range(101, 126):
        fake.add_mention(n, "bob", f"@AcmeCare new {n}")

    pages = []
    cursor = start
    while True:
        page = await x.fetch(cursor)
        pages.append(page)
        cursor = page.cursor
        if not page.more:
            break
        # A post arriving mid-sweep is newer than the sweep's top: the next sweep takes it.
        if len(pages) == 1:
            fake.add_mention(200, "cat", "@AcmeCare arrived during paging")

    assert [len(p.mentions) for p in pages] == [10, 10, 5]
    sweep_requests = fake.seen("/mentions")[1:]
    assert [r.arg("since_id") for r in sweep_requests] == ["100", "100", "100"]
    assert [r.arg("pagination_token") for r in sweep_requests] == [None, "before-116", "before-106"]
    taken = [m.external_id for p in pages for m in p.mentions]
    assert sorted(taken, key=int) == [str(n) for n in range(101, 126)]

    following = await x.fetch(cursor)
    assert [m.external_id for m in following.mentions] == ["200"]
    assert fake.seen("/mentions")[-1].arg("since_id") == "125"


async def test_restart_in_the_middle_of_paging_takes_every_post_once(
    fake: FakeX, session: aiohttp.ClientSession
) -> None:
    fake.add_mention(100, "ann", "@AcmeCare seed")
    start = (await connector(fake, session).fetch(None)).cursor
    for n in range(101, 131):
        fake.add_mention(n, "bob", f"@AcmeCare {n}")

    first = await connector(fake, session, page_size=10).fetch(start)
    assert first.more is True
    taken = [m.external_id for m in first.mentions]
    cursor = first.cursor
    while True:
        page = await connector(fake, session, page_size=10).fetch(cursor)
        taken += [m.external_id for m in page.mentions]
        cursor = page.cursor
        if not page.more:
            break

    assert len(taken) == len(set(taken)) == 30
    assert set(taken) == {str(n) for n in range(101, 131)}


async def test_keyword_search_runs_with_mentions_and_deduplicates(
    fake: FakeX, session: aiohttp.ClientSession
) -> None:
    shared = fake.add_mention(300, "ann", "@AcmeCare acme boots leak")
    fake.searchable.append(shared)
    fake.searchable.append(fake.add_mention(301, "dan", "acme boots are great"))
    fake.mentions.pop()  # 301 is found by search only
    x = connector(fake, session, keywords=["acme boots"])

    page = await x.fetch(None)

    assert [m.external_id for m in page.mentions] == ["300", "301"]
    assert fake.seen("/search/recent")[0].arg("query") == (
        '"acme boots" -is:retweet -from:AcmeCare')
    by_id = {m.external_id: m for m in page.mentions}
    assert x.reply_allowed(by_id["300"]) == (True, "")
    assert x.reply_allowed(by_id["301"]) == (
        False, REPLY_REFUSED.format(handle=BRAND_HANDLE))
    assert REPLY_REFUSED.format(handle=BRAND_HANDLE) == (
        "X only allows replies where the author mentioned or quoted the brand (@AcmeCare)")


async def test_reply_allowed_for_quotes_of_the_brand(fake: FakeX,
                                                      session: aiohttp.ClientSession) -> None:
    result = parse_timeline(load("mentions_page.json"), listen="search", brand_user_id=BRAND_ID)
    quote = result.mentions[1]
    quote_without_handle = Mention(source="x", external_id=quote.external_id, text="nice",
                                   created_at=quote.created_at, extra=quote.extra)
    assert connector(fake, session).reply_allowed(quote_without_handle) == (True, "")


async def test_rate_limited_uses_x_reset_header(fake: FakeX, session: aiohttp.ClientSession
                                                ) -> None:
    reset = int(time.time()) + 120
    fake.script(path="/mentions", status=429, body={"title": "Too Many Requests"},
                headers={"x-rate-limit-reset": str(reset), "x-rate-limit-remaining": "0"})
    with pytest.raises(RateLimited) as caught:
        await connector(fake, session).fetch(None)
    assert 110 <= caught.value.retry_after <= 121


async def test_server_error_is_transient(fake: FakeX, session: aiohttp.ClientSession) -> None:
    fake.script(path="/mentions", status=503, body={"title": "Service Unavailable"})
    with pytest.raises(TransientError) as caught:
        await connector(fake, session).fetch(None)
    assert not isinstance(caught.value, RateLimited)


async def test_timeout_is_transient(fake: FakeX, session: aiohttp.ClientSession) -> None:
    fake.script(path="/mentions", hang=True)
    with pytest.raises(TransientError, match="no answer"):
        await connector(fake, session, timeout=0.2).fetch(None)


async def test_unauthorised_is_permanent(fake: FakeX, session: aiohttp.ClientSession) -> None:
    with pytest.raises(PermanentError, match="credentials refused"):
        await connector(fake, session, bearer_token="wrong").fetch(None)


async def test_malformed_body_raises_and_cursor_is_not_advanced(
    fake: FakeX, session: aiohttp.ClientSession
) -> None:
    fake.add_mention(100, "ann", "@AcmeCare seed")
    x = connector(fake, session)
    cursor = (await x.fetch(None)).cursor
    fake.add_mention(101, "ann", "@AcmeCare after")
    fake.script(path="/mentions", status=200, body="<html>upstream glitch</html>")
    with pytest.raises(TransientError):
        await x.fetch(cursor)
    fake.script(path="/mentions", status=200, body={"data": "not a list"})
    with pytest.raises(PermanentError):
        await x.fetch(cursor)

    page = await x.fetch(cursor)
    assert [m.external_id for m in page.mentions] == ["101"]


async def test_malformed_element_is_skipped_with_reason(
    fake: FakeX, session: aiohttp.ClientSession
) -> None:
    fake.add_mention(100, "ann", "@AcmeCare fine")
    broken = fake.add_mention(101, "ann", "@AcmeCare broken")
    del broken["created_at"]
    x = connector(fake, session)
    page = await x.fetch(None)
    assert [m.external_id for m in page.mentions] == ["100"]
    assert len(x.last_skipped) == 1 and "101" in x.last_skipped[0]
    fake.add_mention(102, "ann", "@AcmeCare next")
    assert [m.external_id for m in (await x.fetch(page.cursor)).mentions] == ["102"]


# --- replying ----------------------------------------------------------------------------


async def test_reply_posts_exact_body_with_user_token(fake: FakeX,
                                                      session: aiohttp.ClientSession) -> None:
    fake.add_mention(100, "ann", "@AcmeCare where is my parcel?")
    x = connector(fake, session)
    mention = (await x.fetch(None)).mentions[0]

    posted = await x.post_reply(reply_request(mention))

    create = fake.seen("/2/tweets", "POST")
    assert len(create) == 1
    assert create[0].body == {"text": "Sorry! We're on it.",
                              "reply": {"in_reply_to_tweet_id": "100"}}
    assert create[0].headers["Authorization"] == "Bearer user-token"
    assert posted.external_id == fake.posted[0]["id"]
    assert posted.url == f"https://x.com/AcmeCare/status/{posted.external_id}"


async def test_retried_reply_is_found_not_posted_twice(fake: FakeX,
                                                       session: aiohttp.ClientSession) -> None:
    fake.add_mention(100, "ann", "@AcmeCare where is my parcel?")
    mention = (await connector(fake, session).fetch(None)).mentions[0]
    first = await connector(fake, session).post_reply(reply_request(mention))

    # A new process (the outbox retrying after a crash) checks the conversation first.
    again = await connector(fake, session).post_reply(reply_request(mention))

    assert again.external_id == first.external_id
    assert len(fake.seen("/2/tweets", "POST")) == 1
    check = fake.seen("/search/recent")[-1]
    assert check.arg("query") == "conversation_id:100 from:AcmeCare"


async def test_reply_refused_is_permanent_with_reason(fake: FakeX,
                                                      session: aiohttp.ClientSession) -> None:
    fake.add_mention(100, "ann", "acme is slow")
    fake.reply_forbidden.add("100")
    mention = (await connector(fake, session).fetch(None)).mentions[0]
    with pytest.raises(PermanentError) as caught:
        await connector(fake, session).post_reply(reply_request(mention))
    assert NOT_ENGAGED in str(caught.value)


async def test_reply_without_user_token_is_refused(fake: FakeX,
                                                   session: aiohttp.ClientSession) -> None:
    x = connector(fake, session, user_token=None)
    assert x.can_reply is False
    mention = Mention(source="x", external_id="1", text="hi", created_at=datetime.now(UTC))
    with pytest.raises(PermanentError, match="user-context token"):
        await x.post_reply(reply_request(mention))
    assert fake.seen("/2/tweets", "POST") == []


async def test_reply_limits_are_x_weighted(fake: FakeX, session: aiohttp.ClientSession) -> None:
    limits = connector(fake, session).reply_limits()
    assert limits.max_length == 280
    assert limits.count("see https://example.com/a/very/long/path/indeed") == 4 + 23


# --- configuration -----------------------------------------------------------------------


def source(**values: Any) -> SourceConfig:
    base: dict[str, Any] = {"name": "brand-x", "kind": "x", "token_env": "X_BEARER",
                            "user_id": BRAND_ID, "handle": BRAND_HANDLE}
    base.update(values)
    return SourceConfig.model_validate(base)


def test_config_problems_lists_each_missing_piece() -> None:
    problems = config_problems(
        source(user_id="abc", handle=None, keywords=["acme"], base_url="ftp://x",
               user_token_env="X_USER"),
        {},
    )
    joined = "\n".join(problems)
    assert "X_BEARER is not set" in joined
    assert "user_id" in joined
    assert "X_USER is not set" in joined
    assert "handle" in joined
    assert "base_url" in joined
    assert config_problems(source(), {"X_BEARER": "t"}) == []


async def test_build_reads_secrets_from_env(fake: FakeX, session: aiohttp.ClientSession) -> None:
    x = build(source(base_url=fake.url, user_token_env="X_USER"), session,
              {"X_BEARER": "app-bearer", "X_USER": "user-token"})
    assert x.name == "brand-x" and x.can_reply
    fake.add_mention(100, "ann", "@AcmeCare hi")
    assert len((await x.fetch(None)).mentions) == 1
    with pytest.raises(PermanentError):
        build(source(), session, {})
