"""Text and field normalisation shared by every arXiv parser (feeds, OAI-PMH, snapshots).

Titles, abstracts and the other free-text fields have line breaks and runs of
whitespace collapsed; author names lose their parenthesised affiliations, and
TeX accents (`Del\\'etang`, `Przemys{\\l}aw`, which the RSS feeds and OAI
metadata carry) become Unicode, so a name reads the same whichever feed it
came from. Feed text is a stranger's: every cleaner here runs in linear time
(no regex that can backtrack over a long run, no loop that rescans the text).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Any

from bot.domain.ids import ArxivId, parse_arxiv_id_or_none
from bot.domain.models import AnnounceType

# ---- text helpers ---------------------------------------------------------------------------


def _clean(text: str | None) -> str:
    return " ".join(text.split()) if text else ""


def _optional(text: Any) -> str | None:
    if not isinstance(text, str):
        return None
    cleaned = " ".join(text.split())
    return cleaned or None


_COMBINING_ACCENTS = {
    "'": "\u0301", "`": "\u0300", "^": "\u0302", '"': "\u0308", "~": "\u0303", "=": "\u0304",
    ".": "\u0307", "u": "\u0306", "v": "\u030c", "H": "\u030b", "c": "\u0327", "k": "\u0328",
    "r": "\u030a", "d": "\u0323", "b": "\u0331",
}  # fmt: skip
_TEX_LETTERS = {
    "ss": "ß", "aa": "å", "AA": "Å", "ae": "æ", "AE": "Æ", "oe": "œ", "OE": "Œ",
    "o": "ø", "O": "Ø", "l": "ł", "L": "Ł", "i": "ı", "j": "ȷ",
    "dh": "ð", "DH": "Ð", "th": "þ", "TH": "Þ", "dj": "đ", "DJ": "Đ", "ng": "ŋ", "NG": "Ŋ",
}  # fmt: skip
# \'e \'{e} {\'e} \'{\i} \"o ; the lettered accents (\v, \c, ...) need a brace
# or a space before their base letter: `\v{c}`, `\c c`.
_TEX_ACCENT = re.compile(
    r"""\\(?:([`'^"~=.])|([uvHckrdb])(?=[\s{]))\s*(?:\{\s*(\\[ij]|[A-Za-z])\s*\}|(\\[ij]|[A-Za-z]))"""
)
# \l \o \ss \aa ... as whole control words; TeX swallows one space after them.
# `\dh` is matched even when glued to the next word: arXiv's metadata has
# `Gu\dhmundur`, and no TeX command a name would use starts with it.
_TEX_LETTER = re.compile(
    r"\\(?:(dh|DH)|(ss|aa|AA|ae|AE|oe|OE|th|TH|dj|DJ|ng|NG|o|O|l|L|i|j)(?![A-Za-z]))"
    r"(?:\{\}|\s(?=[A-Za-z]))?"
)


def _accent(match: re.Match[str]) -> str:
    mark = _COMBINING_ACCENTS[match[1] or match[2]]
    base = match[3] or match[4]
    if base.startswith("\\"):  # \'\i: the accent replaces the dot
        base = base[1:]
    return unicodedata.normalize("NFC", base + mark)


def tex_accents_to_unicode(text: str) -> str:
    """`Del\\'etang` -> `Delétang`, `Przemys{\\l}aw` -> `Przemysław`, grouping braces dropped.

    Text without a backslash is returned unchanged; unknown macros are kept.
    """
    if "\\" not in text:
        return text
    text = _TEX_ACCENT.sub(_accent, text)
    text = _TEX_LETTER.sub(lambda m: _TEX_LETTERS[m[1] or m[2]], text)
    return unicodedata.normalize("NFC", text.replace("{", "").replace("}", ""))


_PAREN_RUN = re.compile(r"\(+|\)+")
# " and " separates authors ("A, B and C") except inside a group's own name.
_GROUP_WORDS = ("collaboration", "consortium", "team", "group", "project", "survey", "network")


def clean_author_name(name: str) -> str:
    """Strip an affiliation in parentheses, TeX accents and extra whitespace from one name."""
    if "(" in name:
        name = _strip_parenthesised(name)
    if "\\" in name or "{" in name:
        name = tex_accents_to_unicode(name).replace("{", "").replace("}", "")
    return " ".join(name.split())


def _strip_parenthesised(text: str) -> str:
    """Drop every balanced `(...)` group, nested ones included, with the whitespace before it.

    An unclosed `(` and a stray `)` stay. One pass over runs of parentheses with a
    stack of open runs: linear however deep the nesting or long the runs of spaces
    (a regex loop stripping innermost groups first was quadratic on both).
    """
    if ")" not in text:
        return text
    pieces: list[str] = []
    # [index in `pieces` of a run of "(", how many of them are still open]; the run's
    # piece is a placeholder until the end, so closing part of a long run copies nothing.
    opened: list[list[int]] = []
    pos = 0
    for run in _PAREN_RUN.finditer(text):
        start, end = run.span()
        if start > pos:
            pieces.append(text[pos:start])
        pos = end
        count = end - start
        if text[start] == "(":
            opened.append([len(pieces), count])
            pieces.append("")
            continue
        closed_run = False
        while count and opened:
            index, still_open = opened[-1]
            if still_open > count:  # the innermost `count` groups of this run close
                opened[-1][1] = still_open - count
                del pieces[index + 1 :]
                count, closed_run = 0, False
            else:
                opened.pop()
                del pieces[index:]
                count -= still_open
                closed_run = True
        if closed_run:
            # The whitespace before the group goes with it. Each piece is trimmed at
            # most once (after that it ends in a non-space), so this stays linear.
            floor = opened[-1][0] + 1 if opened else 0
            while len(pieces) > floor and (not pieces[-1] or pieces[-1][-1].isspace()):
                trimmed = pieces[-1].rstrip()
                if trimmed:
                    pieces[-1] = trimmed
                    break
                pieces.pop()
        if count:  # more ")" than open groups: the rest stay
            pieces.append(")" * count)
    pieces.append(text[pos:])
    for index, still_open in opened:
        pieces[index] = "(" * still_open
    return "".join(pieces)


def split_author_list(text: str) -> tuple[str, ...]:
    """Split arXiv's one-string author list (`dc:creator`) into names, order kept.

    Names are separated by commas (never inside a name in this field: arXiv
    writes `Bill Gates Jr`), and by "and"/", and" as people type them.
    Parenthesised affiliations, which do contain commas, are removed first.
    """
    if "(" in text:
        text = _strip_parenthesised(text)
    names: list[str] = []
    for part in text.split(","):
        part = part.strip()
        if part[:4].lower() == "and ":
            part = part[4:]
        if " and " in part and not any(word in part.lower() for word in _GROUP_WORDS):
            pieces: Iterable[str] = part.split(" and ")
        else:
            pieces = (part,)
        for piece in pieces:
            name = clean_author_name(piece)
            if name and name.lower().rstrip(".") != "et al":
                names.append(name)
    return tuple(names)


_CATEGORY = re.compile(r"[a-z]+(?:-[a-z]+)?(?:\.[A-Za-z]+(?:-[A-Za-z]+)?)?")


def _categories(terms: Iterable[Any], primary: str | None = None) -> tuple[str, ...]:
    ordered = [primary] if primary else []
    ordered.extend(t.strip() for t in terms if isinstance(t, str))
    return tuple(dict.fromkeys(t for t in ordered if _CATEGORY.fullmatch(t)))


_ANNOUNCE_TYPES = {
    "new": AnnounceType.NEW,
    "cross": AnnounceType.CROSS,
    "replace": AnnounceType.REPLACE,
    "replace-cross": AnnounceType.REPLACE_CROSS,
    # arXiv's feed code also knows "absonly": a replacement of the metadata alone.
    "absonly": AnnounceType.REPLACE,
}

# rss.arxiv.org descriptions: "arXiv:2411.17700v1 Announce Type: new \nAbstract: ..."
_DESCRIPTION_PREFIX = re.compile(r"\s*arXiv:(\S+)\s+Announce Type:\s*(\S+)\s*")
_ABSTRACT_MARK = "Abstract:"


def _split_description(text: str) -> tuple[str | None, str | None, str]:
    """(id text, announce type, abstract) from an announcement description."""
    prefix = _DESCRIPTION_PREFIX.match(text)
    if prefix is None:
        return None, None, text
    rest = text[prefix.end() :]
    if rest.startswith(_ABSTRACT_MARK):
        rest = rest[len(_ABSTRACT_MARK) :]
    return prefix[1], prefix[2], rest


def _first_id(*candidates: str | None) -> ArxivId | None:
    """The first candidate that parses, with its version taken from a later one if it has none."""
    found = [p for p in (parse_arxiv_id_or_none(c) for c in candidates if c) if p is not None]
    if not found:
        return None
    first = found[0]
    if first.version is None:
        for other in found[1:]:
            if other.id == first.id and other.version is not None:
                return other
    return first
