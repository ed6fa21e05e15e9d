"""BibTeX entries for papers, in the style of arXiv's own "Export BibTeX Citation". Pure, no I/O.

Until a paper has both a DOI and a journal reference it is `@misc` with
`eprint`, `archivePrefix = {arXiv}` and `primaryClass`, as arXiv exports it;
once it has both, an `@article` that also carries `journal` and `doi`.

Values come from arXiv's metadata and are hostile: TeX is kept as TeX (it is
BibTeX's own language), but braces that do not pair up are dropped, so a value
can never close its field early and inject fields or entries.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass

from bot.domain.models import Paper
from bot.domain.names import author_key, strip_tex

log = logging.getLogger(__name__)

MAX_FIELD_LENGTH = 4_000  # longer values (a runaway title) are cut, balanced again
_STOPWORDS = frozenset({
    "a", "an", "the", "on", "of", "in", "for", "to", "and", "with", "from", "by", "at", "as",
    "is", "are", "be", "its", "via", "towards", "toward",
})  # fmt: skip
_NEW_STYLE = re.compile(r"(\d{2})(\d{2})\.\d{4,5}")
_OLD_STYLE = re.compile(r"[a-z-]+(?:\.[A-Z]{2})?/(\d{2})(\d{2})\d{3}")


@dataclass(frozen=True, slots=True)
class Citation:
    key: str
    entry_type: str  # "misc" or "article"
    eprint: str
    bibtex: str


def _ascii_word(text: str) -> str:
    folded = unicodedata.normalize("NFKD", strip_tex(text))
    return "".join(c for c in folded if c.isascii() and c.isalnum()).lower()


def paper_year(paper: Paper) -> int | None:
    """The year of v1: its submission date, else the year in its id."""
    if paper.published is not None:
        return paper.published.year
    match = _NEW_STYLE.fullmatch(paper.id) or _OLD_STYLE.fullmatch(paper.id)
    if match is None:
        return None
    yy = int(match.group(1))
    return (1900 if yy >= 91 else 2000) + yy


def citation_key(paper: Paper) -> str:
    """`legg2023hydra`: first author's surname, year, first significant title word (ASCII)."""
    surname = ""
    if paper.authors:
        surname = _ascii_word(author_key(paper.authors[0]).surname)
    year = paper_year(paper)
    word = next(
        (
            w
            for w in (_ascii_word(t) for t in strip_tex(paper.title).split())
            if w and w not in _STOPWORDS
        ),
        "",
    )
    key = f"{surname or 'arxiv'}{year or ''}{word}"
    return key[:64] or "arxiv" + re.sub(r"\W", "", paper.id)


def _drop_unmatched_braces(text: str) -> str:
    """Keep matched brace pairs, drop the rest.

    BibTeX counts every brace, escaped or not, to find a field's end, so an
    unmatched one must go: `\\}` would still close the field.
    """
    keep = [True] * len(text)
    open_at: list[int] = []
    for i, char in enumerate(text):
        if char == "{":
            open_at.append(i)
        elif char == "}":
            if open_at:
                open_at.pop()
            else:
                keep[i] = False
    for i in open_at:
        keep[i] = False
    return "".join(c for c, k in zip(text, keep, strict=True) if k)


def bibtex_value(text: str) -> str:
    """A field value safe inside `{...}`: one line, every brace matched."""
    value = " ".join(text.split())[:MAX_FIELD_LENGTH]
    # A trailing backslash would escape the field's closing brace for TeX.
    return _drop_unmatched_braces(value).rstrip("\\")


def _author(name: str) -> str:
    value = bibtex_value(name)
    # "ATLAS Collaboration", "A and B Group": BibTeX would split or reorder them.
    if re.search(r"\band\b|collaboration|consortium|group|team", value, re.IGNORECASE):
        return "{" + value + "}"
    return value


def cite(paper: Paper) -> Citation:
    """The BibTeX entry for `paper` (arXiv's field order and spacing)."""
    published = bool(paper.doi and paper.journal_ref)
    entry_type = "article" if published else "misc"
    fields: list[tuple[str, str]] = [
        ("title", bibtex_value(paper.title)),
        ("author", " and ".join(_author(a) for a in paper.authors if a.strip())),
    ]
    if published:
        fields.append(("journal", bibtex_value(paper.journal_ref or "")))
    year = paper_year(paper)
    if year is not None:
        fields.append(("year", str(year)))
    fields += [
        ("eprint", paper.id),
        ("archivePrefix", "arXiv"),
        ("primaryClass", bibtex_value(paper.primary_category)),
    ]
    if published:
        fields.append(("doi", bibtex_value(paper.doi or "")))
    fields.append(("url", paper.abs_url))
    key = citation_key(paper)
    body = ",\n".join(f"      {name}={{{value}}}" for name, value in fields if value)
    return Citation(key, entry_type, paper.id, f"@{entry_type}{{{key},\n{body},\n}}\n")
