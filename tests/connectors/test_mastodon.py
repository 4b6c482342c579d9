"""Mastodon connector: parsing recorded answers, HTML to text, and HTTP behaviour."""

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
from bot.connectors.html_text import html_to_text
from bot.connectors.mastodon import (
    MastodonConnector,
    build,
    config_problems,
    parse_notifications,
    parse_statuses,
    reply_visibility,
    with_mention,
)
from bot.domain.mention import Author, Mention
from bot.settings import SourceConfig
from tests.connectors.fakes.mastodon import TOKEN, FakeMastodon

DATA = Path(__file__).parent.parent / "data" / "mastodon"
INSTANCE = "mastodon.example"


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


@pytest.fixture
async def fake() -> AsyncIterator[FakeMastodon]:
    server = FakeMastodon()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def connector(fake: FakeMastodon, session: aiohttp.ClientSession, **overrides: Any
              ) -> MastodonConnector:
    options: dict[str, Any] = {"name": "brand-mastodon", "session": session,
                               "base_url": fake.url, "token": TOKEN, "timeout": 2.0}
    options.update(overrides)
    return MastodonConnector(**options)


def reply_request(mention: Mention, text: str = "Sorry about that!", key: str = "case-7:1"
                  ) -> ReplyRequest:
    return ReplyRequest(case_id=7, mention=mention, text=text, idempotency_key=key)


# --- parsing -----------------------------------------------------------------------------


def test_parse_recorded_notifications() -> None:
    result = parse_notifications(load("notifications.json"), INSTANCE)

    assert [m.external_id for m in result.mentions] == [
        "103186126728896492", "103186046267791694"]
    local, remote = result.mentions
    assert local.text == (
        "@acme@mastodon.example my order & refund #help\n\n"
        "see https://shop.example/orders/123456789\nit's \"late\"")
    assert local.author == Author(handle="@zsc@mastodon.example", name="Zee", followers=120)
    assert local.url == "https://mastodon.example/@zsc/103186126728896492"
    assert local.in_reply_to == "103186038209478945"
    assert local.thread_id is None
    assert local.lang == "en"
    assert local.created_at == datetime(2026, 11, 22, 8, 15, 1, 940000, tzinfo=UTC)
    assert local.extra["visibility"] == "unlisted"
    assert local.extra["notification_id"] == "34975861"
    assert remote.author == Author(handle="@haskal@cybre.space", name="haskal",
                                   followers=5400, verified=True)
    assert remote.text == "[CW: billing] @acme@mastodon.example charged twice"
    assert remote.thread_id == "103186046267791694"
    assert len(result.skipped) == 3
    assert "34975650" in result.skipped[0] and "deleted" in result.skipped[0]
    assert "34975600" in result.skipped[1] and "timestamp" in result.skipped[1]
    assert "34975500" in result.skipped[2] and "author" in result.skipped[2]
    assert result.newest_id == "34975861"
    assert result.count == 5


@pytest.mark.parametrize("body", [{"error": "x"}, "x", None])
def test_parse_malformed_body_raises(body: Any) -> None:
    with pytest.raises(PermanentError):
        parse_notifications(body, INSTANCE)
    with pytest.raises(PermanentError):
        parse_statuses(body, INSTANCE, listen="tag:acme")


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<p>a</p><p>b</p>", "a\n\nb"),
        ("line<br>next<br/>last", "line\nnext\nlast"),
        ('<a href="https://x.example/very/long" class="">x.example/very/…</a>',
         "https://x.example/very/long"),
        ('<span class="h-card"><a href="https://b.example/@bo" class="u-url mention">'
         "@<span>bo</span></a></span> hi", "@bo@b.example hi"),
        ('<a href="https://b.example/@bo@c.example" class="mention">@bo@c.example</a>',
         "@bo@c.example"),
        ("&lt;tag&gt; &amp;&nbsp;&#x1F600;", "<tag> & 😀"),
        ("<script>alert(1)</script>ok", "ok"),
    ],
)
def test_html_to_text(html: str, text: str) -> None:
    assert html_to_text(html) == text


@pytest.mark.parametrize(
    ("original", "cap", "expected"),
    [("public", "public", "public"), ("unlisted", "public", "unlisted"),
     ("private", "public", "private"), ("direct", "public", "direct"),
     ("public", "unlisted", "unlisted"), (None, "public", "direct"),
     ("direct", "unlisted", "direct")],
)
def test_reply_visibility_never_widens(original: str | None, cap: str, expected: str) -> None:
    assert reply_visibility(original, cap) == expected


