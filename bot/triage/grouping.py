"""Near-duplicate grouping: retweets, cross-posts and re-pastes of one text become one case.

Three lookups, cheapest first: the exact normalised fingerprint (retweets, cross-posts), its
opening characters (retweets truncated with "…"), then Jaccard similarity of character
5-gram shingles estimated from bottom-k sketches. Only sketch values index candidates, so a
lookup touches the few recent entries that share rare shingles, not the whole window.
"""

from __future__ import annotations

import zlib
from collections import Counter, deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import chain

from bot.domain.mention import Mention
from bot.triage.text import fingerprint

_TRUNCATION_MARKS = ("…", "...")
MAX_GROUPED_CHARS = 2_000


@dataclass(frozen=True, slots=True)
class GroupingConfig:
    window: timedelta = timedelta(minutes=15)
    max_entries: int = 5_000
    threshold: float = 0.6
    """Estimated Jaccard of 5-gram shingles at or above which two texts are one group."""
    min_chars: int = 12
    """Shorter fingerprints ("help", "thanks") say too little to group different people."""
    prefix_chars: int = 48
    shingle_size: int = 5
    sketch_size: int = 64
    sketches_per_group: int = 4
    """A retweet storm needs a few searchable copies, not thousands of identical ones."""
    max_posting: int = 256
    """Sketch values shared by more recent texts than this are common shingles, not evidence."""
    probe_values: int = 16
    """Candidates are found through 16 of the text's sketch values only, the rarest among
    recent texts: a text with Jaccard ≥ 0.6 shares about 12 of 16 of them, so missing it
    entirely takes odds below one in a million, and the rarest values have the shortest
    posting lists to count (the smallest values, tried first, were mostly common shingles
    in a small vocabulary, and counting them was most of a lookup)."""
    verify: int = 8
    """How many of the best-sharing candidates get the full estimate, of those sharing at
    least `threshold` × `min_shared` of the probe (a 0.6 match shares about 12 of 16 and
    falls under 6 about three times in 10,000; unrelated texts share one or two)."""
    min_shared: float = 0.6


def mention_key(mention: Mention) -> str:
    """A mention's identity, and the key of the group it starts."""
    return f"{mention.source}:{mention.external_id}"


def shingle_sketch(text: str, *, size: int = 5, keep: int = 64) -> tuple[int, ...]:
    """The `keep` smallest CRC32 values of the text's character shingles, ascending."""
    last = max(1, len(text) - size + 1)
    hashes = {zlib.crc32(text[i : i + size].encode()) for i in range(last)}
    return tuple(sorted(hashes)[:keep])


def estimated_jaccard(a: tuple[int, ...], b: tuple[int, ...], keep: int,
                      a_set: set[int] | None = None) -> float:
    """Bottom-k estimator: of the k smallest hashes of the union, the share both texts have.
    `a_set` is `set(a)` when the caller compares `a` with many sketches."""
    if not a or not b:
        return 0.0
    both = (a_set if a_set is not None else set(a)).intersection(b)
    if not both:
        return 0.0
    union = sorted(both.union(a, b))[:keep]
    return sum(1 for value in union if value in both) / len(union)


def similarity(text_a: str, text_b: str, config: GroupingConfig | None = None) -> float:
    config = config or GroupingConfig()
    fa, fb = fingerprint(text_a), fingerprint(text_b)
    if not fa or not fb:
        return 0.0
    if fa == fb:
        return 1.0
    return estimated_jaccard(
        shingle_sketch(fa, size=config.shingle_size, keep=config.sketch_size),
        shingle_sketch(fb, size=config.shingle_size, keep=config.sketch_size),
        config.sketch_size,
    )


@dataclass(frozen=True, slots=True)
class _Prepared:
    fingerprint: str
    prefix: str | None
    sketch: tuple[int, ...]
    truncated: bool


@dataclass(frozen=True, slots=True)
class _Entry:
    serial: int
    key: str
    group_key: str
    added_at: datetime
    fingerprint: str
    prefix: str | None
    sketch: tuple[int, ...]
    """Empty unless this entry is one of its group's searchable copies."""


