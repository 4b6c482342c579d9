"""Bluesky (AT Protocol): mention/reply/quote notifications and post search for keywords.

Both lists come newest first and their `cursor` pages towards older items, so a catch-up is a
*sweep*: page down until an item at or below the watermark (`indexedAt`, uri) of the last
sweep, then raise the watermark to the newest item the sweep started with. The cursor stores
the sweep in progress per listen mode, so a restart mid-way continues it and every post is
taken once. The first poll takes the newest page only.

The session (`createSession` with an app password) is made once and kept; when the access
token expires it is renewed with `refreshSession`, not re-created. Replies carry a record key
derived from the idempotency key, so a retried reply hits the record already written and is
reported as the same post instead of a second one.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

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
from bot.domain.length import counter_for
from bot.domain.mention import Author, Mention, MentionError, SourceKind, parse_timestamp
from bot.settings import SourceConfig

log = logging.getLogger(__name__)

NETWORK = SourceKind.BLUESKY.value
DEFAULT_BASE_URL = "https://bsky.social"
POST_COLLECTION = "app.bsky.feed.post"
NOTIFICATIONS = "notifications"
WANTED_REASONS = ("mention", "reply", "quote")
_RATE = http.wait_until_epoch("ratelimit-reset")
_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
# TIDs carry a microsecond timestamp; ours is derived from the key, inside this fixed year.
_TID_EPOCH_US = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1_000_000)
_TID_SPAN_US = 366 * 24 * 3600 * 1_000_000
_MENTION = re.compile(
    r"(?<![\w@.])@((?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+"
    r"[a-zA-Z](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)"
)
_LINK = re.compile(r"(?<![\w/])https?://[^\s<>\"]+")
_LINK_TRAILING = ".,;:!?)]}'\""

Key = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Item:
    """One listed element: its sort key, and the mention when it could be read."""

    key: Key | None
    mention: Mention | None


@dataclass(frozen=True, slots=True)
class ParseResult:
    items: tuple[Item, ...]
    skipped: tuple[str, ...]
    cursor: str | None

    @property
    def mentions(self) -> tuple[Mention, ...]:
        return tuple(item.mention for item in self.items if item.mention is not None)


@dataclass(frozen=True, slots=True)
class Sweep:
    """`since` is the watermark fully taken; `top`/`page` describe a sweep still paging."""

    since: Key | None = None
    top: Key | None = None
    page: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.since:
            data["since"] = list(self.since)
        if self.top:
            data["top"] = list(self.top)
        if self.page:
            data["page"] = self.page
        return data

    @classmethod
    def from_json(cls, data: Any) -> Sweep:
        if not isinstance(data, dict):
            return cls()

        def key(value: Any) -> Key | None:
            if isinstance(value, list) and len(value) == 2 and all(
                    isinstance(v, str) for v in value):
                return (value[0], value[1])
            return None

        page = data.get("page")
        return cls(key(data.get("since")), key(data.get("top")),
                   page if isinstance(page, str) and page else None)


def rkey_of(uri: str) -> str:
    return uri.rstrip("/").rsplit("/", 1)[-1]


def permalink(handle: str, uri: str) -> str:
    return f"https://bsky.app/profile/{handle}/post/{rkey_of(uri)}"


def _why(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    return str(exc) or exc.__class__.__name__


def _sort_key(element: Mapping[str, Any]) -> Key | None:
    uri, indexed = element.get("uri"), element.get("indexedAt")
    if isinstance(uri, str) and isinstance(indexed, str) and uri and indexed:
        try:
            stamp = parse_timestamp(indexed)
        except MentionError:
            return None
        return (stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), uri)
    return None


def readable_text(record: Mapping[str, Any]) -> str:
    """The post text with shortened link labels replaced by their full target."""
    text = record.get("text")
    if not isinstance(text, str):
        raise MentionError("the post has no text")
    data = text.encode("utf-8")
    links = []
    for facet in record.get("facets") or []:
        if not isinstance(facet, dict):
            continue
        index = facet.get("index") or {}
        start, end = index.get("byteStart"), index.get("byteEnd")
        uri = next((f.get("uri") for f in facet.get("features") or []
                    if isinstance(f, dict) and f.get("$type") == "app.bsky.richtext.facet#link"),
                   None)
        if (isinstance(start, int) and isinstance(end, int) and isinstance(uri, str)
                and 0 <= start < end <= len(data)):
            links.append((start, end, uri))
    for start, end, uri in sorted(links, reverse=True):
        data = data[:start] + uri.encode("utf-8") + data[end:]
    return data.decode("utf-8", "replace")


def post_to_mention(element: Mapping[str, Any], *, listen: str, reason: str = "") -> Mention:
    """A notification or a post view (both carry uri, cid, author, record, indexedAt)."""
    uri = element["uri"]
    if not isinstance(uri, str) or not uri.startswith("at://"):
        raise MentionError("uri is not an at:// uri")
    author = element.get("author")
    if not isinstance(author, dict) or not author.get("handle"):
        raise MentionError("its author is missing")
    record = element.get("record")
    if not isinstance(record, dict):
        raise MentionError("the post record is missing (deleted?)")
    handle = str(author["handle"])
    reply = record.get("reply") if isinstance(record.get("reply"), dict) else {}
    parent = (reply.get("parent") or {}).get("uri") if reply else None
    root = (reply.get("root") or {}).get("uri") if reply else None
    langs = record.get("langs")
    verification = author.get("verification")
    followers = author.get("followersCount")
    return Mention(
        source=NETWORK,
        external_id=uri,
        text=readable_text(record),
        created_at=parse_timestamp(record.get("createdAt") or element["indexedAt"]),
        author=Author(
            handle=f"@{handle}",
            name=str(author.get("displayName") or ""),
            followers=followers if isinstance(followers, int) and followers > 0 else 0,
            verified=isinstance(verification, dict)
            and verification.get("verifiedStatus") == "valid",
        ),
        url=permalink(handle, uri),
        in_reply_to=parent if isinstance(parent, str) else None,
        lang=langs[0] if isinstance(langs, list) and langs and isinstance(langs[0], str)
        else None,
        thread_id=root if isinstance(root, str) else uri,
        extra={"listen": listen, "reason": reason, "cid": element.get("cid"),
               "author_did": author.get("did")},
    )


def parse_notifications(data: Any) -> ParseResult:
    """Read an `app.bsky.notification.listNotifications` answer; keep mentions, replies,
    quotes. Other reasons stay in `items` (without a mention) so the sweep can pass them."""
    if not isinstance(data, dict) or not isinstance(data.get("notifications"), list):
        raise PermanentError("bluesky: notifications answer has no 'notifications' list")
    items: list[Item] = []
    skipped: list[str] = []
    for index, element in enumerate(data["notifications"]):
        if not isinstance(element, dict):
            skipped.append(f"bluesky: notification #{index} skipped: not an object")
            continue
        key = _sort_key(element)
        reason = element.get("reason")
        if reason not in WANTED_REASONS:
            items.append(Item(key, None))
            continue
        try:
            if key is None:
                raise MentionError("uri or indexedAt is missing")
            items.append(Item(key, post_to_mention(element, listen=NOTIFICATIONS,
                                                   reason=str(reason))))
        except (MentionError, AttributeError, KeyError, TypeError, ValueError) as exc:
            items.append(Item(key, None))
            skipped.append(
                f"bluesky: notification {element.get('uri') or f'#{index}'} skipped: {_why(exc)}")
    cursor = data.get("cursor")
    return ParseResult(tuple(items), tuple(skipped), cursor if isinstance(cursor, str) else None)


def parse_search(data: Any, *, listen: str) -> ParseResult:
    """Read an `app.bsky.feed.searchPosts` answer."""
    if not isinstance(data, dict) or not isinstance(data.get("posts"), list):
        raise PermanentError("bluesky: search answer has no 'posts' list")
    items: list[Item] = []
    skipped: list[str] = []
    for index, element in enumerate(data["posts"]):
        if not isinstance(element, dict):
            skipped.append(f"bluesky: post #{index} skipped: not an object")
            continue
        key = _sort_key(element)
        try:
            if key is None:
                raise MentionError("uri or indexedAt is missing")
            items.append(Item(key, post_to_mention(element, listen=listen, reason="search")))
        except (MentionError, AttributeError, KeyError, TypeError, ValueError) as exc:
            items.append(Item(key, None))
            skipped.append(
                f"bluesky: post {element.get('uri') or f'#{index}'} skipped: {_why(exc)}")
    cursor = data.get("cursor")
    return ParseResult(tuple(items), tuple(skipped), cursor if isinstance(cursor, str) else None)


def tid_from_key(key: str) -> str:
    """A valid TID record key that is the same for every retry of one reply."""
    digest = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big")
    micros = _TID_EPOCH_US + (digest >> 10) % _TID_SPAN_US
    value = (micros << 10) | (digest & 0x3FF)
    chars = []
    for _ in range(13):
        chars.append(_TID_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def byte_span(text: str, start: int, end: int) -> dict[str, int]:
    """Facet indexes count UTF-8 bytes, not characters."""
    byte_start = len(text[:start].encode("utf-8"))
    return {"byteStart": byte_start, "byteEnd": byte_start + len(text[start:end].encode("utf-8"))}


def link_facets(text: str) -> list[dict[str, Any]]:
    facets = []
    for match in _LINK.finditer(text):
        url = match.group(0).rstrip(_LINK_TRAILING)
        start = match.start()
        facets.append({"index": byte_span(text, start, start + len(url)),
                       "features": [{"$type": "app.bsky.richtext.facet#link", "uri": url}]})
    return facets


def mention_spans(text: str) -> list[tuple[str, int, int]]:
    """Handles written as `@handle.domain`, with their character span (the `@` included)."""
    return [(m.group(1).lower(), m.start(), m.end()) for m in _MENTION.finditer(text)]


@dataclass(slots=True)
class _Session:
    access: str
    refresh: str
    did: str
    handle: str


class BlueskyConnector:
    """Notifications and keyword search of one Bluesky account, through its PDS."""

    def __init__(
        self,
        *,
        name: str,
        session: aiohttp.ClientSession,
        identifier: str,
        password: str,
        keywords: Sequence[str] = (),
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 30.0,
        page_size: int = 50,
        reply_limit: int | None = None,
    ) -> None:
        self.name = name
        self.can_reply = True
        self._http = session
        self._identifier = identifier
        self._password = password
        self._queries = [k.strip() for k in keywords if k.strip()]
        self._base = base_url.rstrip("/")
        self._timeout = timeout
        self._page_size = page_size
        self._limits = counter_for(NETWORK, reply_limit)
        self._session: _Session | None = None
        self._lock = asyncio.Lock()
        self.last_skipped: tuple[str, ...] = ()

    # --- session ---------------------------------------------------------------------

    async def _login(self) -> _Session:
        async with self._lock:
            if self._session is None:
                body = await self._procedure(
                    "com.atproto.server.createSession",
                    {"identifier": self._identifier, "password": self._password},
                    token=None, action="signing in",
                )
                self._session = _session_from(body)
            return self._session

    async def _renew(self, stale: _Session) -> _Session:
        async with self._lock:
            if self._session is not stale and self._session is not None:
                return self._session
            try:
                body = await self._procedure("com.atproto.server.refreshSession", None,
                                             token=stale.refresh, action="renewing the session")
                self._session = _session_from(body)
            except PermanentError:
                self._session = None
                body = await self._procedure(
                    "com.atproto.server.createSession",
                    {"identifier": self._identifier, "password": self._password},
                    token=None, action="signing in",
                )
                self._session = _session_from(body)
            return self._session

    async def _procedure(self, nsid: str, payload: Any, *, token: str | None, action: str
                         ) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await http.call(
            self._http, "POST", f"{self._base}/xrpc/{nsid}", network=NETWORK,
            timeout_seconds=self._timeout, retry_after=_RATE, headers=headers,
            json_body=payload,
        )
        if not response.ok:
            raise http.refuse(response, NETWORK, action)
        return http.json_or_raise(response, NETWORK)

    async def _xrpc(self, method: str, nsid: str, *, params: Any = None, payload: Any = None
                    ) -> http.Response:
        """An authenticated call, renewing the session once if its access token expired."""
        session = self._session or await self._login()
        response = await self._send(method, nsid, session, params, payload)
        if _expired(response):
            session = await self._renew(session)
            response = await self._send(method, nsid, session, params, payload)
        return response

    async def _send(self, method: str, nsid: str, session: _Session, params: Any,
                    payload: Any) -> http.Response:
        return await http.call(
            self._http, method, f"{self._base}/xrpc/{nsid}", network=NETWORK,
            timeout_seconds=self._timeout, retry_after=_RATE,
            headers={"Authorization": f"Bearer {session.access}"},
            params=params, json_body=payload,
        )

    # --- listening -------------------------------------------------------------------

    async def fetch(self, cursor: str | None) -> Page:
        sweeps = _decode_cursor(cursor)
        modes = [NOTIFICATIONS] + [f"q:{q}" for q in self._queries]
        limit = max(1, min(100, self._page_size, 100 // len(modes)))
        found: dict[str, Mention] = {}
        skipped: list[str] = []
        more = False
        for mode in modes:
            sweep = sweeps.get(mode, Sweep())
            result = await self._page(mode, sweep, limit)
            skipped.extend(result.skipped)
            taken, sweeps[mode] = _advance(sweep, result)
            for mention in taken:
                found.setdefault(mention.external_id, mention)
            more = more or bool(sweeps[mode].page)
        self.last_skipped = tuple(skipped)
        for reason in skipped:
            log.warning("%s: %s", self.name, reason)
        ordered = sorted(found.values(), key=lambda m: (m.created_at, m.external_id))
        encoded = json.dumps({m: s.to_json() for m, s in sweeps.items()}, sort_keys=True,
                             separators=(",", ":"))
        return Page(mentions=ordered, cursor=encoded, more=more)

    async def _page(self, mode: str, sweep: Sweep, limit: int) -> ParseResult:
        params: list[tuple[str, str]] = [("limit", str(limit))]
        if sweep.page:
            params.append(("cursor", sweep.page))
        if mode == NOTIFICATIONS:
            params += [("reasons", r) for r in WANTED_REASONS]
            nsid = "app.bsky.notification.listNotifications"
        else:
            params += [("q", mode[2:]), ("sort", "latest")]
            nsid = "app.bsky.feed.searchPosts"
        response = await self._xrpc("GET", nsid, params=params)
        if not response.ok:
            raise http.refuse(response, NETWORK, "reading mentions")
        body = http.json_or_raise(response, NETWORK)
        if mode == NOTIFICATIONS:
            return parse_notifications(body)
        return parse_search(body, listen=mode)

    # --- replying --------------------------------------------------------------------

    async def post_reply(self, request: ReplyRequest) -> PostedReply:
        session = self._session or await self._login()
        parent = await self._post_view(request.mention.external_id)
        parent_ref = {"uri": parent["uri"], "cid": parent["cid"]}
        parent_reply = (parent.get("record") or {}).get("reply") or {}
        root = parent_reply.get("root")
        root_ref = (
            {"uri": root["uri"], "cid": root["cid"]}
            if isinstance(root, dict) and root.get("uri") and root.get("cid") else parent_ref
        )
        record: dict[str, Any] = {
            "$type": POST_COLLECTION,
            "text": request.text,
            "createdAt": datetime.now(UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "reply": {"root": root_ref, "parent": parent_ref},
        }
        facets = await self._facets(request.text)
        if facets:
            record["facets"] = facets
        rkey = tid_from_key(request.idempotency_key)
        try:
            response = await self._xrpc(
                "POST", "com.atproto.repo.createRecord",
                payload={"repo": session.did, "collection": POST_COLLECTION, "rkey": rkey,
                         "record": record},
            )
        except RateLimited:
            raise
        except TransientError:
            # The record may exist already (a retry, or an answer lost on the way back).
            if existing := await self._own_post(rkey):
                return existing
            raise
        if response.ok:
            body = http.json_or_raise(response, NETWORK)
            if not isinstance(body, dict) or not isinstance(body.get("uri"), str):
                raise PermanentError("bluesky: the reply was accepted but no uri came back")
            return PostedReply(external_id=body["uri"],
                               url=permalink(self._session_handle(), body["uri"]))
        if existing := await self._own_post(rkey):
            return existing
        raise http.refuse(response, NETWORK, "posting the reply")

    def _session_handle(self) -> str:
        return self._session.handle if self._session else self._identifier

    async def _post_view(self, uri: str) -> dict[str, Any]:
        response = await self._xrpc("GET", "app.bsky.feed.getPosts", params=[("uris", uri)])
        if not response.ok:
            raise http.refuse(response, NETWORK, "looking up the post")
        body = http.json_or_raise(response, NETWORK)
        posts = body.get("posts") if isinstance(body, dict) else None
        if not isinstance(posts, list):
            raise PermanentError("bluesky: getPosts answer has no 'posts' list")
        post = next((p for p in posts if isinstance(p, dict) and p.get("uri") == uri), None)
        if post is None:
            raise PermanentError("bluesky: the post was deleted or is not visible")
        if not isinstance(post.get("cid"), str):
            raise PermanentError("bluesky: the post has no cid")
        return post

    async def _own_post(self, rkey: str) -> PostedReply | None:
        session = self._session or await self._login()
        response = await self._xrpc(
            "GET", "com.atproto.repo.getRecord",
            params=[("repo", session.did), ("collection", POST_COLLECTION), ("rkey", rkey)],
        )
        if not response.ok:
            return None
        body = http.json_or_raise(response, NETWORK)
        uri = body.get("uri") if isinstance(body, dict) else None
        if not isinstance(uri, str):
            return None
        return PostedReply(external_id=uri, url=permalink(session.handle, uri))

    async def _facets(self, text: str) -> list[dict[str, Any]]:
        facets = link_facets(text)
        for handle, start, end in mention_spans(text):
            if did := await self._resolve(handle):
                facets.append({
                    "index": byte_span(text, start, end),
                    "features": [{"$type": "app.bsky.richtext.facet#mention", "did": did}],
                })
        return sorted(facets, key=lambda f: f["index"]["byteStart"])

    async def _resolve(self, handle: str) -> str | None:
        response = await self._xrpc("GET", "com.atproto.identity.resolveHandle",
                                    params=[("handle", handle)])
        if not response.ok:
            return None
        body = http.json_or_raise(response, NETWORK)
        did = body.get("did") if isinstance(body, dict) else None
        return did if isinstance(did, str) and did.startswith("did:") else None

    def reply_limits(self) -> ReplyLimits:
        return self._limits

    def reply_allowed(self, mention: Mention) -> tuple[bool, str]:
        return True, ""


def _expired(response: http.Response) -> bool:
    return (response.status in (400, 401) and isinstance(response.body, dict)
            and response.body.get("error") == "ExpiredToken")


def _session_from(body: Any) -> _Session:
    if not isinstance(body, dict):
        raise PermanentError("bluesky: session answer is not a JSON object")
    try:
        return _Session(access=str(body["accessJwt"]), refresh=str(body["refreshJwt"]),
                        did=str(body["did"]), handle=str(body.get("handle") or ""))
    except KeyError as exc:
        raise PermanentError(f"bluesky: session answer lacks {exc.args[0]}") from None


def _decode_cursor(cursor: str | None) -> dict[str, Sweep]:
    if not cursor:
        return {}
    try:
        data = json.loads(cursor)
    except ValueError:
        log.warning("bluesky: stored cursor is not readable; starting from the newest posts")
        return {}
    if not isinstance(data, dict):
        return {}
    return {mode: Sweep.from_json(value) for mode, value in data.items()
            if isinstance(mode, str)}


def _advance(sweep: Sweep, result: ParseResult) -> tuple[list[Mention], Sweep]:
    """The mentions newer than the watermark, and where the listen mode stands after them."""
    keys = [item.key for item in result.items if item.key is not None]
    newest = max(keys) if keys else None
    if sweep.since is None and sweep.page is None:
        return list(result.mentions), Sweep(since=newest) if newest else sweep
    taken: list[Mention] = []
    reached_old = False
    for item in result.items:
        if item.key is not None and sweep.since is not None and item.key <= sweep.since:
            reached_old = True
            break
        if item.mention is not None:
            taken.append(item.mention)
    top = sweep.top or newest
    if top and sweep.since and top < sweep.since:
        top = sweep.since
    if reached_old or not result.cursor or not result.items:
        return taken, Sweep(since=top or sweep.since)
    return taken, Sweep(since=sweep.since, top=top, page=result.cursor)


def config_problems(source: SourceConfig, env: Mapping[str, str]) -> list[str]:
    problems: list[str] = []
    where = f"source '{source.name}'"
    if not source.option("identifier"):
        problems.append(f"{where}: option 'identifier' (the account's handle) is required")
    password_env = source.secret_env or source.token_env
    if not password_env:
        problems.append(f"{where}: secret_env must name the variable holding the app password")
    elif not env.get(password_env):
        problems.append(f"{where}: environment variable {password_env} is not set")
    if problem := http.url_problem(source.base_url):
        problems.append(f"{where}: {problem}")
    return problems


def build(
    source: SourceConfig, session: aiohttp.ClientSession, env: Mapping[str, str]
) -> BlueskyConnector:
    if problems := config_problems(source, env):
        raise PermanentError("; ".join(problems))
    password_env = source.secret_env or source.token_env or ""
    return BlueskyConnector(
        name=source.name,
        session=session,
        identifier=str(source.option("identifier")),
        password=env[password_env],
        keywords=source.keywords,
        base_url=source.base_url or DEFAULT_BASE_URL,
        timeout=float(source.option("timeout_seconds", 30.0)),
        page_size=int(source.option("page_size", 50)),
        reply_limit=source.reply_limit,
    )
