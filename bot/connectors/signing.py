"""HMAC-SHA256 signatures for generic webhooks, both directions (`X-Mentiondesk-Signature`).

The signature covers the exact bytes on the wire, so verify before parsing, and never
re-serialise a body between signing and sending.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Mentiondesk-Signature"
_PREFIX = "sha256="


def sign(secret: bytes, body: bytes) -> str:
    """`sha256=<hex>` of `body` keyed with `secret`."""
    return _PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, header_value: str | None) -> bool:
    """Whether `header_value` signs `body`; an empty secret never verifies (it proves nothing)."""
    if not secret or not header_value:
        return False
    candidate = header_value.strip()
    if candidate[: len(_PREFIX)].lower() != _PREFIX:
        return False
    expected = sign(secret, body)
    provided = _PREFIX + candidate[len(_PREFIX) :].lower()
    return hmac.compare_digest(expected.encode("ascii"), provided.encode("utf-8", "replace"))
