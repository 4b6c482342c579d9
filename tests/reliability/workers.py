"""Real `python -m bot worker` processes against one database, Slack played by the emulator
in the test process and replies received by a local sink (both on loopback)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.connectors.signing import verify
from bot.domain.length import check_with, counter_for
from bot.domain.lifecycle import Actor, Role
from bot.services.cases import claim_mention
from bot.services.context import Services
from bot.services.replies import DraftInput, approve_draft, save_draft
from tests.loopback import serving
from tests.stack import BOT_TOKEN, LEAD, SIGNING_SECRET, WEBHOOK_SECRET

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class IdempotentSink:
    """A reply endpoint that does what the README asks of one: the same Idempotency-Key
    publishes once and answers with the same reply."""

    published: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: int = 0
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        if not verify(WEBHOOK_SECRET.encode(), raw, request.headers.get("X-Mentiondesk-Signature")):
            return web.json_response({"error": "bad signature"}, status=401)
        self.requests += 1
        key = request.headers.get("Idempotency-Key", "")
        if key not in self.published:
            n = len(self.published) + 1
            self.published[key] = {"id": f"r{n}", "url": f"https://forum.example/r/{n}",
                                   "body": json.loads(raw)}
        reply = self.published[key]
        return web.json_response({"id": reply["id"], "url": reply["url"]})


@asynccontextmanager
async def idempotent_sink() -> AsyncIterator[IdempotentSink]:
    sink = IdempotentSink()
    app = web.Application()
    app.router.add_post("/replies", sink.handle)
    async with serving(app) as base:
        sink.url = f"{base}/replies"
        yield sink


def write_config(path: Path, reply_url: str, **reliability: object) -> Path:
    lines = ["[slack]", f'leads = ["{LEAD}"]', "", "[reliability]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in reliability.items()]
    lines += ["", "[[sources]]", 'name = "web"', 'kind = "generic"',
              'secret_env = "WEB_SECRET"', f'reply_url = "{reply_url}"', "reply_limit = 500",
              "allow_private_url = true"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class Workers:
    """Worker processes the test starts, kills, freezes and stops by pid."""

    def __init__(self, database_url: str, api_url: str, config: Path, logs: Path) -> None:
        self.env = {
            "PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"),
            "DATABASE_URL": database_url, "SLACK_API_URL": api_url,
            "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "MENTIONDESK_CONFIG": str(config), "WEB_SECRET": WEBHOOK_SECRET,
            "LOG_LEVEL": "INFO", "PYTHONPATH": str(ROOT),
        }
        self.logs = logs
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        with (self.logs / f"worker-{len(self.procs)}.log").open("wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", "bot", "worker"], cwd=ROOT,
                                    env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    @staticmethod
    def kill(proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    async def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            await asyncio.to_thread(_wait_or_kill, proc)

    def output(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:]
                         for p in sorted(self.logs.glob("worker-*.log")))


def _wait_or_kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


async def approve_replies(services: Services, case_ids: list[int]) -> None:
    """Cases claimed, drafted and approved through the real use cases."""
    agent = Actor("U0AGENT1", Role.AGENT)
    lead = Actor(LEAD, Role.LEAD)
    for case_id in case_ids:
        await claim_mention(services, case_id, agent)
        text = f"Sorry about that, we are on it (case {case_id})."
        length = check_with(counter_for("generic", 500), text)
        _record, draft = await save_draft(services, case_id, agent, DraftInput(
            text=text, template=None, values={}, preapproved=False, edited=True,
            length=length))
        await approve_draft(services, case_id, draft.id or 0, lead)
