"""Tests for bot.domain.names: folding, author keys and the name-matching rules."""

from __future__ import annotations

import itertools
import string
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.names import (
    AuthorKey,
    _key,
    author_key,
    fold,
    fold_for_index,
    fold_keyword,
    given_compatible,
    keys_match,
    keyword_tokens,
    names_ambiguous,
    names_match,
    query_key,
    strip_tex,
)

# Stored spellings of one person each, then spellings only a user would type.
SAME_PERSON: list[tuple[list[str], list[str]]] = [
    (["Grégoire Delétang", "Grégoire Déletang", "Gregoire Deletang", "Delétang, Grégoire",
      "Gr\\'egoire Del\\'etang", "G. Delétang"], ["deletang g", "Deletang"]),
    (["Pedro A. Ortega", "Pedro Ortega", "P. A. Ortega", "Pedro A Ortega", "Ortega, Pedro A."],
     ["Ortega P. A.", "ortega p"]),
    (["Shane Legg", "S. Legg", "Legg, Shane", "SHANE LEGG"], ["legg s", "Legg S.", "legg"]),
    (["Jordi Grau-Moya", "Jordi Grau Moya", "J. Grau-Moya", "Grau-Moya, Jordi"],
     ["Grau-Moya", "grau-moya j"]),
    (["John von Neumann", "J. von Neumann", "von Neumann, John", "Neumann, John"],
     ["von Neumann", "Neumann"]),
    (["Przemysław Olbratowski", "Przemys{\\l}aw Olbratowski", "Przemyslaw Olbratowski"], []),
    (["Bill Gates Jr", "Bill Gates, Jr.", "Bill Gates III", "Gates, Bill"], ["gates b"]),
    (["Shane Legg (DeepMind, London)", "Shane Legg [Google]", "Shane Legg"], []),
    (["Seán O'Brien", "Sean OBrien", "Sean O’Brien"], ["obrien s"]),
]  # fmt: skip
DIFFERENT_PEOPLE = [
    ("Pedro A. Ortega", "Pedro Domingos"),
    ("Shane Legg", "Shane Lee"),
    ("Pedro A. Ortega", "Pedro B. Ortega"),
    ("Shane Legg", "Peter Legg"),
    ("S. Legg", "P. Legg"),
    ("Jordi Grau-Moya", "Jordi Grau"),
    ("Di Wu", "Jian Wu"),
]


def same_person_pairs() -> list[tuple[str, str]]:
    """(query, stored name) for every spelling asked about every other stored spelling."""
    found: list[tuple[str, str]] = []
    for stored, typed in SAME_PERSON:
        found += itertools.permutations(stored, 2)
        found += itertools.product(typed, stored)
    return found


@pytest.mark.parametrize(("query", "name"), same_person_pairs())
def test_spellings_of_one_person_match(query: str, name: str) -> None:
    """Accents, TeX, initials, comma order, hyphens, suffixes, affiliations keep one person."""
    assert names_match(query, name)


@pytest.mark.parametrize(("a", "b"), DIFFERENT_PEOPLE + [(b, a) for a, b in DIFFERENT_PEOPLE])
def test_different_people_do_not_match(a: str, b: str) -> None:
    """Different surnames or contradicting given names/initials never match."""
    assert not names_match(a, b)


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        ("Del\\'etang", "deletang"),
        ("Delétang", "deletang"),
        ('Sch{\\"o}lkopf', "scholkopf"),
        ('Schr\\"{o}dinger', "schrodinger"),
        ("Nu\\~nez", "nunez"),
        ("Fran\\c{c}ois", "francois"),
        ("Fran\\c cois", "francois"),
        ("Stra{\\ss}e", "strasse"),
        ("Stra\\ss e", "strasse"),
        ("Gau{\\ss}", "gauss"),
        ("Przemys{\\l}aw", "przemyslaw"),
        ("Przemysław", "przemyslaw"),
        ("M{\\o}ller", "moller"),
        ("Møller", "moller"),
        ("Erd\\H{o}s", "erdos"),
        ("Erdős", "erdos"),
        ("\\v{S}aponja", "saponja"),
        ("C\\u{a}t\\u{a}lin", "catalin"),
        ("\\.Zygierewicz", "zygierewicz"),
        ("Ros\\'{\\i}o", "rosio"),
        ("Rosío", "rosio"),
        ("Ærø", "aero"),
        ("İstanbul", "istanbul"),
        ("Grau-Moya", "grau moya"),
        ("Pöschl--Teller", "poschl teller"),
        ("  P.A.   Ortega\t", "p a ortega"),
        ("O'Brien", "obrien"),
        ("ﬁnite ½", "finite 1 2"),
        ("", ""),
    ],
)
def test_fold(raw: str, folded: str) -> None:
    """fold strips TeX and Unicode accents, case and punctuation the same way."""
    assert fold(raw) == folded


