"""arXiv-style query expressions: parsing, errors, matching and index keys."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain.errors import InvalidInputError
from bot.domain.models import Paper
from bot.domain.query import (
    MAX_QUERY_LENGTH,
    MAX_TERMS,
    KeyKind,
    PaperText,
    QuerySyntaxError,
    paper_keys,
    parse_query,
)
from bot.domain.query_eval import compile_node, evaluate, has_phrase

EXAMPLE = 'cat:cs.LG AND (ti:"length generalization" OR abs:"positional encoding") ANDNOT ti:survey'


def paper(
    title: str = "A paper",
    abstract: str = "Nothing to see.",
    authors: tuple[str, ...] = ("Ada Lovelace",),
    primary: str = "cs.LG",
    categories: tuple[str, ...] = (),
    comment: str | None = None,
) -> Paper:
    return Paper(
        id="2401.00001",
        version=1,
        title=title,
        abstract=abstract,
        authors=authors,
        primary_category=primary,
        categories=(primary, *categories),
        comment=comment,
    )


def test_issue_example_matches_title_or_abstract_and_excludes_surveys() -> None:
    """The issue's example keeps a cs.LG paper on length generalization and drops a survey."""
    q = parse_query(EXAMPLE)
    assert q.matches(paper(title="On Length Generalization in Transformers"))
    assert q.matches(paper(abstract="We study positional encoding schemes."))
    assert not q.matches(paper(title="Length generalization: a survey"))
    assert not q.matches(paper(title="Length generalization", primary="cs.CL"))
    assert q.matches(paper(title="Length generalization", primary="cs.CL", categories=("cs.LG",)))
    assert not q.matches(paper(title="Length of generalization"))


def test_operators_are_upper_case_whole_words() -> None:
    """`and` and `ANDROID` are words; `AND`, `OR`, `NOT` are operators."""
    q = parse_query("ti:ANDROID ti:and ti:robots")
    assert q.matches(paper(title="Android and robots"))
    assert not q.matches(paper(title="Android robots"))
    q = parse_query("ti:cats OR ti:dogs")
    assert q.matches(paper(title="Dogs")) and q.matches(paper(title="Cats"))
    q = parse_query("ti:cats NOT ti:dogs")
    assert q.matches(paper(title="Cats")) and not q.matches(paper(title="Cats and dogs"))


def test_field_applies_to_a_group() -> None:
    """`ti:(a OR b)` looks for a or b in the title only."""
    q = parse_query("ti:(transformer OR attention)")
    assert q.matches(paper(title="Attention is all you need"))
    assert not q.matches(paper(abstract="attention"))


def test_words_match_whole_words_like_keyword_subscriptions() -> None:
    """A word matches whole folded words, accents and TeX folded: `gen` is not `generalization`."""
    assert not parse_query("ti:gen").matches(paper(title="Generalization"))
    assert parse_query('ti:"schrodinger equation"').matches(
        paper(title=r"The Schr\"odinger Equation")
    )
    assert parse_query("abs:Schrödinger").matches(paper(abstract="schrodinger"))


def test_author_terms_use_author_matching() -> None:
    """`au:"P. A. Ortega"` finds Pedro A. Ortega, not Pedro Domingos; `au:Ortega_P` works."""
    ortega = paper(authors=("Pedro A. Ortega", "Someone Else"))
    domingos = paper(authors=("Pedro Domingos",))
    other_ortega = paper(authors=("Pedro B. Ortega",))
    for expression in ('au:"P. A. Ortega"', "au:Ortega_P", 'au:"Ortega, Pedro"'):
        q = parse_query(expression)
        assert q.matches(ortega), expression
        assert not q.matches(domingos), expression
    assert not parse_query('au:"P. A. Ortega"').matches(other_ortega)
    assert parse_query("au:Deletang").matches(paper(authors=(r"Gr\'egoire Del\'etang",)))


def test_categories_exact_or_whole_archive() -> None:
    """`cat:cs.LG` is that category (primary or cross-list); `cat:cs` is every cs.* category."""
    assert parse_query("cat:cs.LG").matches(paper(primary="stat.ML", categories=("cs.LG",)))
    assert not parse_query("cat:cs.LG").matches(paper(primary="cs.CL"))
    assert parse_query("cat:cs").matches(paper(primary="cs.CL"))
    assert not parse_query("cat:cs").matches(paper(primary="math.CO"))
    assert parse_query("cat:hep-th").matches(paper(primary="hep-th"))
    assert parse_query("cat:math.*").matches(paper(primary="math.CO"))


