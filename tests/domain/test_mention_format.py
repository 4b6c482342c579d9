"""The CONTRACT mention format: what `mention_to_dict` writes, `mention_from_dict` reads back."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from bot.domain.mention import Author, Mention, mention_from_dict, mention_to_dict

_TEXT = st.text(min_size=1, max_size=200).filter(str.strip)
_ID = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=40)


@given(
    source=st.sampled_from(["x", "mastodon", "bluesky", "reddit", "rss", "hn", "forum"]),
    external_id=_ID,
    text=_TEXT,
    seconds=st.integers(min_value=0, max_value=2_000_000_000),
    handle=_ID,
    followers=st.integers(min_value=0, max_value=10**9),
    verified=st.booleans(),
    in_reply_to=st.none() | _ID,
    lang=st.none() | st.sampled_from(["en", "es", "pt-BR"]),
    thread_id=st.none() | _ID,
)
def test_a_mention_survives_the_format_and_json(
    source: str, external_id: str, text: str, seconds: int, handle: str, followers: int,
    verified: bool, in_reply_to: str | None, lang: str | None, thread_id: str | None,
) -> None:
    mention = Mention(
        source=source, external_id=external_id, text=text,
        created_at=datetime.fromtimestamp(seconds, tz=UTC),
        author=Author(handle=f"@{handle}", name="A Name", followers=followers,
                      verified=verified),
        url=f"https://example.test/{external_id}", in_reply_to=in_reply_to, lang=lang,
        thread_id=thread_id,
    )
    assert mention_from_dict(json.loads(json.dumps(mention_to_dict(mention)))) == mention
