"""A model of how Discord renders markdown in message content and embed text, for tests.

`render(text)` walks the text the way Discord's parser does (left to right,
a backslash before punctuation makes it literal) and reports what would render
as something other than text: masked links and their targets, `<...>`
autolinks, bare URLs that auto-link, mentions, emoji/timestamp/command syntax,
block markup at a line start (headers, subtext, lists, quotes, code fences),
and each unescaped inline markup character. Link rules follow simple-markdown,
the parser Discord's client builds on, including its bracket balancing, which
ignores escapes inside link text.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

_ESCAPABLE = re.compile(r"\\([^0-9A-Za-z\s])")
# simple-markdown's `link` rule (inside, then href and an optional title).
_LINK = re.compile(
    r"\[((?:\[[^\]]*\]|[^\[\]]|\](?=[^\[]*\]))*)\]"
    r"\(\s*<?((?:\([^)]*\)|[^\s\\]|\\.)*?)>?(?:\s+['\"]([\s\S]*?)['\"])?\s*\)"
)
_AUTOLINK = re.compile(r"<([^: >]+:/[^ >]+)>")
_URL = re.compile(r"(?:https?|steam|discord)://[^\s<]+[^<.,:;\"')\]\s]")
_ANGLE = re.compile(r"<(?:@[!&]?\d+|#\d+|a?:\w+:\d+|t:-?\d+(?::[tTdDfFR])?|/[^>\s]+:\d+|id:\w+)>")
_EVERYONE = re.compile(r"@(?:everyone|here)\b")
_BLOCK = re.compile(r"(?:#{1,3}\s|-#\s|[-*+]\s|\d{1,9}\.\s|>{1,3}\s|```)")
_INLINE = "*_~|`"


@dataclass
class Rendered:
    links: list[tuple[str, str]] = field(default_factory=list)  # (visible text, target)
    mentions: list[str] = field(default_factory=list)
    blocks: list[str] = field(default_factory=list)
    inline: Counter[str] = field(default_factory=Counter)

    def targets(self) -> set[str]:
        return {target for _text, target in self.links}


def render(text: str, into: Rendered | None = None) -> Rendered:
    out = into if into is not None else Rendered()
    i, n = 0, len(text)
    line_start = True
    while i < n:
        if line_start:
            stripped = len(text) - len(text[i:].lstrip(" \t"))
            block = _BLOCK.match(text, stripped)
            if block is not None:
                out.blocks.append(block.group(0))
        line_start = False
        char = text[i]
        if char == "\\" and _ESCAPABLE.match(text, i):
            i += 2
            continue
        if char == "\n":
            line_start = True
            i += 1
            continue
        if char == "[" and (link := _LINK.match(text, i)) is not None:
            out.links.append((link.group(1), link.group(2)))
            render(link.group(1), out)  # the visible text renders markdown too
            i = link.end()
            continue
        if char == "<":
            angle = _ANGLE.match(text, i)
            if angle is not None:
                out.mentions.append(angle.group(0))
                i = angle.end()
                continue
            auto = _AUTOLINK.match(text, i)
            if auto is not None:
                out.links.append((auto.group(1), auto.group(1)))
                i = auto.end()
                continue
        if char == "@" and (everyone := _EVERYONE.match(text, i)) is not None:
            out.mentions.append(everyone.group(0))
            i = everyone.end()
            continue
        if char.isalpha() and (url := _URL.match(text, i)) is not None:
            out.links.append((url.group(0), url.group(0)))
            i = url.end()
            continue
        if char in _INLINE:
            out.inline[char] += 1
        i += 1
    return out
