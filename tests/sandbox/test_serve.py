"""`mentiondesk run` without a bot token, in process: the sandbox's settings and its start."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from aiohttp import ClientSession
from pydantic import SecretStr

from bot.domain.mention import SourceKind
from bot.sandbox.serve import run_sandbox, sandbox_settings
from bot.settings import load_settings


def test_sandbox_settings_make_lea_the_lead_and_keep_the_admins_demo_source(
        tmp_path: Path) -> None:
    config = tmp_path / "mentiondesk.toml"
    config.write_text('[slack]\nleads = ["U0SOMEONE"]\n'
                      '[[sources]]\nname = "shop"\nkind = "demo"\npace_seconds = 0.5\n'
                      '[[sources]]\nname = "web"\nkind = "generic"\nsecret_env = "WEB_SECRET"\n')
    settings = load_settings({"MENTIONDESK_CONFIG": str(config), "SLACK_SIGNING_SECRET": "x"})
    assert settings.sandbox
    local = sandbox_settings(settings, api_url="http://127.0.0.1:9/api/",
                             signing_secret="s3cret", bot_token="xoxb-sandbox",
                             database_url="sqlite+aiosqlite:///x.db")
    assert local.file.slack.leads == ["U0LEAD1"]
    assert [(s.name, s.kind, s.option("pace_seconds")) for s in local.file.sources] == [
        ("shop", SourceKind.DEMO, 0.5)]
    assert local.file.brand == {"name": "Northwind"}
    assert local.env.host == "127.0.0.1"
    assert local.env.slack_signing_secret == SecretStr("s3cret")
    assert local.env.slack_api_url == "http://127.0.0.1:9/api/"
    assert not local.sandbox

    plain = load_settings({"MENTIONDESK_CONFIG": str(tmp_path / "missing.toml")})
    bundled = sandbox_settings(plain, api_url="http://127.0.0.1:9/api/", signing_secret="s",
                               bot_token="t", database_url="sqlite+aiosqlite:///x.db")
    assert [(s.name, s.kind) for s in bundled.file.sources] == [("demo", SourceKind.DEMO)]


async def test_the_sandbox_serves_demo_cards_on_loopback(database_url: str,
                                                        tmp_path: Path) -> None:
    config = tmp_path / "mentiondesk.toml"
    config.write_text('[[sources]]\nname = "demo"\nkind = "demo"\npace_seconds = 0\n')
    settings = load_settings({"PORT": "0", "MENTIONDESK_CONFIG": str(config),
                              "DATABASE_URL": database_url})
    stop = asyncio.Event()
    address: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(run_sandbox(settings, stop, address.set_result))
    try:
        url = await asyncio.wait_for(address, timeout=60)
        assert url.startswith("http://127.0.0.1:")
        async with ClientSession() as http:
            deadline = time.monotonic() + 30
            version, cards = None, 0
            # 25 posts, one a follow-up; triage may fold a spike into fewer cards.
            while cards < 15:
                assert time.monotonic() < deadline, f"only {cards} cards appeared"
                since = "" if version is None else f"&since={version}"
                async with http.get(f"{url}sandbox/state?user=U0AGENT1{since}") as response:
                    state = await response.json()
                version = state["version"]
                cards = len(next(c for c in state["channels"]
                                 if c["id"] == "C0MENTIONS")["messages"])
            assert state["violations"] == [] and state["incidents"] == []
            assert {n["network"] for n in state["demo"]} >= {"x", "mastodon", "bluesky"}
            async with http.post(f"{url}api/mentiondesk.nothing",
                                 data={"token": "anything"}) as response:
                assert (await response.json())["error"] == "unknown_method"
    finally:
        stop.set()
        assert await asyncio.wait_for(task, timeout=30) == 0
