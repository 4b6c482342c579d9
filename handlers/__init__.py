"""Thin Bolt listeners. `register` attaches them all to an AsyncApp."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from handlers import actions, commands, groups, home, replies, views
from handlers.deps import Deps


def register(app: AsyncApp, deps: Deps) -> None:
    actions.register(app, deps)
    views.register(app, deps)
    commands.register(app, deps)
    replies.register(app, deps)
    home.register(app, deps)
    groups.register(app, deps)