def test_tex_other_macros_separate_words_and_keep_arguments() -> None:
    """Unknown macros become word breaks; their braced arguments stay as words."""
    assert fold_keyword("A \\emph{sharp} bound on $\\mathbb{T}^{d}$") == "a sharp bound on t d"
    assert strip_tex("\\alpha-stable") == " -stable"


def test_keyword_tokens_split_apostrophes_and_fold() -> None:
    """Keywords keep "newton" out of "Newton's" and fold accents like names do."""
    assert keyword_tokens("Newton's Schrödinger-type LAWS") == [
        "newton", "s", "schrodinger", "type", "laws",
    ]  # fmt: skip
    assert keyword_tokens('Schr\\"odinger') == ["schrodinger"]


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Shane Legg", AuthorKey("legg", ("shane",))),
        ("Pedro A. Ortega", AuthorKey("ortega", ("pedro", "a"))),
        ("P.A.Ortega", AuthorKey("ortega", ("p", "a"))),
        ("Delétang, Grégoire", AuthorKey("deletang", ("gregoire",))),
        ("Jordi Grau-Moya", AuthorKey("moya", ("jordi",))),
        ("Jordi Grau Moya", AuthorKey("moya", ("jordi", "grau"))),
        ("John von Neumann", AuthorKey("neumann", ("john",))),
        ("Johannes Diderik van der Waals", AuthorKey("waals", ("johannes", "diderik"))),
        ("Di Wu", AuthorKey("wu", ("di",))),
        ("Anke-Susanne Müller", AuthorKey("muller", ("anke", "susanne"))),
        ("Kenneth M. Merz Jr", AuthorKey("merz", ("kenneth", "m"))),
        ("Bill Gates, Jr.", AuthorKey("gates", ("bill",))),
        ("Louis Philippe IV", AuthorKey("philippe", ("louis",))),
        ("Qiuyi (Richard) Zhang", AuthorKey("zhang", ("qiuyi",))),
        ("Augustin Kelava (Methods Center", AuthorKey("kelava", ("augustin",))),
        ("Sukarno", AuthorKey("sukarno", ())),
        ("Jr", AuthorKey("jr", ())),
        ("(IRIT)", AuthorKey("", ())),
        ("", AuthorKey("", ())),
    ],
)
def test_author_key(name: str, key: AuthorKey) -> None:
    """Stored names: last token is the surname; particles, compound prefixes, suffixes dropped."""
    assert author_key(name) == key


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("legg s", AuthorKey("legg", ("s",))),
        ("Legg S.", AuthorKey("legg", ("s",))),
        ("Ortega P. A.", AuthorKey("ortega", ("p", "a"))),
        ("Legg, Shane", AuthorKey("legg", ("shane",))),
        ("S Legg", AuthorKey("legg", ("s",))),
        ("von Neumann", AuthorKey("neumann", ())),
        ("van der Waals", AuthorKey("waals", ())),
        ("Grau-Moya", AuthorKey("moya", ())),
        ("Di Wu", AuthorKey("wu", ("di",))),
    ],
)
def test_query_key(text: str, key: AuthorKey) -> None:
    """Typed names also come surname-first with initials, or as a bare (particled) surname."""
    assert query_key(text) == key


def test_query_key_reads_trailing_initials_only_for_queries() -> None:
    """A stored "Legg S" keeps the last-token surname; only typed text is read surname-first."""
    assert author_key("Legg S") == AuthorKey("s", ("legg",))
    assert query_key("Legg S") == AuthorKey("legg", ("s",))


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((), ("shane",), True),
        (("s",), ("shane",), True),
        (("shane",), ("sarah",), False),
        (("s",), ("p",), False),
        (("pedro", "a"), ("pedro",), True),
        (("pedro", "a"), ("p", "a"), True),
        (("pedro", "a"), ("pedro", "b"), False),
        (("pedro", "a"), ("pedro", "alberto", "b"), True),
        (("pedro", "b"), ("pedro", "alberto", "b"), True),
        (("pedro", "c"), ("pedro", "alberto", "b"), False),
        (("p", "b", "a"), ("pedro", "alberto", "b"), False),
        (("jordi", "grau"), ("jordi",), True),
    ],
)
def test_given_compatible(a: tuple[str, ...], b: tuple[str, ...], expected: bool) -> None:
    """First given names agree (initials allowed); the rest is an ordered subsequence."""
    assert given_compatible(a, b) is expected
    assert given_compatible(b, a) is expected


