"""Make text written by strangers on the internet safe to show in Slack.

Mentions are written by anyone. Shown raw in a mrkdwn field, `<!channel>` would ping the
whole channel, `<http://evil|bank.com>` would disguise a link, and a right-to-left override
would make `gpj.exe` read as `exe.jpg`. Everything user-written passes through here first.

Plain `@channel`, `@here` and `@everyone` words are left as they are on purpose: Slack only
turns them into notifications when a message is sent with `link_names=true` or `parse=full`.
The bot never sets either, so the only working form is the `<!channel>` syntax, which the
escaping below makes inert. Changing the words would corrupt the customer's text on the card.
"""

from __future__ import annotations

import regex

ELLIPSIS = "…"

_GRAPHEME = regex.compile(r"\X")
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
_KEPT_CONTROLS = frozenset("\n\t")
_MRKDWN_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def _is_dropped_control(char: str) -> bool:
    code = ord(char)
    return (code < 0x20 and char not in _KEPT_CONTROLS) or 0x7F <= code <= 0x9F


def _reveal(char: str) -> str:
    return f"⟦U+{ord(char):04X}⟧"


def clean_controls(text: str) -> str:
    """Drop C0/C1 control characters (not newline or tab) and show bidi controls as `⟦U+202E⟧`.

    `\\r\\n` becomes `\\n` so Windows line endings do not vanish into one line.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    out: list[str] = []
    for char in text:
        if char in _BIDI_CONTROLS:
            out.append(_reveal(char))
        elif not _is_dropped_control(char):
            out.append(char)
    return "".join(out)


def escape_mrkdwn(text: str) -> str:
    """User text ready for a mrkdwn field: Slack's `&`, `<`, `>` escaping plus `clean_controls`."""
    return "".join(_MRKDWN_ESCAPES.get(char, char) for char in clean_controls(text))


def graphemes(text: str) -> list[str]:
    return _GRAPHEME.findall(text)


def truncate_graphemes(text: str, limit: int, ellipsis: str = ELLIPSIS) -> str:
    """Cut `text` to at most `limit` code points without splitting a grapheme cluster.

    Slack counts code points; cutting inside a cluster would leave half a flag or a
    skin tone without its hand.
    """
    if limit < 0:
        raise ValueError("limit must not be negative")
    if len(text) <= limit:
        return text
    if len(ellipsis) > limit:
        ellipsis = ""
    budget = limit - len(ellipsis)
    kept: list[str] = []
    used = 0
    for cluster in graphemes(text):
        if used + len(cluster) > budget:
            break
        kept.append(cluster)
        used += len(cluster)
    return "".join(kept).rstrip() + ellipsis


def safe_plain(text: str, limit: int | None = None) -> str:
    """Text for a `plain_text` object: no mrkdwn is parsed there, so only controls are cleaned."""
    cleaned = clean_controls(text)
    return cleaned if limit is None else truncate_graphemes(cleaned, limit)


def escape_and_truncate(text: str, limit: int, ellipsis: str = ELLIPSIS) -> str:
    """Escape for mrkdwn and fit within `limit` after escaping (escapes make text longer)."""
    return _fit(clean_controls(text), limit, ellipsis, line_prefix="")


def quote_block(text: str, limit: int, ellipsis: str = ELLIPSIS) -> str:
    """User text as a mrkdwn blockquote: every line starts with `>`; escaped; at most `limit`."""
    return _fit(clean_controls(text), limit, ellipsis, line_prefix=">")


def _fit(text: str, limit: int, ellipsis: str, *, line_prefix: str) -> str:
    if limit < 0:
        raise ValueError("limit must not be negative")
    pieces = [_render_cluster(cluster, line_prefix) for cluster in graphemes(text)]
    start = line_prefix
    if len(start) + sum(map(len, pieces)) <= limit:
        return start + "".join(pieces)
    if len(start) + len(ellipsis) > limit:
        return ""
    budget = limit - len(start) - len(ellipsis)
    kept: list[str] = []
    used = 0
    for piece in pieces:
        if used + len(piece) > budget:
            break
        kept.append(piece)
        used += len(piece)
    body = "".join(kept).rstrip()
    if line_prefix and body.endswith("\n" + line_prefix):
        body = body[: -len(line_prefix) - 1]
    return start + body + ellipsis


def _render_cluster(cluster: str, line_prefix: str) -> str:
    escaped = "".join(_MRKDWN_ESCAPES.get(char, char) for char in cluster)
    if line_prefix and escaped == "\n":
        return "\n" + line_prefix
    return escaped
