"""Load generation and Slack-signed request bodies.

Open loop: requests leave on a fixed schedule whatever the server does, and latency is measured
from the *scheduled* send time, so a stalled server shows up as latency instead of silently
slowing the generator down (coordinated omission). Closed loop: N connections, each sending
its next request as soon as the previous one is answered (a throughput ceiling).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.signature import SignatureVerifier

from bench.core import percentile
from bot.connectors.signing import sign as sign_webhook
from bot.sandbox.emulator import SlackEmulator
from bot.sandbox.payloads import event_envelope

Send = Callable[[int], Awaitable[int]]


@dataclass(frozen=True, slots=True)
class Sample:
    index: int
    scheduled: float  # perf_counter
    done: float
    status: int
    error: str | None = None
    started: float = 0.0  # when the generator actually began the request

    @property
    def latency(self) -> float:
        return self.done - self.scheduled

    @property
    def ok(self) -> bool:
        return self.error is None and 200 <= self.status < 300


@dataclass(frozen=True, slots=True)
class Latencies:
    """Summary of one open-loop run, in milliseconds."""

    sent: int
    ok: int
    p50: float
    p99: float
    p999: float
    max: float
    over_3s: int
    achieved_rate: float
    """Requests per second the generator actually started (should equal the target rate)."""
    lag_p99: float
    """How late the generator itself started requests, p99 in ms (its own health)."""

    @classmethod
    def of(cls, samples: list[Sample], elapsed: float) -> Latencies:
        ms = [s.latency * 1000 for s in samples]
        return cls(
            sent=len(samples), ok=sum(s.ok for s in samples),
            p50=percentile(ms, 50), p99=percentile(ms, 99), p999=percentile(ms, 99.9),
            max=max(ms) if ms else float("nan"),
            over_3s=sum(1 for s in samples if not s.ok or s.latency > 3.0),
            achieved_rate=_start_rate(samples),
            lag_p99=percentile([(s.started - s.scheduled) * 1000 for s in samples], 99),
        )


def _start_rate(samples: list[Sample]) -> float:
    if len(samples) < 2:
        return 0.0
    first = min(s.scheduled for s in samples)
    last = max(s.started for s in samples)
    return (len(samples) - 1) / (last - first) if last > first else 0.0


def wall_of(perf: float) -> float:
    """Convert a perf_counter reading to wall-clock seconds (for the emulator's timestamps)."""
    return time.time() - (time.perf_counter() - perf)


async def open_loop(rate: float, duration: float, send: Send, *,
                    timeout: float = 10.0) -> tuple[list[Sample], float]:  # noqa: ASYNC109
    """Send `rate` requests per second for `duration` seconds on a fixed schedule."""
    count = max(1, int(rate * duration))
    samples: list[Sample] = []
    start = time.perf_counter() + 0.05

    async def one(index: int, scheduled: float) -> None:
        started = time.perf_counter()
        try:
            status = await asyncio.wait_for(send(index), timeout)
            samples.append(Sample(index, scheduled, time.perf_counter(), status,
                                  started=started))
        except Exception as exc:  # a failed request is a sample, not a crash
            samples.append(Sample(index, scheduled, time.perf_counter(), 0,
                                  exc.__class__.__name__, started=started))

    tasks = []
    for index in range(count):
        scheduled = start + index / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(index, scheduled)))
    await asyncio.gather(*tasks)
    return samples, time.perf_counter() - start


@dataclass(frozen=True, slots=True)
class Throughput:
    completed: int
    failed: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.completed / self.seconds if self.seconds > 0 else 0.0


async def closed_loop(connections: int, duration: float, send: Send) -> Throughput:
    """`connections` workers, each with one request in flight, for `duration` seconds."""
    counter = iter(range(10**9))
    completed = failed = 0
    start = time.perf_counter()
    end = start + duration

    async def worker() -> None:
        nonlocal completed, failed
        while time.perf_counter() < end:
            try:
                status = await send(next(counter))
            except (aiohttp.ClientError, OSError, TimeoutError):
                status = 0
            if 200 <= status < 300:
                completed += 1
            else:
                failed += 1

    await asyncio.gather(*(worker() for _ in range(connections)))
    return Throughput(completed, failed, time.perf_counter() - start)


