"""`mentiondesk ingest FILE.jsonl`: valid lines are imported even when others are broken."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bot.domain.mention import Mention, MentionError, mention_from_dict
from bot.services.context import Services
from bot.services.ingest import ingest_batch
from bot.settings import Settings
from db.engine import make_engine
from db.migrate import upgrade
from db.store import Database

BATCH = 500


def read_jsonl(path: Path) -> Iterator[tuple[int, Mention | str]]:
    """(line number, mention or the reason the line was refused); blank lines are skipped."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                data = json.loads(raw.decode("utf-8"))
                yield number, mention_from_dict(data)
            except UnicodeDecodeError:
                yield number, "not valid UTF-8"
            except json.JSONDecodeError as exc:
                yield number, f"not valid JSON ({exc.msg})"
            except MentionError as exc:
                yield number, str(exc)


async def import_file(services: Services, path: Path, source_name: str,
                      progress: Progress | None = None, total_lines: int | None = None
                      ) -> tuple[int, int, list[str]]:
    """Returns (imported, duplicates, problems)."""
    imported = duplicates = 0
    problems: list[str] = []
    batch: list[Mention] = []
    task = progress.add_task("importing", total=total_lines) if progress else None

    async def flush() -> None:
        nonlocal imported, duplicates
        if batch:
            result = await ingest_batch(services, batch, source_name=source_name)
            imported += len(result.created) + len(result.joined)
            duplicates += result.duplicates
            batch.clear()

    for number, item in read_jsonl(path):
        if isinstance(item, str):
            problems.append(f"{path}:{number}: {item}")
        else:
            batch.append(item)
        if len(batch) >= BATCH:
            await flush()
        if progress is not None and task is not None:
            progress.update(task, completed=number)
    await flush()
    return imported, duplicates, problems


def run_import(settings: Settings, path: Path, *, source_name: str) -> int:
    if not path.is_file():
        print(f"mentiondesk: {path}: no such file", file=sys.stderr)
        return 2
    with path.open("rb") as handle:
        total = sum(1 for _ in handle)
    return asyncio.run(_run_import(settings, path, source_name, total))


async def _run_import(settings: Settings, path: Path, source_name: str, total: int) -> int:
    engine = make_engine(settings.env.database_url)
    db = Database(engine)
    try:
        await upgrade(engine)
        services = Services(db=db, default_channel=settings.file.slack.mentions_channel)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn())
        with Progress(*columns, transient=True, disable=not sys.stderr.isatty()) as progress:
            imported, duplicates, problems = await import_file(
                services, path, source_name, progress, total
            )
    finally:
        await db.dispose()
    for problem in problems:
        print(f"mentiondesk: {problem}", file=sys.stderr)
    print(f"imported {imported} mentions, {duplicates} duplicates skipped, "
          f"{len(problems)} lines refused")
    return 1 if problems else 0
