"""Facebook Page and Instagram comments through Meta webhooks, answered with the Graph API.

Meta pushes; nothing is polled. The route at `GET/POST /webhooks/meta` (owned by the web
layer) uses the pure helpers here: `verify_challenge` for the subscription handshake,
`verify_signature` for `X-Hub-Signature-256` (HMAC-SHA256 of the raw body with the app
secret), and `parse_webhook` to turn Page `feed` comments and Instagram `comments` /
`mentions` changes into mentions. Our own comments come back as webhooks too; they are skipped.

Instagram @mentions in other accounts' comments or captions arrive as ids only;
`MetaConnector.complete` looks their text up, and replies go to `/{ig-user-id}/mentions`.
Their external id is `mention:<media_id>[:<comment_id>]` so the reply route survives storage.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import aiohttp

from bot.connectors.base import (
    ConnectorError,
    Page,
    PermanentError,
    PostedReply,
    RateLimited,
    ReplyLimits,
    ReplyRequest,
    TransientError,
    is_http_url,
)
from bot.domain.length import counter_for
from bot.domain.mention import Author, Mention, MentionError, parse_timestamp
from bot.settings import SourceConfig

DEFAULT_GRAPH_URL = "https://graph.facebook.com/v21.0"
INSTAGRAM_COMMENT_LIMIT = 2200
RATE_LIMIT_CODES = frozenset({4, 17, 32, 613, 80001, 80002, 80004, 80005, 80006, 80008})
_USAGE_HEADERS = ("X-Business-Use-Case-Usage", "X-App-Usage", "X-Page-Usage",
                  "X-Ad-Account-Usage")
_DEFAULT_WAIT = 60.0
_MENTION_PREFIX = "mention:"
MENTION_PLACEHOLDER = (
    "(Instagram @mention: the text is not in the notification; open it on Instagram)"
)


@dataclass(frozen=True, slots=True)
class Skipped:
    """A change in the notification that is not a mention, and why."""

    reason: str


# -- webhook helpers --------------------------------------------------------------------------

def verify_challenge(query: Mapping[str, str], verify_token: str) -> str | None:
    """The `hub.challenge` to echo when Meta's subscription request carries our token."""
    if not verify_token or query.get("hub.mode") != "subscribe":
        return None
    offered = query.get("hub.verify_token") or ""
    if not hmac.compare_digest(offered.encode(), verify_token.encode()):
        return None
    challenge = query.get("hub.challenge")
    return challenge if challenge else None


def verify_signature(app_secret: bytes, raw_body: bytes, header: str | None) -> bool:
    """Check `X-Hub-Signature-256: sha256=<hex>` over the exact bytes received."""
    if not app_secret or not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(app_secret, raw_body, hashlib.sha256).hexdigest()
    offered = header.removeprefix("sha256=").strip().lower()
    # Bytes, not str: compare_digest raises on non-ASCII str, and a forged header may be.
    return hmac.compare_digest(offered.encode("utf-8", "replace"), expected.encode())


def parse_webhook(payload: Any) -> list[Mention | Skipped]:
    """Mentions (and reasons for everything else) in one webhook notification.

    A payload that is not a notification at all raises `PermanentError`.
    """
    if not isinstance(payload, dict) or not isinstance(payload.get("entry"), list):
        raise PermanentError("Meta notification has no 'entry' array")
    kind = payload.get("object")
    if kind not in ("page", "instagram"):
        return [Skipped(f"notifications for object {kind!r} are not handled")]
    out: list[Mention | Skipped] = []
    for index, entry in enumerate(payload["entry"]):
        if not isinstance(entry, dict):
            out.append(Skipped(f"entry {index}: not an object"))
            continue
        if "messaging" in entry:
            out.append(Skipped(f"entry {index}: messaging events are not handled"))
        changes = entry.get("changes")
        if changes is None and "field" in entry and "value" in entry:
            changes = [{"field": entry["field"], "value": entry["value"]}]
        if changes is None:
            continue
        if not isinstance(changes, list):
            out.append(Skipped(f"entry {index}: 'changes' is not an array"))
            continue
        for change in changes:
            out.append(_change(kind, entry, change))
    return out


