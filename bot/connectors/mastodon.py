"""Mastodon: mention notifications and hashtag timelines of the brand's instance.

Both lists page forward with `min_id` (results immediately newer than the cursor), so the
cursor per listen mode is simply the newest id taken; the one cursor string holds them all as
JSON. The first poll without a cursor takes the newest page and starts listening from there.
Keywords are followed as hashtags (`acme` and `#acme` both follow #acme).

Replies keep the original's audience: never more public than the post answered (a direct
message stays direct), prefixed with the author's `@acct`, and sent with an
`Idempotency-Key` so a retried reply is not posted twice.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import re
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp

from bot.connectors import _social_http as http
from bot.connectors.base import (
    Page,
    PermanentError,
    PostedReply,
    RateLimited,
    ReplyLimits,
    ReplyRequest,
    TransientError,
)
from bot.connectors.html_text import html_to_text
from bot.connectors.streams import Streamed, StreamEvent, StreamOpened, Unreadable
from bot.domain.length import counter_for
from bot.domain.mention import Author, Mention, MentionError, SourceKind, parse_timestamp
from bot.settings import SourceConfig

log = logging.getLogger(__name__)

NETWORK = SourceKind.MASTODON.value
NOTIFICATIONS = "notifications"
VISIBILITY_ORDER = ("direct", "private", "unlisted", "public")
_RATE = http.wait_until_iso("X-RateLimit-Reset")
_HASHTAG = re.compile(r"^#?(\w+)$")


@dataclass(frozen=True, slots=True)
class ParseResult:
    """Mentions read from one page; `newest_id` is the newest element id seen (readable or
    not) and `count` how many elements the page held, so paging never stalls on a bad one."""

    mentions: tuple[Mention, ...]
    skipped: tuple[str, ...]
    newest_id: str | None
    count: int


def _id_key(value: str) -> tuple[int, str]:
    return (len(value), value)


def _newest(ids: Sequence[str]) -> str | None:
    return max(ids, key=_id_key) if ids else None


def parse_notifications(data: Any, instance: str) -> ParseResult:
    """Read a `GET /api/v1/notifications` answer; only `mention` notifications count."""
    if not isinstance(data, list):
        raise PermanentError("mastodon: notifications answer is not a JSON array")
    mentions: list[Mention] = []
    skipped: list[str] = []
    ids: list[str] = []
    for index, item in enumerate(data):
        ident = item.get("id") if isinstance(item, dict) else None
        if isinstance(ident, str | int) and str(ident):
            ids.append(str(ident))
        try:
            if not isinstance(item, dict):
                raise MentionError("not an object")
            if item.get("type") != "mention":
                continue
            status = item.get("status")
            if not isinstance(status, dict):
                raise MentionError("its post was deleted")
            mention = status_to_mention(status, instance, listen=NOTIFICATIONS)
            mention.extra["notification_id"] = str(ident)
            mentions.append(mention)
        except (MentionError, AttributeError, KeyError, TypeError, ValueError) as exc:
            skipped.append(f"mastodon: notification {ident or f'#{index}'} skipped: {_why(exc)}")
    return ParseResult(tuple(mentions), tuple(skipped), _newest(ids), len(data))


def parse_statuses(data: Any, instance: str, *, listen: str) -> ParseResult:
    """Read a timeline answer (`GET /api/v1/timelines/tag/:hashtag`)."""
    if not isinstance(data, list):
        raise PermanentError("mastodon: timeline answer is not a JSON array")
    mentions: list[Mention] = []
    skipped: list[str] = []
    ids: list[str] = []
    for index, status in enumerate(data):
        ident = status.get("id") if isinstance(status, dict) else None
        if isinstance(ident, str | int) and str(ident):
            ids.append(str(ident))
        try:
            if not isinstance(status, dict):
                raise MentionError("not an object")
            if status.get("reblog"):
                continue
            mentions.append(status_to_mention(status, instance, listen=listen))
        except (MentionError, AttributeError, KeyError, TypeError, ValueError) as exc:
            skipped.append(f"mastodon: post {ident or f'#{index}'} skipped: {_why(exc)}")
    return ParseResult(tuple(mentions), tuple(skipped), _newest(ids), len(data))


def _why(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    return str(exc) or exc.__class__.__name__


def full_handle(acct: str, instance: str) -> str:
    """`ann` on our instance reads as `@ann@our.instance`; remote accounts keep their domain."""
    acct = acct.lstrip("@")
    return f"@{acct}" if "@" in acct else f"@{acct}@{instance}"


def status_to_mention(status: Mapping[str, Any], instance: str, *, listen: str) -> Mention:
    status_id = str(status["id"])
    account = status.get("account")
    if not isinstance(account, dict) or not account.get("acct"):
        raise MentionError("its author is missing")
    content = status.get("content")
    if not isinstance(content, str):
        raise MentionError("content is not a string")
    text = html_to_text(content)
    warning = status.get("spoiler_text")
    if isinstance(warning, str) and warning.strip():
        text = f"[CW: {warning.strip()}] {text}"
    followers = account.get("followers_count")
    fields = account.get("fields") or []
    in_reply_to = status.get("in_reply_to_id")
    lang = status.get("language")
    return Mention(
        source=NETWORK,
        external_id=status_id,
        text=text,
        created_at=parse_timestamp(status["created_at"]),
        author=Author(
            handle=full_handle(str(account["acct"]), instance),
            name=str(account.get("display_name") or account.get("username") or ""),
            followers=followers if isinstance(followers, int) and followers > 0 else 0,
            verified=any(isinstance(f, dict) and f.get("verified_at") for f in fields),
        ),
        url=str(status.get("url") or status.get("uri") or ""),
        in_reply_to=str(in_reply_to) if in_reply_to else None,
        lang=lang if isinstance(lang, str) and lang else None,
        # Mastodon does not name a thread's root; a post that starts one is its own root.
        thread_id=None if in_reply_to else status_id,
        extra={
            "listen": listen,
            "visibility": status.get("visibility"),
            "acct": str(account["acct"]),
        },
    )


def reply_visibility(original: str | None, most_public: str = "public") -> str:
    """The reply's audience: never wider than the original's, nor than the configured cap."""
    def rank(value: str | None) -> int:
        return VISIBILITY_ORDER.index(value) if value in VISIBILITY_ORDER else 0

    return VISIBILITY_ORDER[min(rank(original), rank(most_public))]


def with_mention(text: str, acct: str) -> str:
    """Prefix `@acct` unless the reply already addresses the author."""
    user, _, domain = acct.lstrip("@").partition("@")
    domain_part = rf"(?:@{re.escape(domain)})?" if domain else r"(?:@[\w.-]+)?"
    if re.search(rf"(?<![\w@/])@{re.escape(user)}{domain_part}(?![\w@])", text, re.I):
        return text
    return f"@{acct.lstrip('@')} {text}"


def hashtags(keywords: Sequence[str]) -> list[str]:
    tags = []
    for keyword in keywords:
        match = _HASHTAG.match(keyword.strip())
        if match and match.group(1).lower() not in tags:
            tags.append(match.group(1).lower())
    return tags


def _decode_cursor(cursor: str | None) -> dict[str, str]:
    if not cursor:
        return {}
    try:
        data = json.loads(cursor)
    except ValueError:
        log.warning("mastodon: stored cursor is not readable; starting from the newest posts")
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str) and v}


class MastodonConnector:
    """Mentions (notifications) and followed hashtags of one Mastodon account."""

    def __init__(
        self,
        *,
        name: str,
        session: aiohttp.ClientSession,
        base_url: str,
        token: str,
        keywords: Sequence[str] = (),
        timeout: float = 30.0,
        page_size: int = 40,
        reply_limit: int | None = None,
        most_public: str = "public",
        streaming_url: str | None = None,
        stream_idle_seconds: float = 90.0,
        stream_enabled: bool = False,
    ) -> None:
        self.name = name
        self.can_reply = True
        self.stream_enabled = stream_enabled
        self._session = session
        self._base = base_url.rstrip("/")
        self._instance = urlsplit(self._base).hostname or ""
        self._token = token
        self._tags = hashtags(keywords)
        self._timeout = timeout
        self._page_size = page_size
        self._limits = counter_for(NETWORK, reply_limit)
        self._most_public = most_public if most_public in VISIBILITY_ORDER else "public"
        self._streaming = (streaming_url or self._base).rstrip("/")
        self._stream_idle = stream_idle_seconds
        self.last_skipped: tuple[str, ...] = ()

    @property
    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"}

    async def fetch(self, cursor: str | None) -> Page:
        positions = _decode_cursor(cursor)
        modes = [NOTIFICATIONS] + [f"tag:{tag}" for tag in self._tags]
        limit = max(5, min(40, self._page_size, 100 // len(modes)))
        found: dict[str, Mention] = {}
        skipped: list[str] = []
        more = False
        for mode in modes:
            params: dict[str, str] = {"limit": str(limit)}
            if mode == NOTIFICATIONS:
                url = f"{self._base}/api/v1/notifications"
                params["types[]"] = "mention"
            else:
                url = f"{self._base}/api/v1/timelines/tag/{quote(mode[4:], safe='')}"
            if since := positions.get(mode):
                params["min_id"] = since
            body = http.json_or_raise(await self._get(url, params), NETWORK)
            if mode == NOTIFICATIONS:
                result = parse_notifications(body, self._instance)
            else:
                result = parse_statuses(body, self._instance, listen=mode)
            skipped.extend(result.skipped)
            for mention in result.mentions:
                found.setdefault(mention.external_id, mention)
            if result.newest_id:
                positions[mode] = result.newest_id
            # Without a cursor the answer is the newest page: there is nothing newer to page to.
            more = more or (bool(since) and result.count >= limit)
        self.last_skipped = tuple(skipped)
        for reason in skipped:
            log.warning("%s: %s", self.name, reason)
        ordered = sorted(found.values(), key=lambda m: _id_key(m.external_id))
        cursor_out = json.dumps(positions, sort_keys=True, separators=(",", ":"))
        return Page(mentions=ordered, cursor=cursor_out, more=more)

    async def _get(self, url: str, params: Mapping[str, str] | None = None) -> http.Response:
        response = await http.call(
            self._session, "GET", url, network=NETWORK, timeout_seconds=self._timeout,
            retry_after=_RATE, headers=self._auth, params=dict(params or {}),
        )
        if not response.ok:
            raise http.refuse(response, NETWORK, "reading mentions")
        return response

    async def post_reply(self, request: ReplyRequest) -> PostedReply:
        status_id = request.mention.external_id
        original = await http.call(
            self._session, "GET", f"{self._base}/api/v1/statuses/{quote(status_id, safe='')}",
            network=NETWORK, timeout_seconds=self._timeout, retry_after=_RATE,
            headers=self._auth,
        )
        if original.status in (404, 410):
            raise PermanentError("mastodon: the post was deleted or is no longer visible")
        if not original.ok:
            raise http.refuse(original, NETWORK, "looking up the post")
        status = http.json_or_raise(original, NETWORK)
        account = status.get("account") if isinstance(status, dict) else None
        if not isinstance(account, dict) or not account.get("acct"):
            raise PermanentError("mastodon: the post's author could not be read")
        text = with_mention(request.text, str(account["acct"]))
        length = self._limits.count(text)
        if length > self._limits.max_length:
            raise PermanentError(
                f"mastodon: with the @{str(account['acct']).lstrip('@')} prefix the reply is "
                f"{length}/{self._limits.max_length} characters; shorten it")
        response = await http.call(
            self._session, "POST", f"{self._base}/api/v1/statuses", network=NETWORK,
            timeout_seconds=self._timeout, retry_after=_RATE,
            headers={**self._auth, "Idempotency-Key": request.idempotency_key},
            json_body={
                "status": text,
                "in_reply_to_id": status_id,
                "visibility": reply_visibility(status.get("visibility"), self._most_public),
            },
        )
        if not response.ok:
            raise http.refuse(response, NETWORK, "posting the reply")
        posted = http.json_or_raise(response, NETWORK)
        if not isinstance(posted, dict) or not posted.get("id"):
            raise PermanentError("mastodon: the reply was accepted but no post id came back")
        return PostedReply(external_id=str(posted["id"]),
                           url=str(posted.get("url") or posted.get("uri") or ""))

    def reply_limits(self) -> ReplyLimits:
        return self._limits

    def reply_limits_for_mention(self, mention: Mention) -> ReplyLimits:
        """Limits that count the `@acct ` prefix the reply will carry, so a draft that fits
        the modal also fits once posted."""
        acct = str(mention.extra.get("acct") or mention.author.handle or "").lstrip("@")
        if not acct:
            return self._limits
        count = self._limits.count
        return dataclasses.replace(self._limits,
                                   count=lambda text: count(with_mention(text, acct)))

    def reply_allowed(self, mention: Mention) -> tuple[bool, str]:
        return True, ""

    async def stream(self) -> AsyncIterator[Mention]:
        """Mentions as the streaming API pushes them, until the stream ends (unreadable
        items are logged and skipped)."""
        async with contextlib.aclosing(self.stream_events()) as events:
            async for event in events:
                if isinstance(event, Streamed):
                    yield event.mention
                elif isinstance(event, Unreadable):
                    log.warning("%s: %s", self.name, event.reason)

    async def stream_events(self) -> AsyncGenerator[StreamEvent, None]:
        """The `user:notification` stream (server-sent events: `event: notification` with
        the Notification as `data`, `:thump` heartbeats) until it ends.

        Mention notifications come back exactly as `fetch` would read them; their position
        is the notification id, the same id `fetch` pages by with `min_id`.
        """
        url = f"{self._streaming}/api/v1/streaming/user/notification"
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._timeout,
                                        sock_read=self._stream_idle)
        try:
            async with self._session.get(url, headers={**self._auth,
                                                       "Accept": "text/event-stream"},
                                         timeout=timeout) as response:
                if response.status == 429:
                    wait = _RATE(response.headers)
                    raise RateLimited("mastodon: streaming rate limited",
                                      http.DEFAULT_RETRY_AFTER if wait is None else wait)
                if response.status >= 500:
                    raise TransientError(f"mastodon: streaming server error {response.status}")
                if response.status != 200:
                    raise PermanentError(f"mastodon: streaming refused (HTTP {response.status})")
                yield StreamOpened()
                event = ""
                data: list[str] = []
                async for raw in response.content:
                    line = raw.decode("utf-8", "replace").rstrip("\r\n")
                    if not line:
                        if found := self._stream_event(event, "\n".join(data)):
                            yield found
                        event, data = "", []
                    elif line.startswith(":"):
                        continue
                    else:
                        field, _, value = line.partition(":")
                        value = value.removeprefix(" ")
                        if field == "event":
                            event = value
                        elif field == "data":
                            data.append(value)
        except TimeoutError as exc:
            raise TransientError("mastodon: the stream went quiet") from exc
        except aiohttp.ClientError as exc:
            raise TransientError(f"mastodon: stream failed ({exc.__class__.__name__})") from exc

    def _stream_event(self, event: str, data: str) -> StreamEvent | None:
        if event != "notification" or not data:
            return None
        try:
            item = json.loads(data)
        except ValueError:
            return Unreadable("mastodon: streamed notification skipped: data is not JSON")
        result = parse_notifications([item], self._instance)
        if result.mentions:
            return Streamed(result.mentions[0], result.newest_id)
        if result.skipped:
            return Unreadable(result.skipped[0], result.newest_id)
        return None

    def advance_cursor(self, cursor: str | None, position: str) -> str | None:
        """The cursor with the notifications position moved up to `position`, if it is newer."""
        positions = _decode_cursor(cursor)
        current = positions.get(NOTIFICATIONS)
        if current is not None and _id_key(current) >= _id_key(position):
            return cursor
        positions[NOTIFICATIONS] = position
        return json.dumps(positions, sort_keys=True, separators=(",", ":"))


def config_problems(source: SourceConfig, env: Mapping[str, str]) -> list[str]:
    problems: list[str] = []
    where = f"source '{source.name}'"
    if not source.base_url:
        problems.append(f"{where}: base_url must be the instance's address")
    elif problem := http.url_problem(source.base_url):
        problems.append(f"{where}: {problem}")
    if not source.token_env:
        problems.append(f"{where}: token_env must name the variable holding the access token")
    elif source.token(env) is None:
        problems.append(f"{where}: environment variable {source.token_env} is not set")
    for keyword in source.keywords:
        if not _HASHTAG.match(keyword.strip()):
            problems.append(
                f"{where}: keyword {keyword!r} is not a hashtag (Mastodon follows hashtags)")
    most_public = source.option("reply_visibility", "public")
    if most_public not in VISIBILITY_ORDER:
        problems.append(f"{where}: reply_visibility must be one of {', '.join(VISIBILITY_ORDER)}")
    if problem := http.url_problem(source.option("streaming_url"), "streaming_url"):
        problems.append(f"{where}: {problem}")
    return problems


def build(
    source: SourceConfig, session: aiohttp.ClientSession, env: Mapping[str, str]
) -> MastodonConnector:
    if problems := config_problems(source, env):
        raise PermanentError("; ".join(problems))
    token = source.token(env)
    if token is None or not source.base_url:
        raise PermanentError(f"source '{source.name}': incomplete configuration")
    return MastodonConnector(
        name=source.name,
        session=session,
        base_url=source.base_url,
        token=token.get_secret_value(),
        keywords=source.keywords,
        timeout=float(source.option("timeout_seconds", 30.0)),
        page_size=int(source.option("page_size", 40)),
        reply_limit=source.reply_limit,
        most_public=str(source.option("reply_visibility", "public")),
        streaming_url=source.option("streaming_url"),
        stream_idle_seconds=float(source.option("stream_idle_seconds", 90.0)),
        stream_enabled=bool(source.option("streaming", source.option("stream", False))),
    )
