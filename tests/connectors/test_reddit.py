from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
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
from bot.connectors.reddit import (
    RedditConnector,
    Stream,
    build,
    config_problems,
    parse_comment_response,
    parse_listing,
)
from bot.domain.mention import Mention
from bot.settings import SourceConfig
from tests.connectors.fakes.reddit import (
    CLIENT_ID,
    CLIENT_SECRET,
    PASSWORD,
    USERNAME,
    FakeReddit,
    form,
    load,
)

NOW = datetime(2025, 11, 22, 12, 0, tzinfo=UTC)
INBOX = Stream("inbox", "/message/mentions", {})


@pytest.fixture
async def fake() -> AsyncIterator[FakeReddit]:
    server = FakeReddit()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def connector(fake: FakeReddit, session: aiohttp.ClientSession, **kwargs: Any) -> RedditConnector:
    options: dict[str, Any] = {
        "name": "brand-reddit",
        "session": session,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "username": USERNAME,
        "password": PASSWORD,
        "user_agent": "python:mentiondesk-tests:0.1 (by /u/acme_support)",
        "streams": [INBOX],
        "api_url": fake.url,
        "auth_url": fake.url,
        "clock": lambda: NOW,
        "timeout": 0.5,
    }
    options.update(kwargs)
    return RedditConnector(**options)


def comment(fullname: str, created: float, body: str = "hi u/acme_support") -> dict[str, Any]:
    short = fullname.removeprefix("t1_")
    return {"kind": "t1", "data": {
        "subreddit": "acmefans", "id": short, "author": "someone", "parent_id": "t3_1g2h3j4",
        "type": "username_mention", "body": body, "was_comment": True, "name": fullname,
        "created": created, "created_utc": created,
        "context": f"/r/acmefans/comments/1g2h3j4/weekly_help_thread/{short}/?context=3",
    }}


def request(mention: Mention, text: str = "We're on it!") -> ReplyRequest:
    return ReplyRequest(case_id=7, mention=mention, text=text, idempotency_key="case-7-r1")


# -- parsing --------------------------------------------------------------------------------

def test_parse_inbox_listing_normalises_and_skips_with_reasons() -> None:
    result = parse_listing(load("inbox_mentions.json"))

    by_id = {m.external_id: m for m in result.mentions}
    assert sorted(by_id) == ["t1_lq79191", "t1_lq7b3b3", "t1_lq7e5e5"]
    first = by_id["t1_lq7e5e5"]
    assert first.source == "reddit"
    assert first.text == "u/acme_support the app logs me out every hour, any fix?"
    assert first.author.handle == "u/dana_r"
    assert first.url == ("https://www.reddit.com/r/acmefans/comments/1g2h3j4/"
                         "weekly_help_thread/lq7e5e5/?context=3")
    assert first.in_reply_to == "t1_lq7d111"
    assert first.thread_id == "t3_1g2h3j4"
    assert first.created_at == datetime(2025, 11, 22, 11, 30, tzinfo=UTC)
    deleted_author = by_id["t1_lq7b3b3"]
    assert deleted_author.author.handle == ""
    assert deleted_author.extra["author_deleted"] is True
    assert "&amp;" in deleted_author.text  # raw_json=1 on the wire; recorded file keeps escapes
    assert result.skipped == [
        "t1_lq7c4c4: comment was deleted or removed",
        "t1_lq7a2a2: missing or invalid 'created_utc'",
    ]


def test_parse_search_listing_posts() -> None:
    result = parse_listing(load("search_new.json"))
    post, link = result.mentions
    assert post.external_id == "t3_1g2zzzz"
    assert post.text == ("Acme Hub bricked after 4.2\n\n"
                         "Has anyone else had their Acme Hub brick after the update?")
    assert post.thread_id == "t3_1g2zzzz" and post.in_reply_to is None
    assert post.url == "https://www.reddit.com/r/gadgets/comments/1g2zzzz/acme_hub_bricked_after_42/"
    assert link.text == "Acme Hub review (link)"
    assert link.extra["locked"] is True


@pytest.mark.parametrize("body", [None, [], {"kind": "t1"}, {"kind": "Listing", "data": {}}])
def test_parse_listing_rejects_a_body_that_is_not_a_listing(body: Any) -> None:
    with pytest.raises(PermanentError):
        parse_listing(body)


def test_parse_comment_response() -> None:
    posted = parse_comment_response(load("comment_ok.json"))
    assert posted.external_id == "t1_lq8f6f6"
    assert posted.url.endswith("/r/acmefans/comments/1g2h3j4/weekly_help_thread/lq8f6f6/")
    with pytest.raises(PermanentError, match="that thread is locked"):
        parse_comment_response(load("comment_refused.json"))
    with pytest.raises(RateLimited) as limited:
        parse_comment_response(load("comment_ratelimit.json"))
    assert limited.value.retry_after == 180


