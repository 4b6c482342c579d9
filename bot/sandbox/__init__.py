"""A local Slack for tests and the try-it-without-Slack sandbox."""

from __future__ import annotations

from bot.sandbox.client import BotResponse, Signing, sign
from bot.sandbox.emulator import ApiCall, SlackEmulator
from bot.sandbox.state import (
    Channel,
    Ephemeral,
    ResponseUrlPost,
    StoredMessage,
    StoredView,
    UploadedFile,
    User,
)

__all__ = [
    "ApiCall",
    "BotResponse",
    "Channel",
    "Ephemeral",
    "ResponseUrlPost",
    "Signing",
    "SlackEmulator",
    "StoredMessage",
    "StoredView",
    "UploadedFile",
    "User",
    "sign",
]
