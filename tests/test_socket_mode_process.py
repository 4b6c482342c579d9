"""`mentiondesk run` with SLACK_APP_TOKEN: a real process dials the emulator's Socket Mode."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

from bot.sandbox.emulator import SlackEmulator

BOT_TOKEN = "xoxb-process-0000-token"
APP_TOKEN = "xapp-1-process-0000-token"
ROOT = str(Path(__file__).resolve().parents[1])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_run_connects_in_socket_mode_without_a_signing_secret(tmp_path: Path) -> None:
    emulator = SlackEmulator(bot_token=BOT_TOKEN, app_token=APP_TOKEN)
    api_url = await emulator.start()
    emulator.use_socket_mode()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
    env.update(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_APP_TOKEN=APP_TOKEN, SLACK_API_URL=api_url,
               DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'md.db'}",
               MENTIONDESK_CONFIG=str(tmp_path / "none.toml"), PORT=str(free_port()),
               HOST="127.0.0.1", PYTHONPATH=ROOT)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", env=env, cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        await emulator.socket_mode.wait_connected(timeout=60)
        response = await emulator.send_command("U0AGENT1", "help")
        assert response.status == 200
        assert "/mentions <subcommand>" in response.json()["text"]
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(25):
            code = await process.wait()
        assert code == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await emulator.stop()
    _, stderr = await process.communicate()
    assert APP_TOKEN not in stderr.decode() and BOT_TOKEN not in stderr.decode()