# -- fetching -------------------------------------------------------------------------------

async def test_first_poll_logs_in_and_reads_the_inbox(
    fake: FakeReddit, session: aiohttp.ClientSession
) -> None:
    reddit = connector(fake, session)
    assert isinstance(reddit, Connector)

    page = await reddit.fetch(None)

    assert [m.external_id for m in page.mentions] == ["t1_lq79191", "t1_lq7b3b3", "t1_lq7e5e5"]
    assert page.more is False
    (token,) = fake.seen("/api/v1/access_token", "POST")
    assert form(token.body) == {"grant_type": "password", "username": USERNAME,
                                "password": PASSWORD}
    assert token.headers["User-Agent"].startswith("python:mentiondesk-tests")
    (listing,) = fake.seen("/message/mentions", "GET")
    assert listing.headers["Authorization"] == "bearer tok-1"
    assert listing.headers["User-Agent"].startswith("python:mentiondesk-tests")
    assert listing.arg("limit") == "100" and listing.arg("raw_json") == "1"
    assert listing.arg("after") is None

    again = await reddit.fetch(page.cursor)
    assert again.mentions == []
    assert len(fake.seen("/api/v1/access_token")) == 1, "the token is kept until it expires"


async def test_lookback_limits_the_first_poll(
    fake: FakeReddit, session: aiohttp.ClientSession
) -> None:
    reddit = connector(fake, session, lookback=timedelta(minutes=50))
    page = await reddit.fetch(None)
    assert [m.external_id for m in page.mentions] == ["t1_lq7e5e5"]


async def test_paging_advances_only_over_what_was_returned(
    fake: FakeReddit, session: aiohttp.ClientSession
) -> None:
    reddit = connector(fake, session, page_size=2)

    first = await reddit.fetch(None)
    assert [m.external_id for m in first.mentions] == ["t1_lq7e5e5"]
    assert first.more is True
    second = await reddit.fetch(first.cursor)
    assert [m.external_id for m in second.mentions] == ["t1_lq7b3b3"]
    assert second.more is True
    third = await reddit.fetch(second.cursor)
    assert [m.external_id for m in third.mentions] == ["t1_lq79191"]
    assert third.more is False
    assert [r.arg("after") for r in fake.seen("/message/mentions")] == [
        None, "t1_lq7c4c4", "t1_lq7a2a2"]

    fake.add_newest(comment("t1_new2", 1763812500.0), comment("t1_new1", 1763812000.0))
    fourth = await reddit.fetch(third.cursor)
    assert [m.external_id for m in fourth.mentions] == ["t1_new1", "t1_new2"]
    assert fourth.more is True  # two new plus the old boundary do not fit a page of 2
    fifth = await reddit.fetch(fourth.cursor)
    assert fifth.mentions == [] and fifth.more is False
    assert (await reddit.fetch(fifth.cursor)).mentions == []


async def test_same_second_items_are_neither_lost_nor_repeated(
    fake: FakeReddit, session: aiohttp.ClientSession
) -> None:
    fake.inbox = [comment("t1_b", 1763812000.0), comment("t1_a", 1763812000.0)]
    reddit = connector(fake, session)
    first = await reddit.fetch(None)
    assert {m.external_id for m in first.mentions} == {"t1_a", "t1_b"}
    fake.add_newest(comment("t1_c", 1763812000.0))
    second = await reddit.fetch(first.cursor)
    assert [m.external_id for m in second.mentions] == ["t1_c"]


async def test_restart_in_the_middle_of_paging(
    fake: FakeReddit, session: aiohttp.ClientSession
) -> None:
    fake.inbox = [comment(f"t1_x{n:02d}", 1763812000.0 - n * 60) for n in range(7)]
    first = await connector(fake, session, page_size=3).fetch(None)
    assert first.more is True

    seen = [m.external_id for m in first.mentions]
    cursor = first.cursor
    for _ in range(5):
        page = await connector(fake, session, page_size=3).fetch(cursor)
        seen += [m.external_id for m in page.mentions]
        cursor = page.cursor
        if not page.more:
            break
    assert sorted(seen) == [f"t1_x{n:02d}" for n in range(7)]
    assert len(seen) == len(set(seen))