def _change(kind: str, entry: dict[str, Any], change: Any) -> Mention | Skipped:
    if not isinstance(change, dict) or not isinstance(change.get("value"), dict):
        return Skipped("a change without a value object")
    field, value = change.get("field"), change["value"]
    try:
        if kind == "page" and field == "feed":
            return _page_feed(entry, value)
        if kind == "instagram" and field in ("comments", "live_comments"):
            return _instagram_comment(entry, value)
        if kind == "instagram" and field == "mentions":
            return _instagram_mention(entry, value)
    except MentionError as exc:
        return Skipped(f"{field}: {exc}")
    return Skipped(f"{kind} field {field!r} is not handled")


def _page_feed(entry: dict[str, Any], value: dict[str, Any]) -> Mention | Skipped:
    item, verb = value.get("item"), value.get("verb")
    if item != "comment" or verb != "add":
        return Skipped(f"feed change {item}/{verb} is not a new comment")
    comment_id = _id(value.get("comment_id"))
    message = value.get("message")
    if not comment_id:
        return Skipped("feed comment without 'comment_id'")
    if not isinstance(message, str) or not message.strip():
        return Skipped(f"feed comment {comment_id} has no message (photo or sticker only?)")
    sender = _obj(value, "from")
    page_id = _id(entry.get("id"))
    if page_id and _id(sender.get("id")) == page_id:
        return Skipped(f"feed comment {comment_id} was written by the Page itself")
    post_id = _id(value.get("post_id"))
    parent_id = _id(value.get("parent_id"))
    created = parse_timestamp(value.get("created_time", entry.get("time")))
    extra: dict[str, Any] = {"page_id": page_id}
    if not sender:
        extra["author_missing"] = True
    return Mention(
        source="facebook",
        external_id=comment_id,
        text=message,
        created_at=created,
        author=Author(handle=_id(sender.get("id")), name=str(sender.get("name") or "")),
        url=_facebook_url(value, post_id, comment_id),
        in_reply_to=parent_id or post_id or None,
        thread_id=post_id or None,
        extra=extra,
    )


def _facebook_url(value: dict[str, Any], post_id: str, comment_id: str) -> str:
    post = value.get("post")
    if isinstance(post, dict) and isinstance(post.get("permalink_url"), str):
        base = post["permalink_url"]
    elif "_" in post_id:
        page, story = post_id.split("_", 1)
        base = f"https://www.facebook.com/{page}/posts/{story}"
    else:
        return ""
    short = comment_id.split("_", 1)[1] if "_" in comment_id else comment_id
    return f"{base}{'&' if '?' in base else '?'}comment_id={short}"


def _instagram_comment(entry: dict[str, Any], value: dict[str, Any]) -> Mention | Skipped:
    comment_id = _id(value.get("id"))
    text = value.get("text")
    if not comment_id:
        return Skipped("instagram comment without 'id'")
    if not isinstance(text, str) or not text.strip():
        return Skipped(f"instagram comment {comment_id} has no text")
    sender = _obj(value, "from")
    account = _id(entry.get("id"))
    if account and account in (_id(sender.get("id")), _id(sender.get("self_ig_scoped_id"))):
        return Skipped(f"instagram comment {comment_id} was written by our own account")
    media = _obj(value, "media")
    media_id = _id(media.get("id"))
    username = str(sender.get("username") or "")
    return Mention(
        source="instagram",
        external_id=comment_id,
        text=text,
        created_at=parse_timestamp(entry.get("time")),
        author=Author(handle=f"@{username}" if username else "", name=username),
        in_reply_to=_id(value.get("parent_id")) or media_id or None,
        thread_id=media_id or None,
        extra={"ig_user_id": account, "media_product_type": media.get("media_product_type")},
    )


