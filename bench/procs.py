"""Processes under test: the product (`python -m bot run`) and the reference servers, each in
its own process so the load generator never shares an event loop with what it measures."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
SIGNING_SECRET = "bench-signing-secret"
BOT_TOKEN = "xoxb-bench-0000-token"
WEBHOOK_SECRET = "bench-webhook-secret"
SOURCE = "web"
MENTIONS = "C0MENTIONS"
LEAD = "U0LEAD1"
AGENTS = ("U0AGENT1", "U0AGENT2")
CHANNELS = ("C0MENTIONS", "C0BENCH1", "C0BENCH2", "C0BENCH3", "C0BENCH4")

# Mentions whose text says `laneN` are routed to CHANNELS[N] by the triage routing rules;
# the rest go to the mentions channel.
CONFIG = f"""
[slack]
mentions_channel = "{MENTIONS}"
approvals_channel = "C0APPROVALS"
alerts_channel = "C0ALERTS"
leads = ["{LEAD}"]

[[sources]]
name = "{SOURCE}"
kind = "generic"
secret_env = "BENCH_WEBHOOK_SECRET"
""" + "".join(
    f"""
[[triage.routing]]
channel = "{channel}"
match = {{ keywords = ["{lane}"] }}
""" for lane, channel in zip(("lane1", "lane2", "lane3", "lane4"), CHANNELS[1:], strict=True))

_CLEARED = ("SLACK_", "DATABASE_URL", "MENTIONDESK_", "PORT", "HOST", "LOG_LEVEL")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _environment(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_CLEARED)}
    env.update(extra)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass(slots=True, eq=False)
class Server:
    """A server process on loopback; `spawned` is when it was started (perf_counter)."""

    name: str
    process: asyncio.subprocess.Process
    url: str
    log_path: Path
    spawned: float

    @property
    def events_url(self) -> str:
        return f"{self.url}slack/events"

    def rss_mb(self) -> float:
        """Resident set size now, from /proc (the process is python itself, not a shell)."""
        status = Path(f"/proc/{self.process.pid}/status")
        with contextlib.suppress(OSError):
            for line in status.read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def cpu_seconds(self) -> float:
        stat = Path(f"/proc/{self.process.pid}/stat")
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return float("nan")

    async def settle(self, limit: float = 30.0) -> None:
        """Wait until the process is idle (under 5 % of a core for half a second), so work
        it queued during one measurement does not steal the CPU from the next."""
        deadline = time.monotonic() + limit
        before = self.cpu_seconds()
        while time.monotonic() < deadline and self.process.returncode is None:
            await asyncio.sleep(0.5)
            now = self.cpu_seconds()
            if now - before < 0.025:
                return
            before = now

    async def wait_healthy(self, timeout: float = 60.0) -> None:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                if self.process.returncode is not None:
                    break
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with http.get(f"{self.url}healthz") as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.02)
        raise RuntimeError(f"{self.name} did not become healthy; log: {self.tail()}")

    def tail(self, lines: int = 15) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    async def stop(self) -> None:
        _RUNNING.discard(self)
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


def write_config(workdir: Path, extra: str = "", name: str = "mentiondesk.toml") -> Path:
    path = workdir / name
    path.write_text(CONFIG + extra, encoding="utf-8")
    return path


async def _spawn(name: str, argv: list[str], env: dict[str, str], log_path: Path,
                 url: str) -> Server:
    log = log_path.open("ab")
    try:
        spawned = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            *argv, cwd=ROOT, env=env, stdout=log, stderr=log, stdin=asyncio.subprocess.DEVNULL)
    finally:
        log.close()
    server = Server(name, process, url, log_path, spawned)
    _RUNNING.add(server)
    return server


_RUNNING: set[Server] = set()


async def stop_all() -> None:
    """Stop every server still running (a benchmark failed or was cancelled mid-way)."""
    for server in list(_RUNNING):
        await server.stop()


async def _ready(server: Server, wait: bool) -> Server:
    if wait:
        try:
            await server.wait_healthy()
        except BaseException:
            await server.stop()
            raise
    return server


async def start_product(workdir: Path, *, database_url: str, slack_api_url: str,
                        config_extra: str = "", wait: bool = True) -> Server:
    """`python -m bot run` (the `mentiondesk run` command) configured for loopback."""
    port = free_port()
    config = write_config(workdir, config_extra)
    env = _environment({
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack_api_url,
        "DATABASE_URL": database_url,
        "MENTIONDESK_CONFIG": str(config),
        "BENCH_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "PORT": str(port),
        "HOST": "127.0.0.1",
    })
    server = await _spawn("mentiondesk", [sys.executable, "-m", "bot", "run"], env,
                          workdir / "mentiondesk.log", f"http://127.0.0.1:{port}/")
    return await _ready(server, wait)


async def start_reference(workdir: Path, kind: str, *, slack_api_url: str,
                          wait: bool = True) -> Server:
    """One of bench.reference's servers: `aiohttp` (bare handler) or `bolt` (no database)."""
    port = free_port()
    env = _environment({})
    argv = [sys.executable, "-m", "bench.reference", kind, str(port), SIGNING_SECRET,
            slack_api_url, BOT_TOKEN]
    server = await _spawn(f"reference-{kind}", argv, env, workdir / f"reference-{kind}.log",
                          f"http://127.0.0.1:{port}/")
    return await _ready(server, wait)
