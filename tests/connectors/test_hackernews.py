from __future__ import annotations

import json
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
from bot.connectors.hackernews import (
    NO_REPLY_REASON,
    HackerNewsConnector,
    build,
    config_problems,
    parse_search,
)
from bot.settings import SourceConfig
from tests.connectors.fakes.hackernews import FakeAlgolia, hit, load

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
SINCE = int((NOW - timedelta(hours=24)).timestamp())
NEWEST = 1795340400


@pytest.fixture
async def fake() -> AsyncIterator[FakeAlgolia]:
    server = FakeAlgolia()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def connector(fake: FakeAlgolia, session: aiohttp.ClientSession, **kwargs: Any
              ) -> HackerNewsConnector:
    options: dict[str, Any] = {"name": "hn", "session": session, "keywords": ["acme"],
                               "api_url": fake.url, "clock": lambda: NOW, "timeout": 0.5}
    options.update(kwargs)
    return HackerNewsConnector(**options)


def ids(page: Any) -> list[str]:
    return [m.external_id for m in page.mentions]


# -- parsing --------------------------------------------------------------------------------

def test_parse_recorded_answer() -> None:
    result = parse_search(load())

    comment, story, ask = result.mentions
    assert comment.source == "hackernews"
    assert comment.external_id == "42170420"
    assert comment.text == ("The Acme Hub rollback instructions are at "
                            "https://acme.example/rollback\n\nWorked for me & two friends.")
    assert comment.url == "https://news.ycombinator.com/item?id=42170420"
    assert comment.author.handle == "tptacek"
    assert comment.in_reply_to == "42170111"
    assert comment.thread_id == "42170001"
    assert comment.created_at == datetime(2026, 11, 22, 9, 40, tzinfo=UTC)
    assert comment.extra["story_title"] == "Acme Hub 4.2 update bricks devices"
    assert story.text == ("Acme Hub 4.2 update bricks devices\n\n"
                          "https://news.example/2026/11/acme-hub-update-pulled")
    assert story.thread_id == "42170001" and story.in_reply_to is None
    assert ask.text == ("Ask HN: Alternatives to Acme Hub?\n\n"
                        "Has anyone moved off Acme for home automation?\n\nLooking for options.")
    assert result.skipped == ["42168999: comment has no text (deleted?)",
                              "42168500: missing 'created_at_i'"]
    assert (result.page, result.nb_pages) == (0, 1)


@pytest.mark.parametrize("body", [None, [], {"hits": "x"}, {"hits": [], "page": 0}])
def test_parse_refuses_a_body_without_hits(body: Any) -> None:
    with pytest.raises(PermanentError):
        parse_search(body)


# -- fetching -------------------------------------------------------------------------------

async def test_first_poll_and_no_new_data(fake: FakeAlgolia, session: aiohttp.ClientSession
                                          ) -> None:
    hn = connector(fake, session)
    assert isinstance(hn, Connector)

    first = await hn.fetch(None)
    assert ids(first) == ["42169000", "42170001", "42170420"]
    assert first.more is False
    (request,) = fake.requests
    assert request.arg("query") == "acme"
    assert request.arg("tags") == "(story,comment)"
    assert request.arg("numericFilters") == f"created_at_i>={SINCE}"
    assert request.arg("hitsPerPage") == "50" and request.arg("page") == "0"

    second = await hn.fetch(first.cursor)
    assert second.mentions == []
    assert fake.requests[-1].arg("numericFilters") == f"created_at_i>={NEWEST}"


async def test_paging_inside_a_fixed_window(fake: FakeAlgolia, session: aiohttp.ClientSession
                                            ) -> None:
    hn = connector(fake, session, page_size=1)
    first = await hn.fetch(None)
    assert ids(first) == ["42170420"] and first.more is True
    fake.hits.append(hit("42170999", NEWEST + 60, "Acme again"))  # arrives mid-scan
    second = await hn.fetch(first.cursor)
    assert ids(second) == ["42170001"] and second.more is True
    assert fake.requests[-1].arg("numericFilters") == (
        f"created_at_i>={SINCE},created_at_i<={NEWEST}")
    assert fake.requests[-1].arg("page") == "1"
    third = await hn.fetch(second.cursor)
    assert ids(third) == ["42169000"] and third.more is False

    fourth = await hn.fetch(third.cursor)
    assert ids(fourth) == ["42170999"]
    assert fake.requests[-1].arg("numericFilters") == f"created_at_i>={NEWEST}"
    assert fake.requests[-1].arg("page") == "0"
    fifth = await hn.fetch(fourth.cursor)
    assert fifth.mentions == [] and fifth.more is False


