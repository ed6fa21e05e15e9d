"""Tests for arXiv identifier parsing (`bot.domain.ids`)."""

from __future__ import annotations

import time
import unicodedata

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.domain.ids import (
    MAX_INPUT_LENGTH,
    MAX_VERSION,
    OLD_STYLE_ARCHIVES,
    ArxivId,
    InvalidArxivIdError,
    arxiv_id_from_guid_or_url,
    parse_arxiv_id,
    parse_arxiv_id_or_none,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2307.15771", ArxivId("2307.15771", None)),
        ("2307.15771v2", ArxivId("2307.15771", 2)),
        ("0704.0001", ArxivId("0704.0001", None)),
        ("1412.9999v12", ArxivId("1412.9999", 12)),
        ("1501.00001", ArxivId("1501.00001", None)),
        ("arXiv:2307.15771", ArxivId("2307.15771", None)),
        ("ARXIV:2307.15771v1", ArxivId("2307.15771", 1)),
        ("arxiv: 2307.15771", ArxivId("2307.15771", None)),
        ("https://arxiv.org/abs/2307.15771v2", ArxivId("2307.15771", 2)),
        ("http://arxiv.org/abs/2307.15771", ArxivId("2307.15771", None)),
        ("https://www.arxiv.org/abs/2307.15771", ArxivId("2307.15771", None)),
        ("arxiv.org/pdf/2307.15771v1.pdf", ArxivId("2307.15771", 1)),
        ("https://arxiv.org/pdf/2307.15771v1", ArxivId("2307.15771", 1)),
        ("https://arxiv.org/html/2307.15771v3", ArxivId("2307.15771", 3)),
        ("https://arxiv.org/abs/2307.15771?context=cs.LG", ArxivId("2307.15771", None)),
        ("https://arxiv.org/abs/2307.15771v2#S3", ArxivId("2307.15771", 2)),
        ("<https://arxiv.org/abs/2307.15771>", ArxivId("2307.15771", None)),
        ("  https://arxiv.org/abs/2307.15771/ \n", ArxivId("2307.15771", None)),
        ("oai:arXiv.org:2203.01250v3", ArxivId("2203.01250", 3)),
        ("hep-th/9901001", ArxivId("hep-th/9901001", None)),
        ("HEP-TH/9901001v1", ArxivId("hep-th/9901001", 1)),
        ("math.CA/0611800v2", ArxivId("math/0611800", 2)),
        ("cond-mat.str-el/0703001", ArxivId("cond-mat/0703001", None)),
        ("arXiv:hep-th/9108001", ArxivId("hep-th/9108001", None)),
        ("https://export.arxiv.org/abs/hep-th/9901001", ArxivId("hep-th/9901001", None)),
        ("https://arxiv.org/pdf/math/0611800v2.pdf", ArxivId("math/0611800", 2)),
        ("oai:arXiv.org:cs/0112017", ArxivId("cs/0112017", None)),
        ("acc-phys/0001001v10000", ArxivId("acc-phys/0001001", 10000)),
        ("2307.15771v99999", ArxivId("2307.15771", 99999)),
        ("2307.15771v2147483647", ArxivId("2307.15771", 2**31 - 1)),
        ("0704.0001", ArxivId("0704.0001", None)),
        ("hep-lat/9108001", ArxivId("hep-lat/9108001", None)),
        ("1501.00010", ArxivId("1501.00010", None)),
    ],
)
def test_accepts_every_form_users_and_feeds_use(text: str, expected: ArxivId) -> None:
    """Bare ids, arXiv: references, abs/pdf/export URLs and OAI guids all name the same paper."""
    assert parse_arxiv_id(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "foo",
        "2307.1577",  # too few digits
        "2307.157712",  # too many digits
        "2300.15771",  # month 00
        "2313.15771",  # month 13
        "0703.1234",  # before the new scheme (April 2007)
        "1412.12345",  # five digits before 2015
        "1501.1234",  # four digits from 2015
        "2307.15771v0",
        "2307.15771v",
        "2307.15771v01",
        "2307.15771 v2",
        "stat/0701001",  # stat never had old-style ids
        "foo-bar/9901001",  # unknown archive
        "hep-th/9107001",  # before arXiv existed
        "hep-th/0704001",  # after the old scheme ended
        "hep-th/9913001",  # month 13
        "hep-th/990100",  # six digits
        "https://example.org/abs/2307.15771",
        "https://arxiv.org/list/2307.15771",
        "arXiv:2307.15771 and 2307.15772",
        "2307.15771" * 500,
        "0704.0000",  # arXiv never issues sequence number zero
        "1501.00000",
        "hep-lat/9108000",
        "math.CA/0611000v2",
        "2307.15771v2147483648",  # more than the store can hold
        "２４１１.１７７００",  # fullwidth digits
        "٢٤١١.١٧٧٠٠",  # Arabic-Indic digits
        "۲۴۱۱.۱۷۷۰۰",  # Extended Arabic-Indic digits
        "2411.1770٠",  # one non-ASCII digit is enough
        "2411.17700v２",
        "hep-th/99０1001",
        "hep-th/9901001v١",
        "phy\u017fics/9901001",  # LATIN SMALL LONG S folds to s without re.ASCII
        "arx\u0131v:2307.15771",  # dotless i folds to i without re.ASCII
        "2411.17700\u00b2",  # superscript two: isdigit() says yes
    ],
)
def test_rejects_everything_else(text: str) -> None:
    """Wrong months, digit counts for the era, archives and hosts are not arXiv ids."""
    with pytest.raises(InvalidArxivIdError):
        parse_arxiv_id(text)
    assert parse_arxiv_id_or_none(text) is None


