"""arXiv identifiers: parse whatever a user or a feed hands us into one canonical form.

Two schemes exist. New style `YYMM.NNNN` (April 2007 to December 2014) and
`YYMM.NNNNN` (from January 2015); old style `archive[.SUBJ]/YYMMNNN` (August 1991
to March 2007), whose external form drops the subject class (`math.CA/0611800`
is `math/0611800`). Either may carry a version suffix `vN`.

Papers are deduplicated on the versionless id, so `ArxivId.id` never carries a
version; `ArxivId.version` is None when the input named none ("the latest").

Ids are ASCII. Python's `\\d`, `str.isdigit()` and `int()` also take other
scripts' digits (`２４１１.１７７００`, Arabic-Indic), which would store one paper
under several ids, so the pattern is compiled with `re.ASCII`. arXiv never
issues sequence number zero (`0704.0000`, `hep-lat/9108000`); any version is
accepted up to what the store's integer column holds.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

log = logging.getLogger(__name__)

# Archives that issued old-style identifiers (arXiv's taxonomy, archives that
# started before April 2007). Later archives (stat, q-fin, econ, eess) only
# ever had new-style ids, so `stat/0701001` is not a paper.
OLD_STYLE_ARCHIVES: frozenset[str] = frozenset(
    {
        "acc-phys", "adap-org", "alg-geom", "ao-sci", "astro-ph", "atom-ph", "bayes-an",
        "chao-dyn", "chem-ph", "cmp-lg", "comp-gas", "cond-mat", "cs", "dg-ga", "funct-an",
        "gr-qc", "hep-ex", "hep-lat", "hep-ph", "hep-th", "math", "math-ph", "mtrl-th",
        "nlin", "nucl-ex", "nucl-th", "patt-sol", "physics", "plasm-ph", "q-alg", "q-bio",
        "quant-ph", "solv-int", "supr-con",
    }
)  # fmt: skip

# Inputs longer than this are refused before any matching: the longest real
# form (an https export URL of an old-style pdf with a version) is under 80.
MAX_INPUT_LENGTH = 200

_ECHO_LIMIT = 40
_EXAMPLES = "Try 2307.15771 or hep-th/9901001."

# One pass over the whole input: optional wrapper, the id, optional version and
# the odd trailing bits of a pasted URL. Validation of the digits (months, the
# digit count of the era, the archive name) happens in code, where the error
# can be precise and cheap.
_ID_RE = re.compile(
    r"""
    (?:
        arxiv:\s*                                   # arXiv:2307.15771
      | oai:arxiv\.org:                             # RSS guid / OAI identifier
      | (?:https?://)?(?:www\.|export\.)?arxiv\.org/(?:abs|pdf|html)/
    )?
    (?:
        (?P<yymm>\d{4})\.(?P<number>\d{4,5})
      | (?P<archive>[a-z]+(?:-[a-z]+)?)(?:\.(?P<subject>[a-z]+(?:-[a-z]+)?))?/(?P<old>\d{7})
    )
    (?:v(?P<version>[1-9]\d*))?
    (?:\.pdf)?
    /*
    (?:[?\#]\S*)?                                   # ?context=cs, #fragment
    """,
    # ASCII: `\d` must not take `２` or `٢`, nor IGNORECASE fold `K` (Kelvin) into `k`.
    re.IGNORECASE | re.VERBOSE | re.ASCII,
)

# The largest version the store can hold (a 32-bit INTEGER column on PostgreSQL).
MAX_VERSION = 2**31 - 1

# Characters stripped from the echoed input so the error message cannot carry
# markdown, mentions or a broken code span into Discord.
_UNSAFE_ECHO = re.compile(r"[`*_~|\\<>@#\[\]\x00-\x1f\x7f]+")


class InvalidArxivIdError(ValueError):
    """The text is not an arXiv identifier; `str(error)` is safe to show a Discord user."""

    def __init__(self, text: str) -> None:
        self.text = text[:MAX_INPUT_LENGTH]
        super().__init__(_describe(text))


def _describe(text: str) -> str:
    shown = " ".join(_UNSAFE_ECHO.sub(" ", text[: _ECHO_LIMIT * 4]).split())
    if not shown:
        return f"Please give an arXiv id. {_EXAMPLES}"
    if len(shown) > _ECHO_LIMIT:
        shown = shown[: _ECHO_LIMIT - 1].rstrip() + "…"
    return f"`{shown}` is not an arXiv id. {_EXAMPLES}"


@dataclass(frozen=True, slots=True)
class ArxivId:
    """A parsed identifier: the versionless canonical id and the version asked for, if any."""

    id: str
    version: int | None = None

    @property
    def versioned(self) -> str:
        """`2307.15771v2` when a version was given, else the bare id."""
        return self.id if self.version is None else f"{self.id}v{self.version}"

    @property
    def is_old_style(self) -> bool:
        return "/" in self.id

    def __str__(self) -> str:
        return self.versioned


def parse_arxiv_id(text: str) -> ArxivId:
    """Parse an id, `arXiv:` reference, abs/pdf URL or OAI guid; raise InvalidArxivIdError."""
    parsed = parse_arxiv_id_or_none(text)
    if parsed is None:
        raise InvalidArxivIdError(text)
    return parsed


def parse_arxiv_id_or_none(text: str) -> ArxivId | None:
    """Like `parse_arxiv_id` but returns None instead of raising (for feed fields)."""
    if len(text) > MAX_INPUT_LENGTH:
        return None
    text = text.strip()
    if text.startswith("<") and text.endswith(">"):
        # Discord users wrap links in <...> to suppress the embed.
        text = text[1:-1].strip()
    match = _ID_RE.fullmatch(text)
    if match is None:
        return None
    version = match["version"]
    ver = int(version) if version is not None else None
    if ver is not None and ver > MAX_VERSION:
        return None
    yymm = match["yymm"]
    if yymm is not None:
        number = match["number"]
        if not _valid_new_style(yymm, number):
            return None
        return ArxivId(f"{yymm}.{number}", ver)
    archive = match["archive"].lower()
    old = match["old"]
    if archive not in OLD_STYLE_ARCHIVES or not _valid_old_style(old):
        return None
    return ArxivId(f"{archive}/{old}", ver)


def _valid_new_style(yymm: str, number: str) -> bool:
    month = int(yymm[2:])
    if not 1 <= month <= 12:
        return False
    stamp = int(yymm)
    if stamp < 704:  # the new scheme began in April 2007
        return False
    # Four digits until December 2014, five from January 2015; numbering starts at 1.
    return len(number) == (4 if stamp <= 1412 else 5) and number.strip("0") != ""


def _valid_old_style(digits: str) -> bool:
    year, month = int(digits[:2]), int(digits[2:4])
    if not 1 <= month <= 12:
        return False
    # Two-digit years: 91-99 are the 1990s, 00-07 the 2000s; the old scheme
    # ran from August 1991 (hep-th) until March 2007.
    stamp = (1900 + year if year >= 91 else 2000 + year) * 100 + month
    # The monthly sequence number (last three digits) starts at 001.
    return 199108 <= stamp <= 200703 and digits[4:] != "000"


def arxiv_id_from_guid_or_url(value: str) -> ArxivId | None:
    """The id in an RSS guid (`oai:arXiv.org:2203.01250v3`), abs/pdf URL or bare id; else None."""
    return parse_arxiv_id_or_none(value)