async def test_streams_are_read_round_robin_with_search_parameters(
    fake: FakeReddit, session: aiohttp.ClientSession
) -> None:
    source = SourceConfig(name="brand-reddit", kind="reddit", base_url=fake.url,
                          secret_env="REDDIT_SECRET", keywords=["acme hub"],
                          client_id=CLIENT_ID, username=USERNAME, password_env="REDDIT_PASSWORD",
                          auth_url=fake.url, subreddits=["gadgets", "r/acmefans"],
                          lookback_hours=24 * 365 * 50)
    env = {"REDDIT_SECRET": CLIENT_SECRET, "REDDIT_PASSWORD": PASSWORD}
    assert config_problems(source, env) == []
    reddit = build(source, session, env)

    inbox = await reddit.fetch(None)
    assert inbox.more is True
    search = await reddit.fetch(inbox.cursor)
    assert search.more is False
    assert [m.external_id for m in search.mentions] == ["t3_1g2yyyy", "t3_1g2zzzz"]
    (call,) = fake.seen("/search")
    assert call.path == "/r/gadgets+acmefans/search"
    assert (call.arg("q"), call.arg("sort"), call.arg("restrict_sr")) == ("acme hub", "new", "on")
    assert call.headers["User-Agent"] == "python:mentiondesk:0.1 (by /u/acme_support)"
    again = await reddit.fetch(search.cursor)
    assert again.mentions == [] and again.more is True
    assert len(fake.seen("/message/mentions")) == 2


# -- failures -------------------------------------------------------------------------------

async def test_429_uses_reddits_reset_header(
    fake: FakeReddit, session: aiohttp.ClientSession
) -> None:
    fake.script(path="/message/mentions", status=429, body={"message": "Too Many Requests"},
                headers={"x-ratelimit-remaining": "0", "x-ratelimit-used": "100",
                         "x-ratelimit-reset": "42"})
    with pytest.raises(RateLimited) as limited:
        await connector(fake, session).fetch(None)
    assert limited.value.retry_after == 42


async def test_used_up_window_is_honoured_before_asking_again(
    fake: FakeReddit, session: aiohttp.ClientSession
) -> None:
    reddit = connector(fake, session)
    fake.script(path="/message/mentions", body=load("inbox_mentions.json"),
                headers={"x-ratelimit-remaining": "0.0", "x-ratelimit-reset": "300"})
    await reddit.fetch(None)
    with pytest.raises(RateLimited) as limited:
        await reddit.fetch(None)
    assert 290 < limited.value.retry_after <= 300
    assert len(fake.seen("/message/mentions")) == 1


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_transient_and_keep_the_cursor(
    fake: FakeReddit, session: aiohttp.ClientSession, status: int
) -> None:
    reddit = connector(fake, session)
    fake.script(path="/message/mentions", status=status, body="<html>oops</html>")
    with pytest.raises(TransientError):
        await reddit.fetch(None)
    page = await reddit.fetch(None)
    assert len(page.mentions) == 3


async def test_timeout_is_transient(fake: FakeReddit, session: aiohttp.ClientSession) -> None:
    fake.script(path="/message/mentions", hang=True)
    with pytest.raises(TransientError, match="timed out"):
        await connector(fake, session, timeout=0.2).fetch(None)


async def test_malformed_body_raises_and_the_cursor_does_not_move(
    fake: FakeReddit, session: aiohttp.ClientSession
) -> None:
    reddit = connector(fake, session)
    first = await reddit.fetch(None)
    fake.add_newest(comment("t1_new1", 1763812000.0))
    fake.script(path="/message/mentions", body={"kind": "Listing", "data": {"children": 5}})
    with pytest.raises(PermanentError):
        await reddit.fetch(first.cursor)
    fake.script(path="/message/mentions", body="not json at all")
    with pytest.raises(TransientError):
        await reddit.fetch(first.cursor)
    retry = await reddit.fetch(first.cursor)
    assert [m.external_id for m in retry.mentions] == ["t1_new1"]


async def test_wrong_password_is_permanent(fake: FakeReddit, session: aiohttp.ClientSession
                                           ) -> None:
    with pytest.raises(PermanentError, match="invalid_grant"):
        await connector(fake, session, password="nope").fetch(None)
    with pytest.raises(PermanentError, match="client id or secret"):
        await connector(fake, session, client_secret="nope").fetch(None)


async def test_expired_token_is_renewed(fake: FakeReddit, session: aiohttp.ClientSession) -> None:
    fake.expires_in = 30  # inside the safety margin: renewed before every call
    reddit = connector(fake, session)
    page = await reddit.fetch(None)
    fake.token = "tok-2"
    await reddit.fetch(page.cursor)
    assert len(fake.seen("/api/v1/access_token")) == 2
    assert fake.seen("/message/mentions")[-1].headers["Authorization"] == "bearer tok-2"