def test_all_field_and_bare_terms_search_everything() -> None:
    """A bare term looks in title, abstract, comment, authors and (for `cs.LG`) categories."""
    assert parse_query("legg").matches(paper(authors=("Shane Legg",)))
    assert parse_query("all:neurips").matches(paper(comment="Accepted at NeurIPS 2024"))
    assert parse_query("all:cs.CL").matches(paper(primary="cs.CL"))
    assert not parse_query("all:cs.CL").matches(paper(primary="cs.LG"))


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("ti:(a OR b", "expected ) or OR at the end"),
        ("x AND", "ends too early"),
        ('ti:"length generalization', "quote that is never closed"),
        ("a ) b", "at character 3: found `)`"),
        ("ti:cats AND OR dogs", "at character 13"),
    ],
)
def test_syntax_errors_say_where_and_what_was_expected(expression: str, fragment: str) -> None:
    """A syntax error names the position and what was expected."""
    with pytest.raises(QuerySyntaxError) as info:
        parse_query(expression)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("x" * (MAX_QUERY_LENGTH + 1), "limit is"),
        (" ".join(f"w{i}" for i in range(MAX_TERMS + 1)), "terms"),
        ("(" * 9 + "a" + ")" * 9, "parentheses"),
        ("NOT ti:survey", "needs a term that every match must contain"),
        ("", "empty"),
        ("au:...", "author name"),
        ("ti:!!!", "no words"),
    ],
)
def test_limits_and_unindexable_queries_are_refused(expression: str, fragment: str) -> None:
    """Too long, too many terms, too deep, or nothing every match must contain: a clear refusal."""
    with pytest.raises(InvalidInputError) as info:
        parse_query(expression)
    assert fragment in str(info.value)


def test_error_echo_cannot_mention_or_break_code_spans() -> None:
    """User text echoed in an error cannot form a mention or close the code span."""
    with pytest.raises(QuerySyntaxError) as info:
        parse_query("a ) @everyone`")
    message = str(info.value)
    assert "@everyone" not in message.replace("\u200b", "X")
    assert message.count("`") % 2 == 0


def test_hostile_input_at_the_cap_parses_quickly() -> None:
    """Inputs at the length cap made of operators, quotes and parentheses finish (linear parser)."""
    for expression in (
        "(" * 150 + ")" * 150,
        '"' * MAX_QUERY_LENGTH,
        "a AND " * 50,
        "a " * 150,
        "ti:" * 100,
    ):
        with pytest.raises(InvalidInputError):
            parse_query(expression[:MAX_QUERY_LENGTH])


def test_explain_lists_the_positive_terms_that_matched() -> None:
    """`explain` names the matching terms, never the excluded ones."""
    q = parse_query(EXAMPLE)
    hit = paper(title="Length generalization", abstract="Positional encoding.")
    assert q.explain(hit) == (
        "cat:cs.LG",
        'ti:"length generalization"',
        'abs:"positional encoding"',
    )
    assert q.explain(paper(title="Unrelated")) == ()


def test_required_keys_pick_a_selective_branch_of_an_and() -> None:
    """An AND is indexed on one of its terms; an OR on all of its branches."""
    assert parse_query("cat:cs.LG au:Legg").required_keys == {(KeyKind.SURNAME, "legg")}
    assert parse_query("ti:transformer OR au:Legg").required_keys == {
        (KeyKind.TOKEN, "transformer"),
        (KeyKind.SURNAME, "legg"),
    }
    assert parse_query("cat:cs ANDNOT cat:cs.LG").required_keys == {(KeyKind.ARCHIVE, "cs")}


_WORDS = ["length", "generalization", "survey", "graph", "neural", "legg", "ortega"]
_FIELDS = ["", "ti:", "abs:", "all:"]
_CATS = ["cs.LG", "cs.CL", "math.CO", "stat.ML"]


@st.composite
def expressions(draw: st.DrawFn, depth: int = 0) -> str:
    choice = draw(st.integers(0, 6 if depth < 3 else 2))
    if choice == 0:
        return draw(st.sampled_from(_FIELDS)) + draw(st.sampled_from(_WORDS))
    if choice == 1:
        return "cat:" + draw(st.sampled_from([*_CATS, "cs", "math"]))
    if choice == 2:
        return "au:" + draw(st.sampled_from(["Legg", '"P. A. Ortega"', "Lovelace_A"]))
    left = draw(expressions(depth + 1))
    right = draw(expressions(depth + 1))
    op = draw(st.sampled_from(["AND", "OR", "ANDNOT", ""]))
    return f"({left} {op} {right})"


def _drawn_paper(
    draw: st.DrawFn,
    vocabulary: list[str],
    names: list[str],
    *,
    most_words: int,
    fewest_authors: int,
) -> Paper:
    """A paper whose texts are drawn from `vocabulary` and authors from `names`."""
    words = st.lists(st.sampled_from(vocabulary), max_size=most_words).map(" ".join)
    authors = st.lists(st.sampled_from(names), min_size=fewest_authors, max_size=3)
    cats = draw(st.lists(st.sampled_from(_CATS), min_size=1, max_size=3, unique=True))
    return paper(
        title=draw(words),
        abstract=draw(words),
        authors=tuple(draw(authors)),
        primary=cats[0],
        categories=tuple(cats[1:]),
        comment=draw(st.none() | words),
    )


