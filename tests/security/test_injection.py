"""Hostile text from strangers, ingested through the real webhook and shown on every surface.

The corpus (tests/data/security/hostile_texts.jsonl) holds broadcasts, user/channel/group
markup, disguised links, markdown links, backticks, bidi controls, zero-width joiners and
more; the test adds invalid UTF-8, NUL and a 1 MB text. Every payload the emulator receives
(cards, approval requests, App Home, modals, ephemerals) is parsed: Slack markup may come only
from the bot (our links, our actors), never from user text.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.connectors.signing import sign
from bot.domain.mention import storable_text
from bot.importer import read_jsonl
from bot.sandbox.emulator import ApiCall
from bot.slack.ids import ACTION_CLAIM, ACTION_CLOSE, ACTION_DRAFT
from db.models import MentionRow
from tests.scenarios.reply_sink import ReplySink
from tests.security.support import Tally, snapshot
from tests.stack import ANN, LEAD, MENTIONS, WEBHOOK_SECRET, Stack, start_stack

CORPUS = Path(__file__).parents[1] / "data" / "security" / "hostile_texts.jsonl"
ACTORS = ("U0AGENT1", "U0AGENT2", "U0LEAD1")
# Markup the bot itself writes: links to the mentions we sent, and mentions of our actors.
OURS = re.compile(r"^<(https://forum\.example/[^|<>\s]*(\|[^<>]*)?|@(" + "|".join(ACTORS)
                  + r")|!date\^\d+\^[^|<>]*\|[^<>]*)>$")
TOKEN = re.compile(r"<[^<>]*>?")
SURFACES = ("chat.postMessage", "chat.update", "chat.postEphemeral", "views.open",
            "views.update", "views.publish", "views.push")
BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


def corpus() -> list[str]:
    texts = [json.loads(line)["text"] for line in CORPUS.read_text("utf-8").splitlines()]
    assert len(texts) >= 200
    return texts


def body_for(index: int, text: str) -> dict[str, Any]:
    # Author fields carry hostile text too (cut to a plausible handle length).
    return {"source": "forum", "external_id": f"h{index}",
            "url": f"https://forum.example/t/{index}",
            "author": {"handle": f"@h{index}{text[:30]}", "name": text[:60], "followers": index},
            "text": text, "created_at": "2026-11-22T08:15:00Z"}


def strings(value: Any, key: str = "") -> Iterator[tuple[str, str]]:
    """Every (key, string) inside a Slack payload."""
    if isinstance(value, str):
        yield key, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from strings(v, str(k))
    elif isinstance(value, list):
        for item in value:
            yield from strings(item, key)


def markup_problems(call: ApiCall) -> list[str]:
    """Slack markup in a payload that did not come from the bot, and raw bidi controls."""
    problems = []
    for key, text in strings(call.args):
        if key in ("value", "private_metadata", "action_id", "block_id", "callback_id",
                   "url", "image_url", "ts", "channel", "user", "trigger_id", "view_id",
                   "hash", "external_id", "initial_value"):
            continue  # not rendered as mrkdwn by Slack
        for token in TOKEN.findall(text):
            if not OURS.match(token):
                problems.append(f"{call.method}.{key}: {token[:80]!r}")
        if any(ch in BIDI for ch in text):
            problems.append(f"{call.method}.{key}: raw bidi control")
    return problems


@pytest.fixture
async def hstack(database_url: str, tmp_path: Path, sink: ReplySink) -> AsyncIterator[Stack]:
    async with start_stack(database_url, tmp_path, reply_url=sink.url) as running:
        yield running


async def post_webhook(stack: Stack, body: bytes) -> tuple[int, Any]:
    """Like `Stack.post_webhook`, streaming the body (one of them is over a megabyte)."""
    headers = {"Content-Type": "application/json",
               "X-Mentiondesk-Signature": sign(WEBHOOK_SECRET.encode(), body)}
    async with stack.http.post(f"{stack.url}webhooks/web", data=io.BytesIO(body),
                               headers=headers) as response:
        return response.status, await response.json(content_type=None)


def button_in(message: Any, label: str) -> dict[str, Any]:
    for block in message.blocks or []:
        for element in block.get("elements", []):
            if element.get("type") == "button" and element["text"]["text"] == label:
                return dict(element)
    raise AssertionError(f"no {label!r} button")


async def test_hostile_corpus_is_stored_faithfully_and_shown_inert(
    hstack: Stack, sink: ReplySink
) -> None:
    stack = hstack
    texts = corpus()
    texts.append("x" * (1024 * 1024 - 64) + " <!channel>")  # 1 MB, markup at the very end
    tally = Tally("injection corpus")
    expected: dict[str, str] = {}
    refused: dict[str, str] = {}
    for start in range(0, len(texts), 40):
        chunk = list(enumerate(texts))[start:start + 40]
        status, answer = await post_webhook(
            stack, json.dumps([body_for(i, t) for i, t in chunk]).encode())
        assert status == 200, answer
        bad = {r["index"]: r["error"] for r in answer["rejected"]}
        for offset, (i, text) in enumerate(chunk):
            tally.add("tried")
            if offset in bad:
                refused[f"h{i}"] = bad[offset]
            else:
                expected[f"h{i}"] = storable_text(text)
    # Nothing is refused: NUL and lone surrogates (unstorable) become U+FFFD, all else is kept.
    assert refused == {}, refused
    tally.add("rejected_with_reason", len(refused))
    tally.add("stored", len(expected))
    assert len(expected) >= 200

    async with stack.components.db.transaction() as tx:
        rows = (await tx.session.execute(select(MentionRow))).scalars().all()
    stored = {row.external_id: row.text for row in rows}
    assert stored == expected  # byte for byte, nothing escaped or cut in the database

    while await stack.drain():
        pass
    cards = stack.cards()
    # Every mention has a card (some may share one when triage groups them).
    assert len(cards) >= 1
    # Surfaces with people on them: claim, draft modal, close modal, approval, App Home.
    for card in cards[:6]:
        await stack.emulator.click(ANN, MENTIONS, card.ts, ACTION_CLAIM,
                                   button_in(card, "Claim")["value"])
    await stack.drain()
    for card in stack.cards()[:3]:
        await stack.emulator.click(ANN, MENTIONS, card.ts, ACTION_DRAFT,
                                   button_in(card, "Draft reply")["value"])
        await stack.emulator.click(LEAD, MENTIONS, card.ts, ACTION_CLOSE,
                                   button_in(card, "Close")["value"])
    await stack.open_home(ANN)
    assert stack.emulator.calls_to("views.publish")
    await stack.emulator.send_command(ANN, "mine")
    await stack.emulator.send_command(ANN, "find <!channel>")

    problems: list[str] = []
    rendered = 0
    for call in stack.emulator.calls:
        if call.method not in SURFACES:
            continue
        rendered += 1
        problems.extend(markup_problems(call))
        if call.method == "chat.postMessage":
            assert call.args.get("unfurl_links") is False, call.args.get("text")
            assert call.args.get("unfurl_media") is False
    assert sorted(set(problems))[:20] == []
    assert stack.emulator.violations == []  # every payload within Block Kit's limits
    shown = json.dumps([c.args for c in stack.emulator.calls if c.method in SURFACES])
    assert "\\u27e6U+202E\\u27e7" in shown or "⟦U+202E⟧" in shown  # bidi made visible
    assert "&lt;!channel&gt;" in shown
    tally.add("payloads_checked", rendered)
    tally.add("pings_or_links_from_user_text", len(problems))
    tally.print()


async def test_invalid_utf8_is_refused_with_a_reason(hstack: Stack, tmp_path: Path) -> None:
    stack = hstack
    good = json.dumps(body_for(1, "fine")).encode()
    bad_bodies = [good.replace(b"fine", b"fi\xffne"), good.replace(b"fine", b"\xc3\x28"),
                  good.replace(b"fine", b"\xed\xa0\x80"), b"\xef\xbb\xbf" + good[:-1] + b"\x80}"]
    before = await snapshot(stack)
    for raw in bad_bodies:
        status, answer = await stack.post_webhook(raw)
        assert status == 400 and "not UTF-8" in answer["error"]
    assert await snapshot(stack) == before
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(good + b"\n" + bad_bodies[0] + b"\n" + json.dumps(
        body_for(2, "a\u0000b")).encode() + b"\n")
    results = list(read_jsonl(path))
    assert [n for n, item in results if not isinstance(item, str)] == [1, 3]
    assert {n: item for n, item in results if isinstance(item, str)} == {
        2: "not valid UTF-8",
    }
    assert results[2][1].text == "a\ufffdb"  # NUL cannot be stored: shown as U+FFFD
