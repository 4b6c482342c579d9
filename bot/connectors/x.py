"""X (API v2): the brand's mentions timeline, plus recent search for the source's keywords.

Both endpoints list newest first and page towards older posts, so one catch-up is a *sweep*:
page with the same `since_id` until X has no `next_token`, then move `since_id` to the newest
id the sweep started with. The cursor stores the sweep in progress, so a restart in the middle
of paging continues where it stopped and every post is taken exactly once. The very first poll
takes the newest page only: it starts listening now instead of replaying history.

Reading uses the app's bearer token; replying needs a user-context token (`user_token_env`).
X has no idempotency key, so before posting the connector searches the conversation for a
reply the brand already made to the same post with the same text (X's search index lags a few
seconds, so the outbox's stored reply reference remains the first guard).
"""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import aiohttp

from bot.connectors import _social_http as http
from bot.connectors.base import (
    Page,
    PermanentError,
    PostedReply,
    ReplyLimits,
    ReplyRequest,
)
from bot.domain.length import counter_for
from bot.domain.mention import Author, Mention, MentionError, SourceKind, parse_timestamp
from bot.settings import SourceConfig

log = logging.getLogger(__name__)

NETWORK = SourceKind.X.value
DEFAULT_BASE_URL = "https://api.x.com"
TWEET_FIELDS = (
    "created_at,lang,conversation_id,referenced_tweets,entities,public_metrics,author_id"
)
USER_FIELDS = "username,name,public_metrics,verified"
EXPANSIONS = "author_id,referenced_tweets.id"
MENTIONS, SEARCH = "mentions", "search"
REPLY_REFUSED = "X only allows replies where the author mentioned or quoted the brand (@{handle})"
_RATE = http.wait_until_epoch("x-rate-limit-reset")
_URL = re.compile(r"https?://\S+")


@dataclass(frozen=True, slots=True)
class ParseResult:
    """Mentions read from one page, the reasons for elements that could not be read, and
    the paging fields X sent (`meta.newest_id`, `meta.next_token`)."""

    mentions: tuple[Mention, ...]
    skipped: tuple[str, ...]
    newest_id: str | None
    next_token: str | None


@dataclass(frozen=True, slots=True)
class Sweep:
    """One listen mode's position: `since` is fully taken; `top`/`token` describe a sweep
    still paging towards `since`."""

    since: str | None = None
    top: str | None = None
    token: str | None = None

    def to_json(self) -> dict[str, str]:
        return {k: v for k, v in (("since", self.since), ("top", self.top),
                                  ("token", self.token)) if v}

    @classmethod
    def from_json(cls, data: Any) -> Sweep:
        if not isinstance(data, dict):
            return cls()
        values = {k: data.get(k) for k in ("since", "top", "token")}
        return cls(**{k: v for k, v in values.items() if isinstance(v, str) and v})


def parse_timeline(
    data: Any, *, listen: str = MENTIONS, brand_user_id: str | None = None
) -> ParseResult:
    """Read a `/2/users/:id/mentions` or `/2/tweets/search/recent` answer."""
    if not isinstance(data, dict):
        raise PermanentError("x: answer is not a JSON object")
    meta = data.get("meta", {})
    tweets = data.get("data", [])
    includes = data.get("includes", {})
    if not isinstance(meta, dict) or not isinstance(tweets, list) or not isinstance(
        includes, dict
    ):
        raise PermanentError("x: answer has no readable data/meta")
    if "data" not in data and "meta" not in data:
        raise PermanentError(f"x: unexpected answer: {http.error_reason(data) or 'no data'}")
    users = {
        str(user["id"]): user
        for user in _list(includes.get("users"))
        if isinstance(user, dict) and "id" in user
    }
    referenced = {
        str(tweet["id"]): tweet
        for tweet in _list(includes.get("tweets"))
        if isinstance(tweet, dict) and "id" in tweet
    }
    mentions: list[Mention] = []
    skipped: list[str] = []
    for index, tweet in enumerate(tweets):
        try:
            mentions.append(_mention(tweet, users, referenced, listen, brand_user_id))
        except (MentionError, AttributeError, KeyError, TypeError, ValueError) as exc:
            ident = tweet.get("id") if isinstance(tweet, dict) else None
            skipped.append(f"x: post {ident or f'#{index}'} skipped: {_why(exc)}")
    newest, token = meta.get("newest_id"), meta.get("next_token")
    return ParseResult(
        mentions=tuple(mentions),
        skipped=tuple(skipped),
        newest_id=str(newest) if newest else None,
        next_token=str(token) if token else None,
    )


