"""The `mentiondesk` command as an admin runs it: exit codes, one-line errors, imports."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]


def run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("SLACK_", "DATABASE_URL", "MENTIONDESK_"))}
    base.update({"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
                 "MENTIONDESK_CONFIG": str(tmp_path / "mentiondesk.toml"), **env})
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=tmp_path, env=base,
                          capture_output=True, text=True, timeout=60, check=False)


def line(n: int) -> str:
    return json.dumps({"source": "x", "external_id": str(n), "text": f"post {n}",
                       "created_at": "2026-11-22T08:00:00Z"})


def test_ingest_reports_bad_lines_and_imports_the_rest(tmp_path: Path) -> None:
    data = tmp_path / "m.jsonl"
    data.write_text("\n".join([line(1), "{not json", line(2), '{"source": "x"}', line(2)]) + "\n")
    result = run(["ingest", str(data)], tmp_path)
    assert result.returncode == 1
    assert f"{data}:2: not valid JSON" in result.stderr
    assert f"{data}:4: missing required field 'external_id'" in result.stderr
    assert "Traceback" not in result.stderr
    assert "imported 2 mentions, 1 duplicates skipped, 2 lines refused" in result.stdout
    engine = create_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("select count(*) from mention")).scalar() == 2
        assert conn.execute(text("select count(*) from outbox")).scalar() == 2
    engine.dispose()


def test_check_config_prints_every_problem_with_location(tmp_path: Path) -> None:
    (tmp_path / "mentiondesk.toml").write_text(
        '[slack]\nleads = ["nobody"]\n[[sources]]\nname = "Web"\nkind = "telepathy"\n')
    result = run(["check-config"], tmp_path)
    assert result.returncode == 2
    assert "slack.leads: 'nobody' is not a Slack user id" in result.stderr
    assert "sources[0].name:" in result.stderr and "sources[0].kind:" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_config_names_missing_secrets(tmp_path: Path) -> None:
    (tmp_path / "mentiondesk.toml").write_text(
        '[[sources]]\nname = "web"\nkind = "generic"\nsecret_env = "WEB_HOOK_SECRET"\n'
        'reply_url = "ftp://example"\n')
    result = run(["check-config"], tmp_path)
    assert result.returncode == 2
    assert "environment variable WEB_HOOK_SECRET is not set" in result.stdout
    assert "reply_url: 'ftp://example' is not an http(s) URL" in result.stdout


def test_run_without_credentials_starts_the_sandbox(tmp_path: Path) -> None:
    """No SLACK_BOT_TOKEN: `run` serves the sandbox page on loopback and prints its address;
    SIGTERM stops it cleanly."""
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("SLACK_", "DATABASE_URL", "MENTIONDESK_", "PORT"))}
    base.update({"PORT": "0", "MENTIONDESK_CONFIG": str(tmp_path / "mentiondesk.toml")})
    process = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=tmp_path, env=base,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in process.stdout or []],
                     daemon=True).start()
    try:
        deadline = time.monotonic() + 60
        address = None
        while address is None:
            remaining = deadline - time.monotonic()
            assert remaining > 0 and process.poll() is None, "the sandbox did not start"
            with contextlib.suppress(queue.Empty):
                found = re.search(r"http://127\.0\.0\.1:\d+/", lines.get(timeout=remaining))
                address = found.group(0) if found else None
        with urllib.request.urlopen(address, timeout=10) as page:
            assert page.status == 200 and "mentiondesk sandbox" in page.read().decode()
        with urllib.request.urlopen(f"{address}sandbox/state?user=U0LEAD1", timeout=10) as st:
            state = json.load(st)
        assert {u["id"]: u["role"] for u in state["users"]}["U0LEAD1"] == "lead"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert "Traceback" not in (process.stderr.read() if process.stderr else "")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
    # A fresh temporary database per sandbox run: nothing is left in the working folder.
    assert not (tmp_path / "mentiondesk.db").exists()


def test_web_without_credentials_explains_and_exits_2(tmp_path: Path) -> None:
    result = run(["web"], tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "SLACK_BOT_TOKEN" in result.stderr


def test_run_with_token_but_no_signing_secret_exits_2(tmp_path: Path) -> None:
    result = run(["run"], tmp_path, SLACK_BOT_TOKEN="xoxb-1-2")
    assert result.returncode == 2
    assert "SLACK_SIGNING_SECRET" in result.stderr and "Traceback" not in result.stderr


def test_migrate_and_bad_usage(tmp_path: Path) -> None:
    assert run(["migrate"], tmp_path).returncode == 0
    assert run(["frobnicate"], tmp_path).returncode == 2


@pytest.mark.parametrize("missing", ["nope.jsonl"])
def test_ingest_missing_file(tmp_path: Path, missing: str) -> None:
    result = run(["ingest", missing], tmp_path)
    assert result.returncode == 2 and "no such file" in result.stderr


def test_check_config_renders_every_reply_template(tmp_path: Path) -> None:
    replies = tmp_path / "replies"
    replies.mkdir()
    (replies / "broken.j2").write_text(
        '{#\nname = "broken"\ntitle = "Broken"\nnetworks = ["*"]\n#}\n'
        "Hi {{ ''.__class__.__mro__ }}\n")
    (replies / "fine.j2").write_text(
        '{#\nname = "fine"\ntitle = "Fine"\nnetworks = ["*"]\n#}\nThanks {{ brand.name }}\n')
    (tmp_path / "mentiondesk.toml").write_text(f'[replies]\ntemplates_dir = "{replies}"\n')
    result = run(["check-config"], tmp_path)
    assert result.returncode == 2
    assert "broken.j2: does not render with sample values" in result.stdout
    assert "fine" not in result.stdout
