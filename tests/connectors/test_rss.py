from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
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
from bot.connectors.rss import (
    NO_REPLY_REASON,
    RssConnector,
    build,
    config_problems,
    parse_feed,
)
from bot.settings import SourceConfig
from tests.connectors.fakes.rss import ATOM_TYPE, FakeFeed, load

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
FOREVER = timedelta(days=365 * 50)


@pytest.fixture
async def fake() -> AsyncIterator[FakeFeed]:
    server = FakeFeed()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def connector(fake: FakeFeed, session: aiohttp.ClientSession, **kwargs: Any) -> RssConnector:
    options: dict[str, Any] = {"name": "gadget-news", "session": session,
                               "url": f"{fake.url}/feed.xml", "clock": lambda: NOW,
                               "timeout": 0.5}
    options.update(kwargs)
    return RssConnector(**options)


def rss_item(guid: str, title: str, when: str) -> str:
    return (f"<item><title>{title}</title><link>https://news.example/{guid}</link>"
            f"<guid isPermaLink=\"false\">{guid}</guid><pubDate>{when}</pubDate></item>")


def rss(*items: str) -> bytes:
    return ("<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>T</title>"
            "<link>https://news.example/</link><description>d</description>"
            + "".join(items) + "</channel></rss>").encode()


# -- parsing --------------------------------------------------------------------------------

def test_parse_rss_normalises_entries_oldest_first() -> None:
    result = parse_feed(load("news.rss.xml"), source="gadget-news", received_at=NOW)

    assert result.title == "Gadget News"
    assert [m.external_id for m in result.mentions] == [
        "https://news.example/2026/11/weekend-deals",
        "https://news.example/2026/11/smart-plugs-compared",
        "news-example-48213",
        "https://news.example/2026/11/acme-leeds",
    ]
    top = result.mentions[2]
    assert top.source == "gadget-news"
    assert top.text == (
        "Acme Hub 4.2 update pulled after reports of bricked devices\n\n"
        "Owners of the Acme Hub say the 4.2 update left devices unusable. "
        "https://acme.example/status now lists the issue."
    )
    assert top.url == "https://news.example/2026/11/acme-hub-update-pulled"
    assert top.author.name == "Priya Natarajan"
    assert top.created_at == datetime(2026, 11, 22, 9, 30, tzinfo=UTC)
    assert top.lang == "en"
    assert result.mentions[1].author.handle == "Sam Ortiz"
    undated = result.mentions[3]
    assert undated.created_at == NOW and undated.extra["date_missing"] is True
    assert result.skipped == ["entry 3: has neither an id/guid nor a link"]


def test_parse_atom_strips_html_and_uses_content() -> None:
    result = parse_feed(load("alerts.atom.xml"), source="alerts", received_at=NOW,
                        content_type=ATOM_TYPE)
    recap, wait = result.mentions
    assert wait.external_id == "tag:alerts.example,2026:acme/9001"
    assert wait.text == ("Acme support wait times & refunds\n\n"
                         "Three weeks without an answer from Acme support.")
    assert wait.url == "https://forum.example/t/acme-support-wait-times/9001"
    assert wait.author.handle == "forum.example"
    assert wait.created_at == datetime(2026, 11, 22, 9, 44, tzinfo=UTC)
    assert recap.created_at == datetime(2026, 11, 21, 21, 0, tzinfo=UTC)
    assert recap.text == "Acme earnings call recap\n\nRevenue up 4%; hardware margins down."
    assert result.skipped == []


@pytest.mark.parametrize("body", [load("not_a_feed.html"), b"", b"\x00\x01garbage"])
def test_a_body_that_is_not_a_feed_is_refused(body: bytes) -> None:
    with pytest.raises(PermanentError, match="not an RSS or Atom feed"):
        parse_feed(body, source="x", received_at=NOW)


