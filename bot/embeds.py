"""The only place that builds Discord embeds for papers, and the one escaper for untrusted text.

Text from arXiv (titles, authors, abstracts, comments, journal references,
categories) and from users (slash-command values) is hostile: it must never
form a link, a mention or markup. `safe()` makes any text literal; `link_text()`
does so for the visible part of a masked link, `code()` for a code span. Every
renderer, here and in the cogs, goes through them. Every field is also cut to
Discord's limits before sending (going over any limit is an HTTP 400), and
messages are sent with `allowed_mentions` none by the callers.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import datetime

import discord

from bot.domain.models import Paper

log = logging.getLogger(__name__)

# Discord's documented limits.
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FOOTER_LIMIT = 2048
AUTHOR_NAME_LIMIT = 256
EMBEDS_PER_MESSAGE = 10
EMBED_TOTAL_LIMIT = 6000
CONTENT_LIMIT = 2000

# Our own budget per alert embed, so a full message of 10 alerts stays under 6,000.
ALERT_ABSTRACT_CHARS = 300
ALERT_EMBED_BUDGET = EMBED_TOTAL_LIMIT // EMBEDS_PER_MESSAGE  # 600
LOOKUP_ABSTRACT_CHARS = 1500
ARXIV_RED = discord.Colour(0xB31B1B)


def truncate(text: str, limit: int) -> str:
    """Cut `text` to at most `limit` characters, ending with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    if limit <= 1:
        return "…"[:limit]
    cut = text[: limit - 1]
    # Don't leave a dangling escape backslash that would swallow the ellipsis.
    while cut.endswith("\\"):
        cut = cut[:-1]
    space = cut.rfind(" ", max(0, limit - 40))
    if space > 0:
        cut = cut[:space]
    return cut.rstrip() + "…"


# Characters that open markdown, links, mentions or custom markup anywhere in a line:
# emphasis, spoilers, code, masked links `[..](..)`, autolinks, mention/emoji/timestamp
# syntax `<@..>` `<#..>` `<t:..>`, quotes, headers, bare `@everyone`/`@here`.
_INLINE = re.compile(r"[\\*_~|`\[\]()<>#@]|://")
# Block syntax that only counts at the start of a line (where `safe` text may land):
# lists `- ` `* ` `+ ` `1. `, subtext `-#`.
_LINE_START = re.compile(r"(\d{1,9})\.(?=\s|$)|[-+]")
_BRACKETS = str.maketrans({"[": "\uff3b", "]": "\uff3d"})


def _escape(match: re.Match[str]) -> str:
    text = match.group(0)
    if text == "@":
        return "@\u200b"  # a zero-width space: `@everyone` shows, but is no mention anywhere
    return "\\://" if text == "://" else "\\" + text


def safe(text: str) -> str:
    """Untrusted text as literal Discord markdown, on one line.

    Whitespace runs (newlines included) become one space, so nothing can start
    a line of its own; every character that could open markup, a link or a
    mention is backslash-escaped (Discord shows it as typed); `://` is escaped
    so a bare URL cannot auto-link; a list marker at the very start is escaped.
    Linear in the length of `text`.
    """
    flat = " ".join(text.split())
    escaped = _INLINE.sub(_escape, flat)
    head = _LINE_START.match(escaped)
    if head is not None:
        if head.group(1) is not None:
            escaped = f"{head.group(1)}\\.{escaped[head.end() :]}"
        else:
            escaped = "\\" + escaped
    return escaped


def link_text(text: str) -> str:
    """Untrusted text for the visible part of our own masked link `[text](url)`.

    Besides `safe`, square brackets become their full-width look-alikes: Discord's
    link rule balances brackets without honouring escapes, so an escaped `[` could
    still swallow the link's closing bracket and break it.
    """
    return safe(text.translate(_BRACKETS))


_CODE_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-]{0,39}")


def code(text: str) -> str:
    """`text` as an inline code span when it is a plain token (a category), else `safe` text.

    Backslashes do not escape inside code spans, so only plain tokens get one.
    """
    return f"`{text}`" if _CODE_SAFE.fullmatch(text) else safe(text)


def authors_line(authors: Sequence[str], limit: int = 8) -> str:
    names = list(authors[:limit])
    if len(authors) > limit:
        names.append(f"+{len(authors) - limit} more")
    return ", ".join(names)


def _day(value: datetime | None) -> str | None:
    return value.date().isoformat() if value else None


def paper_embed(
    paper: Paper, *, matched: Sequence[str] = (), abstract_chars: int = LOOKUP_ABSTRACT_CHARS
) -> discord.Embed:
    """One paper: title linked to the abs page, authors, categories, dates, abstract, PDF link."""
    embed = discord.Embed(
        title=truncate(safe(paper.title) or paper.id, TITLE_LIMIT),
        url=paper.abs_url,
        colour=ARXIV_RED,
        timestamp=paper.published,
    )
    # Author names and footers are plain text in Discord (no markdown, no links).
    embed.set_author(
        name=truncate(
            " ".join(authors_line(paper.authors).split()) or "Unknown authors", AUTHOR_NAME_LIMIT
        )
    )
    abstract = truncate(safe(paper.abstract), abstract_chars)
    links = f"[abs]({paper.abs_url}) · [pdf]({paper.pdf_url})"
    embed.description = truncate(f"{abstract}\n\n{links}", DESCRIPTION_LIMIT)
    cats = " ".join(code(c) for c in paper.categories[:12])
    embed.add_field(
        name="Categories", value=truncate(cats or code(paper.primary_category), 200), inline=True
    )
    dates = _day(paper.published) or "?"
    if paper.updated and _day(paper.updated) != _day(paper.published):
        dates += f" (v{paper.version} {_day(paper.updated)})"
    embed.add_field(
        name="arXiv", value=truncate(f"{safe(paper.versioned_id)} · {dates}", 200), inline=True
    )
    if paper.comment:
        embed.add_field(name="Comment", value=truncate(safe(paper.comment), 300), inline=False)
    if paper.journal_ref:
        embed.add_field(name="Journal", value=truncate(safe(paper.journal_ref), 200), inline=False)
    if matched:
        embed.set_footer(text=truncate("Matched " + "; ".join(matched), 300))
    return embed


