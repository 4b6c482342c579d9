"""RSS and Atom feeds (blogs, news, alert feeds): listen only; answers happen elsewhere.

The feed is fetched by us with a conditional GET (ETag / Last-Modified, so an unchanged feed
costs a 304) and parsed by feedparser from the bytes we read: feedparser never fetches a URL,
and it is handed a stream rather than bytes so it cannot mistake a body for a file path.
Feeds have no reliable order or paging, so the cursor remembers the ids (guid, else link) of
recent entries and an entry is new exactly when its id is not remembered.
"""

from __future__ import annotations

import calendar
import io
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import feedparser

from bot.connectors.base import (
    Page,
    PermanentError,
    PostedReply,
    RateLimited,
    ReplyLimits,
    ReplyRequest,
    TransientError,
    is_http_url,
)
from bot.connectors.html_text import html_to_text
from bot.domain.length import counter_for
from bot.domain.mention import Author, Mention
from bot.settings import SourceConfig

MAX_PAGE = 100
MAX_FEED_BYTES = 10 * 1024 * 1024
_SEEN_BOUND = 1000
_DEFAULT_WAIT = 60.0
NO_REPLY_REASON = (
    "RSS items cannot be answered here: open the link and close the case as answered elsewhere"
)
_EMAIL_AND_NAME = re.compile(r"^[^\s@]+@[^\s@]+\s*\((.+)\)$")
_ACCEPT = ("application/rss+xml, application/atom+xml, application/xml;q=0.9, "
           "text/xml;q=0.9, */*;q=0.5")


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One entry; `key` is empty when the entry has neither a guid/id nor a link."""

    key: str
    mention: Mention | None
    skipped: str | None = None


@dataclass(frozen=True, slots=True)
class ParseResult:
    entries: list[FeedEntry]
    title: str = ""
    skipped: list[str] = field(default_factory=list)

    @property
    def mentions(self) -> list[Mention]:
        return [entry.mention for entry in self.entries if entry.mention is not None]


def parse_feed(body: bytes, *, source: str, received_at: datetime,
               content_type: str | None = None) -> ParseResult:
    """Parse RSS 0.9x/1.0/2.0 or Atom bytes into mentions, oldest first.

    A body that is not a feed at all raises `PermanentError` (the URL points at a web page,
    or the site is broken); an entry without an id or link is skipped with its reason.
    """
    headers = {"content-type": content_type} if content_type else {}
    try:
        parsed = feedparser.parse(io.BytesIO(body), response_headers=headers)
    except (UnicodeDecodeError, ValueError) as exc:  # feedparser lets some bad bytes escape
        raise PermanentError(f"the answer is not a readable feed ({exc.__class__.__name__})"
                             ) from exc
    if not _field(parsed, "version") and not _field(parsed, "entries"):
        problem = _field(parsed, "bozo_exception")
        detail = f" ({problem.__class__.__name__})" if problem else ""
        raise PermanentError(f"the answer is not an RSS or Atom feed{detail}")
    feed = _field(parsed, "feed") or {}
    feed_lang = _lang(_field(feed, "language"))
    entries: list[FeedEntry] = []
    skipped: list[str] = []
    for index, raw in enumerate(_field(parsed, "entries") or []):
        entry = _entry(raw, index, source=source, received_at=received_at, feed_lang=feed_lang)
        entries.append(entry)
        if entry.skipped:
            skipped.append(entry.skipped)
    # Feeds list newest first; keep that tie order reversed so equal dates come oldest first.
    ordered = list(reversed(entries))
    ordered.sort(key=lambda e: e.mention.created_at if e.mention else received_at)
    return ParseResult(entries=ordered, title=str(_field(feed, "title") or ""), skipped=skipped)


def _field(data: Any, key: str) -> Any:
    """Plain lookup: feedparser's own `get` maps some keys to others with a warning."""
    return dict.get(data, key) if isinstance(data, dict) else None


