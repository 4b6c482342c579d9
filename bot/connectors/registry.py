"""Which module builds and checks each network kind of `[[sources]]` entry."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import ModuleType

import aiohttp

from bot.connectors import bluesky, hackernews, mastodon, meta, reddit, rss, x
from bot.connectors.base import Connector, PermanentError
from bot.domain.mention import SourceKind
from bot.settings import SourceConfig

NETWORK_MODULES: dict[SourceKind, ModuleType] = {
    SourceKind.X: x,
    SourceKind.MASTODON: mastodon,
    SourceKind.BLUESKY: bluesky,
    SourceKind.REDDIT: reddit,
    SourceKind.RSS: rss,
    SourceKind.HACKERNEWS: hackernews,
    SourceKind.META: meta,
}


def build_network_connector(
    source: SourceConfig, session: aiohttp.ClientSession, env: Mapping[str, str]
) -> Connector:
    """Build the connector of a network source; `PermanentError` lists what is missing."""
    module = NETWORK_MODULES.get(source.kind)
    if module is None:
        raise PermanentError(f"source '{source.name}': kind {source.kind.value!r} has no "
                             "network connector")
    build: Callable[..., Connector] = module.build
    try:
        return build(source, session, env)
    except (ValueError, TypeError) as exc:
        raise PermanentError(f"source '{source.name}': {exc}") from None


def network_config_problems(source: SourceConfig, env: Mapping[str, str]) -> list[str]:
    """What keeps a network source from working, one sentence each (empty for other kinds)."""
    module = NETWORK_MODULES.get(source.kind)
    if module is None:
        return []
    problems: list[str] = module.config_problems(source, env)
    return problems
