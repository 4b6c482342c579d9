"""Property-based fuzzing of everything that reads untrusted input.

Each network's parser gets its recorded responses (tests/data/<network>/) with leaves and
subtrees replaced by arbitrary JSON, plus arbitrary JSON outright; the generic webhook body
parser, the JSONL importer and the slash-command argument splitter get arbitrary bytes and
text. An input must be either taken (mentions) or refused with a reason (a skipped entry or
`PermanentError`/`MentionError` with a message); anything else is a failure. Derandomized with
a fixed example budget so CI stays around half a minute.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.connectors import bluesky, hackernews, mastodon, meta, reddit, rss, x
from bot.connectors.base import PermanentError
from bot.connectors.generic import parse_webhook_mentions
from bot.domain.mention import Mention, MentionError
from bot.importer import read_jsonl
from bot.services.queries import is_handle_query
from bot.services.reports import RangeError, parse_report_args
from tests.security.support import Tally

DATA = Path(__file__).parents[1] / "data"
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))  # more for a deeper local run
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
TALLIES: dict[str, Tally] = {}

leaves = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
          | st.floats(allow_nan=True) | st.text(max_size=40)
          | st.sampled_from(["", "0", "-1", "1e309", "2026-11-22T08:15:00Z", "<!channel>",
                             "\u202e", "x" * 300, "https://evil.example", "@", "NaN"]))
json_values = st.recursive(leaves, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=4),
                           max_leaves=20)


def load(path: str) -> Any:
    return json.loads((DATA / path).read_text("utf-8"))


@st.composite
def mutated(draw: st.DrawFn, sample: Any) -> Any:
    """`sample` with a few of its nodes replaced by arbitrary JSON."""
    def walk(node: Any, depth: int) -> Any:
        if draw(st.integers(0, 9)) == 0:
            return draw(json_values)
        if isinstance(node, dict):
            return {k: walk(v, depth + 1) for k, v in node.items()
                    if draw(st.integers(0, 14)) != 0}
        if isinstance(node, list):
            return [walk(v, depth + 1) for v in node[:3]]
        return node
    return walk(sample, 0)


def judge(name: str, run: Callable[[], Any]) -> None:
    """Classify one input: stored, rejected with a reason, or a failure (re-raised)."""
    tally = TALLIES.setdefault(name, Tally(f"fuzz {name}"))
    tally.add("tried")
    try:
        result = run()
    except (PermanentError, MentionError) as exc:
        assert str(exc).strip(), "a refusal must say why"
        tally.add("rejected")
        return
    except Exception:
        tally.add("failures")
        raise
    mentions = [m for m in _mentions(result) if isinstance(m, Mention)]
    reasons = _reasons(result)
    assert all(isinstance(r, str) and r.strip() for r in reasons)
    for mention in mentions:
        assert isinstance(mention.text, str) and isinstance(mention.external_id, str)
    tally.add("stored", len(mentions))
    tally.add("rejected", len(reasons))


def _mentions(result: Any) -> list[Any]:
    if isinstance(result, list):
        return result
    items = getattr(result, "mentions", None)
    if items is not None:
        return list(items)
    return [getattr(item, "mention", None) for item in getattr(result, "items", ())]


def _reasons(result: Any) -> list[str]:
    if isinstance(result, list):
        return [getattr(r, "reason", str(r)) for r in result if not isinstance(r, Mention)]
    skipped = getattr(result, "skipped", ())
    return [s if isinstance(s, str) else str(getattr(s, "reason", s)) for s in skipped]


PARSERS: dict[str, tuple[Any, Callable[[Any], Any]]] = {
    "x": (load("x/mentions_page.json"), lambda d: x.parse_timeline(d)),
    "mastodon": (load("mastodon/notifications.json"),
                 lambda d: mastodon.parse_notifications(d, "mastodon.example")),
    "bluesky-notifications": (load("bluesky/notifications.json"),
                              lambda d: bluesky.parse_notifications(d)),
    "bluesky-search": (load("bluesky/search_posts.json"),
                       lambda d: bluesky.parse_search(d, listen="search")),
    "reddit": (load("reddit/inbox_mentions.json"), lambda d: reddit.parse_listing(d)),
    "hackernews": (load("hackernews/search_by_date.json"),
                   lambda d: hackernews.parse_search(d)),
    "meta-feed": (load("meta/page_feed_comment.json"), lambda d: meta.parse_webhook(d)),
    "meta-instagram": (load("meta/instagram_comments.json"), lambda d: meta.parse_webhook(d)),
}


@pytest.mark.parametrize("network", sorted(PARSERS))
def test_network_parsers_never_crash(network: str) -> None:
    sample, parse = PARSERS[network]

    @FUZZ
    @given(data=st.one_of(mutated(sample), json_values))
    def check(data: Any) -> None:
        judge(network, lambda: parse(data))

    check()
    TALLIES[network].print()
    assert TALLIES[network].counts.get("failures", 0) == 0


FEEDS = [(DATA / "rss" / name).read_bytes() for name in ("alerts.atom.xml", "news.rss.xml")]


@FUZZ
@given(feed=st.sampled_from(FEEDS), cut=st.integers(0, 4000), junk=st.binary(max_size=60),
       text=st.text(max_size=60))
def test_rss_parser_never_crashes(feed: bytes, cut: int, junk: bytes, text: str) -> None:
    body = feed[:cut] + junk + text.encode("utf-8", "surrogatepass") + feed[cut:]
    judge("rss", lambda: rss.parse_feed(body, source="feed",
                                        received_at=datetime(2026, 1, 1, tzinfo=UTC)))


def mention_like() -> st.SearchStrategy[Any]:
    fields = {"source": st.one_of(st.text(max_size=70), leaves),
              "external_id": st.one_of(st.text(max_size=20), leaves),
              "text": st.one_of(st.text(), leaves),
              "created_at": leaves, "author": st.one_of(json_values, st.fixed_dictionaries(
                  {"handle": leaves, "followers": leaves})),
              "url": leaves, "in_reply_to": leaves, "lang": leaves}
    return st.fixed_dictionaries({}, optional=fields)


@FUZZ
@given(body=st.one_of(
    st.binary(max_size=200),
    st.lists(mention_like(), max_size=3).map(lambda v: json.dumps(v).encode()),
    mention_like().map(lambda v: json.dumps(v).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
))
def test_webhook_bodies_never_crash(body: bytes) -> None:
    judge("webhook-body", lambda: parse_webhook_mentions(body))


@FUZZ
@given(lines=st.lists(st.one_of(st.binary(max_size=80),
                                mention_like().map(lambda v: json.dumps(v).encode())),
                      max_size=5))
def test_jsonl_importer_never_crashes(lines: list[bytes]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "in.jsonl"
        path.write_bytes(b"\n".join(line.replace(b"\n", b" ") for line in lines))
        judge("jsonl-importer", lambda: [item if isinstance(item, Mention) else _Reason(item)
                                         for _, item in read_jsonl(path)])


class _Reason:
    def __init__(self, reason: str) -> None:
        self.reason = reason


command_words = st.lists(
    st.one_of(st.text(max_size=30),
              st.sampled_from(["today", "yesterday", "7d", "0d", "9999999d", "30d",
                               "2026-02-30", "2026-11-01..2026-10-01", "2026-11-01..",
                               "mastodon", "x", "<!channel>", "@ann", "u/ann", "%_", "\u202e"])),
    max_size=4)


@FUZZ
@given(words=command_words)
def test_slash_command_arguments_parse_or_explain(words: list[str]) -> None:
    """`/mentions report|export` ranges and `find` handles: a result, or a RangeError whose
    message the user sees; never anything else."""
    now = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
    tally = TALLIES.setdefault("slash-command", Tally("slash-command arguments"))
    tally.add("tried")
    try:
        period, _network = parse_report_args(words, now, ZoneInfo("Europe/Berlin"))
    except RangeError as exc:
        assert str(exc), "a refusal must say why"
        tally.add("rejected")
    else:
        assert period.start < period.end
        tally.add("stored")
    is_handle_query(" ".join(words))


def test_zz_print_fuzz_totals() -> None:
    """One line with the totals, for SECURITY.md (runs after the fuzz tests above)."""
    totals = Tally("fuzz totals")
    for tally in TALLIES.values():
        for key, value in tally.counts.items():
            totals.add(key, value)
    totals.add("failures", 0)
    totals.print()