def _entry(raw: Any, index: int, *, source: str, received_at: datetime,
           feed_lang: str | None) -> FeedEntry:
    link = str(_field(raw, "link") or "").strip()
    key = str(_field(raw, "id") or "").strip() or link
    if not key:
        return FeedEntry("", None, f"entry {index}: has neither an id/guid nor a link")
    title = html_to_text(str(_field(raw, "title") or ""))
    summary_html = str(_field(raw, "summary") or "")
    content = _field(raw, "content")
    if not summary_html and isinstance(content, list) and content:
        summary_html = str(_field(content[0], "value") or "")
    summary = html_to_text(summary_html)
    if summary == title:
        summary = ""
    text = "\n\n".join(part for part in (title, summary) if part)
    if not text:
        return FeedEntry(key, None, f"{key}: entry has no title and no summary")
    stamp = _field(raw, "published_parsed") or _field(raw, "updated_parsed")
    extra: dict[str, Any] = {}
    if stamp:
        created = datetime.fromtimestamp(calendar.timegm(stamp), tz=UTC)
    else:
        created = received_at
        extra["date_missing"] = True
    author = _author(raw)
    return FeedEntry(key, Mention(
        source=source,
        external_id=key,
        text=text,
        created_at=created,
        author=Author(handle=author, name=author),
        url=link,
        lang=_lang(_field(raw, "language")) or feed_lang,
        extra=extra,
    ))


def _author(raw: Any) -> str:
    """RSS writes `email (Name)`; feedparser splits that badly for long top-level domains."""
    text = str(_field(raw, "author") or "").strip()
    match = _EMAIL_AND_NAME.match(text)
    if match:
        return match.group(1).strip()
    return str(_field(_field(raw, "author_detail"), "name") or text).strip()