@pytest.mark.parametrize(
    ("text", "acct", "expected"),
    [("thanks", "ann", "@ann thanks"),
     ("thanks", "ann@other.example", "@ann@other.example thanks"),
     ("@ann thanks", "ann", "@ann thanks"),
     ("hi @Ann@other.example!", "ann@other.example", "hi @Ann@other.example!"),
     ("@annabel hi", "ann", "@ann @annabel hi")],
)
def test_with_mention(text: str, acct: str, expected: str) -> None:
    assert with_mention(text, acct) == expected


# --- listening ---------------------------------------------------------------------------


async def test_connector_satisfies_protocol(fake: FakeMastodon,
                                            session: aiohttp.ClientSession) -> None:
    assert isinstance(connector(fake, session), Connector)


async def test_first_poll_then_nothing_new(fake: FakeMastodon,
                                           session: aiohttp.ClientSession) -> None:
    fake.add_mention(10, 100, "ann", "@acme hello")
    fake.add_mention(11, 101, "bob@far.example", "@acme hi")
    m = connector(fake, session)

    first = await m.fetch(None)
    assert [x.external_id for x in first.mentions] == ["100", "101"]
    assert first.more is False
    request = fake.seen("/api/v1/notifications")[0]
    assert request.query["types[]"] == ["mention"]
    assert request.arg("min_id") is None
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"

    again = await m.fetch(first.cursor)
    assert again.mentions == []
    assert fake.seen("/api/v1/notifications")[-1].arg("min_id") == "11"
    assert json.loads(again.cursor or "") == {"notifications": "11"}


async def test_paging_forward_with_min_id(fake: FakeMastodon,
                                          session: aiohttp.ClientSession) -> None:
    fake.add_mention(10, 100, "ann", "seed")
    m = connector(fake, session, page_size=5)
    cursor = (await m.fetch(None)).cursor
    for n in range(11, 23):
        fake.add_mention(n, 100 + n, "bob", f"post {n}")

    pages = []
    while True:
        page = await m.fetch(cursor)
        pages.append(page)
        cursor = page.cursor
        if not page.more:
            break

    assert [[x.external_id for x in p.mentions] for p in pages] == [
        [str(100 + n) for n in range(11, 16)],
        [str(100 + n) for n in range(16, 21)],
        [str(100 + n) for n in range(21, 23)],
    ]
    assert [r.arg("min_id") for r in fake.seen("/api/v1/notifications")[1:]] == [
        "10", "15", "20"]
    assert json.loads(cursor or "") == {"notifications": "22"}


async def test_restart_in_the_middle_of_paging_takes_every_post_once(
    fake: FakeMastodon, session: aiohttp.ClientSession
) -> None:
    fake.add_mention(10, 100, "ann", "seed")
    cursor = (await connector(fake, session).fetch(None)).cursor
    for n in range(11, 31):
        fake.add_mention(n, 100 + n, "bob", f"post {n}")

    first = await connector(fake, session, page_size=8).fetch(cursor)
    taken = [x.external_id for x in first.mentions]
    cursor = first.cursor
    while True:
        page = await connector(fake, session, page_size=8).fetch(cursor)
        taken += [x.external_id for x in page.mentions]
        cursor = page.cursor
        if not page.more:
            break

    assert len(taken) == len(set(taken)) == 20
    assert set(taken) == {str(100 + n) for n in range(11, 31)}


async def test_hashtag_keywords_have_their_own_cursor(fake: FakeMastodon,
                                                      session: aiohttp.ClientSession) -> None:
    fake.add_mention(10, 100, "ann", "@acme hello")
    fake.add_tagged("acme", 500, "cat", "love #acme")
    m = connector(fake, session, keywords=["#Acme"])

    first = await m.fetch(None)
    assert [x.external_id for x in first.mentions] == ["100", "500"]
    assert json.loads(first.cursor or "") == {"notifications": "10", "tag:acme": "500"}

    fake.add_tagged("acme", 501, "dan", "more #acme")
    second = await m.fetch(first.cursor)
    assert [x.external_id for x in second.mentions] == ["501"]
    assert second.mentions[0].extra["listen"] == "tag:acme"
    assert fake.seen("/timelines/tag/acme")[-1].arg("min_id") == "500"


