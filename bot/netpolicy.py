"""Where the bot may send HTTP requests: the outbound URL policy.

Feed, connector and reply-webhook URLs come from a config file, and a reply webhook receives
approved text signed with a secret. Pointed at `127.0.0.1`, `169.254.169.254` or an intranet
host, such a URL turns the bot into a proxy into its own network (SSRF). So outbound requests
go only to public addresses over http(s), unless the config explicitly allows private ones
(`[network] allow_private = true`, or `allow_private_url = true` on one source).

The check runs twice: `url_problem` when the configuration is read (check-config, start-up),
and again on every request, after DNS resolution, through `GuardedResolver` and
`client_middleware` on the HTTP session the connectors share: a host name that resolves to
`127.0.0.1` is refused as surely as the literal address.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import aiohttp
from aiohttp import ClientHandlerType, ClientMiddlewareType, ClientRequest, ClientResponse
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from bot.connectors.base import PermanentError

if TYPE_CHECKING:
    from bot.settings import Settings

ALLOWED_SCHEMES = frozenset({"http", "https"})
SLACK_RESPONSE_HOSTS = frozenset({"hooks.slack.com"})
# Keys of a `[[sources]]` entry that hold URLs the bot calls.
SOURCE_URL_KEYS = ("base_url", "reply_url", "url", "auth_url", "streaming_url")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class BlockedDestination(PermanentError):
    """A request to an address the policy forbids; retrying cannot help, a person must look."""


def _address(host: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_public(address: IPAddress) -> bool:
    """Routable on the internet: not loopback, private, link-local (cloud metadata),
    shared, reserved, multicast or unspecified."""
    if isinstance(address, ipaddress.IPv6Address):
        for embedded in (address.sixtofour, (address.teredo or (None, None))[1]):
            if embedded is not None and not embedded.is_global:
                return False
    return address.is_global and not address.is_multicast


@dataclass(frozen=True)
class NetPolicy:
    """What may be called. `allow_private` lifts the address rule for every host;
    `private_hosts` lifts it for the hosts of sources that opted in one by one."""

    allow_private: bool = False
    private_hosts: frozenset[str] = field(default_factory=frozenset)

    def host_may_be_private(self, host: str) -> bool:
        return self.allow_private or host.strip("[]").lower() in self.private_hosts

    def url_problem(self, url: str) -> str | None:
        """Why `url` may not be called, or None. Literal addresses are judged here; names
        are judged again when they resolve."""
        try:
            parts = urlsplit(url)
            host = parts.hostname
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError:
            return f"'{url}' is not a valid URL"
        if parts.scheme.lower() not in ALLOWED_SCHEMES:
            return f"'{url}' must use http or https"
        if not host:
            return f"'{url}' has no host"
        if parts.username or parts.password:
            return f"'{url}' must not carry credentials; use a *_env secret"
        address = _address(host)
        if address is None:
            if host.rstrip(".").lower() in ("localhost", "localhost.localdomain") or \
                    host.rstrip(".").lower().endswith(".localhost"):
                return self._private(host, url)
            return None
        if not is_public(address):
            return self._private(host, url)
        return None

    def _private(self, host: str, url: str) -> str | None:
        if self.host_may_be_private(host):
            return None
        return (f"'{url}' points at a private, loopback or link-local address; set "
                "allow_private_url = true on the source (or [network] allow_private = true) "
                "if that is intended")

    def check_resolved(self, host: str, addresses: Iterable[str]) -> None:
        """Refuse a host whose resolved addresses are not all public (unless allowed)."""
        if self.host_may_be_private(host):
            return
        for raw in addresses:
            address = _address(raw)
            if address is None or not is_public(address):
                raise BlockedDestination(
                    f"{host} resolves to a private, loopback or link-local address; "
                    "refused by the network policy")


def policy_for(allow_private: bool, sources: Sequence[object]) -> NetPolicy:
    """The policy a configuration asks for: sources with `allow_private_url = true` may use
    private addresses for their own URLs' hosts."""
    hosts: set[str] = set()
    for source in sources:
        if not _opted_in(source):
            continue
        for url in source_urls(source):
            try:
                host = urlsplit(url).hostname
            except ValueError:
                continue
            if host:
                hosts.add(host.lower())
    return NetPolicy(allow_private=allow_private, private_hosts=frozenset(hosts))


