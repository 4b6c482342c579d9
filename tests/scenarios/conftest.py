"""Fixtures the scenario tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.connectors.fakes.meta import FakeGraph


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraph]:
    """A local Graph API (Facebook and Instagram) for the Meta source."""
    server = FakeGraph()
    await server.start()
    yield server
    await server.close()
