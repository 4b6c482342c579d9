"""The sandbox in this test process, and Debian's Chromium driven by Playwright.

Browsers cannot be downloaded here, so Playwright drives /usr/bin/chromium (scripts/test
installs it when it can). Without it the browser tests are skipped with the reason printed,
except in CI, where a missing browser is a failure.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.sandbox.serve import run_sandbox
from bot.settings import load_settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run the browser test: {reason}")
    print(f"browser test skipped: {reason}")
    pytest.skip(reason)


@pytest.fixture
def chromium() -> Path:
    """Debian's Chromium, or a skip (a failure in CI) saying why it cannot be used."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -e '.[dev]')")
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing (apt-get install chromium; scripts/test tries)")
    return CHROMIUM


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(chromium),
                                                   args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            await launched.close()


@dataclass
class Sandbox:
    url: str
    stop: asyncio.Event


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[Sandbox]:
    """`mentiondesk run` without a bot token, with every demo mention due at once, on SQLite
    as a first run would be (the scenario tests cover PostgreSQL)."""
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'sandbox.db'}"
    config = tmp_path / "mentiondesk.toml"
    config.write_text('[[sources]]\nname = "demo"\nkind = "demo"\npace_seconds = 0\n')
    settings = load_settings({"PORT": "0", "MENTIONDESK_CONFIG": str(config),
                              "DATABASE_URL": database_url})
    assert settings.sandbox
    stop = asyncio.Event()
    address: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(run_sandbox(settings, stop, address.set_result))
    done, _ = await asyncio.wait([task, address], timeout=60,
                                 return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()
        pytest.fail("the sandbox stopped before it announced its address")
    if address not in done:
        task.cancel()
        pytest.fail("the sandbox did not start within 60 seconds")
    try:
        yield Sandbox(address.result(), stop)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)