def test_error_echoes_a_short_markdown_free_input() -> None:
    """The error shows the input in a code span, truncated, without markdown or mentions."""
    with pytest.raises(InvalidArxivIdError) as caught:
        parse_arxiv_id("`**@everyone**` <@&123> " + "x" * 80)
    message = str(caught.value)
    assert message.startswith("`")
    assert message.endswith("is not an arXiv id. Try 2307.15771 or hep-th/9901001.")
    shown = message[1 : message.index("`", 1)]
    assert len(shown) <= 40
    assert not set(shown) & set("`*_~|\\<>@#")
    assert "everyone" in shown


def test_error_for_empty_input_asks_for_an_id() -> None:
    """Empty input gets a prompt rather than an empty code span."""
    with pytest.raises(InvalidArxivIdError) as caught:
        parse_arxiv_id("  ")
    message = str(caught.value)
    assert message == "Please give an arXiv id. Try 2307.15771 or hep-th/9901001."


def test_error_is_a_value_error_and_keeps_the_input_bounded() -> None:
    """Callers may catch ValueError; the raw input kept for logs is capped."""
    with pytest.raises(ValueError) as caught:
        parse_arxiv_id("y" * 5000)
    assert isinstance(caught.value, InvalidArxivIdError)
    assert len(caught.value.text) == MAX_INPUT_LENGTH


def test_huge_input_is_rejected_quickly() -> None:
    """A 5,000-character paste is refused without scanning it."""
    started = time.perf_counter()
    for _ in range(1000):
        assert parse_arxiv_id_or_none("1" * 5000) is None
    assert time.perf_counter() - started < 0.5


def test_versioned_and_str() -> None:
    """`versioned` appends vN only when a version was given."""
    assert ArxivId("2307.15771", 2).versioned == "2307.15771v2"
    assert ArxivId("hep-th/9901001").versioned == "hep-th/9901001"
    assert str(ArxivId("math/0611800", 3)) == "math/0611800v3"
    assert ArxivId("math/0611800").is_old_style
    assert not ArxivId("2307.15771").is_old_style


def test_old_style_archive_list() -> None:
    """The shipped archive list has the pre-2007 archives and none of the new-only ones."""
    expected = {"hep-th", "math", "cs", "cond-mat", "astro-ph", "q-bio", "solv-int"}
    assert expected <= OLD_STYLE_ARCHIVES
    assert not {"stat", "q-fin", "econ", "eess"} & OLD_STYLE_ARCHIVES


def test_guid_helper() -> None:
    """The feed helper reads guids and URLs and answers None instead of raising."""
    assert arxiv_id_from_guid_or_url("oai:arXiv.org:2411.17700v1") == ArxivId("2411.17700", 1)
    assert arxiv_id_from_guid_or_url("https://arxiv.org/abs/2411.17700") == ArxivId("2411.17700")
    assert arxiv_id_from_guid_or_url("https://arxiv.org/api/errors#x") is None


# ---- properties -----------------------------------------------------------------------------


@st.composite
def new_style_ids(draw: st.DrawFn) -> str:
    month_index = draw(st.integers(2007 * 12 + 3, 2099 * 12 + 11))
    year, month = divmod(month_index, 12)
    yymm = f"{year % 100:02d}{month + 1:02d}"
    digits = 4 if int(yymm) <= 1412 else 5
    return f"{yymm}.{draw(st.integers(1, 10**digits - 1)):0{digits}d}"


@st.composite
def old_style_ids(draw: st.DrawFn) -> tuple[str, str]:
    """(text as written, canonical id): the written form may carry a subject class."""
    archive = draw(st.sampled_from(sorted(OLD_STYLE_ARCHIVES)))
    month_index = draw(st.integers(1991 * 12 + 7, 2007 * 12 + 2))
    year, month = divmod(month_index, 12)
    digits = f"{year % 100:02d}{month + 1:02d}{draw(st.integers(1, 999)):03d}"
    subject = draw(st.none() | st.sampled_from(("CA", "AG", "str-el", "optics", "AI", "mes-hall")))
    written = f"{archive}.{subject}/{digits}" if subject else f"{archive}/{digits}"
    return written, f"{archive}/{digits}"


