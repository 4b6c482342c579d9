"""HTML post bodies (Mastodon, forums) turned into the plain text an agent reads in Slack.

Links keep their real target (the visible text is often truncated with an ellipsis),
mention and hashtag links keep their visible `@user` / `#tag`, and block elements become
newlines. Unknown tags vanish but their text stays; scripts and styles vanish whole.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

_BLOCKS = frozenset({"p", "div", "blockquote", "li", "ul", "ol", "pre", "h1", "h2", "h3",
                     "h4", "h5", "h6", "tr", "table"})
_DROPPED = frozenset({"script", "style", "template"})
_SPACES = re.compile(r"[ \t\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._link: dict[str, str] | None = None
        self._link_text: list[str] = []
        self._dropped = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROPPED:
            self._dropped += 1
        elif tag == "br":
            self._emit("\n")
        elif tag in _BLOCKS:
            self._block_break()
        elif tag == "a" and self._link is None:
            self._link = {key: value or "" for key, value in attrs}
            self._link_text = []

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROPPED:
            self._dropped = max(0, self._dropped - 1)
        elif tag in _BLOCKS:
            self._block_break()
        elif tag == "a" and self._link is not None:
            link, text = self._link, "".join(self._link_text)
            self._link = None
            self.out.append(_render_link(link, text))

    def handle_data(self, data: str) -> None:
        if not self._dropped:
            self._emit(data)

    def _emit(self, text: str) -> None:
        (self._link_text if self._link is not None else self.out).append(text)

    def _block_break(self) -> None:
        if self._link is None and self.out and not "".join(self.out[-2:]).endswith("\n\n"):
            self.out.append("\n\n")


def _render_link(attrs: dict[str, str], text: str) -> str:
    href = attrs.get("href", "").strip()
    classes = set(attrs.get("class", "").split())
    visible = text.strip()
    if "mention" in classes and visible.startswith("@"):
        return _full_handle(visible, href)
    if "hashtag" in classes or visible.startswith("#"):
        return visible
    if href.startswith(("http://", "https://")):
        return href
    return visible or href


def _full_handle(visible: str, href: str) -> str:
    """`@ann` linking to https://social.example/@ann reads as `@ann@social.example`."""
    if visible.count("@") > 1:
        return visible
    host = urlsplit(href).hostname
    return f"{visible}@{host}" if host else visible


def html_to_text(html: str) -> str:
    """Plain text of an HTML fragment; entities decoded, whitespace tidied."""
    collector = _Collector()
    collector.feed(html)
    collector.close()
    if collector._link is not None:
        collector.out.append("".join(collector._link_text))
    lines = [_SPACES.sub(" ", line).strip() for line in "".join(collector.out).split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