async def test_same_second_hits_are_neither_lost_nor_repeated(
    fake: FakeAlgolia, session: aiohttp.ClientSession
) -> None:
    fake.hits = [hit("1", NEWEST, "acme one"), hit("2", NEWEST, "acme two")]
    hn = connector(fake, session)
    first = await hn.fetch(None)
    assert sorted(ids(first)) == ["1", "2"]
    fake.hits.append(hit("3", NEWEST, "acme three"))
    second = await hn.fetch(first.cursor)
    assert ids(second) == ["3"]
    assert (await hn.fetch(second.cursor)).mentions == []


async def test_restart_in_the_middle_of_paging(fake: FakeAlgolia, session: aiohttp.ClientSession
                                               ) -> None:
    fake.hits = [hit(str(100 + n), NEWEST - n * 30, f"acme {n}") for n in range(8)]
    first = await connector(fake, session, page_size=3).fetch(None)
    seen = ids(first)
    cursor, more = first.cursor, first.more
    assert more is True
    while more:
        page = await connector(fake, session, page_size=3).fetch(cursor)
        seen += ids(page)
        cursor, more = page.cursor, page.more
    assert sorted(seen) == sorted(str(100 + n) for n in range(8))
    assert len(seen) == len(set(seen))


async def test_keywords_are_read_round_robin(fake: FakeAlgolia, session: aiohttp.ClientSession
                                             ) -> None:
    hn = connector(fake, session, keywords=["acme", "rollback"])
    first = await hn.fetch(None)
    assert first.more is True
    second = await hn.fetch(first.cursor)
    assert ids(second) == ["42170420"] and second.more is False
    assert [r.arg("query") for r in fake.requests] == ["acme", "rollback"]
    assert set(json.loads(second.cursor or "")["keywords"]) == {"acme", "rollback"}


async def test_malformed_hit_is_skipped_and_the_cursor_moves(
    fake: FakeAlgolia, session: aiohttp.ClientSession
) -> None:
    answer = load()
    fake.script(path="/search_by_date", body=answer)
    hn = connector(fake, session)
    page = await hn.fetch(None)
    assert ids(page) == ["42169000", "42170001", "42170420"]
    assert (await hn.fetch(page.cursor)).mentions == []


# -- failures -------------------------------------------------------------------------------

async def test_429_uses_retry_after(fake: FakeAlgolia, session: aiohttp.ClientSession) -> None:
    fake.script(path="/search_by_date", status=429, headers={"Retry-After": "30"},
                body={"message": "Too many requests", "status": 429})
    with pytest.raises(RateLimited) as limited:
        await connector(fake, session).fetch(None)
    assert limited.value.retry_after == 30
    fake.script(path="/search_by_date", status=429, body={"message": "Too many requests"})
    with pytest.raises(RateLimited) as limited:
        await connector(fake, session).fetch(None)
    assert limited.value.retry_after == 60


@pytest.mark.parametrize("status", [500, 503])
async def test_server_errors_are_transient(
    fake: FakeAlgolia, session: aiohttp.ClientSession, status: int
) -> None:
    fake.script(path="/search_by_date", status=status, body={"message": "oops"})
    with pytest.raises(TransientError):
        await connector(fake, session).fetch(None)


async def test_timeout_is_transient(fake: FakeAlgolia, session: aiohttp.ClientSession) -> None:
    fake.script(path="/search_by_date", hang=True)
    with pytest.raises(TransientError, match="timed out"):
        await connector(fake, session, timeout=0.2).fetch(None)


async def test_malformed_body_raises_and_the_cursor_does_not_move(
    fake: FakeAlgolia, session: aiohttp.ClientSession
) -> None:
    hn = connector(fake, session)
    first = await hn.fetch(None)
    fake.hits.append(hit("42171000", NEWEST + 5, "acme news"))
    fake.script(path="/search_by_date", body={"message": "weird"})
    with pytest.raises(PermanentError):
        await hn.fetch(first.cursor)
    fake.script(path="/search_by_date", body="<html>proxy error</html>")
    with pytest.raises(TransientError):
        await hn.fetch(first.cursor)
    retry = await hn.fetch(first.cursor)
    assert ids(retry) == ["42171000"]


async def test_hn_cannot_reply(fake: FakeAlgolia, session: aiohttp.ClientSession) -> None:
    hn = connector(fake, session)
    mention = parse_search(load()).mentions[0]
    assert hn.can_reply is False
    assert hn.reply_allowed(mention) == (False, NO_REPLY_REASON)
    with pytest.raises(PermanentError, match="answered elsewhere"):
        await hn.post_reply(ReplyRequest(1, mention, "hi", "k"))
    assert fake.requests == []


async def test_config(fake: FakeAlgolia, session: aiohttp.ClientSession) -> None:
    assert config_problems(SourceConfig(name="hn", kind="hackernews"), {}) == [
        "source 'hn': add at least one keyword to search Hacker News for"]
    source = SourceConfig(name="hn", kind="hackernews", base_url=fake.url, keywords=["rollback"],
                          lookback_hours=24 * 365 * 50)
    assert config_problems(source, {}) == []
    page = await build(source, session, {}).fetch(None)
    assert ids(page) == ["42170420"]
