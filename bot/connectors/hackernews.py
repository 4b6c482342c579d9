"""Hacker News through the Algolia HN Search API: keyword mentions in stories and comments.

Listen only: HN has no API for posting, so a case is answered on the site and closed as
answered elsewhere.

`search_by_date` returns newest first, so each keyword is read as a *scan* over a time window:
the first page fixes the window's top (`created_at_i` of the newest hit) and later pages ask for
`since <= created_at_i <= top` with `page=n`, which new stories cannot shift. The watermark
(`since` plus the ids seen at that very second) moves only when a scan ends, so a restart in
the middle of a scan continues exactly where the stored cursor says.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

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
from bot.domain.mention import Author, Mention, MentionError, parse_timestamp
from bot.settings import SourceConfig

DEFAULT_API_URL = "https://hn.algolia.com"
ITEM_URL = "https://news.ycombinator.com/item?id="
MAX_PAGE = 100
_SEEN_BOUND = 200
_DEFAULT_WAIT = 60.0
NO_REPLY_REASON = (
    "Hacker News items cannot be answered here: open the link and close the case as "
    "answered elsewhere"
)


@dataclass(frozen=True, slots=True)
class Hit:
    object_id: str
    created: int | None
    mention: Mention | None
    skipped: str | None = None


@dataclass(frozen=True, slots=True)
class ParseResult:
    hits: list[Hit]
    page: int
    nb_pages: int
    skipped: list[str] = field(default_factory=list)

    @property
    def mentions(self) -> list[Mention]:
        return [hit.mention for hit in self.hits if hit.mention is not None]


def parse_search(data: Any) -> ParseResult:
    """Read an Algolia search answer (`hits`, `page`, `nbPages`)."""
    if not isinstance(data, dict) or not isinstance(data.get("hits"), list):
        raise PermanentError("Algolia answered with something that has no 'hits' array")
    page, nb_pages = data.get("page"), data.get("nbPages")
    if not isinstance(page, int) or not isinstance(nb_pages, int):
        raise PermanentError("Algolia answer has no 'page' / 'nbPages'")
    hits: list[Hit] = []
    skipped: list[str] = []
    for index, raw in enumerate(data["hits"]):
        hit = _hit(raw, index)
        hits.append(hit)
        if hit.skipped:
            skipped.append(hit.skipped)
    return ParseResult(hits=hits, page=page, nb_pages=nb_pages, skipped=skipped)


def _hit(raw: Any, index: int) -> Hit:
    if not isinstance(raw, dict):
        return Hit("", None, None, f"hit {index}: not an object")
    object_id = raw.get("objectID")
    if not isinstance(object_id, str | int) or isinstance(object_id, bool) or not str(object_id):
        return Hit("", None, None, f"hit {index}: missing 'objectID'")
    object_id = str(object_id)
    created = raw.get("created_at_i")
    if isinstance(created, bool) or not isinstance(created, int):
        try:
            created = int(parse_timestamp(raw.get("created_at")).timestamp())
        except MentionError:
            return Hit(object_id, None, None, f"{object_id}: missing 'created_at_i'")
    raw_tags = raw.get("_tags")
    tags: list[Any] = raw_tags if isinstance(raw_tags, list) else []
    raw_author = raw.get("author")
    author: str = raw_author if isinstance(raw_author, str) else ""
    extra: dict[str, Any] = {}
    if "comment" in tags or raw.get("comment_text") is not None:
        body = raw.get("comment_text")
        if not isinstance(body, str) or not body.strip():
            return Hit(object_id, created, None, f"{object_id}: comment has no text (deleted?)")
        text = html_to_text(body)
        parent = raw.get("parent_id")
        in_reply_to = str(parent) if parent not in (None, "") else None
        story = raw.get("story_id")
        thread_id = str(story) if story not in (None, "") else None
        if isinstance(raw.get("story_title"), str):
            extra["story_title"] = raw["story_title"]
    else:
        title = raw.get("title")
        if not isinstance(title, str) or not title.strip():
            return Hit(object_id, created, None, f"{object_id}: story has no title")
        parts = [title.strip()]
        if isinstance(raw.get("story_text"), str) and raw["story_text"].strip():
            parts.append(html_to_text(raw["story_text"]))
        if isinstance(raw.get("url"), str) and raw["url"].strip():
            parts.append(raw["url"].strip())
        text = "\n\n".join(parts)
        in_reply_to, thread_id = None, object_id
        if isinstance(raw.get("points"), int):
            extra["points"] = raw["points"]
    if not author:
        extra["author_missing"] = True
    return Hit(object_id, created, Mention(
        source="hackernews",
        external_id=object_id,
        text=text,
        created_at=datetime.fromtimestamp(created, tz=UTC),
        author=Author(handle=author, name=author),
        url=f"{ITEM_URL}{object_id}",
        in_reply_to=in_reply_to,
        thread_id=thread_id,
        extra=extra,
    ))


class HackerNewsConnector:
    """One Algolia request per `fetch`, keywords read round robin."""

    can_reply = False

    def __init__(
        self,
        *,
        name: str,
        session: aiohttp.ClientSession,
        keywords: list[str],
        api_url: str = DEFAULT_API_URL,
        page_size: int = 50,
        lookback: timedelta = timedelta(hours=24),
        timeout: float = 30.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.name = name
        self._session = session
        self._keywords = [k for k in keywords if k.strip()]
        if not self._keywords:
            raise ValueError("a Hacker News connector needs at least one keyword")
        self._api_url = api_url.rstrip("/")
        self._page_size = max(1, min(page_size, MAX_PAGE))
        self._lookback = lookback
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._clock = clock

    async def fetch(self, cursor: str | None) -> Page:
        state = _load_cursor(cursor)
        position = state["next"] % len(self._keywords)
        keyword = self._keywords[position]
        stream = state["keywords"].get(keyword) or {
            "since": int((self._clock() - self._lookback).timestamp()), "seen": [], "scan": None}
        scan = stream.get("scan")
        since = int(stream["since"])
        numeric = f"created_at_i>={since}"
        if scan:
            numeric += f",created_at_i<={int(scan['top'])}"
        data = await self._get({
            "query": keyword,
            "tags": "(story,comment)",
            "numericFilters": numeric,
            "hitsPerPage": str(self._page_size),
            "page": str(scan["page"] if scan else 0),
        })
        result = parse_search(data)
        mentions, new_stream, scanning = _advance(stream, result)
        state["keywords"][keyword] = new_stream
        if scanning:
            more = True
        else:
            position += 1
            more = position < len(self._keywords)
        state["next"] = position if more else 0
        mentions.sort(key=lambda m: m.created_at)
        return Page(mentions=mentions, cursor=json.dumps(state, sort_keys=True), more=more)

    async def post_reply(self, request: ReplyRequest) -> PostedReply:
        raise PermanentError(NO_REPLY_REASON)

    def reply_limits(self) -> ReplyLimits:
        return counter_for("hackernews")

    def reply_allowed(self, mention: Mention) -> tuple[bool, str]:
        return False, NO_REPLY_REASON

    async def _get(self, params: Mapping[str, str]) -> Any:
        url = f"{self._api_url}/api/v1/search_by_date"
        try:
            async with self._session.get(url, params=params, timeout=self._timeout,
                                         headers={"Accept": "application/json"}) as response:
                status = response.status
                if status == 429:
                    raise RateLimited("Algolia HN rate limit (429)",
                                      _retry_after(response.headers))
                if status >= 500:
                    raise TransientError(f"Algolia HN search failed with HTTP {status}")
                if status >= 300:
                    raise PermanentError(f"Algolia HN search failed with HTTP {status}")
                try:
                    return await response.json(content_type=None)
                except ValueError:
                    raise TransientError("Algolia HN answer is not JSON") from None
        except TimeoutError:
            raise TransientError("Algolia HN search timed out") from None
        except aiohttp.ClientError as exc:
            raise TransientError(f"Algolia HN search failed: {exc.__class__.__name__}") from None


def _advance(stream: dict[str, Any], result: ParseResult
             ) -> tuple[list[Mention], dict[str, Any], bool]:
    since = int(stream["since"])
    seen = set(stream.get("seen") or [])
    scan = stream.get("scan")
    fresh = [hit for hit in result.hits if hit.created is None or hit.created > since
             or (hit.created == since and hit.object_id not in seen)]
    if scan:
        top, top_ids = int(scan["top"]), list(scan["top_ids"])
    else:
        dated = [hit.created for hit in fresh if hit.created is not None]
        top = max(dated, default=since)
        top_ids = [hit.object_id for hit in fresh if hit.created == top]
    mentions = [hit.mention for hit in fresh if hit.mention is not None]
    if not result.hits or result.page + 1 >= result.nb_pages:
        if top == since:
            top_ids = sorted(seen | set(top_ids))
        return mentions, {"since": top, "seen": top_ids[-_SEEN_BOUND:], "scan": None}, False
    new_scan = {"top": top, "top_ids": top_ids[-_SEEN_BOUND:], "page": result.page + 1}
    return mentions, {"since": since, "seen": sorted(seen), "scan": new_scan}, True


def _retry_after(headers: Mapping[str, str]) -> float:
    try:
        return max(0.0, float(headers.get("Retry-After", "")))
    except ValueError:
        return _DEFAULT_WAIT


def _load_cursor(cursor: str | None) -> dict[str, Any]:
    if not cursor:
        return {"v": 1, "next": 0, "keywords": {}}
    try:
        state = json.loads(cursor)
    except ValueError:
        raise PermanentError("stored Hacker News cursor is not JSON") from None
    if (not isinstance(state, dict) or not isinstance(state.get("keywords"), dict)
            or not isinstance(state.get("next"), int)):
        raise PermanentError("stored Hacker News cursor has an unknown shape")
    return state


def config_problems(source: SourceConfig, env: Mapping[str, str]) -> list[str]:
    where = f"source '{source.name}'"
    problems: list[str] = []
    if not [k for k in source.keywords if k.strip()]:
        problems.append(f"{where}: add at least one keyword to search Hacker News for")
    if source.base_url and not is_http_url(source.base_url):
        problems.append(f"{where}: base_url must be an http(s) URL")
    return problems


def build(source: SourceConfig, session: aiohttp.ClientSession,
          env: Mapping[str, str]) -> HackerNewsConnector:
    problems = config_problems(source, env)
    if problems:
        raise PermanentError("; ".join(problems))
    return HackerNewsConnector(
        name=source.name,
        session=session,
        keywords=list(source.keywords),
        api_url=source.base_url or DEFAULT_API_URL,
        page_size=int(source.option("page_size", 50)),
        lookback=timedelta(hours=float(source.option("lookback_hours", 24))),
        timeout=float(source.option("timeout_seconds", 30)),
    )