def test_names_ambiguous() -> None:
    """Several spellings of one person are not ambiguous; two different given names are."""
    assert not names_ambiguous(["Pedro A. Ortega", "Pedro Ortega", "P. A. Ortega"])
    assert not names_ambiguous(["Grégoire Delétang", "Gregoire Deletang", "Grégoire Déletang"])
    assert names_ambiguous(["Shane Legg", "Sarah Legg"])
    assert names_ambiguous(["Pedro Ortega", "Pedro A. Ortega", "Pedro B. Ortega"])
    assert not names_ambiguous([])


# ---- properties -------------------------------------------------------------------------

WORD = st.text(alphabet=string.ascii_letters, min_size=2, max_size=10).map(str.capitalize)
NAMES = st.lists(WORD, min_size=2, max_size=4).map(" ".join)
TEX_ACCENTS = ["\\'{}", "\\`{}", "\\^{}", '\\"{}', "{{\\'{}}}", '{{\\"{}}}', "\\'{{{}}}"]
UNICODE_MARKS = ["\u0301", "\u0300", "\u0302", "\u0308", "\u0303", "\u030c"]


@st.composite
def accented_variants(draw: st.DrawFn) -> tuple[str, str]:
    """A plain name and the same name with some vowels accented in Unicode or in TeX."""
    name = draw(NAMES)
    out: list[str] = []
    for char in name:
        style = draw(st.sampled_from(["plain", "tex", "unicode"])) if char in "aeiouAEIOU" else ""
        if style == "tex":
            out.append(draw(st.sampled_from(TEX_ACCENTS)).format(char))
        elif style == "unicode":
            out.append(unicodedata.normalize("NFC", char + draw(st.sampled_from(UNICODE_MARKS))))
        else:
            out.append(char)
    return name, "".join(out)


@settings(max_examples=300)
@given(st.text(max_size=300))
def test_keys_never_raise_and_fold_is_idempotent(text: str) -> None:
    """Any text has a key (possibly empty); folding folded text changes nothing."""
    for key in (author_key(text), query_key(text)):
        assert isinstance(key.surname, str)
        assert all(key.given)
        assert keys_match(key, key) is bool(key.surname)
    assert fold(fold(text)) == fold(text)
    assert fold_keyword(fold_keyword(text)) == fold_keyword(text)


NAMEISH = st.text(alphabet=string.ascii_letters + " .-'`,()[]{}\\~\"^", max_size=40) | NAMES


@settings(max_examples=500)
@given(NAMEISH | st.text(max_size=60))
def test_plain_name_shortcut_agrees_with_the_general_path(name: str) -> None:
    """author_key's ASCII shortcut gives exactly what the general parser gives."""
    assert author_key(name) == _key(name, surname_first=False)


@settings(max_examples=300)
@given(st.text(max_size=200) | st.text(alphabet=string.printable, max_size=200))
def test_index_text_has_the_keyword_tokens(text: str) -> None:
    """What the search index stores splits into exactly the keyword tokens."""
    assert fold_for_index(text).split() == keyword_tokens(text)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=10).map("".join))
def test_keys_of_huge_text_never_raise(piece: str) -> None:
    """5,000 characters of anything are folded and keyed without error."""
    text = (piece * (5_000 // len(piece) + 1))[:5_000]
    author_key(text)
    query_key(text)
    keyword_tokens(text)


@pytest.mark.parametrize(
    "text",
    ["(" * 5_000, "\\" * 5_000, "{" * 2_500 + "}" * 2_500, "a-" * 2_500, ", " * 2_500,
     "Legg " * 1_000, "\\'" * 2_500, "(a(b(c(d" * 600],
)  # fmt: skip
def test_pathological_long_names(text: str) -> None:
    """Adversarial 5,000-character inputs are keyed without error."""
    author_key(text)
    assert names_match(text, text) in (True, False)


@given(NAMES)
def test_a_name_matches_itself(name: str) -> None:
    """Every generated "First [Middle] Last" name matches itself as query and as stored name."""
    assert names_match(name, name)


@st.composite
def same_surname_pair(draw: st.DrawFn) -> tuple[str, str]:
    givens = st.lists(st.sampled_from(["A.", "Al", "Alan", "B", "Bo", "Bob", "C."]), max_size=3)
    surname = draw(WORD)
    return (
        " ".join([*draw(givens), surname]),
        " ".join([*draw(givens), surname]),
    )


@given(same_surname_pair())
def test_matching_is_symmetric_for_stored_names(pair: tuple[str, str]) -> None:
    """Whether two stored names can be one person does not depend on the order asked."""
    a, b = (author_key(n) for n in pair)
    assert keys_match(a, b) == keys_match(b, a)


@given(accented_variants())
def test_accented_and_tex_variants_match(variant: tuple[str, str]) -> None:
    """Adding Unicode or TeX accents to a name keeps it the same person, both ways."""
    plain, accented = variant
    assert fold(accented) == fold(plain)
    assert names_match(accented, plain)
    assert names_match(plain, accented)