def _opted_in(source: object) -> bool:
    option = getattr(source, "option", None)
    return bool(option("allow_private_url", False)) if callable(option) else False


def source_urls(source: object) -> list[str]:
    """Every URL a `[[sources]]` entry configures (fixed fields and network options)."""
    urls: list[str] = []
    option = getattr(source, "option", None)
    for key in SOURCE_URL_KEYS:
        value = getattr(source, key, None)
        if value is None and callable(option):
            value = option(key)
        if isinstance(value, str) and value:
            urls.append(value)
    return urls


class GuardedResolver(AbstractResolver):
    """Resolves like aiohttp's default resolver, then refuses forbidden addresses, so the
    address checked is the address connected to (no DNS-rebinding gap)."""

    def __init__(self, policy: NetPolicy, inner: AbstractResolver | None = None) -> None:
        self.policy = policy
        self.inner = inner or DefaultResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        results = await self.inner.resolve(host, port, family)
        self.policy.check_resolved(host, [r["host"] for r in results])
        return results

    async def close(self) -> None:
        await self.inner.close()


def client_middleware(policy: NetPolicy) -> ClientMiddlewareType:
    """An aiohttp client middleware refusing what the resolver never sees: literal IP
    addresses (aiohttp connects to those without resolving) and non-HTTP schemes."""

    async def middleware(request: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
        problem = policy.url_problem(str(request.url))
        if problem is not None:
            raise BlockedDestination(f"refused by the network policy: {problem}")
        return await handler(request)

    return middleware



def response_url_problem(url: object, slack_api_url: str) -> str | None:
    """Slack's `response_url`s live on hooks.slack.com; the emulator's, on its own loopback
    host (allowed only when `SLACK_API_URL` points at loopback)."""
    if not isinstance(url, str) or not url:
        return None
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        return "response_url is not a valid URL"
    if parts.scheme == "https" and host in SLACK_RESPONSE_HOSTS:
        return None
    try:
        api = urlsplit(slack_api_url)
        api_host = (api.hostname or "").lower()
    except ValueError:
        api_host = ""
    api_address = _address(api_host)
    loopback_api = api_host == "localhost" or (api_address is not None
                                               and api_address.is_loopback)
    if loopback_api and host == api_host and parts.scheme in ALLOWED_SCHEMES:
        return None
    return f"response_url host '{host}' is not Slack's"


def guarded_session(settings: Settings, *, total_timeout: float = 15) -> aiohttp.ClientSession:
    """The HTTP session connectors share, with the policy applied on every request."""
    policy = policy_for(settings.file.network.allow_private, settings.file.sources)
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=total_timeout),
        connector=aiohttp.TCPConnector(resolver=GuardedResolver(policy)),
        middlewares=(client_middleware(policy),),
    )


def slack_request_problem(body: str, slack_api_url: str) -> str | None:
    """Why a (signed) Slack request carries a `response_url` we would not answer to, or None.

    Bolt's `respond()` posts to whatever `response_url` the request names; checking them
    before dispatch keeps that from becoming a way to make the bot call arbitrary hosts.
    """
    for url in _response_urls(body):
        problem = response_url_problem(url, slack_api_url)
        if problem is not None:
            return problem
    return None


def _response_urls(body: str) -> list[object]:
    form = parse_qs(body, keep_blank_values=True) if not body.lstrip().startswith("{") else {}
    urls: list[object] = list(form.get("response_url", []))
    for raw in form.get("payload", []):
        try:
            payload = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(payload, dict):
            continue
        urls.append(payload.get("response_url"))
        for entry in payload.get("response_urls") or []:
            if isinstance(entry, dict):
                urls.append(entry.get("response_url"))
    return urls
