"""The `mentiondesk` command. Exit 0 on success, 2 on bad usage or configuration, 1 otherwise;
errors are one clear line on stderr."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from bot.settings import ConfigError, Settings, load_settings

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_FAIL) -> None:
        super().__init__(message)
        self.code = code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mentiondesk", description="Social-media mentions as a care workflow in Slack."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="web server, pollers, dispatcher and timers in one process")
    sub.add_parser("web", help="the HTTP side only")
    sub.add_parser("worker", help="the background side only")
    sub.add_parser("migrate", help="bring the database schema up to date")
    ingest = sub.add_parser("ingest", help="import mentions from a JSON Lines file")
    ingest.add_argument("file", type=Path)
    ingest.add_argument("--source", default="import", help="source name recorded on the cases")
    report = sub.add_parser("report", help="the figures of /mentions report")
    report.add_argument("range", nargs="?", default=None,
                        help="today | 7d | 30d | YYYY-MM-DD..YYYY-MM-DD (default 7d)")
    report.add_argument("--since", default=None, help="the same as the range argument")
    report.add_argument("--network", default=None, help="only mentions from this network")
    report.add_argument("--format", choices=["text", "csv", "json"], default="text")
    sub.add_parser("check-config", help="validate the configuration and print every problem")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_USAGE if exc.code else EXIT_OK
    try:
        settings = load_settings()
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"mentiondesk: {problem}", file=sys.stderr)
        return EXIT_USAGE
    from bot import logs

    logs.setup(settings.env.log_level, settings.env.log_format)
    try:
        return _dispatch(args, settings)
    except CliError as exc:
        print(f"mentiondesk: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return EXIT_FAIL


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    command = args.command
    if command == "check-config":
        from bot.checks import check_config

        problems = check_config(settings)
        for problem in problems:
            print(problem)
        if problems:
            return EXIT_USAGE
        print("configuration OK")
        return EXIT_OK
    if command == "migrate":
        asyncio.run(_migrate(settings))
        print("database is up to date")
        return EXIT_OK
    if command == "ingest":
        from bot.importer import run_import

        return run_import(settings, args.file, source_name=args.source)
    if command == "report":
        from bot.report_cli import ReportUsageError, run_report

        try:
            return run_report(settings, args.range or args.since or "7d", args.network,
                              args.format)
        except ReportUsageError as exc:
            raise CliError(str(exc), EXIT_USAGE) from None
    from bot.runner import serve

    return serve(settings, mode=command)


async def _migrate(settings: Settings) -> None:
    from db.engine import make_engine
    from db.migrate import upgrade

    engine = make_engine(settings.env.database_url)
    try:
        await upgrade(engine)
    except Exception as exc:
        raise CliError(f"migration failed: {exc.__class__.__name__}: {exc}") from None
    finally:
        await engine.dispose()

