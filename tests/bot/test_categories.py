"""Tests for the arXiv category table, normalization and autocomplete."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.categories import (
    all_categories,
    autocomplete_categories,
    get_category,
    normalize_category,
    parse_taxonomy,
)
from bot.domain.errors import InvalidInputError
from bot.services import ALL_ARCHIVES

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
_CATEGORY_ELEMENT = re.compile(rb"<category[^>]*>([^<]+)</category>")
_TERM_ATTRIBUTE = re.compile(rb'<category[^>]*term="([^"]+)"')
# Atom entries also carry MSC/ACM classes (`65D20`, `G.1.2`) as categories; skip those.
_ARXIV_SHAPE = re.compile(r"^[a-z]+(-[a-z]+)?(\.[A-Za-z-]+)?$")


def test_table_covers_the_whole_taxonomy() -> None:
    """The shipped table has every subject class (~155) plus the whole archives."""
    ids = {c.id for c in all_categories()}
    assert len(ids) == len(all_categories()) >= 160
    for prefix, count in [("cs.", 40), ("math.", 32), ("stat.", 6), ("physics.", 22)]:
        assert sum(1 for i in ids if i.startswith(prefix)) == count, prefix
    assert {"astro-ph.CO", "cond-mat.mes-hall", "q-bio.NC", "q-fin.ST", "econ.EM", "eess.SP"} <= ids
    assert {"nlin.CD", "gr-qc", "hep-th", "math-ph", "nucl-ex", "quant-ph"} <= ids


def test_every_archive_the_poller_uses_is_known() -> None:
    """The archives the scheduled poll requests are all valid subscription targets."""
    for archive in ALL_ARCHIVES:
        assert get_category(archive) is not None, archive


def test_every_category_in_the_real_fixtures_is_known() -> None:
    """Each category seen in real arXiv RSS/Atom documents is in the table."""
    seen: set[str] = set()
    for path in FIXTURES.glob("*.xml"):
        data = path.read_bytes()
        seen.update(m.decode().strip() for m in _CATEGORY_ELEMENT.findall(data))
        seen.update(m.decode().strip() for m in _TERM_ATTRIBUTE.findall(data))
    seen = {c for c in seen if _ARXIV_SHAPE.match(c)}
    assert len(seen) > 50
    unknown = sorted(c for c in seen if get_category(c) is None)
    assert unknown == []


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("CS.lg", "cs.LG"),
        ("cs.LG", "cs.LG"),
        ("  math.pr ", "math.PR"),
        ("COND-MAT.MES-HALL", "cond-mat.mes-hall"),
        ("arXiv:stat.ml", "stat.ML"),
        ("`hep-th`", "hep-th"),
        ("astro-ph", "astro-ph"),
        ("Robotics", "cs.RO"),
    ],
)
def test_normalize_accepts_any_case(typed: str, canonical: str) -> None:
    """Ids are matched case-insensitively and come back in arXiv's spelling."""
    assert normalize_category(typed) == canonical


def test_normalize_suggests_close_ids() -> None:
    """A near miss is refused with a 'did you mean' naming the right id."""
    with pytest.raises(InvalidInputError, match=r"Did you mean .*`cs\.LG`"):
        normalize_category("cs.LGG")


def test_normalize_refuses_unknown_and_empty() -> None:
    """Unknown, empty and absurdly long inputs are user errors with short messages."""
    for bad in ["cs.XYZQ", "", "   ", "x" * 5000, "machine learning"]:
        with pytest.raises(InvalidInputError) as info:
            normalize_category(bad)
        assert len(str(info.value)) < 200


def test_normalize_does_not_echo_backticks() -> None:
    """User input echoed in the error cannot break out of its code span."""
    with pytest.raises(InvalidInputError) as info:
        normalize_category("a`b`c")
    assert str(info.value).count("`") % 2 == 0


def test_autocomplete_prefix_then_name_words() -> None:
    """Id-prefix matches come first, then categories whose name words start like the query."""
    values = [value for _label, value in autocomplete_categories("cs.l")]
    assert values == ["cs.LG", "cs.LO"]
    by_name = [value for _label, value in autocomplete_categories("machine learn")]
    assert by_name == ["cs.LG", "stat.ML"]
    labels = [label for label, _value in autocomplete_categories("quant")]
    assert "quant-ph · Quantum Physics" in labels


def test_autocomplete_limits() -> None:
    """At most 25 choices (Discord's cap), labels at most 100 characters, empty input lists some."""
    assert len(autocomplete_categories("")) == 25
    assert len(autocomplete_categories("math")) == 25
    assert len(autocomplete_categories("cs", limit=5)) == 5
    assert all(len(label) <= 100 for label, _ in autocomplete_categories("", limit=25))
    assert autocomplete_categories("zzzz") == []


def test_parse_taxonomy_rejects_malformed_rows() -> None:
    """A broken package data file fails loudly instead of silently dropping categories."""
    assert [c.id for c in parse_taxonomy("# c\ncs.LG\tMachine Learning\n\n")] == ["cs.LG"]
    with pytest.raises(ValueError, match="expected"):
        parse_taxonomy("cs.LG Machine Learning\n")
    with pytest.raises(ValueError, match="duplicate"):
        parse_taxonomy("cs.LG\tA\nCS.lg\tB\n")
