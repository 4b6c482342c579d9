"""Outbound URL policy: private, loopback, link-local and metadata addresses are refused unless
the config allows them, both when the config is read and when a request is made."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from pydantic import SecretStr

from bot.checks import check_config
from bot.connectors.base import ReplyRequest
from bot.connectors.generic import GenericConnector
from bot.domain.mention import Author, Mention
from bot.netpolicy import (
    BlockedDestination,
    GuardedResolver,
    NetPolicy,
    client_middleware,
    guarded_session,
    policy_for,
    response_url_problem,
)
from bot.settings import Environment, FileConfig, NetworkConfig, Settings, SourceConfig
from tests.loopback import serving

REFUSED = [
    "http://127.0.0.1/feed",
    "http://127.8.9.10:8080/",
    "http://localhost/x",
    "http://api.localhost/x",
    "http://[::1]/x",
    "http://0.0.0.0/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/",
    "http://[fd12:3456::1]/",
    "http://[fe80::1]/",
    "http://10.0.0.5/",
    "http://172.16.3.4/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[2002:7f00:1::]/",  # 6to4 wrapping 127.0.0.1
    "http://224.0.0.1/",
    "file:///etc/passwd",
    "gopher://example.com/",
    "ftp://example.com/",
    "javascript:alert(1)",
    "http://user:pass@example.com/",
    "http:///nohost",
    "http://example.com:99999/",
]
ALLOWED = [
    "https://mastodon.example/api",
    "https://93.184.216.34/",
    "http://[2606:4700::1111]/",
    "https://hooks.example.org:8443/replies",
]


@pytest.mark.parametrize("url", REFUSED)
def test_refused_by_default(url: str) -> None:
    assert NetPolicy().url_problem(url) is not None


@pytest.mark.parametrize("url", ALLOWED)
def test_public_http_urls_pass(url: str) -> None:
    assert NetPolicy().url_problem(url) is None


def test_allow_private_lifts_only_the_address_rule() -> None:
    policy = NetPolicy(allow_private=True)
    assert policy.url_problem("http://127.0.0.1:8099/replies") is None
    assert policy.url_problem("file:///etc/passwd") is not None


def test_per_source_opt_in_covers_that_source_hosts_only() -> None:
    sources = [
        SourceConfig(name="web", kind="generic", secret_env="S",
                     reply_url="http://127.0.0.1:8099/r", allow_private_url=True),
        SourceConfig(name="feed", kind="rss", base_url="http://10.0.0.9/feed"),
    ]
    policy = policy_for(False, sources)
    assert policy.url_problem("http://127.0.0.1:8099/r") is None
    assert policy.url_problem("http://10.0.0.9/feed") is not None


def _settings(**file: object) -> Settings:
    return Settings(env=Environment(slack_bot_token=SecretStr("xoxb-1"),
                                    slack_signing_secret=SecretStr("s")),
                    file=FileConfig(**file), secrets={"S": "x", "T": "y"})


def test_check_config_reports_private_urls_and_accepts_opt_in() -> None:
    sources = [
        SourceConfig(name="web", kind="generic", secret_env="S",
                     reply_url="http://169.254.169.254/latest"),
        SourceConfig(name="feed", kind="rss", base_url="http://localhost:9/feed.xml"),
        SourceConfig(name="ok", kind="rss", base_url="https://blog.example/feed.xml"),
    ]
    problems = [p for p in check_config(_settings(sources=sources)) if "private" in p]
    assert len(problems) == 2, problems
    assert "sources[0] (web)" in problems[0] and "169.254.169.254" in problems[0]
    assert "sources[1] (feed)" in problems[1]
    allowed = check_config(_settings(sources=sources, network=NetworkConfig(allow_private=True)))
    assert [p for p in allowed if "private" in p] == []


def test_response_url_allow_list() -> None:
    slack = "https://slack.com/api/"
    assert response_url_problem("https://hooks.slack.com/commands/T1/2/x", slack) is None
    assert response_url_problem("https://evil.example/hook", slack) is not None
    assert response_url_problem("http://hooks.slack.com/commands/x", slack) is not None
    assert response_url_problem("http://127.0.0.1:5000/response/x", slack) is not None
    emulator = "http://127.0.0.1:5000/api/"
    assert response_url_problem("http://127.0.0.1:5000/response/x", emulator) is None
    assert response_url_problem("http://169.254.169.254/x", emulator) is not None


class MapResolver(AbstractResolver):
    """Answers from a fixed table, as a DNS server under an attacker's control would."""

    def __init__(self, table: dict[str, str]) -> None:
        self.table = table

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        return [{"hostname": host, "host": self.table[host], "port": port,
                 "family": socket.AF_INET, "proto": 0, "flags": 0}]

    async def close(self) -> None:
        return None