class GroupIndex:
    """Recent mentions, bounded by age and count, searchable for the group a new one joins."""

    def __init__(self, config: GroupingConfig | None = None) -> None:
        self.config = config or GroupingConfig()
        self._entries: deque[_Entry] = deque()
        self._by_serial: dict[int, _Entry] = {}
        self._by_fingerprint: dict[str, list[str | int]] = {}
        self._by_prefix: dict[str, list[str | int]] = {}
        self._postings: dict[int, set[int]] = {}
        self._sketched: Counter[str] = Counter()
        self._serial = 0
        self._last: tuple[str, _Prepared] | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def _prepare(self, text: str) -> _Prepared:
        """Fingerprint and sketch of `text`; ingest asks for the same text twice in a row
        (find_group, then add), so the last one is kept."""
        last = self._last
        if last is not None and last[0] is text:
            return last[1]
        prepared = self._prepare_new(text)
        self._last = (text, prepared)
        return prepared

    def _prepare_new(self, text: str) -> _Prepared:
        truncated = text.rstrip().endswith(_TRUNCATION_MARKS)
        fp = fingerprint(text[:MAX_GROUPED_CHARS])
        if len(fp) < self.config.min_chars:
            return _Prepared(fp, None, (), truncated=False)
        prefix = fp[: self.config.prefix_chars] if len(fp) >= self.config.prefix_chars else None
        sketch = shingle_sketch(fp, size=self.config.shingle_size, keep=self.config.sketch_size)
        return _Prepared(fp, prefix, sketch, truncated=truncated)

    def expire(self, now: datetime) -> None:
        horizon = now - self.config.window
        while self._entries and (
            self._entries[0].added_at < horizon or len(self._entries) > self.config.max_entries
        ):
            self._drop(self._entries.popleft())

    def _drop(self, entry: _Entry) -> None:
        del self._by_serial[entry.serial]
        _release(self._by_fingerprint, entry.fingerprint)
        if entry.prefix is not None:
            _release(self._by_prefix, entry.prefix)
        if not entry.sketch:
            return
        self._sketched[entry.group_key] -= 1
        if self._sketched[entry.group_key] <= 0:
            del self._sketched[entry.group_key]
        for value in entry.sketch:
            bucket = self._postings.get(value)
            if bucket is not None:
                bucket.discard(entry.serial)
                if not bucket:
                    del self._postings[value]

    def find_group(self, mention: Mention, now: datetime) -> str | None:
        """The group key of a recent near-duplicate of `mention`, or None if it is new."""
        self.expire(now)
        return self._lookup(self._prepare(mention.text))

    def _lookup(self, text: _Prepared) -> str | None:
        if len(text.fingerprint) < self.config.min_chars:
            return None
        hit = self._by_fingerprint.get(text.fingerprint)
        if hit is not None:
            return str(hit[0])
        # Only a truncated copy ("RT @brand: first 100 chars…") may match on its opening alone.
        if text.truncated and text.prefix is not None:
            hit = self._by_prefix.get(text.prefix)
            if hit is not None:
                return str(hit[0])
        sketch = text.sketch
        postings = self._postings
        config = self.config
        limit = config.max_posting
        # The rarest of the text's values that some recent text shares: a near-duplicate
        # shares most of them, and rare values have short posting lists to count.
        buckets = [bucket for bucket in map(postings.get, sketch)
                   if bucket and len(bucket) <= limit]
        buckets.sort(key=len)
        del buckets[config.probe_values:]
        shared: Counter[int] = Counter(chain.from_iterable(buckets))
        keep = config.sketch_size
        threshold = config.threshold
        # Common shingles are not counted, so the bar is a share of the values that were.
        enough = threshold * config.min_shared * len(buckets)
        # Most texts are new: when no candidate reaches the bar, skip ranking them all.
        if not shared or max(shared.values()) < enough:
            return None
        best: tuple[float, int] | None = None
        mine = set(sketch)
        for serial, count in shared.most_common(config.verify):
            if count < enough:
                break
            entry = self._by_serial[serial]
            # The estimate is at most shared / min(k, |union|): skip what cannot reach the bar.
            if len(mine.intersection(entry.sketch)) < threshold * min(
                    keep, max(len(sketch), len(entry.sketch))):
                continue
            score = estimated_jaccard(sketch, entry.sketch, keep, mine)
            if score >= threshold and (best is None or score > best[0]):
                best = (score, serial)
                if score >= 0.9:
                    break
        return None if best is None else self._by_serial[best[1]].group_key

    def add(self, mention: Mention, now: datetime, group_key: str | None = None) -> str:
        """Remembers `mention` as a member of `group_key` (or the root of its own group)."""
        self.expire(now)
        return self._add(mention_key(mention), self._prepare(mention.text), now, group_key)

    def _add(self, key: str, text: _Prepared, now: datetime, group_key: str | None) -> str:
        group = group_key or key
        if len(text.fingerprint) < self.config.min_chars:
            return group
        self._serial += 1
        searchable = self._sketched[group] < self.config.sketches_per_group
        sketch = text.sketch if searchable else ()
        if sketch:
            self._sketched[group] += 1
        entry = _Entry(self._serial, key, group, now, text.fingerprint, text.prefix, sketch)
        self._entries.append(entry)
        self._by_serial[entry.serial] = entry
        _retain(self._by_fingerprint, entry.fingerprint, group)
        if entry.prefix is not None:
            _retain(self._by_prefix, entry.prefix, group)
        for value in entry.sketch:
            self._postings.setdefault(value, set()).add(entry.serial)
        self.expire(now)
        return group

    def assign(self, mention: Mention, now: datetime) -> str:
        """find_group then add, preparing the text once: the usual call on ingest."""
        self.expire(now)
        text = self._prepare(mention.text)
        return self._add(mention_key(mention), text, now, self._lookup(text))


def _retain(index: dict[str, list[str | int]], key: str, group: str) -> None:
    slot = index.get(key)
    if slot is None:
        index[key] = [group, 1]
    else:
        slot[1] = int(slot[1]) + 1


def _release(index: dict[str, list[str | int]], key: str) -> None:
    slot = index.get(key)
    if slot is None:
        return
    remaining = int(slot[1]) - 1
    if remaining <= 0:
        del index[key]
    else:
        slot[1] = remaining