async def test_rate_limited_uses_iso_reset_header(fake: FakeMastodon,
                                                  session: aiohttp.ClientSession) -> None:
    reset = (datetime.now(UTC) + timedelta(seconds=90)).isoformat().replace("+00:00", "Z")
    fake.script(path="/notifications", status=429, body={"error": "Too many requests"},
                headers={"X-RateLimit-Reset": reset, "X-RateLimit-Remaining": "0"})
    with pytest.raises(RateLimited) as caught:
        await connector(fake, session).fetch(None)
    assert 80 <= caught.value.retry_after <= 91


async def test_server_error_is_transient(fake: FakeMastodon,
                                         session: aiohttp.ClientSession) -> None:
    fake.script(path="/notifications", status=502, body="<html>Bad gateway</html>")
    with pytest.raises(TransientError):
        await connector(fake, session).fetch(None)


async def test_timeout_is_transient(fake: FakeMastodon, session: aiohttp.ClientSession) -> None:
    fake.script(path="/notifications", hang=True)
    with pytest.raises(TransientError, match="no answer"):
        await connector(fake, session, timeout=0.2).fetch(None)


async def test_invalid_token_is_permanent(fake: FakeMastodon,
                                          session: aiohttp.ClientSession) -> None:
    with pytest.raises(PermanentError, match="The access token is invalid"):
        await connector(fake, session, token="nope").fetch(None)


async def test_malformed_body_raises_and_cursor_is_not_advanced(
    fake: FakeMastodon, session: aiohttp.ClientSession
) -> None:
    fake.add_mention(10, 100, "ann", "seed")
    m = connector(fake, session)
    cursor = (await m.fetch(None)).cursor
    fake.add_mention(11, 111, "ann", "next")
    fake.script(path="/notifications", body="not json at all")
    with pytest.raises(TransientError):
        await m.fetch(cursor)
    fake.script(path="/notifications", body={"error": "unexpected object"})
    with pytest.raises(PermanentError):
        await m.fetch(cursor)
    assert [x.external_id for x in (await m.fetch(cursor)).mentions] == ["111"]


async def test_deleted_post_is_skipped_with_reason_and_paging_continues(
    fake: FakeMastodon, session: aiohttp.ClientSession
) -> None:
    fake.add_mention(10, 100, "ann", "seed")
    m = connector(fake, session)
    cursor = (await m.fetch(None)).cursor
    fake.add_mention(11, 111, "ann", "kept")
    fake.notifications.append({"id": "12", "type": "mention", "created_at": "2026-11-22T08:00:00Z",
                               "account": {"acct": "gone"}, "status": None})
    page = await m.fetch(cursor)
    assert [x.external_id for x in page.mentions] == ["111"]
    assert len(m.last_skipped) == 1 and "deleted" in m.last_skipped[0]
    assert json.loads(page.cursor or "") == {"notifications": "12"}


# --- replying ----------------------------------------------------------------------------


async def test_reply_keeps_audience_prefixes_acct_and_sends_idempotency_key(
    fake: FakeMastodon, session: aiohttp.ClientSession
) -> None:
    fake.add_mention(10, 100, "bob@far.example", "@acme help", visibility="private")
    m = connector(fake, session)
    mention = (await m.fetch(None)).mentions[0]

    posted = await m.post_reply(reply_request(mention))

    create = fake.seen("/api/v1/statuses", "POST")
    assert len(create) == 1
    assert create[0].body == {"status": "@bob@far.example Sorry about that!",
                              "in_reply_to_id": "100", "visibility": "private"}
    assert create[0].headers["Idempotency-Key"] == "case-7:1"
    assert posted.external_id == fake.created[0]["id"]
    assert posted.url == fake.created[0]["url"]


async def test_direct_stays_direct_and_retry_returns_same_post(
    fake: FakeMastodon, session: aiohttp.ClientSession
) -> None:
    fake.add_mention(10, 100, "ann", "@acme secret", visibility="direct")
    mention = (await connector(fake, session).fetch(None)).mentions[0]

    first = await connector(fake, session).post_reply(reply_request(mention, "@ann noted"))
    again = await connector(fake, session).post_reply(reply_request(mention, "@ann noted"))

    bodies = [r.body for r in fake.seen("/api/v1/statuses", "POST")]
    assert bodies[0] == {"status": "@ann noted", "in_reply_to_id": "100",
                         "visibility": "direct"}
    assert again.external_id == first.external_id
    assert len(fake.created) == 1