@pytest.fixture
async def loopback_server() -> AsyncIterator[tuple[str, list[str]]]:
    hits: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.json_response({"id": "1"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    async with serving(app) as base:
        yield base.removeprefix("http://"), hits


async def test_name_resolving_to_loopback_is_refused_at_request_time(
    loopback_server: tuple[str, list[str]],
) -> None:
    address, hits = loopback_server
    port = int(address.split(":")[1])
    policy = NetPolicy()
    resolver = GuardedResolver(policy, inner=MapResolver({"rebind.example": "127.0.0.1"}))
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(resolver=resolver),
        middlewares=(client_middleware(policy),),
    ) as session:
        assert policy.url_problem(f"http://rebind.example:{port}/") is None  # looks public
        with pytest.raises(BlockedDestination, match="resolves to a private"):
            await session.get(f"http://rebind.example:{port}/")
        with pytest.raises(BlockedDestination, match="private, loopback"):
            await session.get(f"http://{address}/direct")
    assert hits == []


async def test_opted_in_name_may_resolve_privately(loopback_server: tuple[str, list[str]]
                                                   ) -> None:
    address, hits = loopback_server
    port = int(address.split(":")[1])
    policy = NetPolicy(private_hosts=frozenset({"sink.internal"}))
    resolver = GuardedResolver(policy, inner=MapResolver({"sink.internal": "127.0.0.1"}))
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(resolver=resolver),
        middlewares=(client_middleware(policy),),
    ) as session, session.get(f"http://sink.internal:{port}/ok") as response:
        assert response.status == 200
    assert hits == ["/ok"]


def _mention() -> Mention:
    from datetime import UTC, datetime

    return Mention(source="forum", external_id="1", url="https://forum.example/t/1",
                   author=Author(handle="@ann"), text="hi",
                   created_at=datetime(2026, 1, 1, tzinfo=UTC))


async def test_reply_webhook_to_loopback_is_a_permanent_refusal(
    loopback_server: tuple[str, list[str]],
) -> None:
    """The session wiring builds: without the opt-in, a reply to loopback never leaves."""
    address, hits = loopback_server
    url = f"http://{address}/replies"
    source = SourceConfig(name="web", kind="generic", secret_env="S", reply_url=url)
    settings = _settings(sources=[source])
    session = guarded_session(settings)
    try:
        connector = GenericConnector("web", session=session, reply_url=url, secret=b"k")
        with pytest.raises(BlockedDestination):
            await connector.post_reply(ReplyRequest(case_id=1, mention=_mention(), text="t",
                                                    idempotency_key="k1"))
    finally:
        await session.close()
    opted = _settings(sources=[source],
                      network=NetworkConfig(allow_private=True))
    session = guarded_session(opted)
    try:
        connector = GenericConnector("web", session=session, reply_url=url, secret=b"k")
        posted = await connector.post_reply(ReplyRequest(case_id=1, mention=_mention(),
                                                         text="t", idempotency_key="k1"))
        assert posted.external_id == "1"
    finally:
        await session.close()
    assert hits == ["/replies"]
