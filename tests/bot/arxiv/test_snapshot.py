"""The metadata snapshot parser: one JSON object per line, hostile lines reported, not fatal."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest

from bot.arxiv import snapshot
from bot.arxiv.snapshot import (
    SnapshotLineError,
    iter_snapshot,
    looks_like_snapshot,
    parse_created,
    parse_line,
)

# Shaped like a line of arxiv-metadata-oai-snapshot.json (values as arXiv writes them).
REAL_SHAPE = {
    "id": "0704.0001",
    "submitter": "Pavel Nadolsky",
    "authors": "C. Bal\\'azs, E. L. Berger, P. M. Nadolsky, C.-P. Yuan",
    "title": (
        "Calculation of prompt diphoton production cross sections at Tevatron and\n  LHC energies"
    ),
    "comments": "37 pages, 15 figures; published version",
    "journal-ref": "Phys.Rev.D76:013009,2007",
    "doi": "10.1103/PhysRevD.76.013009",
    "report-no": "ANL-HEP-PR-07-12",
    "categories": "hep-ph",
    "license": None,
    "abstract": (
        "  A fully differential calculation in perturbative quantum chromodynamics is\npresented.\n"
    ),
    "versions": [
        {"version": "v1", "created": "Mon, 2 Apr 2007 19:18:42 GMT"},
        {"version": "v2", "created": "Tue, 24 Jul 2007 20:10:27 GMT"},
    ],
    "update_date": "2008-11-13",
    "authors_parsed": [
        ["Balázs", "C.", ""],
        ["Berger", "E. L.", ""],
        ["Nadolsky", "P. M.", ""],
        ["Yuan", "C. -P.", ""],
    ],
}


def line(record: object) -> bytes:
    return json.dumps(record).encode() + b"\n"


def test_real_shaped_record() -> None:
    """Versions give version and dates; authors come from authors_parsed; text is unwrapped."""
    paper = parse_line(line(REAL_SHAPE))
    assert paper.id == "0704.0001" and paper.version == 2
    assert paper.published == datetime(2007, 4, 2, 19, 18, 42, tzinfo=UTC)
    assert paper.updated == datetime(2007, 7, 24, 20, 10, 27, tzinfo=UTC)
    assert paper.title.endswith("at Tevatron and LHC energies")
    assert paper.abstract == (
        "A fully differential calculation in perturbative quantum chromodynamics is presented."
    )
    assert paper.authors == ("C. Balázs", "E. L. Berger", "P. M. Nadolsky", "C. -P. Yuan")
    assert paper.categories == ("hep-ph",) and paper.primary_category == "hep-ph"
    assert (paper.comment, paper.doi) == (REAL_SHAPE["comments"], REAL_SHAPE["doi"])


def test_tex_accents_suffix_and_affiliation_in_authors_parsed() -> None:
    """`Del\\'etang` becomes Delétang; a suffix follows the surname; a 4th item is ignored."""
    record = {
        **REAL_SHAPE,
        "id": "math/0611800",
        "authors_parsed": [
            ["Del\\'etang", "Gr\\'egoire", ""],
            ["Gates", "S. James", "Jr", "University of Maryland"],
            ["Przemys{\\l}awski", "Jan", ""],
        ],
    }
    paper = parse_line(line(record))
    assert paper.id == "math/0611800"
    assert paper.authors == ("Grégoire Delétang", "S. James Gates Jr", "Jan Przemysławski")


def test_nulls_and_missing_fields() -> None:
    """null values and absent keys give empty or None fields, and the authors string as fallback."""
    record = {
        "id": "2401.00001",
        "title": "T",
        "authors": "A. One, B. Two and C. Three",
        "authors_parsed": None,
        "abstract": None,
        "categories": None,
        "versions": None,
        "comments": None,
    }
    paper = parse_line(line(record))
    assert paper.version == 1 and paper.published is None
    assert paper.authors == ("A. One", "B. Two", "C. Three")
    assert paper.abstract == "" and paper.categories == () and paper.comment is None


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "invalid JSON"),
        (b'["a list"]', "not a JSON object"),
        (line({"title": "no id"}), "no id"),
        (line({"id": 704.0001, "title": "T"}), "id is not a string"),
        (line({"id": "hello/world", "title": "T"}), "not an arXiv id"),
        (line({"id": "2401.00001", "title": None}), "no title"),
        (b"[" * 100_000, "invalid JSON"),
    ],
)
def test_bad_lines_say_why(raw: bytes, reason: str) -> None:
    """Each kind of bad line raises ValueError with a short reason."""
    with pytest.raises(ValueError, match=reason):
        parse_line(raw)


def test_stream_reports_bad_lines_by_number_and_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """Line numbers count every line; blank lines are skipped; over-long lines skipped whole."""
    monkeypatch.setattr(snapshot, "MAX_LINE_BYTES", 2_000)
    good = line({**REAL_SHAPE, "id": "0704.0002"})
    long_line = b'{"id": "0704.0003", "title": "' + b"x" * 5_000 + b'"}\n'
    data = line(REAL_SHAPE) + b"\n" + b"oops\n" + long_line + good
    items = list(iter_snapshot(io.BytesIO(data)))
    assert [type(i).__name__ for i in items] == [
        "Paper", "SnapshotLineError", "SnapshotLineError", "Paper",
    ]  # fmt: skip
    errors = [i for i in items if isinstance(i, SnapshotLineError)]
    assert [e.line for e in errors] == [3, 4]
    assert "longer than" in errors[1].reason


def test_lone_surrogates_become_question_marks() -> None:
    """A JSON-escaped lone surrogate (unstorable) is replaced; a real pair is kept."""
    raw = b'{"id": "2401.00001", "title": "A \\ud800 B \\ud83d\\ude00", "authors": "X Y"}\n'
    paper = parse_line(raw)
    assert paper.title == "A ? B \U0001f600"
    paper.title.encode("utf-8")


def test_created_dates() -> None:
    """RFC 2822 dates as the snapshot writes them; anything else is None."""
    assert parse_created("Mon, 2 Apr 2007 19:18:42 GMT") == datetime(
        2007, 4, 2, 19, 18, 42, tzinfo=UTC
    )
    assert parse_created("2 Apr 2007 19:18:42 GMT") == datetime(2007, 4, 2, 19, 18, 42, tzinfo=UTC)
    for bad in ("", "yesterday", "Mon, 2 Foo 2007 19:18:42 GMT", "Mon, 31 Feb 2007 1:2:3 GMT", 5):
        assert parse_created(bad) is None


def test_format_sniffing() -> None:
    """JSON lines are told apart from XML documents by their first character."""
    assert looks_like_snapshot(b'\xef\xbb\xbf  {"id": "0704.0001"}')
    assert not looks_like_snapshot(b"<?xml version='1.0'?><rss/>")
