"""The vocabulary of an incoming mention, shared by every connector and the ingest path."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class SourceKind(StrEnum):
    """Kinds of source a config entry may declare."""

    GENERIC = "generic"
    X = "x"
    MASTODON = "mastodon"
    BLUESKY = "bluesky"
    REDDIT = "reddit"
    RSS = "rss"
    HACKERNEWS = "hackernews"
    META = "meta"
    DEMO = "demo"


class MentionError(ValueError):
    """A mention record that cannot be accepted; the message says which field and why."""


@dataclass(frozen=True, slots=True)
class Author:
    handle: str
    name: str = ""
    followers: int = 0
    verified: bool = False


@dataclass(frozen=True, slots=True)
class Mention:
    """One post that mentions the brand, normalised from any network.

    `source` names the network or site it came from; (source, external_id) is its identity.
    """

    source: str
    external_id: str
    text: str
    created_at: datetime
    author: Author = field(default_factory=lambda: Author(handle=""))
    url: str = ""
    in_reply_to: str | None = None
    lang: str | None = None
    thread_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def parse_timestamp(value: Any) -> datetime:
    """Accept ISO-8601 (with `Z`) or epoch seconds; always return an aware UTC datetime."""
    if isinstance(value, bool):
        raise MentionError("created_at must be a timestamp")
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(float(value), tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise MentionError(f"created_at is not a usable epoch timestamp: {value!r}") from exc
    if not isinstance(value, str) or not value.strip():
        raise MentionError("created_at must be an ISO-8601 timestamp")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise MentionError(f"created_at is not an ISO-8601 timestamp: {value!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _str_field(data: dict[str, Any], key: str, *, required: bool = False) -> str:
    value = data.get(key)
    if value is None:
        if required:
            raise MentionError(f"missing required field '{key}'")
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise MentionError(f"field '{key}' must be a string")
    text = storable_text(str(value))
    if required and not text.strip():
        raise MentionError(f"field '{key}' must not be empty")
    return text


# Neither can be stored as text (PostgreSQL refuses NUL; UTF-8 cannot encode a lone surrogate,
# which JSON's `\ud800` escape can still produce). A customer's post is never dropped for it:
# each such character becomes U+FFFD, visibly, and everything else is kept as sent.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable_text(value: str) -> str:
    """`value` with NUL and unpaired surrogates replaced by U+FFFD."""
    return _UNSTORABLE.sub("\ufffd", value)


def mention_from_dict(data: Any) -> Mention:
    """Validate one object of the CONTRACT mention format (JSON Lines, webhooks, sandbox)."""
    if not isinstance(data, dict):
        raise MentionError("a mention must be a JSON object")
    source = _str_field(data, "source", required=True).strip()
    if len(source) > 64:
        raise MentionError("field 'source' is longer than 64 characters")
    external_id = _str_field(data, "external_id", required=True)
    if len(external_id) > 255:
        raise MentionError("field 'external_id' is longer than 255 characters")
    if "text" not in data or data["text"] is None:
        raise MentionError("missing required field 'text'")
    if not isinstance(data["text"], str):
        raise MentionError("field 'text' must be a string")
    if "created_at" not in data:
        raise MentionError("missing required field 'created_at'")
    created_at = parse_timestamp(data["created_at"])
    raw_author = data.get("author") or {}
    if not isinstance(raw_author, dict):
        raise MentionError("field 'author' must be an object")
    followers = raw_author.get("followers") or 0
    if isinstance(followers, bool) or not isinstance(followers, int) or followers < 0:
        raise MentionError("field 'author.followers' must be a non-negative integer")
    author = Author(
        handle=_str_field(raw_author, "handle"),
        name=_str_field(raw_author, "name"),
        followers=followers,
        verified=bool(raw_author.get("verified", False)),
    )
    in_reply_to = data.get("in_reply_to")
    lang = data.get("lang")
    return Mention(
        source=source,
        external_id=external_id,
        text=storable_text(data["text"]),
        created_at=created_at,
        author=author,
        url=_str_field(data, "url"),
        in_reply_to=str(in_reply_to) if in_reply_to not in (None, "") else None,
        lang=str(lang) if isinstance(lang, str) and lang else None,
        thread_id=str(data["thread_id"]) if data.get("thread_id") else None,
    )


def mention_to_dict(mention: Mention) -> dict[str, Any]:
    """The CONTRACT mention format, the inverse of `mention_from_dict`."""
    return {
        "source": mention.source,
        "external_id": mention.external_id,
        "url": mention.url,
        "author": {
            "handle": mention.author.handle,
            "name": mention.author.name,
            "followers": mention.author.followers,
            "verified": mention.author.verified,
        },
        "text": mention.text,
        "created_at": mention.created_at.isoformat().replace("+00:00", "Z"),
        "in_reply_to": mention.in_reply_to,
        "lang": mention.lang,
        # An extension the parser reads back; left out when unset, as CONTRACT's example.
        **({"thread_id": mention.thread_id} if mention.thread_id else {}),
    }