def _instagram_mention(entry: dict[str, Any], value: dict[str, Any]) -> Mention | Skipped:
    media_id = _id(value.get("media_id"))
    comment_id = _id(value.get("comment_id"))
    if not media_id:
        return Skipped("instagram mention without 'media_id'")
    external = f"{_MENTION_PREFIX}{media_id}" + (f":{comment_id}" if comment_id else "")
    return Mention(
        source="instagram",
        external_id=external,
        text=MENTION_PLACEHOLDER,
        created_at=parse_timestamp(entry.get("time")),
        in_reply_to=comment_id or media_id,
        thread_id=media_id,
        extra={"ig_user_id": _id(entry.get("id")), "needs_lookup": True,
               "in": "comment" if comment_id else "caption"},
    )


def _obj(value: dict[str, Any], key: str) -> dict[str, Any]:
    found = value.get(key)
    return found if isinstance(found, dict) else {}


def _id(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return ""
    return str(value)


def parse_graph_error(status: int, headers: Mapping[str, str], body: Any) -> Exception:
    """Map a Graph API failure to the error services understand."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        if status == 429:
            return RateLimited("Meta rate limit (HTTP 429)", usage_wait(headers))
        if status >= 500:
            return TransientError(f"Graph API failed with HTTP {status}")
        return PermanentError(f"Graph API failed with HTTP {status}")
    code = error.get("code")
    subcode = error.get("error_subcode")
    message = " ".join(str(error.get("message") or "no message").split())
    where = f"code {code}" + (f"/{subcode}" if subcode is not None else "")
    if code in RATE_LIMIT_CODES or status == 429:
        return RateLimited(f"Meta rate limit: {message} ({where})", usage_wait(headers))
    if error.get("is_transient") is True or code in (1, 2) or status >= 500:
        return TransientError(f"Graph API temporary failure: {message} ({where})")
    if code == 190:
        return PermanentError(f"Meta refused the access token: {message} ({where})")
    return PermanentError(f"Meta refused the reply: {message} ({where})")


def usage_wait(headers: Mapping[str, str]) -> float:
    """Seconds until access returns, from the usage headers' minutes; 60 s when absent."""
    minutes: list[float] = []
    for name in _USAGE_HEADERS:
        raw = headers.get(name)
        if not raw:
            continue
        try:
            data = json.loads(raw)
        except ValueError:
            continue
        _collect_wait(data, minutes)
    positive = [m for m in minutes if m > 0]
    return max(positive) * 60.0 if positive else _DEFAULT_WAIT


def _collect_wait(data: Any, out: list[float]) -> None:
    if isinstance(data, dict):
        value = data.get("estimated_time_to_regain_access")
        if isinstance(value, int | float) and not isinstance(value, bool):
            out.append(float(value))
        for nested in data.values():
            if isinstance(nested, dict | list):
                _collect_wait(nested, out)
    elif isinstance(data, list):
        for item in data:
            _collect_wait(item, out)


# -- connector --------------------------------------------------------------------------------

class MetaConnector:
    """Replies through the Graph API; mentions arrive by webhook, so `fetch` has nothing."""

    can_reply = True

    def __init__(
        self,
        *,
        name: str,
        session: aiohttp.ClientSession,
        access_token: str,
        app_secret: bytes = b"",
        verify_token: str = "",
        graph_url: str = DEFAULT_GRAPH_URL,
        instagram_user_id: str = "",
        timeout: float = 30.0,
        reply_limit: int | None = None,
    ) -> None:
        self.name = name
        self.app_secret = app_secret
        self.verify_token = verify_token
        self._session = session
        self._token = access_token
        self._graph_url = graph_url.rstrip("/")
        self._instagram_user_id = instagram_user_id
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._reply_limit = reply_limit

    async def fetch(self, cursor: str | None) -> Page:
        return Page(mentions=[], cursor=cursor, more=False)

    def challenge(self, query: Mapping[str, str]) -> str | None:
        return verify_challenge(query, self.verify_token)

    def accept(self, raw_body: bytes, signature: str | None) -> list[Mention | Skipped]:
        """Verify and parse one POSTed notification; a bad signature raises PermanentError."""
        if not verify_signature(self.app_secret, raw_body, signature):
            raise PermanentError("Meta webhook signature is missing or wrong")
        try:
            payload = json.loads(raw_body)
        except ValueError:
            raise PermanentError("Meta webhook body is not JSON") from None
        return parse_webhook(payload)

    async def complete(self, mention: Mention) -> Mention:
        """Fill in an Instagram @mention's text and author, which the webhook leaves out."""
        if not mention.extra.get("needs_lookup"):
            return mention
        media_id, comment_id = _mention_ids(mention.external_id)
        user_id = str(mention.extra.get("ig_user_id") or self._instagram_user_id)
        if comment_id:
            fields = f"mentioned_comment.comment_id({comment_id}){{text,username,timestamp}}"
            key = "mentioned_comment"
        else:
            fields = f"mentioned_media.media_id({media_id}){{caption,username,timestamp,permalink}}"
            key = "mentioned_media"
        data = await self._call("GET", f"/{user_id}", params={"fields": fields})
        found = data.get(key) if isinstance(data, dict) else None
        if not isinstance(found, dict):
            raise PermanentError("Instagram did not return the mentioned comment or media")
        username = str(found.get("username") or "")
        text = found.get("text") if comment_id else found.get("caption")
        extra = {k: v for k, v in mention.extra.items() if k != "needs_lookup"}
        created = mention.created_at
        if found.get("timestamp"):
            with contextlib.suppress(MentionError):
                created = parse_timestamp(str(found["timestamp"]).replace("+0000", "+00:00"))
        return replace(
            mention,
            text=str(text) if isinstance(text, str) and text else mention.text,
            author=Author(handle=f"@{username}" if username else "", name=username),
            url=str(found.get("permalink") or mention.url),
            created_at=created,
            extra=extra,
        )

    async def post_reply(self, request: ReplyRequest) -> PostedReply:
        mention = request.mention
        allowed, reason = self.reply_allowed(mention)
        if not allowed:
            raise PermanentError(reason)
        if mention.source == "facebook":
            data = await self._call("POST", f"/{mention.external_id}/comments",
                                    form={"message": request.text})
        elif mention.external_id.startswith(_MENTION_PREFIX):
            media_id, comment_id = _mention_ids(mention.external_id)
            user_id = str(mention.extra.get("ig_user_id") or self._instagram_user_id)
            form = {"media_id": media_id, "message": request.text}
            if comment_id:
                form = {"comment_id": comment_id, **form}
            data = await self._call("POST", f"/{user_id}/mentions", form=form)
        else:
            data = await self._call("POST", f"/{mention.external_id}/replies",
                                    form={"message": request.text})
        reply_id = data.get("id") if isinstance(data, dict) else None
        if not reply_id:
            raise PermanentError("Meta accepted the reply but returned no id")
        return PostedReply(external_id=str(reply_id),
                           url=await self._reply_url(mention, str(reply_id)))

    async def _reply_url(self, mention: Mention, reply_id: str) -> str:
        """Where people see the reply. Facebook links a comment's reply from the comment's own
        link; Instagram comments have no permalink, so the post's is looked up (best effort:
        the reply is already published, a failed lookup only leaves the link out)."""
        if mention.source == "facebook":
            if not mention.url or "comment_id=" not in mention.url:
                return ""
            return f"{mention.url}&reply_comment_id={reply_id.rsplit('_', 1)[-1]}"
        media_id = str(mention.thread_id or "")
        if mention.external_id.startswith(_MENTION_PREFIX) or not media_id:
            return mention.url
        try:
            data = await self._call("GET", f"/{media_id}", params={"fields": "permalink"})
        except ConnectorError:
            return ""
        link = data.get("permalink") if isinstance(data, dict) else None
        return link if isinstance(link, str) and is_http_url(link) else ""

    def reply_limits(self) -> ReplyLimits:
        return counter_for("meta", self._reply_limit or INSTAGRAM_COMMENT_LIMIT)

    def reply_allowed(self, mention: Mention) -> tuple[bool, str]:
        if mention.source not in ("facebook", "instagram"):
            return False, "Only Facebook and Instagram comments can be answered by this source"
        if mention.external_id.startswith(_MENTION_PREFIX) and not (
            mention.extra.get("ig_user_id") or self._instagram_user_id
        ):
            return False, "Set 'instagram_user_id' to answer Instagram @mentions"
        return True, ""

    async def _call(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
                    form: Mapping[str, str] | None = None) -> Any:
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        try:
            async with self._session.request(
                method, f"{self._graph_url}{path}", params=params, data=form, headers=headers,
                timeout=self._timeout, allow_redirects=False,
            ) as response:
                status = response.status
                raw = await response.read()
                try:
                    body = json.loads(raw) if raw.strip() else None
                except (ValueError, UnicodeDecodeError):
                    body = None
                if status >= 300 or (isinstance(body, dict) and "error" in body):
                    raise parse_graph_error(status, response.headers, body)
                if body is None:
                    raise TransientError(f"Graph API answer is not JSON (HTTP {status})")
                return body
        except TimeoutError:
            raise TransientError("Graph API request timed out") from None
        except aiohttp.ClientError as exc:
            raise TransientError(f"Graph API request failed: {exc.__class__.__name__}") from None


def _mention_ids(external_id: str) -> tuple[str, str]:
    parts = external_id.removeprefix(_MENTION_PREFIX).split(":", 1)
    return parts[0], parts[1] if len(parts) > 1 else ""


# -- configuration ----------------------------------------------------------------------------

def config_problems(source: SourceConfig, env: Mapping[str, str]) -> list[str]:
    where = f"source '{source.name}'"
    problems: list[str] = []
    if not source.token_env:
        problems.append(f"{where}: set 'token_env' to the variable holding the Page access token")
    elif source.token(env) is None:
        problems.append(f"{where}: environment variable {source.token_env} is not set")
    if not source.secret_env:
        problems.append(f"{where}: set 'secret_env' to the variable holding the app secret")
    elif source.secret(env) is None:
        problems.append(f"{where}: environment variable {source.secret_env} is not set")
    verify_env = source.option("verify_token_env")
    if not verify_env:
        problems.append(f"{where}: set 'verify_token_env' to the variable holding the "
                        "webhook verify token")
    elif not env.get(str(verify_env)):
        problems.append(f"{where}: environment variable {verify_env} is not set")
    if source.base_url and not is_http_url(source.base_url):
        problems.append(f"{where}: base_url must be an http(s) URL")
    return problems


def build(source: SourceConfig, session: aiohttp.ClientSession,
          env: Mapping[str, str]) -> MetaConnector:
    problems = config_problems(source, env)
    if problems:
        raise PermanentError("; ".join(problems))
    token, secret = source.token(env), source.secret(env)
    return MetaConnector(
        name=source.name,
        session=session,
        access_token=token.get_secret_value() if token else "",
        app_secret=secret.get_secret_value().encode() if secret else b"",
        verify_token=env.get(str(source.option("verify_token_env")), ""),
        graph_url=source.base_url or DEFAULT_GRAPH_URL,
        instagram_user_id=str(source.option("instagram_user_id") or ""),
        timeout=float(source.option("timeout_seconds", 30)),
        reply_limit=source.reply_limit,
    )