def client(connections: int = 512) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections, force_close=False),
        timeout=aiohttp.ClientTimeout(total=30))


class SlackSigner:
    """Signs bodies the way Slack does, with slack_sdk's own implementation of the scheme."""

    def __init__(self, secret: str) -> None:
        self.verifier = SignatureVerifier(secret)

    def headers(self, body: bytes, content_type: str) -> dict[str, str]:
        stamp = str(int(time.time()))
        signature = self.verifier.generate_signature(timestamp=stamp, body=body)
        return {"Content-Type": content_type, "X-Slack-Request-Timestamp": stamp,
                "X-Slack-Signature": signature or "", "User-Agent": "Slackbot 1.0"}


def home_opened_event(emulator: SlackEmulator, tag: str, index: int) -> bytes:
    """An Events API `app_home_opened` callback (the event the app subscribes to in its
    manifest) with a unique event id, so it is never taken for a retry."""
    ws = emulator.workspace
    users = sorted(u.id for u in ws.users.values() if not u.is_bot)
    user = users[index % len(users)]
    now = int(time.time())
    event = {"type": "app_home_opened", "user": user, "channel": ws.dm_channel(user).id,
             "tab": "home", "event_ts": f"{now}.{index:06d}"}
    envelope = event_envelope(ws, event, token=emulator.verification_token,
                              event_id=f"Ev{tag}{index:08d}", event_time=now)
    return json.dumps(envelope).encode()


def post_signed(http: aiohttp.ClientSession, url: str, signer: SlackSigner,
                body_for: Callable[[int], bytes]) -> Send:
    """A `send` that posts body `i`, signed at send time, and returns the status."""

    async def send(index: int) -> int:
        body = body_for(index)
        async with http.post(url, data=body,
                             headers=signer.headers(body, "application/json")) as response:
            await response.read()
            return response.status

    return send


WORDS = (
    "order", "delivery", "parcel", "refund", "invoice", "account", "password", "login",
    "app", "update", "battery", "screen", "charger", "cable", "store", "branch", "manager",
    "support", "agent", "chat", "phone", "call", "email", "website", "checkout", "basket",
    "coupon", "discount", "price", "subscription", "plan", "upgrade", "downgrade", "cancel",
    "renew", "shipping", "tracking", "courier", "address", "warehouse", "return",
    "exchange", "size", "colour", "broken", "missing", "late", "early", "wrong", "damaged",
    "cold", "warm", "quick", "slow", "friendly", "rude", "helpful", "useless", "amazing",
    "awful", "great", "terrible", "lovely", "weird", "confusing", "simple", "today",
    "yesterday", "tomorrow", "morning", "evening", "weekend", "monday", "friday", "again",
    "still", "never", "always", "finally", "already", "please", "thanks", "hello", "why",
    "how", "when", "where", "who", "which", "seriously", "honestly", "really", "totally",
    "absolutely", "maybe",
)


def sentence(index: int, words: int = 14) -> str:
    """A different, English-looking complaint per index, so triage does not group them."""
    rng = random.Random(index)
    return " ".join(rng.choice(WORDS) for _ in range(words))


def mention(tag: str, index: int, *, text: str | None = None, lane: int = 0,
            **extra: Any) -> dict[str, Any]:
    """One mention in the generic webhook format; the text carries a findable token and is
    different from every other mention's."""
    seed = f"{tag}:{index}".encode()
    return {
        "source": "bench", "external_id": f"{tag}-{index}",
        "url": f"https://forum.example/t/{tag}/{index}",
        "author": {"handle": f"@user{index % 997}", "name": f"User {index % 997}",
                   "followers": (index * 37) % 5000, "verified": index % 50 == 0},
        "text": text or f"@acme {sentence(zlib.crc32(seed))} {token(tag, index)}"
                        + (f" lane{lane}" if lane else ""),
        "created_at": "2026-11-22T08:15:00Z", "lang": "en", **extra,
    }


def token(tag: str, index: int) -> str:
    return f"bench{tag}x{index}x"


async def post_webhook(http: aiohttp.ClientSession, url: str, secret: str,
                       payload: Any) -> int:
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json",
               "X-Mentiondesk-Signature": sign_webhook(secret.encode(), body)}
    async with http.post(url, data=body, headers=headers) as response:
        await response.read()
        return response.status