async def test_refused_token_is_dropped_and_transient(
    fake: FakeReddit, session: aiohttp.ClientSession
) -> None:
    reddit = connector(fake, session)
    page = await reddit.fetch(None)
    fake.token = "tok-2"  # Reddit revoked the old one
    with pytest.raises(TransientError):
        await reddit.fetch(page.cursor)
    assert (await reddit.fetch(page.cursor)).mentions == []
    assert len(fake.seen("/api/v1/access_token")) == 2


# -- replying -------------------------------------------------------------------------------

async def test_reply_posts_the_documented_form(
    fake: FakeReddit, session: aiohttp.ClientSession
) -> None:
    reddit = connector(fake, session)
    mention = parse_listing(load("inbox_mentions.json")).mentions[0]

    posted = await reddit.post_reply(request(mention, "Sorry! Could you DM us your email?"))

    assert posted.external_id == "t1_lq8f6f6"
    assert posted.url == ("https://www.reddit.com/r/acmefans/comments/1g2h3j4/"
                          "weekly_help_thread/lq8f6f6/")
    (call,) = fake.seen("/api/comment", "POST")
    assert form(call.body) == {"thing_id": "t1_lq7e5e5",
                               "text": "Sorry! Could you DM us your email?",
                               "api_type": "json"}
    assert call.headers["Authorization"] == "bearer tok-1"
    assert call.headers["Content-Type"] == "application/x-www-form-urlencoded"


async def test_reply_refusal_inside_a_200_is_permanent(
    fake: FakeReddit, session: aiohttp.ClientSession
) -> None:
    fake.comment_answer = load("comment_refused.json")
    mention = parse_listing(load("inbox_mentions.json")).mentions[0]
    with pytest.raises(PermanentError, match=r"that thread is locked \(THREAD_LOCKED\)"):
        await connector(fake, session).post_reply(request(mention))


async def test_reply_403_is_permanent(fake: FakeReddit, session: aiohttp.ClientSession) -> None:
    fake.script(path="/api/comment", status=403, body={"message": "Forbidden", "error": 403})
    mention = parse_listing(load("inbox_mentions.json")).mentions[0]
    with pytest.raises(PermanentError, match="403"):
        await connector(fake, session).post_reply(request(mention))


async def test_locked_thread_is_not_answered(fake: FakeReddit, session: aiohttp.ClientSession
                                             ) -> None:
    reddit = connector(fake, session)
    locked = parse_listing(load("search_new.json")).mentions[1]
    assert reddit.reply_allowed(locked) == (
        False, "The Reddit thread is locked: new comments are not accepted")
    with pytest.raises(PermanentError, match="locked"):
        await reddit.post_reply(request(locked))
    assert fake.seen("/api/comment") == []
    assert reddit.reply_limits().max_length == 10_000


def test_config_problems_name_every_missing_piece(session: aiohttp.ClientSession) -> None:
    source = SourceConfig(name="r", kind="reddit", base_url="ftp://x", secret_env="NOPE",
                          inbox_mentions=False)
    problems = config_problems(source, {})
    text = "\n".join(problems)
    for needle in ("client_id", "NOPE", "username", "password_env", "base_url", "nothing to read"):
        assert needle in text
    with pytest.raises(PermanentError):
        build(source, session, {})


async def test_retried_reply_finds_the_comment_instead_of_posting_twice(
    fake: FakeReddit, session: aiohttp.ClientSession
) -> None:
    mention = parse_listing(load("inbox_mentions.json")).mentions[0]
    first = await connector(fake, session).post_reply(request(mention, "Sorry! Please DM us."))
    # The process crashed before recording the reply; the outbox retries from a new process.
    again = await connector(fake, session).post_reply(request(mention, "Sorry!  Please DM us."))

    assert again.external_id == first.external_id == "t1_lq8f6f6"
    assert fake.comment_count == 1
    assert len(fake.seen("/api/comment", "POST")) == 1
    lookup = fake.seen("/user/acme_support/comments")[-1]
    assert (lookup.arg("sort"), lookup.arg("limit")) == ("new", "100")


async def test_a_comment_lost_in_a_timeout_is_found_right_away(
    fake: FakeReddit, session: aiohttp.ClientSession
) -> None:
    mention = parse_listing(load("inbox_mentions.json")).mentions[0]
    reddit = connector(fake, session, timeout=0.5)
    fake.lose_next_answer = True
    # The lookup before posting, then the post that times out, then the lookup that finds it.
    fake.script(path="/user/", body={"kind": "Listing", "data": {"children": [],
                                                                  "after": None}})

    posted = await reddit.post_reply(request(mention, "Thanks for waiting"))

    assert posted.external_id == "t1_lq8f6f6"
    assert fake.comment_count == 1
    again = await reddit.post_reply(request(mention, "Thanks for waiting"))
    assert again == posted and fake.comment_count == 1
