"""Finding things inside Block Kit JSON the way Slack's client does."""

from __future__ import annotations

import copy
import secrets
from collections.abc import Iterator, Mapping
from typing import Any


def fill_ids(blocks: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """Slack gives every block a block_id and every element an action_id when the app
    leaves them out; the emulator does the same so clicks can name them."""
    if blocks is None:
        return None
    filled = copy.deepcopy(blocks)
    for block in filled:
        if not isinstance(block, dict):
            continue
        block.setdefault("block_id", secrets.token_urlsafe(4))
        for element in elements(block):
            if element.get("type") not in ("image", None):
                element.setdefault("action_id", secrets.token_urlsafe(4))
    return filled


def elements(block: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The interactive elements of one block (accessory, input element, actions)."""
    for key in ("accessory", "element"):
        if isinstance(block.get(key), dict):
            yield block[key]
    if block.get("type") == "actions":
        yield from (e for e in block.get("elements") or [] if isinstance(e, dict))


def find_element(blocks: list[dict[str, Any]], action_id: str,
                 block_id: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The (block, element) an action_id belongs to; a test naming a missing one is a bug."""
    for block in blocks:
        if block_id is not None and block.get("block_id") != block_id:
            continue
        for element in elements(block):
            if element.get("action_id") == action_id:
                return block, element
    where = f" in block {block_id!r}" if block_id else ""
    raise LookupError(f"no element with action_id {action_id!r}{where}")
