"""Every network kind is built from its config entry and checked by `check-config`."""

from __future__ import annotations

import re
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.checks import check_config
from bot.connectors.bluesky import BlueskyConnector
from bot.connectors.hackernews import HackerNewsConnector
from bot.connectors.mastodon import MastodonConnector
from bot.connectors.meta import MetaConnector
from bot.connectors.reddit import RedditConnector
from bot.connectors.rss import RssConnector
from bot.connectors.x import XConnector
from bot.polling import POLLABLE
from bot.settings import Environment, Settings, parse_file_config
from bot.wiring import build_connectors

EXAMPLE = Path(__file__).resolve().parents[2] / "mentiondesk.example.toml"
SECRETS = {
    "X_BEARER_TOKEN": "b", "X_USER_TOKEN": "u", "MASTODON_TOKEN": "m",
    "BLUESKY_APP_PASSWORD": "p", "REDDIT_CLIENT_SECRET": "s", "REDDIT_PASSWORD": "pw",
    "META_PAGE_TOKEN": "t", "META_APP_SECRET": "a", "META_VERIFY_TOKEN": "v",
    "GENERIC_WEBHOOK_SECRET": "g",
}
KINDS = {"brand-x": XConnector, "brand-mastodon": MastodonConnector,
         "brand-bluesky": BlueskyConnector, "brand-reddit": RedditConnector,
         "acme-news": RssConnector, "hn": HackerNewsConnector, "acme-meta": MetaConnector}


def example_with_networks() -> dict[str, Any]:
    """The example file with its commented network entries switched on."""
    text = EXAMPLE.read_text(encoding="utf-8")
    head, _, networks = text.partition("# --- Networks")
    lines = [re.sub(r"^# ", "", line) for line in networks.splitlines()
             if line.startswith("# ") and not line.startswith("# ---")]
    body = "\n".join(line for line in lines if line.startswith(("[[", "name", "kind")) or
                     re.match(r"^[a-z_]+ = ", line))
    return tomllib.loads(head + "\n" + body)


def settings(data: dict[str, Any], secrets: dict[str, str]) -> Settings:
    env = Environment(slack_bot_token=None, mentiondesk_config="mentiondesk.toml")
    return Settings(env=env, file=parse_file_config(data), secrets=secrets)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def test_example_has_one_entry_per_network() -> None:
    kinds = [s["kind"] for s in example_with_networks()["sources"]]
    assert kinds == ["generic", "x", "mastodon", "bluesky", "reddit", "rss", "hackernews",
                     "meta", "demo"]
    assert {k.value for k in POLLABLE} == {"x", "mastodon", "bluesky", "reddit", "rss",
                                           "hackernews"}


def test_check_config_names_each_missing_credential_with_its_location() -> None:
    problems = check_config(settings(example_with_networks(), {}))
    source_problems = [p for p in problems if "sources[" in p]

    expected = {
        1: ["X_BEARER_TOKEN", "X_USER_TOKEN"], 2: ["MASTODON_TOKEN"],
        3: ["BLUESKY_APP_PASSWORD"], 4: ["REDDIT_CLIENT_SECRET", "REDDIT_PASSWORD"],
        6: [], 7: ["META_PAGE_TOKEN", "META_APP_SECRET", "META_VERIFY_TOKEN"],
    }
    for index, names in expected.items():
        mine = [p for p in source_problems if f"sources[{index}] " in p]
        assert sorted(mine) == sorted(
            f"mentiondesk.toml: sources[{index}] ({name_of(index)}): environment variable "
            f"{n} is not set" for n in names), mine
    assert [p for p in source_problems if "sources[5] " in p] == []  # RSS needs no secret
    assert all("source '" not in p for p in source_problems)  # one location, not two


def name_of(index: int) -> str:
    return str(example_with_networks()["sources"][index]["name"])


def test_check_config_is_clean_once_the_environment_has_the_secrets() -> None:
    problems = check_config(settings(example_with_networks(), SECRETS))
    networks = [p for p in problems if "sources[" in p and "sources[0]" not in p]
    assert networks == []


def test_check_config_reports_invalid_urls_and_missing_options() -> None:
    data = {"sources": [
        {"name": "m", "kind": "mastodon", "base_url": "ftp://mastodon.example",
         "token_env": "MASTODON_TOKEN"},
        {"name": "feed", "kind": "rss"},
        {"name": "hn", "kind": "hackernews", "base_url": "not a url", "keywords": ["acme"]},
        {"name": "x", "kind": "x", "token_env": "X_BEARER_TOKEN", "user_id": "brand"},
        {"name": "off", "kind": "x", "enabled": False},
    ]}
    problems = check_config(settings(data, SECRETS))

    assert ("mentiondesk.toml: sources[0] (m): base_url must be an http(s) URL, not "
            "'ftp://mastodon.example'") in problems
    assert "mentiondesk.toml: sources[1] (feed): set 'base_url' to the feed URL" in problems
    assert ("mentiondesk.toml: sources[2] (hn): base_url must be an http(s) URL"
            in problems)
    assert ("mentiondesk.toml: sources[3] (x): option 'user_id' must be the brand account's "
            "numeric id") in problems
    assert not [p for p in problems if "sources[4]" in p]  # disabled: not checked


async def test_build_connectors_builds_every_kind_and_skips_broken_entries(
    session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture,
) -> None:
    built = build_connectors(settings(example_with_networks(), SECRETS), session)

    for name, kind in KINDS.items():
        assert isinstance(built[name], kind), name

    missing = dict(SECRETS)
    del missing["MASTODON_TOKEN"]
    caplog.set_level("WARNING")
    partial = build_connectors(settings(example_with_networks(), missing), session)
    assert "brand-mastodon" not in partial and "brand-x" in partial
    (record,) = [r for r in caplog.records if "brand-mastodon" in r.getMessage()]
    assert "MASTODON_TOKEN is not set" in record.getMessage()
