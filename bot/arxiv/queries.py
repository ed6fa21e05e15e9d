"""arXiv API `search_query` strings built from folded words: pure functions, no I/O.

User text never reaches arXiv's query syntax. Callers fold it first (the
name and keyword folding of `bot.domain.names`), which leaves only letters and
digits; every term here is checked again to be nothing but letters and digits
and is put after its field prefix, so quotes, parentheses, colons, `AND`,
`ANDNOT`, wildcards and ranges in what a user typed are at most words.

Author queries use the API's `au:` forms: the surname (`au:legg`), or the
surname with the first initial (`au:legg_s`), which the API reads as "surname
Legg, a given name starting with S". Word searches AND one `all:` term per word
(`all:grokking AND all:stability`), optionally with a category (`cat:cs.LG`, or
`cat:cs*` for a whole archive).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

log = logging.getLogger(__name__)

MAX_WORDS = 8  # arXiv answers long conjunctions slowly, and more words rarely help
MAX_TERM_LENGTH = 64
_TERM = re.compile(r"[^\W_]{1,64}")
_CATEGORY = re.compile(r"[a-z-]{2,20}(\.[A-Za-z-]{1,10})?")


def _term(token: str) -> str:
    if not _TERM.fullmatch(token):
        raise ValueError(f"not a plain word: {token[:40]!r}")
    return token


def author_query(surname: str, initial: str | None = None) -> str:
    """`au:surname` or `au:surname_i` for folded name tokens; raises ValueError otherwise."""
    term = _term(surname)
    if initial:
        return f"au:{term}_{_term(initial[0])}"
    return f"au:{term}"


def words_query(words: Sequence[str], *, category: str | None = None) -> str:
    """`all:` terms ANDed (the first `MAX_WORDS`), plus an optional category restriction."""
    terms = [f"all:{_term(w)}" for w in dict.fromkeys(words)][:MAX_WORDS]
    if not terms:
        raise ValueError("no words to search for")
    if category is not None:
        if not _CATEGORY.fullmatch(category):
            raise ValueError(f"not an arXiv category: {category[:40]!r}")
        terms.append(f"cat:{category}" if "." in category else f"cat:{category}*")
    return " AND ".join(terms)
