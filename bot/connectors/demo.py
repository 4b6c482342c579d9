"""The demo source: bundled mentions replayed at a steady pace, replies kept in memory.

It lets someone watch the whole loop (card, claim, draft, approval, reply) without any
network account. It implements the ordinary connector protocol, so the mentions it replays
travel the normal ingest path and its replies the normal outbox path. One demo source spans
several networks, so it measures a reply by the network of the mention it answers.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bot.connectors.base import Page, PermanentError, PostedReply, ReplyLimits, ReplyRequest
from bot.domain.length import counter_for
from bot.domain.mention import Mention, MentionError, mention_from_dict

DEMO_DATA = Path(__file__).resolve().parent.parent / "sandbox" / "data" / "demo_mentions.jsonl"
DEFAULT_PACE_SECONDS = 4.0
# Feeds and link aggregators have no reply button; the demo behaves like the real networks.
_NO_REPLY = frozenset({"rss", "hackernews"})


def pace_problem(value: object) -> str | None:
    """Why a configured `pace_seconds` cannot be used, or None."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return f"pace_seconds must be a number of seconds, 0 or more (not {value!r})"
    return None


def load_demo_mentions(path: Path = DEMO_DATA) -> list[Mention]:
    """The bundled mentions in file order; a bad line is a packaging bug, so it raises."""
    mentions = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            mentions.append(mention_from_dict(json.loads(line)))
        except (ValueError, MentionError) as exc:
            raise ValueError(f"{path}:{number}: {exc}") from exc
    return mentions


@dataclass(frozen=True, slots=True)
class DemoReply:
    """A reply as the network would show it: under the post it answers."""

    id: str
    url: str
    network: str
    text: str
    in_reply_to: Mention
    case_id: int
    at: datetime


@dataclass
class DemoSink:
    """Where the demo network keeps what was replayed and what was published."""

    replayed: list[Mention] = field(default_factory=list)
    replies: list[DemoReply] = field(default_factory=list)
    on_change: Callable[[], Awaitable[None]] | None = None

    async def changed(self) -> None:
        if self.on_change is not None:
            await self.on_change()


class DemoConnector:
    """Replays `mentions` one every `pace_seconds` (the first at once) from when it was built.

    The cursor is the number of mentions handed out, so whoever polls (the sandbox's feed or
    a general poller) decides nothing about the pace: a mention is handed out once it is due.
    """

    def __init__(
        self,
        name: str,
        *,
        mentions: Sequence[Mention] | None = None,
        pace_seconds: float = DEFAULT_PACE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        sink: DemoSink | None = None,
    ) -> None:
        if pace_seconds < 0:
            raise ValueError("pace_seconds must not be negative")
        self.name = name
        self.can_reply = True
        self.pace_seconds = pace_seconds
        self.mentions = list(load_demo_mentions() if mentions is None else mentions)
        self.sink = sink or DemoSink()
        self._clock = clock
        self._now = now
        self._started = clock()

    def due(self) -> int:
        """How many mentions should have been replayed by now."""
        if self.pace_seconds == 0:
            return len(self.mentions)
        elapsed = self._clock() - self._started
        return min(len(self.mentions), int(elapsed // self.pace_seconds) + 1)

    def seconds_to_next(self, cursor: str | None) -> float | None:
        """How long until the mention after `cursor` is due; None when all are out."""
        index = _index(cursor)
        if index >= len(self.mentions):
            return None
        due_at = self._started + index * self.pace_seconds
        return max(0.0, due_at - self._clock())

    async def fetch(self, cursor: str | None) -> Page:
        index = _index(cursor)
        batch = self.mentions[index:self.due()]
        # A replayed post is "new": it carries the time it reached us, so ages look real.
        stamped = [dataclasses.replace(m, created_at=self._now()) for m in batch]
        self.sink.replayed.extend(stamped)
        if stamped:
            await self.sink.changed()
        # Never `more`: the next mention is not due before its time, however soon one asks.
        return Page(mentions=stamped, cursor=str(index + len(batch)), more=False)

    def reply_limits(self) -> ReplyLimits:
        return counter_for("generic")

    def reply_limits_for_mention(self, mention: Mention) -> ReplyLimits:
        """One demo source spans several networks: measure as the mention's network does."""
        return counter_for(mention.source)

    def reply_allowed(self, mention: Mention) -> tuple[bool, str]:
        if mention.source in _NO_REPLY:
            return False, (f"{mention.source} posts cannot be answered on the network; "
                           "reply where the author can see it and close the case as answered")
        return True, ""

    async def post_reply(self, request: ReplyRequest) -> PostedReply:
        """Publishes once per idempotency key, as a careful network API does."""
        allowed, why = self.reply_allowed(request.mention)
        if not allowed:
            raise PermanentError(why)
        for reply in self.sink.replies:
            if reply.id == request.idempotency_key:
                return PostedReply(external_id=reply.id, url=reply.url)
        network = request.mention.source
        original = request.mention.url or f"https://demo.example/{network}"
        url = f"{original}#reply-{len(self.sink.replies) + 1}"
        reply = DemoReply(id=request.idempotency_key, url=url, network=network,
                          text=request.text, in_reply_to=request.mention,
                          case_id=request.case_id, at=self._now())
        self.sink.replies.append(reply)
        await self.sink.changed()
        return PostedReply(external_id=reply.id, url=reply.url)


def _index(cursor: str | None) -> int:
    try:
        return max(0, int(cursor or 0))
    except ValueError:
        return 0