def test_a_body_is_never_taken_for_a_path(tmp_path: Path) -> None:
    local = tmp_path / "local.xml"
    local.write_bytes(load("news.rss.xml"))
    with pytest.raises(PermanentError):
        parse_feed(str(local).encode(), source="x", received_at=NOW)


# -- fetching -------------------------------------------------------------------------------

async def test_first_poll_then_304_with_conditional_headers(
    fake: FakeFeed, session: aiohttp.ClientSession
) -> None:
    feed = connector(fake, session)
    assert isinstance(feed, Connector)

    first = await feed.fetch(None)
    assert [m.external_id for m in first.mentions] == [
        "https://news.example/2026/11/smart-plugs-compared",
        "news-example-48213",
        "https://news.example/2026/11/acme-leeds",
    ], "the entry older than the 24 h look-back is remembered, not raised"
    assert first.more is False
    (request,) = fake.requests
    assert "If-None-Match" not in request.headers
    assert "If-Modified-Since" not in request.headers
    assert request.headers["User-Agent"] == "mentiondesk/0.1 (feed reader)"

    second = await feed.fetch(first.cursor)
    assert second.mentions == [] and second.cursor == first.cursor
    conditional = fake.requests[-1]
    assert conditional.headers["If-None-Match"] == '"v1-3f9a"'
    assert conditional.headers["If-Modified-Since"] == "Sun, 22 Nov 2026 09:40:00 GMT"


async def test_last_modified_alone_is_used(fake: FakeFeed, session: aiohttp.ClientSession
                                           ) -> None:
    fake.etag = None
    feed = connector(fake, session)
    first = await feed.fetch(None)
    second = await feed.fetch(first.cursor)
    assert second.mentions == []
    assert "If-None-Match" not in fake.requests[-1].headers
    assert fake.requests[-1].headers["If-Modified-Since"] == "Sun, 22 Nov 2026 09:40:00 GMT"


async def test_only_entries_not_seen_before_are_returned(
    fake: FakeFeed, session: aiohttp.ClientSession
) -> None:
    feed = connector(fake, session)
    first = await feed.fetch(None)
    fake.publish(
        rss(rss_item("n-2", "Acme recall", "Sun, 22 Nov 2026 09:55:00 GMT"),
            rss_item("news-example-48213", "Acme Hub 4.2 update pulled (updated)",
                     "Sun, 22 Nov 2026 09:30:00 GMT")),
        etag='"v2"', last_modified="Sun, 22 Nov 2026 09:56:00 GMT",
    )
    second = await feed.fetch(first.cursor)
    assert [m.external_id for m in second.mentions] == ["n-2"]
    assert json.loads(second.cursor or "")["etag"] == '"v2"'
    assert (await feed.fetch(second.cursor)).mentions == []


async def test_keywords_filter_entries(fake: FakeFeed, session: aiohttp.ClientSession) -> None:
    feed = connector(fake, session, keywords=["ACME HUB", "repair"], lookback=FOREVER)
    page = await feed.fetch(None)
    assert [m.external_id for m in page.mentions] == [
        "news-example-48213", "https://news.example/2026/11/acme-leeds"]


async def test_paging_keeps_old_validators_until_everything_is_returned(
    fake: FakeFeed, session: aiohttp.ClientSession
) -> None:
    feed = connector(fake, session, page_size=2, lookback=FOREVER)
    first = await feed.fetch(None)
    assert len(first.mentions) == 2 and first.more is True
    second = await feed.fetch(first.cursor)
    assert "If-None-Match" not in fake.requests[-1].headers
    assert len(second.mentions) == 2 and second.more is False
    assert {m.external_id for m in first.mentions}.isdisjoint(
        m.external_id for m in second.mentions)
    third = await feed.fetch(second.cursor)
    assert third.mentions == []
    assert fake.requests[-1].headers["If-None-Match"] == '"v1-3f9a"'


