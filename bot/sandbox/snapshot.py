"""What the sandbox page draws, as one JSON document for one person.

The page is a Slack client seen through one user's eyes: the channels, threads and the
ephemeral messages only they see, their open modal and their App Home, plus the demo
networks' posts with the replies published under them. Blocks are passed through exactly as
the bot sent them; the page renders them with text nodes only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.connectors.demo import DemoSink
from bot.domain.mention import Mention
from bot.sandbox.emulator import SlackEmulator
from bot.sandbox.state import Ephemeral, StoredMessage, StoredView


@dataclass(frozen=True, slots=True)
class Incident:
    """A problem the visitor must see: a refused payload, a failed request to the bot."""

    at: datetime
    kind: str
    text: str

    def to_json(self) -> dict[str, str]:
        return {"at": self.at.isoformat(), "kind": self.kind, "text": self.text}


def snapshot(emulator: SlackEmulator, user: str, *, leads: Iterable[str],
             sinks: Sequence[DemoSink] = (), incidents: Sequence[Incident] = ()
             ) -> dict[str, Any]:
    ws = emulator.workspace
    lead_ids = set(leads)
    people = [
        {"id": u.id, "name": u.name, "real_name": u.real_name or u.name, "is_bot": u.is_bot,
         "role": "lead" if u.id in lead_ids else "agent"}
        for u in ws.users.values()
    ]
    channels = []
    for channel in ws.channels.values():
        if channel.is_im and channel.user != user:
            continue
        channels.append({
            "id": channel.id,
            "name": "Direct messages" if channel.is_im else channel.name,
            "is_im": channel.is_im,
            "messages": [_message(emulator, m) for m in emulator.messages(channel.id)],
            "ephemerals": [_ephemeral(e) for e in emulator.ephemerals(channel.id, user)],
        })
    stack = emulator.open_views(user)
    home = emulator.home(user)
    return {
        "version": emulator.version,
        "me": user,
        "users": people,
        "channels": channels,
        "modal": _view(emulator, stack[-1]) if stack else None,
        "modal_depth": len(stack),
        "home": _view(emulator, home) if home is not None else None,
        "violations": list(emulator.violations),
        "incidents": [i.to_json() for i in incidents],
        "demo": _demo(sinks),
    }


def _message(emulator: SlackEmulator, message: StoredMessage) -> dict[str, Any]:
    replies = emulator.replies(message.channel, message.ts) if message.reply_ts else []
    return {
        "ts": message.ts,
        "user": message.user,
        "is_bot": message.bot_id is not None,
        "text": message.text,
        "blocks": message.blocks,
        "attachments": message.attachments,
        "files": [{"name": f.get("name"), "title": f.get("title"), "size": f.get("size")}
                  for f in message.files or []],
        "edited": message.edited_ts is not None,
        "replies": [_message(emulator, r) for r in replies],
    }


def _ephemeral(ephemeral: Ephemeral) -> dict[str, Any]:
    return {"ts": ephemeral.ts, "text": ephemeral.text, "blocks": ephemeral.blocks,
            "thread_ts": ephemeral.thread_ts, "source": ephemeral.source}


def _view(emulator: SlackEmulator, view: StoredView) -> dict[str, Any]:
    return {
        "id": view.id,
        "hash": view.hash,
        "type": view.type,
        "title": (view.view.get("title") or {}).get("text", ""),
        "submit": (view.view.get("submit") or {}).get("text"),
        "close": (view.view.get("close") or {}).get("text", "Cancel"),
        "blocks": view.blocks,
        "values": view.values,
        "errors": emulator.view_errors.get(view.id, {}),
    }


def _post(mention: Mention) -> dict[str, Any]:
    return {
        "external_id": mention.external_id,
        "url": mention.url,
        "handle": mention.author.handle,
        "name": mention.author.name,
        "followers": mention.author.followers,
        "verified": mention.author.verified,
        "text": mention.text,
        "at": mention.created_at.isoformat(),
    }


def _demo(sinks: Sequence[DemoSink]) -> list[dict[str, Any]]:
    """Per network, the replayed posts (newest first) with the replies published under them."""
    networks: dict[str, list[dict[str, Any]]] = {}
    for sink in sinks:
        replies: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for reply in sink.replies:
            key = (reply.in_reply_to.source, reply.in_reply_to.external_id)
            replies.setdefault(key, []).append(
                {"id": reply.id, "url": reply.url, "text": reply.text,
                 "case_id": reply.case_id, "at": reply.at.isoformat()})
        for mention in sink.replayed:
            post = _post(mention)
            post["replies"] = replies.get((mention.source, mention.external_id), [])
            networks.setdefault(mention.source, []).append(post)
    return [{"network": name, "posts": list(reversed(posts))}
            for name, posts in networks.items()]
