"""Reddit: username mentions from the inbox and keyword searches, replies as comments.

Access: Reddit's Data API now needs Reddit's approval for new OAuth clients (self-service
access closed; the Responsible Builder Policy applies). The connector uses a "script" app:
client id and secret plus the bot account's username and password (password grant), and
sends a descriptive User-Agent as Reddit's API rules require.

Listings come newest first, so each stream (the inbox, each search) is read as a *scan*: from
the newest item down to the watermark of the previous scan, page by page with `after`. The
watermark (`since` and the fullnames at that second) moves only when a scan ends, so a
restart in the middle of a scan continues exactly where the stored cursor says.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp

from bot.connectors.base import (
    Page,
    PermanentError,
    PostedReply,
    RateLimited,
    ReplyLimits,
    ReplyRequest,
    TransientError,
)
from bot.domain.length import counter_for
from bot.domain.mention import Author, Mention
from bot.settings import SourceConfig

DEFAULT_API_URL = "https://oauth.reddit.com"
DEFAULT_AUTH_URL = "https://www.reddit.com"
WEB_URL = "https://www.reddit.com"
MAX_PAGE = 100
_SEEN_BOUND = 200
_TOKEN_MARGIN_SECONDS = 60.0
_DELETED = frozenset({"[deleted]", "[removed]"})
_RETRY_IN = re.compile(r"(\d+)\s*(second|minute)", re.IGNORECASE)
_COMMENTS_PATH = re.compile(r"/comments/([a-z0-9]+)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ListingItem:
    """One child of a Listing: enough to move the watermark even when it cannot be used."""

    fullname: str
    created: float | None
    mention: Mention | None
    skipped: str | None = None


@dataclass(frozen=True, slots=True)
class ParseResult:
    items: list[ListingItem]
    after: str | None
    skipped: list[str] = field(default_factory=list)

    @property
    def mentions(self) -> list[Mention]:
        return [item.mention for item in self.items if item.mention is not None]


def parse_listing(data: Any) -> ParseResult:
    """Read a Reddit Listing (`{"kind": "Listing", "data": {"children": [...]}}`).

    A body that is not a Listing raises `PermanentError`; a child that cannot be read is kept
    as a skipped item with its reason.
    """
    if not isinstance(data, dict) or data.get("kind") != "Listing":
        raise PermanentError("Reddit answered with something that is not a Listing")
    body = data.get("data")
    children = body.get("children") if isinstance(body, dict) else None
    if not isinstance(children, list):
        raise PermanentError("Reddit Listing has no children array")
    after = body.get("after") if isinstance(body, dict) else None
    items: list[ListingItem] = []
    skipped: list[str] = []
    for index, child in enumerate(children):
        item = _parse_child(child, index)
        items.append(item)
        if item.skipped:
            skipped.append(item.skipped)
    return ParseResult(items=items, after=after if isinstance(after, str) and after else None,
                       skipped=skipped)


def _parse_child(child: Any, index: int) -> ListingItem:
    if not isinstance(child, dict) or not isinstance(child.get("data"), dict):
        return ListingItem("", None, None, f"child {index}: not a thing object")
    kind = child.get("kind")
    data: dict[str, Any] = child["data"]
    fullname = data.get("name")
    if not isinstance(fullname, str) or not fullname:
        return ListingItem("", None, None, f"child {index}: missing 'name'")
    created_raw = data.get("created_utc")
    if isinstance(created_raw, bool) or not isinstance(created_raw, int | float):
        return ListingItem(fullname, None, None, f"{fullname}: missing or invalid 'created_utc'")
    created = float(created_raw)
    if kind not in ("t1", "t3"):
        reason = f"{fullname}: kind {kind!r} is not a comment or post"
        return ListingItem(fullname, created, None, reason)
    if kind == "t1":
        text = data.get("body")
        if not isinstance(text, str):
            return ListingItem(fullname, created, None, f"{fullname}: comment has no body")
        if text.strip() in _DELETED:
            reason = f"{fullname}: comment was deleted or removed"
            return ListingItem(fullname, created, None, reason)
    else:
        title = data.get("title")
        selftext = data.get("selftext") or ""
        if not isinstance(title, str) or not isinstance(selftext, str):
            return ListingItem(fullname, created, None, f"{fullname}: post has no title")
        if selftext.strip() in _DELETED:
            selftext = ""
        text = title if not selftext.strip() else f"{title}\n\n{selftext}"
    return ListingItem(fullname, created, _to_mention(kind, fullname, created, text, data))


def _to_mention(kind: str, fullname: str, created: float, text: str,
                data: dict[str, Any]) -> Mention:
    author_name = data.get("author")
    deleted_author = not isinstance(author_name, str) or author_name in _DELETED
    author = (Author(handle="", name="[deleted]") if deleted_author
              else Author(handle=f"u/{author_name}", name=str(author_name)))
    link = data.get("permalink") or data.get("context") or ""
    url = f"{WEB_URL}{link}" if isinstance(link, str) and link.startswith("/") else str(link)
    thread_id: str | None
    in_reply_to: str | None
    if kind == "t3":
        thread_id = fullname
        in_reply_to = None
    else:
        link_id = data.get("link_id")
        if isinstance(link_id, str) and link_id:
            thread_id = link_id
        else:
            match = _COMMENTS_PATH.search(str(link))
            thread_id = f"t3_{match.group(1)}" if match else None
        parent = data.get("parent_id")
        in_reply_to = parent if isinstance(parent, str) and parent else None
    extra: dict[str, Any] = {"subreddit": data.get("subreddit") or ""}
    for flag in ("locked", "archived"):
        if data.get(flag) is True:
            extra[flag] = True
    if deleted_author:
        extra["author_deleted"] = True
    return Mention(
        source="reddit",
        external_id=fullname,
        text=text,
        created_at=datetime.fromtimestamp(created, tz=UTC),
        author=author,
        url=url,
        in_reply_to=in_reply_to,
        thread_id=thread_id,
        extra=extra,
    )


def parse_comment_response(data: Any) -> PostedReply:
    """Read `POST /api/comment` with `api_type=json`: errors arrive inside a 200."""
    body = data.get("json") if isinstance(data, dict) else None
    if not isinstance(body, dict):
        raise PermanentError("Reddit answered the reply with an unreadable body")
    errors = body.get("errors") or []
    if errors:
        first = errors[0] if isinstance(errors, list) else errors
        if isinstance(first, list) and first:
            code = str(first[0])
            message = str(first[1]) if len(first) > 1 else code
        else:
            code, message = "ERROR", str(first)
        if code == "RATELIMIT":
            raise RateLimited(f"Reddit refused the reply: {message}", _retry_in(message))
        raise PermanentError(f"Reddit refused the reply: {message} ({code})")
    things = (body.get("data") or {}).get("things") if isinstance(body.get("data"), dict) else None
    if not isinstance(things, list) or not things or not isinstance(things[0], dict):
        raise PermanentError("Reddit accepted the reply but returned no comment")
    thing = things[0].get("data") or {}
    name = thing.get("name") or (f"t1_{thing['id']}" if thing.get("id") else "")
    if not name:
        raise PermanentError("Reddit accepted the reply but returned no comment id")
    permalink = thing.get("permalink") or ""
    return PostedReply(external_id=str(name),
                       url=f"{WEB_URL}{permalink}" if permalink.startswith("/") else permalink)


def find_own_reply(listing: ParseResult, parent: str, text: str) -> PostedReply | None:
    """A comment of ours answering `parent` with `text` (whitespace aside), if one exists."""
    wanted = " ".join(text.split())
    for item in listing.items:
        mention = item.mention
        if (mention is not None and mention.in_reply_to == parent
                and " ".join(mention.text.split()) == wanted):
            return PostedReply(external_id=item.fullname, url=mention.url)
    return None


def _retry_in(message: str) -> float:
    match = _RETRY_IN.search(message)
    if not match:
        return 60.0
    amount = float(match.group(1))
    return amount * 60.0 if match.group(2).lower() == "minute" else amount


@dataclass(frozen=True, slots=True)
class Stream:
    """One listing the connector reads: the inbox, or a search."""

    key: str
    path: str
    params: dict[str, str]


class RedditConnector:
    """Polls the configured listings one request per `fetch`, round robin."""

    can_reply = True

    def __init__(
        self,
        *,
        name: str,
        session: aiohttp.ClientSession,
        client_id: str,
        client_secret: str,
        username: str,
        password: str,
        user_agent: str,
        streams: list[Stream],
        api_url: str = DEFAULT_API_URL,
        auth_url: str = DEFAULT_AUTH_URL,
        page_size: int = MAX_PAGE,
        lookback: timedelta = timedelta(hours=24),
        timeout: float = 30.0,
        reply_limit: int | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not streams:
            raise ValueError("a Reddit connector needs at least one stream")
        self.name = name
        self._session = session
        self._client_id = client_id
        self._client_secret = client_secret
        self._username = username
        self._password = password
        self._user_agent = user_agent
        self._streams = streams
        self._api_url = api_url.rstrip("/")
        self._auth_url = auth_url.rstrip("/")
        self._page_size = max(1, min(page_size, MAX_PAGE))
        self._lookback = lookback
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._reply_limit = reply_limit
        self._clock = clock
        self._token: str | None = None
        self._token_expires = 0.0
        self._posted: dict[str, PostedReply] = {}
        self._blocked_until = 0.0

    # -- protocol ---------------------------------------------------------------------------

    async def fetch(self, cursor: str | None) -> Page:
        state = self._load_cursor(cursor)
        position = state["next"] % len(self._streams)
        stream = self._streams[position]
        stream_state = state["streams"].get(stream.key) or self._fresh_stream_state()
        scan = stream_state.get("scan")
        params = {**stream.params, "limit": str(self._page_size), "raw_json": "1"}
        if scan:
            params["after"] = scan["after"]
        data = await self._get(stream.path, params)
        listing = parse_listing(data)
        mentions, new_state, scanning = _advance(stream_state, listing)
        state["streams"][stream.key] = new_state
        if scanning:
            more = True
        else:
            position += 1
            more = position < len(self._streams)
        state["next"] = position if more else 0
        mentions.sort(key=lambda m: m.created_at)
        return Page(mentions=mentions, cursor=json.dumps(state, sort_keys=True), more=more)

    async def post_reply(self, request: ReplyRequest) -> PostedReply:
        """Comment once. Reddit has no idempotency key, so a retry first looks for the comment
        an earlier attempt may have left (its answer lost on the way back)."""
        allowed, reason = self.reply_allowed(request.mention)
        if not allowed:
            raise PermanentError(reason)
        if request.idempotency_key in self._posted:
            return self._posted[request.idempotency_key]
        if existing := await self._existing_comment(request):
            self._posted[request.idempotency_key] = existing
            return existing
        try:
            data = await self._post("/api/comment", {
                "thing_id": request.mention.external_id,
                "text": request.text,
                "api_type": "json",
            })
        except RateLimited:
            raise
        except TransientError:
            if existing := await self._existing_comment(request):
                self._posted[request.idempotency_key] = existing
                return existing
            raise
        posted = parse_comment_response(data)
        self._posted[request.idempotency_key] = posted
        return posted

    async def _existing_comment(self, request: ReplyRequest) -> PostedReply | None:
        """Our newest comments, searched for this text under this parent."""
        data = await self._get(f"/user/{quote(self._username)}/comments",
                               {"sort": "new", "limit": "100", "raw_json": "1"})
        return find_own_reply(parse_listing(data), request.mention.external_id, request.text)

    def reply_limits(self) -> ReplyLimits:
        return counter_for("reddit", self._reply_limit)

    def reply_allowed(self, mention: Mention) -> tuple[bool, str]:
        if not mention.external_id.startswith(("t1_", "t3_")):
            return False, "Only Reddit comments and posts can be answered"
        if mention.extra.get("locked"):
            return False, "The Reddit thread is locked: new comments are not accepted"
        if mention.extra.get("archived"):
            return False, "The Reddit thread is archived: new comments are not accepted"
        return True, ""

    # -- cursor -----------------------------------------------------------------------------

    def _fresh_stream_state(self) -> dict[str, Any]:
        since = (self._clock() - self._lookback).timestamp()
        return {"since": since, "seen": [], "scan": None}

    def _load_cursor(self, cursor: str | None) -> dict[str, Any]:
        if not cursor:
            return {"v": 1, "next": 0, "streams": {}}
        try:
            state = json.loads(cursor)
        except ValueError:
            raise PermanentError("stored Reddit cursor is not JSON") from None
        if (not isinstance(state, dict) or not isinstance(state.get("streams"), dict)
                or not isinstance(state.get("next"), int)):
            raise PermanentError("stored Reddit cursor has an unknown shape")
        return state

    # -- HTTP -------------------------------------------------------------------------------

    async def _access_token(self) -> str:
        if self._token and time.monotonic() < self._token_expires:
            return self._token
        form = {"grant_type": "password", "username": self._username,
                "password": self._password}
        data = await self._request(
            "POST", f"{self._auth_url}/api/v1/access_token", data=form,
            basic=(self._client_id, self._client_secret), what="token",
        )
        if not isinstance(data, dict):
            raise PermanentError("Reddit's token endpoint answered with an unreadable body")
        if data.get("error"):
            raise PermanentError(f"Reddit refused the bot account's login ({data['error']})")
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise PermanentError("Reddit's token endpoint returned no access_token")
        expires_in = data.get("expires_in")
        lifetime = float(expires_in) if isinstance(expires_in, int | float) else 3600.0
        self._token = token
        self._token_expires = time.monotonic() + max(lifetime - _TOKEN_MARGIN_SECONDS, 0.0)
        return token

    async def _get(self, path: str, params: Mapping[str, str]) -> Any:
        token = await self._access_token()
        return await self._request("GET", f"{self._api_url}{path}", params=params,
                                   bearer=token, what="listing")

    async def _post(self, path: str, form: Mapping[str, str]) -> Any:
        token = await self._access_token()
        return await self._request("POST", f"{self._api_url}{path}", data=form,
                                   bearer=token, what="reply")

    async def _request(self, method: str, url: str, *, what: str,
                       params: Mapping[str, str] | None = None,
                       data: Mapping[str, str] | None = None,
                       basic: tuple[str, str] | None = None,
                       bearer: str | None = None) -> Any:
        wait = self._blocked_until - time.monotonic()
        if wait > 0:
            raise RateLimited("Reddit's rate limit window is used up", wait)
        headers = {"User-Agent": self._user_agent, "Accept": "application/json"}
        if bearer:
            headers["Authorization"] = f"bearer {bearer}"
        elif basic:
            pair = f"{basic[0]}:{basic[1]}".encode()
            headers["Authorization"] = f"Basic {base64.b64encode(pair).decode('ascii')}"
        try:
            async with self._session.request(
                method, url, params=params, data=data, headers=headers,
                timeout=self._timeout, allow_redirects=False,
            ) as response:
                self._note_rate_limit(response.headers)
                status = response.status
                if status == 429:
                    raise RateLimited("Reddit rate limit (429)", _reset_seconds(response.headers))
                if status >= 500:
                    raise TransientError(f"Reddit {what} request failed with HTTP {status}")
                if status == 401:
                    self._token = None
                    if bearer:
                        raise TransientError("Reddit access token was refused; will log in again")
                    raise PermanentError("Reddit refused the client id or secret (HTTP 401)")
                if status == 403:
                    raise PermanentError(f"Reddit forbids this {what} request (HTTP 403)")
                if status >= 300:
                    raise PermanentError(f"Reddit {what} request failed with HTTP {status}")
                try:
                    return await response.json(content_type=None)
                except ValueError:
                    raise TransientError(f"Reddit {what} response is not JSON") from None
        except TimeoutError:
            raise TransientError(f"Reddit {what} request timed out") from None
        except aiohttp.ClientError as exc:
            reason = f"Reddit {what} request failed: {exc.__class__.__name__}"
            raise TransientError(reason) from None

    def _note_rate_limit(self, headers: Mapping[str, str]) -> None:
        remaining = _float_header(headers, "x-ratelimit-remaining")
        if remaining is not None and remaining < 1:
            self._blocked_until = time.monotonic() + _reset_seconds(headers)


def _advance(state: dict[str, Any], listing: ParseResult
             ) -> tuple[list[Mention], dict[str, Any], bool]:
    """Walk one page of a newest-first scan; return its mentions, the new state, and whether
    the scan goes on."""
    since = float(state["since"])
    seen = set(state.get("seen") or [])
    scan = state.get("scan")
    fresh: list[ListingItem] = []
    reached_old = False
    for item in listing.items:
        if item.created is not None and (
            item.created < since or (item.created == since and item.fullname in seen)
        ):
            reached_old = True
            break
        fresh.append(item)
    if scan:
        top, top_ids = float(scan["top"]), list(scan["top_ids"])
    else:
        dated = [item for item in fresh if item.created is not None]
        top = max((item.created for item in dated if item.created is not None), default=since)
        top_ids = [item.fullname for item in dated if item.created == top]
    mentions = [item.mention for item in fresh if item.mention is not None]
    if reached_old or listing.after is None or not listing.items:
        if top == since:
            top_ids = sorted(seen | set(top_ids))
        return mentions, {"since": top, "seen": top_ids[-_SEEN_BOUND:], "scan": None}, False
    new_scan = {"top": top, "top_ids": top_ids[-_SEEN_BOUND:], "after": listing.after}
    return mentions, {"since": since, "seen": sorted(seen), "scan": new_scan}, True


def _float_header(headers: Mapping[str, str], name: str) -> float | None:
    value = headers.get(name)
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _reset_seconds(headers: Mapping[str, str]) -> float:
    for name in ("x-ratelimit-reset", "retry-after"):
        value = _float_header(headers, name)
        if value is not None and value >= 0:
            return value
    return 60.0


# -- configuration ----------------------------------------------------------------------------

def _streams(source: SourceConfig) -> list[Stream]:
    streams: list[Stream] = []
    if source.option("inbox_mentions", True):
        streams.append(Stream("inbox", "/message/mentions", {}))
    subreddits = [str(s).strip().removeprefix("r/") for s in source.option("subreddits", []) or []]
    subreddits = [s for s in subreddits if s]
    if subreddits:
        joined = "+".join(subreddits)
        for keyword in source.keywords:
            streams.append(Stream(f"search:{joined}:{keyword}", f"/r/{quote(joined)}/search",
                                  {"q": keyword, "sort": "new", "restrict_sr": "on"}))
    else:
        for keyword in source.keywords:
            streams.append(Stream(f"search:{keyword}", "/search", {"q": keyword, "sort": "new"}))
    return streams


def config_problems(source: SourceConfig, env: Mapping[str, str]) -> list[str]:
    """What keeps this Reddit source from working, one sentence each."""
    where = f"source '{source.name}'"
    problems: list[str] = []
    if not source.option("client_id"):
        problems.append(f"{where}: set 'client_id' (the script app's id)")
    if not source.secret_env:
        problems.append(f"{where}: set 'secret_env' to the variable holding the app secret")
    elif source.secret(env) is None:
        problems.append(f"{where}: environment variable {source.secret_env} is not set")
    if not source.option("username"):
        problems.append(f"{where}: set 'username' (the bot account)")
    password_env = source.option("password_env")
    if not password_env:
        problems.append(f"{where}: set 'password_env' to the variable holding the password")
    elif not env.get(str(password_env)):
        problems.append(f"{where}: environment variable {password_env} is not set")
    for key, value in (("base_url", source.base_url), ("auth_url", source.option("auth_url"))):
        if value and urlsplit(str(value)).scheme not in ("http", "https"):
            problems.append(f"{where}: {key} must be an http(s) URL")
    if not _streams(source):
        problems.append(f"{where}: nothing to read: enable inbox_mentions or add keywords")
    return problems


def build(source: SourceConfig, session: aiohttp.ClientSession,
          env: Mapping[str, str]) -> RedditConnector:
    problems = config_problems(source, env)
    if problems:
        raise PermanentError("; ".join(problems))
    secret = source.secret(env)
    username = str(source.option("username"))
    return RedditConnector(
        name=source.name,
        session=session,
        client_id=str(source.option("client_id")),
        client_secret=secret.get_secret_value() if secret else "",
        username=username,
        password=env.get(str(source.option("password_env")), ""),
        user_agent=str(source.option("user_agent")
                       or f"python:mentiondesk:0.1 (by /u/{username})"),
        streams=_streams(source),
        api_url=source.base_url or DEFAULT_API_URL,
        auth_url=str(source.option("auth_url") or DEFAULT_AUTH_URL),
        page_size=int(source.option("page_size", MAX_PAGE)),
        lookback=timedelta(hours=float(source.option("lookback_hours", 24))),
        timeout=float(source.option("timeout_seconds", 30)),
        reply_limit=source.reply_limit,
    )
