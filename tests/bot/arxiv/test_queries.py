"""Tests for arXiv API query building: `au:`/`all:` forms, and no user text as query syntax."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.arxiv.queries import MAX_WORDS, author_query, words_query
from bot.domain.names import keyword_tokens, query_key

SAFE = re.compile(r"(au|all|cat):[^\W_]+(_[^\W_])?\*?( AND (all|cat):[\w.-]+\*?)*")


def test_author_forms() -> None:
    """Surname alone, or surname with the first initial, as the API's au: syntax."""
    assert author_query("legg") == "au:legg"
    assert author_query("legg", "shane") == "au:legg_s"
    assert author_query("ortega", "p") == "au:ortega_p"


def test_words_and_category() -> None:
    """Words are ANDed all: terms (deduplicated, capped); a category or archive restricts."""
    assert words_query(["grokking", "stability"]) == "all:grokking AND all:stability"
    assert words_query(["x", "x"], category="cs.LG") == "all:x AND cat:cs.LG"
    assert words_query(["x"], category="hep-th") == "all:x AND cat:hep-th*"
    many = words_query([f"w{n}" for n in range(30)])
    assert many.count("all:") == MAX_WORDS


@pytest.mark.parametrize(
    "bad",
    ['legg" OR au:"x', "a:b", "(x)", "x*", "a b", "", "x_y", "[1 TO 2]"],
)
def test_syntax_in_a_term_is_refused(bad: str) -> None:
    """Anything but letters and digits in a term raises instead of reaching arXiv."""
    with pytest.raises(ValueError):
        author_query(bad)
    with pytest.raises(ValueError):
        words_query([bad])
    with pytest.raises(ValueError):
        words_query(["x"], category=bad or "?")


@given(st.text(max_size=300))
def test_folded_user_text_always_builds_a_plain_query(text: str) -> None:
    """Whatever a user types, folding then building gives fields and plain words only."""
    key = query_key(text)
    if key.surname and len(key.surname) <= 64:
        built = author_query(key.surname, key.given[0] if key.given else None)
        assert SAFE.fullmatch(built), built
    words = [w for w in keyword_tokens(text) if len(w) <= 64]
    if words:
        built = words_query(words)
        assert SAFE.fullmatch(built), built
        assert '"' not in built and "(" not in built and " OR " not in built