@st.composite
def papers(draw: st.DrawFn) -> Paper:
    return _drawn_paper(
        draw,
        [*_WORDS, "the", "a"],
        ["Shane Legg", "Pedro A. Ortega", "Pedro Domingos", "Ada Lovelace"],
        most_words=6,
        fewest_authors=1,
    )


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(expressions(), papers())
def test_every_match_has_one_of_the_query_keys(expression: str, p: Paper) -> None:
    """The index never hides a match: a matching paper always carries one of the query's keys."""
    try:
        q = parse_query(expression)
    except InvalidInputError:
        return  # e.g. a pure negation
    if q.matches(p):
        assert q.required_keys & paper_keys(p), (expression, p)


# ---- the compiled form `Query.matches` uses, against the tree-walking reference -------------


@pytest.mark.parametrize(
    ("text", "phrase", "found"),
    [
        ("a b c", "a b", True),
        ("a a b", "a b", True),  # the first occurrence of the first word is not the one
        ("a c a c a b", "a b", True),
        ("b a", "a b", False),  # every word present, not in order
        ("a c b", "a b", False),  # in order, not consecutive
        ("c a", "a b", False),  # the first word last: the phrase runs off the end
        ("a b", "a b c", False),  # longer than the text
        ("x y z", "z", True),
        ("", "a", False),
    ],
)
def test_has_phrase_finds_consecutive_words_only(text: str, phrase: str, found: bool) -> None:
    """The set shortcut and the C-level search find exactly the consecutive occurrences."""
    tokens = tuple(text.split())
    assert has_phrase(tokens, frozenset(tokens), tuple(phrase.split())) is found


def test_paper_text_word_sets_do_not_affect_equality() -> None:
    """The derived word sets follow the folded words, and equality still compares those."""
    text = PaperText.of(paper(title="Neural graph neural", abstract="A graph."))
    assert text.title_words == {"neural", "graph"}
    assert text.abstract_words == {"a", "graph"}
    assert text.surnames == {"lovelace"}
    assert text == PaperText.of(paper(title="Neural graph neural", abstract="A graph."))


_PHRASE_WORDS = ["neural", "graph", "legg", "a"]  # few words: phrases and repeats are common


@st.composite
def compiled_expressions(draw: st.DrawFn, depth: int = 0) -> str:
    """Terms of every field, quoted phrases with repeated words, every operator, nesting."""
    choice = draw(st.integers(0, 7 if depth < 3 else 3))
    if choice == 0:
        words = draw(st.lists(st.sampled_from(_PHRASE_WORDS), min_size=1, max_size=3))
        return draw(st.sampled_from(_FIELDS)) + '"' + " ".join(words) + '"'
    if choice == 1:
        return "cat:" + draw(st.sampled_from([*_CATS, "cs", "math", "stat.*"]))
    if choice == 2:
        name = draw(st.sampled_from(["Legg", '"S. Legg"', '"P. A. Ortega"', "Ortega_P", "Graph"]))
        return draw(st.sampled_from(["au:", "all:", ""])) + name
    if choice == 3:
        return draw(st.sampled_from(["all:cs.LG", "cs.CL", "all:math.CO"]))
    left = draw(compiled_expressions(depth + 1))
    right = draw(compiled_expressions(depth + 1))
    if choice == 7:
        return f"NOT {left}"
    op = draw(st.sampled_from(["AND", "OR", "ANDNOT", ""]))
    field = draw(st.sampled_from(["", "", "ti:", "abs:"]))
    return f"{field}({left} {op} {right})"


@st.composite
def phrase_papers(draw: st.DrawFn) -> Paper:
    return _drawn_paper(
        draw,
        _PHRASE_WORDS,
        ["Shane Legg", "Peter Legg", "Pedro A. Ortega", "Pedro B. Ortega"],
        most_words=8,
        fewest_authors=0,
    )


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(compiled_expressions(), phrase_papers())
def test_compiled_query_decides_like_the_tree_walk(expression: str, p: Paper) -> None:
    """`Query.matches` (compiled closures, set lookups) agrees with `evaluate` everywhere."""
    try:
        q = parse_query(expression)
    except InvalidInputError:
        return  # e.g. a pure negation
    text = PaperText.of(p)
    assert q.matches(text) is evaluate(q.root, text), (expression, p)
    assert compile_node(q.root)(text) is evaluate(q.root, text), (expression, p)


def test_key_options_offer_each_conjunct_of_an_and() -> None:
    """An AND can be looked up by any of its indexable conjuncts; `required_keys` comes first."""
    q = parse_query("cat:cs.LG AND ti:the ANDNOT au:Legg")
    assert q.key_options[0] == q.required_keys
    assert set(q.key_options) == {
        frozenset({(KeyKind.CATEGORY, "cs.lg")}),
        frozenset({(KeyKind.TOKEN, "the")}),
    }
    assert parse_query("ti:a OR ti:b").key_options == (
        frozenset({(KeyKind.TOKEN, "a"), (KeyKind.TOKEN, "b")}),
    )


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(compiled_expressions(), phrase_papers())
def test_every_match_meets_every_key_option(expression: str, p: Paper) -> None:
    """Whichever key option the poller buckets a query under, no matching paper is missed."""
    try:
        q = parse_query(expression)
    except InvalidInputError:
        return
    if q.matches(p):
        keys = paper_keys(p)
        for option in q.key_options:
            assert option & keys, (expression, option, p)