async def test_restart_in_the_middle_of_paging(
    fake: FakeFeed, session: aiohttp.ClientSession
) -> None:
    items = [rss_item(f"g-{n}", f"Acme {n}", f"Sun, 22 Nov 2026 09:{n:02d}:00 GMT")
             for n in range(7)]
    fake.publish(rss(*reversed(items)), etag='"v7"', last_modified=None)
    first = await connector(fake, session, page_size=3).fetch(None)
    seen = [m.external_id for m in first.mentions]
    cursor = first.cursor
    more = first.more
    while more:
        page = await connector(fake, session, page_size=3).fetch(cursor)
        seen += [m.external_id for m in page.mentions]
        cursor, more = page.cursor, page.more
    assert seen == [f"g-{n}" for n in range(7)]
    assert (await connector(fake, session, page_size=3).fetch(cursor)).mentions == []


async def test_429_uses_retry_after(fake: FakeFeed, session: aiohttp.ClientSession) -> None:
    fake.script(path="/feed.xml", status=429, headers={"Retry-After": "120"})
    with pytest.raises(RateLimited) as limited:
        await connector(fake, session).fetch(None)
    assert limited.value.retry_after == 120


@pytest.mark.parametrize("status", [500, 502])
async def test_server_errors_are_transient(
    fake: FakeFeed, session: aiohttp.ClientSession, status: int
) -> None:
    fake.script(path="/feed.xml", status=status)
    with pytest.raises(TransientError):
        await connector(fake, session).fetch(None)


async def test_404_is_permanent(fake: FakeFeed, session: aiohttp.ClientSession) -> None:
    fake.script(path="/feed.xml", status=404)
    with pytest.raises(PermanentError, match="404"):
        await connector(fake, session).fetch(None)


async def test_timeout_is_transient(fake: FakeFeed, session: aiohttp.ClientSession) -> None:
    fake.script(path="/feed.xml", hang=True)
    with pytest.raises(TransientError, match="timed out"):
        await connector(fake, session, timeout=0.2).fetch(None)


async def test_malformed_body_raises_and_the_cursor_does_not_move(
    fake: FakeFeed, session: aiohttp.ClientSession
) -> None:
    feed = connector(fake, session)
    first = await feed.fetch(None)
    good = rss(rss_item("n-9", "Acme news", "Sun, 22 Nov 2026 09:58:00 GMT"))
    fake.publish(load("not_a_feed.html"), etag='"broken"', last_modified=None)
    with pytest.raises(PermanentError):
        await feed.fetch(first.cursor)
    fake.publish(good, etag='"v3"', last_modified=None)
    retry = await feed.fetch(first.cursor)
    assert [m.external_id for m in retry.mentions] == ["n-9"]


async def test_rss_cannot_reply(fake: FakeFeed, session: aiohttp.ClientSession) -> None:
    feed = connector(fake, session)
    mention = (await feed.fetch(None)).mentions[0]
    assert feed.can_reply is False
    assert feed.reply_allowed(mention) == (False, NO_REPLY_REASON)
    with pytest.raises(PermanentError, match="answered elsewhere"):
        await feed.post_reply(ReplyRequest(1, mention, "hi", "k"))
    assert len(fake.requests) == 1


async def test_config(fake: FakeFeed, session: aiohttp.ClientSession) -> None:
    assert config_problems(SourceConfig(name="f", kind="rss"), {}) == [
        "source 'f': set 'base_url' to the feed URL"]
    assert "http(s)" in config_problems(
        SourceConfig(name="f", kind="rss", base_url="file:///etc/passwd"), {})[0]
    source = SourceConfig(name="f", kind="rss", base_url=f"{fake.url}/feed.xml",
                          keywords=["leeds"], lookback_hours=1)
    assert config_problems(source, {}) == []
    page = await build(source, session, {}).fetch(None)
    assert [m.external_id for m in page.mentions] == ["https://news.example/2026/11/acme-leeds"]
