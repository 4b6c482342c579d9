"""Slack's two-step file upload: ask for an upload URL, POST the bytes there, then complete
the upload into a channel.

The upload URL comes from Slack's answer; it is only followed when it is https on a Slack host
or on the host of the configured Web API URL (the local emulator in tests and the sandbox).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import aiohttp

from bot.connectors.base import PermanentError, TransientError
from bot.slack.notifier import SlackNotifier


def upload_url_ok(url: str, api_url: str) -> bool:
    parts, api = urlsplit(url), urlsplit(api_url)
    if parts.scheme == "https" and (parts.hostname or "").endswith(".slack.com"):
        return True
    return parts.scheme in ("http", "https") and parts.netloc == api.netloc


async def upload_file(notifier: SlackNotifier, *, api_url: str, channel: str,
                      filename: str, content: bytes, title: str,
                      initial_comment: str | None = None) -> str:
    """Upload `content` and share it in `channel`; returns the file id."""
    if not content:
        raise PermanentError("refusing to upload an empty file")
    ticket = await notifier.call("files.getUploadURLExternal", form=True, filename=filename,
                                 length=len(content))
    upload_url, file_id = str(ticket["upload_url"]), str(ticket["file_id"])
    if not upload_url_ok(upload_url, api_url):
        raise PermanentError("Slack answered with an unexpected upload URL")
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http, \
                http.post(upload_url, data=content,
                          headers={"Content-Type": "application/octet-stream"}) as response:
            if response.status >= 500:
                raise TransientError(f"file upload: HTTP {response.status}")
            if response.status >= 400:
                raise PermanentError(f"file upload: HTTP {response.status}")
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise TransientError(f"file upload: {exc.__class__.__name__}") from exc
    complete: dict[str, object] = {"files": [{"id": file_id, "title": title}],
                                   "channel_id": channel}
    if initial_comment:
        complete["initial_comment"] = initial_comment
    await notifier.call("files.completeUploadExternal", **complete)
    return file_id