def alert_embed(paper: Paper, matched: Sequence[str], note: str | None = None) -> discord.Embed:
    """A compact alert embed, within `ALERT_EMBED_BUDGET` characters where possible (10 a message).

    `note` (a new version, a withdrawal, a publication) leads the description in bold.
    The abstract gives way first: it is cut until the whole embed fits, and
    dropped entirely only for papers whose title and authors alone are long.
    """
    abstract_chars = ALERT_ABSTRACT_CHARS
    while True:
        embed = paper_embed(paper, matched=matched, abstract_chars=abstract_chars)
        if note:
            lead = f"**{truncate(safe(note), 200)}**"
            embed.description = truncate(f"{lead}\n{embed.description}", DESCRIPTION_LIMIT)
        # Alerts keep the essentials; comment/journal are one click away.
        for index in reversed(range(len(embed.fields))):
            if embed.fields[index].name in ("Comment", "Journal"):
                embed.remove_field(index)
        excess = len(embed) - ALERT_EMBED_BUDGET
        if excess <= 0 or abstract_chars <= 0:
            return embed
        abstract_chars = max(0, abstract_chars - excess - 1) if abstract_chars > excess else 0


DIGEST_MATCHED_CHARS = 80


def _digest_line(paper: Paper, matched: Sequence[str], *, et_al: bool) -> str:
    first = safe(paper.authors[0]) if paper.authors else "?"
    more = " et al." if et_al else ""
    line = f"• [{truncate(link_text(paper.title), 150)}]({paper.abs_url}) — {first}{more}"
    if matched:  # every alert says what matched, a digest line too
        line += f" · _{truncate(safe('; '.join(matched)), DIGEST_MATCHED_CHARS)}_"
    return line


def digest_embed(items: Sequence[tuple[Paper, Sequence[str]]], *, title: str) -> discord.Embed:
    """A compact list of papers in one embed (digest mode): one line each."""
    lines: list[str] = []
    used = 0
    for paper, matched in items:
        line = _digest_line(paper, matched, et_al=len(paper.authors) > 1)
        if used + len(line) + 1 > DESCRIPTION_LIMIT - 50:
            break
        lines.append(line)
        used += len(line) + 1
    embed = discord.Embed(title=truncate(title, TITLE_LIMIT), colour=ARXIV_RED)
    embed.description = "\n".join(lines)
    return embed


def digest_capacity(items: Sequence[tuple[Paper, Sequence[str]]]) -> int:
    """How many of `items` fit in one digest embed (the rest go in the next message)."""
    used = 0
    for count, (paper, matched) in enumerate(items):
        line = _digest_line(paper, matched, et_al=True)  # the longest the line can be
        if used + len(line) + 1 > DESCRIPTION_LIMIT - 50:
            return max(count, 1)
        used += len(line) + 1
    return len(items)


def group_embeds(embeds: Sequence[discord.Embed]) -> list[list[int]]:
    """Indices of `embeds` grouped into messages: <= 10 each and <= 6,000 characters in total."""
    groups: list[list[int]] = []
    current: list[int] = []
    size = 0
    for index, embed in enumerate(embeds):
        length = len(embed)
        if current and (len(current) == EMBEDS_PER_MESSAGE or size + length > EMBED_TOTAL_LIMIT):
            groups.append(current)
            current, size = [], 0
        current.append(index)
        size += length
    if current:
        groups.append(current)
    return groups


def paper_list_embed(
    papers: Sequence[Paper],
    *,
    title: str,
    page: int,
    intro: str | None = None,
    omit_authors: Sequence[str] = (),
) -> discord.Embed:
    """One page of a result list: per paper a linked title, then date, category and authors.

    `omit_authors` (an author page's own spellings) leaves just the co-authors.
    """
    skip = set(omit_authors)
    blocks: list[str] = [intro] if intro else []
    for paper in papers:
        others = [a for a in paper.authors if a not in skip]
        line = f"**[{truncate(link_text(paper.title) or paper.id, 150)}]({paper.abs_url})**\n"
        details = [_day(paper.published) or "?", code(paper.primary_category)]
        if others:
            prefix = "with " if skip else ""
            details.append(prefix + truncate(safe(authors_line(others, 4)), 200))
        blocks.append(line + " · ".join(details))
    embed = discord.Embed(title=truncate(title, TITLE_LIMIT), colour=ARXIV_RED)
    embed.description = truncate("\n\n".join(blocks) or "Nothing found.", DESCRIPTION_LIMIT)
    embed.set_footer(text=f"Page {page + 1}")
    return embed


def similar_embed(paper: Paper, similar: Sequence[Paper]) -> discord.Embed:
    """/similar's answer: the asked paper, linked, then the papers most like it, best first."""
    asked = f"**[{truncate(link_text(paper.title) or paper.id, 200)}]({paper.abs_url})**"
    embed = paper_list_embed(
        similar,
        title=f"Similar to arXiv:{paper.id}",
        page=0,
        intro=f"Stored papers most like {asked}:",
    )
    embed.set_footer(text="Ranked by the distinctive words of the titles and abstracts")
    return embed
