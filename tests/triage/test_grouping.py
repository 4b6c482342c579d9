from __future__ import annotations

import random
from datetime import timedelta

from bot.triage.grouping import GroupIndex, GroupingConfig, mention_key, similarity

from .conftest import T0, make_mention

ORIGINAL = (
    "Our checkout is down for some customers right now. We're working on a fix and will "
    "update this thread. Sorry for the trouble!"
)
COMPLAINTS = [
    "@acme my order 4417 never arrived and support hasn't answered in a week",
    "@acme I was charged twice for the same subscription this month",
    "@acme the app logs me out every time I open it on Android",
    "@acme the store on Main Street was closed during opening hours today",
    "@acme your delivery driver left my parcel in the rain again",
    "@acme can't reset my password, the email never comes",
    "@acme price went up 20% without any notice, not happy",
    "@acme the replacement headphones have the same crackling problem",
]


def test_hundred_retweets_within_a_minute_form_one_group():
    index = GroupIndex()
    root = make_mention(ORIGINAL, external_id="root", handle="@acme")
    assert index.assign(root, T0) == "x:root"
    prefixes = ["RT @acme: ", "RT @acme ", "RT @acme:", "rt ", ""]
    for n in range(100):
        text = f"{prefixes[n % len(prefixes)]}{ORIGINAL}"
        if n % 7 == 0:
            text += f" https://t.co/{n:04d}"
        if n % 11 == 0:
            text = text.upper()
        mention = make_mention(text, external_id=f"rt{n}", handle=f"@fan{n}")
        at = T0 + timedelta(milliseconds=600 * n)
        assert index.assign(mention, at) == "x:root", text


def test_truncated_retweet_and_cross_post_join_the_original():
    index = GroupIndex()
    index.assign(make_mention(ORIGINAL, external_id="root"), T0)
    truncated = f"RT @acme: {ORIGINAL[:90]}…"
    assert index.find_group(make_mention(truncated, external_id="t"), T0) == "x:root"
    cross_post = make_mention(
        f"{ORIGINAL.replace('thread', 'post')} https://acme.example/status",
        source="mastodon",
        external_id="m1",
    )
    assert index.find_group(cross_post, T0) == "x:root"
    light_edit = ORIGINAL.replace("Sorry for the trouble!", "Sorry for the trouble 🙏 #status")
    assert index.find_group(make_mention(light_edit, external_id="e"), T0) == "x:root"


def test_distinct_complaints_stay_apart():
    index = GroupIndex()
    keys = [
        index.assign(make_mention(text, external_id=f"c{n}"), T0 + timedelta(seconds=n))
        for n, text in enumerate(COMPLAINTS)
    ]
    assert keys == [f"x:c{n}" for n in range(len(COMPLAINTS))]


def test_same_opening_without_truncation_is_not_enough():
    index = GroupIndex()
    start = "@acme I have been waiting three weeks for my refund and still nothing, "
    first = make_mention(start + "this is the worst service I have ever had", external_id="a")
    index.assign(first, T0)
    other = make_mention(start + "can someone from billing call me back please?", external_id="b")
    assert index.find_group(other, T0) is None


def test_short_texts_are_not_grouped():
    index = GroupIndex()
    index.assign(make_mention("@acme help!", external_id="a"), T0)
    assert index.find_group(make_mention("@acme help!", external_id="b"), T0) is None
    assert len(index) == 0


def test_window_expiry():
    index = GroupIndex(GroupingConfig(window=timedelta(minutes=10)))
    index.assign(make_mention(ORIGINAL, external_id="root"), T0)
    retweet = make_mention(f"RT @acme: {ORIGINAL}", external_id="rt")
    assert index.find_group(retweet, T0 + timedelta(minutes=10)) == "x:root"
    assert index.find_group(retweet, T0 + timedelta(minutes=10, seconds=1)) is None
    assert len(index) == 0


def test_members_keep_the_group_alive_after_the_root_expires():
    index = GroupIndex(GroupingConfig(window=timedelta(minutes=10)))
    index.assign(make_mention(ORIGINAL, external_id="root"), T0)
    member = make_mention(f"RT @acme: {ORIGINAL}", external_id="rt1")
    index.assign(member, T0 + timedelta(minutes=8))
    later = make_mention(f"RT @acme: {ORIGINAL}", external_id="rt2")
    assert index.assign(later, T0 + timedelta(minutes=15)) == "x:root"
    assert len(index) == 2


def test_size_bound_evicts_oldest():
    index = GroupIndex(GroupingConfig(max_entries=3))
    index.assign(make_mention(ORIGINAL, external_id="root"), T0)
    for n, text in enumerate(COMPLAINTS[:3]):
        index.assign(make_mention(text, external_id=f"c{n}"), T0)
    assert len(index) == 3
    assert index.find_group(make_mention(f"RT @acme: {ORIGINAL}", external_id="rt"), T0) is None
    assert index.find_group(make_mention(COMPLAINTS[2], external_id="again"), T0) == "x:c2"


def test_add_with_explicit_group_and_key():
    index = GroupIndex()
    mention = make_mention(ORIGINAL, source="reddit", external_id="abc")
    assert mention_key(mention) == "reddit:abc"
    assert index.add(mention, T0, group_key="case-17") == "case-17"
    assert index.find_group(make_mention(ORIGINAL, external_id="z"), T0) == "case-17"


def test_similarity():
    assert similarity(ORIGINAL, f"RT @acme: {ORIGINAL} https://t.co/x") == 1.0
    assert similarity(COMPLAINTS[0], COMPLAINTS[1]) < 0.2
    assert similarity("", ORIGINAL) == 0.0
    near = ORIGINAL.replace("right now", "at the moment")
    assert 0.6 <= similarity(ORIGINAL, near) < 1.0


def test_huge_and_odd_texts_do_not_break_the_index():
    index = GroupIndex()
    texts = ["", "😀" * 50, "x" * 100_000, "注文した商品が届きません。返金してください。"]
    for n, text in enumerate(texts):
        index.assign(make_mention(text, external_id=f"o{n}"), T0)
    again = make_mention("注文した商品が届きません!返金してください", external_id="j")
    assert index.find_group(again, T0) == "x:o3"


def test_edited_copies_are_found_among_many_texts_of_a_small_vocabulary():
    """In a small vocabulary the smallest shingle hashes are common shingles shared by
    hundreds of texts; a lookup must still find the copy through the rarer ones."""
    rng = random.Random(5)
    words = [f"w{n}{'aeiou'[n % 5]}rd" for n in range(60)]

    def text() -> str:
        return " ".join(rng.choice(words) for _ in range(14)) + f" ref{rng.getrandbits(40):x}"

    index = GroupIndex(GroupingConfig(max_entries=10_000))
    originals = [text() for _ in range(3_000)]
    for n, original in enumerate(originals):
        index.assign(make_mention(original, external_id=f"o{n}"), T0)
    found = tried = 0
    while tried < 200:
        n = rng.randrange(len(originals))
        edited = originals[n].split(" ")
        for _ in range(2):
            edited[rng.randrange(len(edited) - 1)] = rng.choice(words)
        copy = " ".join(edited)
        if similarity(copy, originals[n]) < 0.6:
            continue
        tried += 1
        found += index.find_group(make_mention(copy, external_id=f"c{tried}"), T0) == f"x:o{n}"
    fresh = [index.find_group(make_mention(text(), external_id=f"f{n}"), T0) for n in range(200)]
    assert found >= 196, found
    assert fresh == [None] * 200