async def test_reply_to_deleted_post_is_permanent(fake: FakeMastodon,
                                                  session: aiohttp.ClientSession) -> None:
    mention = Mention(source="mastodon", external_id="999", text="gone",
                      created_at=datetime.now(UTC))
    with pytest.raises(PermanentError, match="deleted"):
        await connector(fake, session).post_reply(reply_request(mention))
    assert fake.seen("/api/v1/statuses", "POST") == []


async def test_reply_refused_carries_mastodon_reason(fake: FakeMastodon,
                                                     session: aiohttp.ClientSession) -> None:
    fake.add_mention(10, 100, "ann", "@acme hi")
    mention = (await connector(fake, session).fetch(None)).mentions[0]
    # Configured for a larger limit than this instance really has: the instance refuses.
    with pytest.raises(PermanentError, match="character limit of 500 exceeded"):
        await connector(fake, session, reply_limit=1000).post_reply(
            reply_request(mention, "x" * 600))


async def test_reply_limits_count_links_as_23(fake: FakeMastodon,
                                              session: aiohttp.ClientSession) -> None:
    limits = connector(fake, session, reply_limit=1000).reply_limits()
    assert limits.max_length == 1000
    assert limits.count("see https://example.com/" + "a" * 80) == 4 + 23
    assert connector(fake, session).reply_limits().max_length == 500


async def test_reply_length_counts_the_acct_prefix(fake: FakeMastodon,
                                                   session: aiohttp.ClientSession) -> None:
    masto = connector(fake, session)
    fake.add_mention(1, 100, "bob", "@acme hi")
    (mention,) = (await masto.fetch(None)).mentions
    limits = masto.reply_limits_for_mention(mention)

    assert limits.count("thanks") == len("@bob thanks")
    assert limits.count("@bob thanks") == len("@bob thanks")  # already addressed: no prefix
    # `@user@domain` counts as `@user`, as Mastodon counts it.
    remote = Mention(source="mastodon", external_id="9", text="x", created_at=datetime.now(UTC),
                     author=Author(handle="@ann@example.social"),
                     extra={"acct": "ann@example.social"})
    assert masto.reply_limits_for_mention(remote).count("thanks") == len("@ann thanks")

    text = "a" * 496  # fits alone, not with "@bob " in front
    assert masto.reply_limits().count(text) <= 500 < limits.count(text)
    with pytest.raises(PermanentError, match=r"@bob prefix the reply is 501/500"):
        await masto.post_reply(reply_request(mention, text))
    assert fake.created == []


# --- streaming ---------------------------------------------------------------------------


async def test_stream_yields_mentions_only(fake: FakeMastodon,
                                           session: aiohttp.ClientSession) -> None:
    fake.add_mention(10, 100, "ann", "@acme streamed")
    fake.stream_events = [
        ("notification", fake.notifications[0]),
        ("notification", {"id": "11", "type": "favourite", "account": {"acct": "x"},
                          "status": None}),
        ("update", fake.statuses["100"]),
        ("notification", "{broken json"),
    ]
    got = [m async for m in connector(fake, session).stream()]
    assert [m.external_id for m in got] == ["100"]
    assert got[0].author.handle == "@ann@127.0.0.1"


async def test_stream_refused_token_is_permanent(fake: FakeMastodon,
                                                 session: aiohttp.ClientSession) -> None:
    with pytest.raises(PermanentError):
        _ = [m async for m in connector(fake, session, token="bad").stream()]


# --- configuration -----------------------------------------------------------------------


def source(**values: Any) -> SourceConfig:
    base: dict[str, Any] = {"name": "brand-mastodon", "kind": "mastodon",
                            "base_url": "https://mastodon.example", "token_env": "MASTODON_TOKEN"}
    base.update(values)
    return SourceConfig.model_validate(base)


def test_config_problems() -> None:
    problems = "\n".join(config_problems(
        source(base_url=None, keywords=["two words"], reply_visibility="everyone"), {}))
    assert "base_url" in problems
    assert "MASTODON_TOKEN is not set" in problems
    assert "'two words' is not a hashtag" in problems
    assert "reply_visibility" in problems
    assert config_problems(source(keywords=["#acme", "acme_care"]),
                           {"MASTODON_TOKEN": "t"}) == []


async def test_build(fake: FakeMastodon, session: aiohttp.ClientSession) -> None:
    m = build(source(base_url=fake.url, stream=True), session, {"MASTODON_TOKEN": TOKEN})
    assert m.name == "brand-mastodon" and m.stream_enabled
    fake.add_mention(10, 100, "ann", "hi")
    assert len((await m.fetch(None)).mentions) == 1
    with pytest.raises(PermanentError):
        build(source(), session, {})