def _lang(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip().split("-")[0].lower()


def matches(mention: Mention, keywords: list[str]) -> bool:
    """No keywords means every entry; otherwise any keyword, case-insensitively."""
    if not keywords:
        return True
    haystack = mention.text.casefold()
    return any(keyword.casefold() in haystack for keyword in keywords)


class RssConnector:
    """Reads one feed URL; cannot reply."""

    can_reply = False

    def __init__(
        self,
        *,
        name: str,
        session: aiohttp.ClientSession,
        url: str,
        keywords: list[str] | None = None,
        user_agent: str = "mentiondesk/0.1 (feed reader)",
        lookback: timedelta = timedelta(hours=24),
        timeout: float = 30.0,
        page_size: int = MAX_PAGE,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.name = name
        self._session = session
        self._url = url
        self._keywords = [k for k in (keywords or []) if k.strip()]
        self._user_agent = user_agent
        self._lookback = lookback
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._page_size = max(1, min(page_size, MAX_PAGE))
        self._clock = clock

    async def fetch(self, cursor: str | None) -> Page:
        state = _load_cursor(cursor)
        headers = {"User-Agent": self._user_agent, "Accept": _ACCEPT}
        if state["etag"]:
            headers["If-None-Match"] = state["etag"]
        if state["modified"]:
            headers["If-Modified-Since"] = state["modified"]
        status, response_headers, body = await self._get(headers)
        if status == 304:
            return Page(mentions=[], cursor=cursor, more=False)
        now = self._clock()
        parsed = parse_feed(body, source=self.name, received_at=now,
                            content_type=response_headers.get("Content-Type"))
        seen: list[str] = list(state["seen"])
        known = set(seen)
        first_poll = cursor is None
        oldest_wanted = now - self._lookback
        mentions: list[Mention] = []
        handled: set[str] = set()
        more = False
        for entry in parsed.entries:
            if not entry.key or entry.key in known or entry.key in handled:
                continue
            if entry.mention is not None and matches(entry.mention, self._keywords) and not (
                first_poll and entry.mention.created_at < oldest_wanted
            ):
                if len(mentions) == self._page_size:
                    more = True
                    break
                mentions.append(entry.mention)
            handled.add(entry.key)
        current = [e.key for e in parsed.entries if e.key and (e.key in known or e.key in handled)]
        current_set = set(current)
        kept = [key for key in seen if key not in current_set] + list(dict.fromkeys(current))
        bound = max(_SEEN_BOUND, 2 * len(parsed.entries))
        new_state = {
            # While entries are left over, keep the old validators so the next GET is not a 304.
            "etag": state["etag"] if more else response_headers.get("ETag"),
            "modified": state["modified"] if more else response_headers.get("Last-Modified"),
            "seen": kept[-bound:],
        }
        return Page(mentions=mentions, cursor=json.dumps(new_state), more=more)

    async def post_reply(self, request: ReplyRequest) -> PostedReply:
        raise PermanentError(NO_REPLY_REASON)

    def reply_limits(self) -> ReplyLimits:
        return counter_for("rss")

    def reply_allowed(self, mention: Mention) -> tuple[bool, str]:
        return False, NO_REPLY_REASON

    async def _get(self, headers: Mapping[str, str]) -> tuple[int, Mapping[str, str], bytes]:
        try:
            async with self._session.get(self._url, headers=headers,
                                         timeout=self._timeout) as response:
                status = response.status
                if status == 429 or (status == 503 and "Retry-After" in response.headers):
                    raise RateLimited(f"feed {self._url} asks us to slow down (HTTP {status})",
                                      _retry_after(response.headers))
                if status >= 500:
                    raise TransientError(f"feed request failed with HTTP {status}")
                if status == 304:
                    return status, response.headers, b""
                if status >= 300:
                    raise PermanentError(f"feed request failed with HTTP {status}")
                body = await response.content.read(MAX_FEED_BYTES + 1)
                if len(body) > MAX_FEED_BYTES:
                    raise PermanentError("the feed is larger than 10 MB")
                return status, response.headers, body
        except TimeoutError:
            raise TransientError("feed request timed out") from None
        except aiohttp.ClientError as exc:
            raise TransientError(f"feed request failed: {exc.__class__.__name__}") from None


def _retry_after(headers: Mapping[str, str]) -> float:
    value = headers.get("Retry-After")
    if not value:
        return _DEFAULT_WAIT
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return _DEFAULT_WAIT
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - time.time())


def _load_cursor(cursor: str | None) -> dict[str, Any]:
    if not cursor:
        return {"etag": None, "modified": None, "seen": []}
    try:
        state = json.loads(cursor)
    except ValueError:
        raise PermanentError("stored feed cursor is not JSON") from None
    if not isinstance(state, dict) or not isinstance(state.get("seen"), list):
        raise PermanentError("stored feed cursor has an unknown shape")
    return {"etag": state.get("etag"), "modified": state.get("modified"),
            "seen": [str(key) for key in state["seen"]]}


def config_problems(source: SourceConfig, env: Mapping[str, str]) -> list[str]:
    where = f"source '{source.name}'"
    url = source.base_url or source.option("url")
    if not url:
        return [f"{where}: set 'base_url' to the feed URL"]
    if not is_http_url(str(url)):
        return [f"{where}: base_url must be an http(s) URL, not {url!r}"]
    return []


def build(source: SourceConfig, session: aiohttp.ClientSession,
          env: Mapping[str, str]) -> RssConnector:
    problems = config_problems(source, env)
    if problems:
        raise PermanentError("; ".join(problems))
    return RssConnector(
        name=source.name,
        session=session,
        url=str(source.base_url or source.option("url")),
        keywords=list(source.keywords),
        user_agent=str(source.option("user_agent") or "mentiondesk/0.1 (feed reader)"),
        lookback=timedelta(hours=float(source.option("lookback_hours", 24))),
        timeout=float(source.option("timeout_seconds", 30)),
    )