WRAPPERS = (
    "{}",
    "arXiv:{}",
    "ARXIV:{}",
    "arxiv: {}",
    "https://arxiv.org/abs/{}",
    "http://arxiv.org/abs/{}",
    "arxiv.org/abs/{}",
    "https://www.arxiv.org/abs/{}",
    "https://export.arxiv.org/abs/{}",
    "http://export.arxiv.org/abs/{}/",
    "https://arxiv.org/pdf/{}",
    "https://arxiv.org/pdf/{}.pdf",
    "arxiv.org/pdf/{}.pdf",
    "oai:arXiv.org:{}",
    "<https://arxiv.org/abs/{}>",
    "https://arxiv.org/abs/{}//",
)


@given(
    ids=new_style_ids().map(lambda i: (i, i)) | old_style_ids(),
    version=st.none() | st.integers(1, 9999) | st.integers(1, MAX_VERSION),
    wrapper=st.sampled_from(WRAPPERS),
    padding=st.sampled_from(("", " ", "\n", "\t ")),
)
def test_round_trip_of_generated_ids_in_every_wrapper(
    ids: tuple[str, str], version: int | None, wrapper: str, padding: str
) -> None:
    """Any valid id, with or without a version, in any wrapper parses to its canonical form."""
    written, canonical = ids
    versioned = written if version is None else f"{written}v{version}"
    parsed = parse_arxiv_id(padding + wrapper.format(versioned) + padding)
    assert parsed == ArxivId(canonical, version)
    assert parse_arxiv_id(parsed.versioned) == parsed


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300) | st.text(alphabet="0123456789./vV:-abhtpsrxiAXIo ", max_size=40))
@example("2307.15771v99999")
@example("\x00")
@example("arXiv:")
def test_arbitrary_text_raises_nothing_but_invalid_id(text: str) -> None:
    """Whatever the text, parsing either succeeds or raises InvalidArxivIdError."""
    try:
        parsed = parse_arxiv_id(text)
    except InvalidArxivIdError as exc:
        assert "arXiv id" in str(exc)
    else:
        assert parse_arxiv_id(parsed.versioned) == parsed


# Every Unicode decimal digit that is not ASCII: `\\d`, isdigit() and int() take them all.
NON_ASCII_DIGITS = tuple(
    c for c in map(chr, range(0x80, 0x30000)) if unicodedata.decimal(c, None) is not None
)


@given(
    ids=new_style_ids().map(lambda i: (i, i)) | old_style_ids(),
    version=st.none() | st.integers(1, 99),
    wrapper=st.sampled_from(WRAPPERS),
    data=st.data(),
)
def test_a_non_ascii_digit_anywhere_is_refused(
    ids: tuple[str, str], version: int | None, wrapper: str, data: st.DataObject
) -> None:
    """Replacing any one digit of a valid id with another script's digit makes it invalid."""
    written = ids[0] if version is None else f"{ids[0]}v{version}"
    positions = [i for i, c in enumerate(written) if c.isascii() and c.isdigit()]
    where = data.draw(st.sampled_from(positions))
    foreign = data.draw(st.sampled_from(NON_ASCII_DIGITS))
    assert unicodedata.decimal(foreign) in range(10)
    mutated = written[:where] + foreign + written[where + 1 :]
    assert parse_arxiv_id_or_none(wrapper.format(mutated)) is None


@given(ids=new_style_ids(), data=st.data())
def test_every_script_of_digits_is_refused_whole(ids: str, data: st.DataObject) -> None:
    """An id written entirely in one non-ASCII script's digits (fullwidth, Arabic-Indic) is not
    an id, so it can never be stored as a second copy of the ASCII one."""
    foreign = data.draw(st.sampled_from(NON_ASCII_DIGITS))
    zero = ord(foreign) - unicodedata.decimal(foreign)
    translated = ids.translate({ord(str(d)): chr(zero + d) for d in range(10)})
    assert translated != ids
    assert parse_arxiv_id_or_none(translated) is None


@given(
    new=st.integers(2007 * 12 + 3, 2099 * 12 + 11),
    old=old_style_ids(),
    version=st.none() | st.integers(1, MAX_VERSION),
)
def test_sequence_number_zero_is_refused_in_both_schemes(
    new: int, old: tuple[str, str], version: int | None
) -> None:
    """Numbering starts at 1: `YYMM.0000(0)` and `archive/YYMM000` are not ids."""
    year, month = divmod(new, 12)
    yymm = f"{year % 100:02d}{month + 1:02d}"
    zeros = "0000" if int(yymm) <= 1412 else "00000"
    suffix = "" if version is None else f"v{version}"
    assert parse_arxiv_id_or_none(f"{yymm}.{zeros}{suffix}") is None
    assert parse_arxiv_id_or_none(f"{yymm}.{zeros[:-1]}1{suffix}") is not None
    written = old[0][:-3] + "000"
    assert parse_arxiv_id_or_none(written + suffix) is None


@given(version=st.integers(1, MAX_VERSION))
def test_any_version_the_store_can_hold_is_accepted(version: int) -> None:
    """Versions have no fixed number of digits: `acc-phys/0001001v10000` is a valid reference."""
    assert parse_arxiv_id(f"acc-phys/0001001v{version}") == ArxivId("acc-phys/0001001", version)
    assert parse_arxiv_id_or_none(f"acc-phys/0001001v{version + MAX_VERSION}") is None
