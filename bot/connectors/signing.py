"""HMAC-SHA256 signatures for generic webhooks, both directions (`X-Mentiondesk-Signature`).

The signature covers the exact bytes on the wire, so verify before parsing, and never
re-serialise a body between signing and sending.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from slack_sdk.signature import SignatureVerifier

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


def slack_request_ok(signing_secret: str, body: bytes, headers: Mapping[str, str]) -> bool:
    """Slack's `v0` signature over the raw bytes, stamped within five minutes of now.

    slack_sdk's verifier does the HMAC and the window; hostile headers it would choke on
    (a timestamp that is not a number, a non-ASCII signature, a body that is not UTF-8) are
    refused here first, so a forged request is a clean `False`, never a server error.
    """
    if not signing_secret.strip():
        return False
    lowered = {k.lower(): v for k, v in headers.items()}
    stamp = lowered.get("x-slack-request-timestamp", "")
    signature = lowered.get("x-slack-signature", "")
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
        return False
    if not signature.isascii() or not signature.startswith("v0="):
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return SignatureVerifier(signing_secret).is_valid(body, stamp, signature)