def _list(value: Any) -> list[Any]:
    """An `includes` member, or nothing when X sent something other than a list."""
    return value if isinstance(value, list) else []


def _why(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    return str(exc) or exc.__class__.__name__


def _mention(
    tweet: Any,
    users: Mapping[str, Any],
    referenced: Mapping[str, Any],
    listen: str,
    brand_user_id: str | None,
) -> Mention:
    if not isinstance(tweet, dict):
        raise MentionError("not an object")
    tweet_id = str(tweet["id"])
    if not tweet_id.isdigit():
        raise MentionError(f"id {tweet_id!r} is not a post id")
    text = tweet["text"]
    if not isinstance(text, str):
        raise MentionError("text is not a string")
    created_at = parse_timestamp(tweet["created_at"])
    author_id = str(tweet.get("author_id") or "")
    user = users.get(author_id) or {}
    username = str(user.get("username") or "")
    metrics = user.get("public_metrics") or {}
    followers = metrics.get("followers_count") if isinstance(metrics, dict) else 0
    refs = [r for r in tweet.get("referenced_tweets") or [] if isinstance(r, dict)]
    replied_to = next((str(r["id"]) for r in refs if r.get("type") == "replied_to"), None)
    quoted = [str(r["id"]) for r in refs if r.get("type") == "quoted"]
    quotes_brand = bool(brand_user_id) and any(
        str((referenced.get(q) or {}).get("author_id")) == brand_user_id for q in quoted
    )
    lang = tweet.get("lang")
    return Mention(
        source=NETWORK,
        external_id=tweet_id,
        text=_readable(text, tweet.get("entities")),
        created_at=created_at,
        author=Author(
            handle=f"@{username}" if username else "",
            name=str(user.get("name") or ""),
            followers=followers if isinstance(followers, int) and followers > 0 else 0,
            verified=bool(user.get("verified", False)),
        ),
        url=permalink(tweet_id, username),
        in_reply_to=replied_to,
        lang=lang if isinstance(lang, str) and lang and lang != "und" else None,
        thread_id=str(tweet.get("conversation_id") or tweet_id),
        extra={
            "listen": listen,
            "author_id": author_id,
            "quotes_brand": quotes_brand,
            "public_metrics": tweet.get("public_metrics") or {},
        },
    )


def _readable(text: str, entities: Any) -> str:
    """X escapes `&<>` and wraps links in t.co; show the decoded text and the real links."""
    urls = entities.get("urls") if isinstance(entities, dict) else None
    for entity in urls or []:
        if not isinstance(entity, dict):
            continue
        short, expanded = entity.get("url"), entity.get("unwound_url") or entity.get(
            "expanded_url"
        )
        if isinstance(short, str) and isinstance(expanded, str) and short and expanded:
            text = text.replace(short, expanded)
    return html.unescape(text)


def permalink(tweet_id: str, username: str = "") -> str:
    if username:
        return f"https://x.com/{username}/status/{tweet_id}"
    return f"https://x.com/i/web/status/{tweet_id}"


def search_query(keywords: Sequence[str], handle: str | None = None) -> str:
    """Recent-search query for keyword rules: any keyword, no retweets, not the brand itself."""
    terms = [f'"{k}"' if re.search(r"\s", k) else k for k in (w.strip() for w in keywords) if k]
    query = terms[0] if len(terms) == 1 else f"({' OR '.join(terms)})"
    query += " -is:retweet"
    if handle:
        query += f" -from:{handle.lstrip('@')}"
    return query


def _decode_cursor(cursor: str | None) -> dict[str, Sweep]:
    if not cursor:
        return {}
    try:
        data = json.loads(cursor)
    except ValueError:
        log.warning("x: stored cursor is not readable; starting from the newest posts")
        return {}
    if not isinstance(data, dict):
        return {}
    return {mode: Sweep.from_json(data.get(mode)) for mode in (MENTIONS, SEARCH)}


def _encode_cursor(sweeps: Mapping[str, Sweep]) -> str:
    return json.dumps({mode: s.to_json() for mode, s in sweeps.items()}, sort_keys=True,
                      separators=(",", ":"))


def _normalised(text: str) -> str:
    return " ".join(_URL.sub("", html.unescape(text)).split()).casefold()


class XConnector:
    """Mentions of the brand account and keyword matches from recent search."""

    def __init__(
        self,
        *,
        name: str,
        session: aiohttp.ClientSession,
        bearer_token: str,
        user_id: str,
        user_token: str | None = None,
        handle: str | None = None,
        keywords: Sequence[str] = (),
        query: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 30.0,
        page_size: int = 100,
        reply_limit: int | None = None,
        verify_before_post: bool = True,
    ) -> None:
        self.name = name
        self.can_reply = bool(user_token)
        self._session = session
        self._bearer = bearer_token
        self._user_token = user_token
        self._user_id = user_id
        self._handle = handle.lstrip("@") if handle else None
        self._query = query or (search_query(keywords, self._handle) if keywords else None)
        self._base = base_url.rstrip("/")
        self._timeout = timeout
        self._page_size = max(10, min(100, page_size))
        self._limits = counter_for(NETWORK, reply_limit)
        self._verify = verify_before_post
        self._posted: dict[str, PostedReply] = {}
        self.last_skipped: tuple[str, ...] = ()

    async def fetch(self, cursor: str | None) -> Page:
        sweeps = _decode_cursor(cursor)
        modes = [MENTIONS] + ([SEARCH] if self._query else [])
        per_mode = max(10, self._page_size // len(modes))
        found: dict[str, Mention] = {}
        skipped: list[str] = []
        more = False
        for mode in modes:
            sweep = sweeps.get(mode, Sweep())
            result = await self._page(mode, sweep, per_mode)
            skipped.extend(result.skipped)
            for mention in result.mentions:
                found.setdefault(mention.external_id, mention)
            sweeps[mode] = _advance(sweep, result)
            more = more or bool(sweeps[mode].token)
        self.last_skipped = tuple(skipped)
        for reason in skipped:
            log.warning("%s: %s", self.name, reason)
        ordered = sorted(found.values(), key=lambda m: int(m.external_id))
        return Page(mentions=ordered, cursor=_encode_cursor(sweeps), more=more)

    async def _page(self, mode: str, sweep: Sweep, size: int) -> ParseResult:
        if mode == MENTIONS:
            url = f"{self._base}/2/users/{self._user_id}/mentions"
            params: dict[str, str] = {"max_results": str(max(5, size))}
            if sweep.token:
                params["pagination_token"] = sweep.token
        else:
            url = f"{self._base}/2/tweets/search/recent"
            params = {"query": self._query or "", "max_results": str(max(10, size))}
            if sweep.token:
                params["next_token"] = sweep.token
        if sweep.since:
            params["since_id"] = sweep.since
        params.update(
            {"expansions": EXPANSIONS, "tweet.fields": TWEET_FIELDS, "user.fields": USER_FIELDS}
        )
        response = await self._get(url, params)
        return parse_timeline(
            http.json_or_raise(response, NETWORK), listen=mode, brand_user_id=self._user_id
        )

    async def _get(self, url: str, params: Mapping[str, str]) -> http.Response:
        response = await http.call(
            self._session, "GET", url, network=NETWORK, timeout_seconds=self._timeout,
            retry_after=_RATE, headers={"Authorization": f"Bearer {self._bearer}"},
            params=dict(params),
        )
        if not response.ok:
            raise http.refuse(response, NETWORK, "reading posts")
        return response

    async def post_reply(self, request: ReplyRequest) -> PostedReply:
        if not self._user_token:
            raise PermanentError("x: replying needs a user-context token (user_token_env)")
        if request.idempotency_key in self._posted:
            return self._posted[request.idempotency_key]
        if self._verify and self._handle and (existing := await self._existing_reply(request)):
            self._posted[request.idempotency_key] = existing
            return existing
        response = await http.call(
            self._session, "POST", f"{self._base}/2/tweets", network=NETWORK,
            timeout_seconds=self._timeout, retry_after=_RATE,
            headers={"Authorization": f"Bearer {self._user_token}"},
            json_body={
                "text": request.text,
                "reply": {"in_reply_to_tweet_id": request.mention.external_id},
            },
        )
        if not response.ok:
            if "duplicate" in http.error_reason(response.body).lower() and self._handle:
                existing = await self._existing_reply(request)
                if existing:
                    return existing
            raise http.refuse(response, NETWORK, "posting the reply")
        body = http.json_or_raise(response, NETWORK)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict) or not data.get("id"):
            raise PermanentError("x: the reply was accepted but X sent no post id")
        posted = PostedReply(external_id=str(data["id"]),
                             url=permalink(str(data["id"]), self._handle or ""))
        self._posted[request.idempotency_key] = posted
        return posted

    async def _existing_reply(self, request: ReplyRequest) -> PostedReply | None:
        """A reply the brand already posted to this post with this text, found by search."""
        mention = request.mention
        conversation = mention.thread_id or mention.external_id
        response = await self._get(
            f"{self._base}/2/tweets/search/recent",
            {
                "query": f"conversation_id:{conversation} from:{self._handle}",
                "tweet.fields": "referenced_tweets,conversation_id,author_id,created_at",
                "max_results": "100",
            },
        )
        body = http.json_or_raise(response, NETWORK)
        wanted = _normalised(request.text)
        for tweet in (body.get("data") if isinstance(body, dict) else None) or []:
            if not isinstance(tweet, dict):
                continue
            refs = tweet.get("referenced_tweets") or []
            replies_to_it = any(
                isinstance(r, dict) and r.get("type") == "replied_to"
                and str(r.get("id")) == mention.external_id
                for r in refs
            )
            if replies_to_it and _normalised(str(tweet.get("text", ""))) == wanted:
                return PostedReply(external_id=str(tweet["id"]),
                                   url=permalink(str(tweet["id"]), self._handle or ""))
        return None

    def reply_limits(self) -> ReplyLimits:
        return self._limits

    def reply_allowed(self, mention: Mention) -> tuple[bool, str]:
        """X refuses API replies to posts that neither mention nor quote the brand."""
        if not self._handle:
            return True, ""
        pattern = rf"(?<![\w@])@{re.escape(self._handle)}(?!\w)"
        if re.search(pattern, mention.text, re.IGNORECASE) or mention.extra.get("quotes_brand"):
            return True, ""
        return False, REPLY_REFUSED.format(handle=self._handle)


def _advance(sweep: Sweep, result: ParseResult) -> Sweep:
    """Where this listen mode stands after one page was taken."""
    if sweep.since is None and sweep.token is None:
        return Sweep(since=result.newest_id) if result.newest_id else sweep
    top = sweep.top or result.newest_id
    if result.next_token:
        return replace(sweep, top=top, token=result.next_token)
    return Sweep(since=top or sweep.since)


def config_problems(source: SourceConfig, env: Mapping[str, str]) -> list[str]:
    problems: list[str] = []
    where = f"source '{source.name}'"
    if not source.token_env:
        problems.append(f"{where}: token_env must name the variable holding the bearer token")
    elif source.token(env) is None:
        problems.append(f"{where}: environment variable {source.token_env} is not set")
    user_id = source.option("user_id")
    if not isinstance(user_id, str | int) or not str(user_id).isdigit():
        problems.append(f"{where}: option 'user_id' must be the brand account's numeric id")
    user_token_env = source.option("user_token_env")
    if user_token_env and not env.get(str(user_token_env)):
        problems.append(f"{where}: environment variable {user_token_env} is not set")
    if source.keywords and not source.option("handle"):
        problems.append(
            f"{where}: option 'handle' is needed with keywords, to know which posts X lets "
            "the brand answer"
        )
    if problem := http.url_problem(source.base_url):
        problems.append(f"{where}: {problem}")
    return problems


def build(
    source: SourceConfig, session: aiohttp.ClientSession, env: Mapping[str, str]
) -> XConnector:
    if problems := config_problems(source, env):
        raise PermanentError("; ".join(problems))
    bearer = source.token(env)
    if bearer is None:
        raise PermanentError(f"source '{source.name}': no bearer token")
    user_token_env = source.option("user_token_env")
    user_token = env.get(str(user_token_env)) if user_token_env else None
    return XConnector(
        name=source.name,
        session=session,
        bearer_token=bearer.get_secret_value(),
        user_id=str(source.option("user_id")),
        user_token=user_token or None,
        handle=source.option("handle"),
        keywords=source.keywords,
        query=source.option("search_query"),
        base_url=source.base_url or DEFAULT_BASE_URL,
        timeout=float(source.option("timeout_seconds", 30.0)),
        page_size=int(source.option("page_size", 100)),
        reply_limit=source.reply_limit,
        verify_before_post=bool(source.option("verify_before_post", True)),
    )
