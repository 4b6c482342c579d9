from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.domain.mention import Author, Mention
from bot.triage.signals import Analyzers

DATA = Path(__file__).resolve().parents[1] / "data" / "triage"
T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def load_labelled() -> list[dict[str, Any]]:
    with (DATA / "labelled.jsonl").open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def make_mention(
    text: str,
    *,
    source: str = "x",
    external_id: str = "1",
    handle: str = "@ann",
    followers: int = 100,
    verified: bool = False,
    lang: str | None = None,
    created_at: datetime = T0,
) -> Mention:
    return Mention(
        source=source,
        external_id=external_id,
        text=text,
        created_at=created_at,
        author=Author(handle=handle, followers=followers, verified=verified),
        lang=lang,
    )


@pytest.fixture(scope="session")
def analyzers() -> Analyzers:
    return Analyzers()
