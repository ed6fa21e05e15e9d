"""Whether a parsed query matches a paper: the query tree, a paper's folded text, and
the test the poller runs (`compile_node`). Pure, no I/O; `bot.domain.query` parses.

`evaluate` walks the tree and is the readable reference; `compile_node` turns a
tree into nested closures once, so trying a query on a paper costs a few set
lookups (`PaperText` keeps each text's words as a set) instead of a tree walk
and a scan of the abstract per term.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from bot.domain.models import Paper
from bot.domain.names import AuthorKey, author_key, keys_match, keyword_tokens, query_key

log = logging.getLogger(__name__)


class Field(StrEnum):
    TITLE = "ti"
    ABSTRACT = "abs"
    AUTHOR = "au"
    CATEGORY = "cat"
    ALL = "all"


@dataclass(frozen=True, slots=True)
class Term:
    """One field:value test. `words` are the folded words of a phrase (not for au:/cat:)."""

    field: Field
    text: str  # as typed, without quotes, for explanations
    words: tuple[str, ...]
    author: AuthorKey | None = None
    category: str | None = None  # lower-cased category or archive

    def describe(self) -> str:
        value = f'"{self.text}"' if " " in self.text else self.text
        return f"{self.field.value}:{value}"


@dataclass(frozen=True, slots=True)
class Not:
    child: Node


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Node, ...]


Node = Term | Not | And | Or


@dataclass(frozen=True, slots=True)
class PaperText:
    """A paper's features, folded once and shared by every query tried on it."""

    title: tuple[str, ...]
    abstract: tuple[str, ...]
    comment: tuple[str, ...]
    authors: tuple[AuthorKey, ...]
    categories: frozenset[str]  # lower-cased
    # The same words as sets, built once so a term is a set lookup, not a scan.
    title_words: frozenset[str] = field(init=False, repr=False, compare=False)
    abstract_words: frozenset[str] = field(init=False, repr=False, compare=False)
    comment_words: frozenset[str] = field(init=False, repr=False, compare=False)
    surnames: frozenset[str] = field(init=False, repr=False, compare=False)
    archives: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        title, abstract = frozenset(self.title), frozenset(self.abstract)
        comment = frozenset(self.comment)
        object.__setattr__(self, "title_words", title)
        object.__setattr__(self, "abstract_words", abstract)
        object.__setattr__(self, "comment_words", comment)
        object.__setattr__(self, "surnames", frozenset(a.surname for a in self.authors))
        object.__setattr__(self, "archives", frozenset(archive_of(c) for c in self.categories))

    @classmethod
    def of(cls, paper: Paper) -> PaperText:
        return cls(
            title=tuple(keyword_tokens(paper.title)),
            abstract=tuple(keyword_tokens(paper.abstract)),
            comment=tuple(keyword_tokens(paper.comment or "")),
            authors=tuple(author_key(name) for name in paper.authors),
            categories=frozenset(
                c.lower() for c in (paper.primary_category, *paper.categories) if c
            ),
        )


# ---- matching ------------------------------------------------------------------------


def has_phrase(tokens: tuple[str, ...], words: frozenset[str], phrase: tuple[str, ...]) -> bool:
    """Whether `phrase` occurs in `tokens` (whose set is `words`) as consecutive tokens."""
    first = phrase[0]
    if first not in words:
        return False
    width = len(phrase)
    if width == 1:
        return True
    if not words.issuperset(phrase):
        return False
    # tuple.index finds each occurrence of the first word in C, not a Python loop.
    start = tokens.index(first)
    while True:
        if tokens[start : start + width] == phrase:
            return True
        try:
            start = tokens.index(first, start + 1)
        except ValueError:
            return False


def category_matches(wanted: str, categories: frozenset[str]) -> bool:
    if "." in wanted:
        return wanted in categories
    # An archive (`cs`, `math`) or a category without subject class (`hep-th`).
    return wanted in categories or any(c.startswith(wanted + ".") for c in categories)


def looks_like_category(text: str) -> bool:
    """`cs.LG`, `math-ph.XX`: a bare `all:` term that can also name a category."""
    archive, dot, subject = text.partition(".")
    return bool(dot and archive and subject) and " " not in text


def term_matches(term: Term, text: PaperText) -> bool:
    field = term.field
    if field is Field.AUTHOR:
        assert term.author is not None
        return any(keys_match(term.author, key) for key in text.authors)
    if field is Field.CATEGORY:
        assert term.category is not None
        return category_matches(term.category, text.categories)
    if field is Field.TITLE:
        return has_phrase(text.title, text.title_words, term.words)
    if field is Field.ABSTRACT:
        return has_phrase(text.abstract, text.abstract_words, term.words)
    # all: the words anywhere, an author of that name, or that category (`all:cs.LG`).
    if has_phrase(text.title, text.title_words, term.words):
        return True
    if has_phrase(text.abstract, text.abstract_words, term.words):
        return True
    if has_phrase(text.comment, text.comment_words, term.words):
        return True
    key = query_key(term.text)
    if key.surname and any(keys_match(key, a) for a in text.authors):
        return True
    return looks_like_category(term.text) and term.text.lower() in text.categories


def evaluate(node: Node, text: PaperText) -> bool:
    """The tree-walking reference for `compile_node` (which `Query.matches` uses)."""
    if isinstance(node, Term):
        return term_matches(node, text)
    if isinstance(node, Not):
        return not evaluate(node.child, text)
    if isinstance(node, And):
        return all(evaluate(child, text) for child in node.children)
    return any(evaluate(child, text) for child in node.children)


Test = Callable[[PaperText], bool]


def compile_node(node: Node) -> Test:
    """`node` as one function of a paper's text, deciding exactly as `evaluate(node, text)`.

    Everything that depends on the query alone (a term's author key, which set a
    field reads, how many children a group has) is worked out here, once.
    """
    if isinstance(node, Term):
        return _compile_term(node)
    if isinstance(node, Not):
        child = compile_node(node.child)
        return lambda text: not child(text)
    tests = tuple(compile_node(c) for c in node.children)
    if len(tests) == 1:
        return tests[0]
    if isinstance(node, And):
        if len(tests) == 2:
            first, second = tests
            return lambda text: first(text) and second(text)
        return lambda text: all(t(text) for t in tests)
    if len(tests) == 2:
        first, second = tests
        return lambda text: first(text) or second(text)
    return lambda text: any(t(text) for t in tests)


def _compile_term(term: Term) -> Test:
    if term.field is Field.AUTHOR:
        assert term.author is not None
        wanted = term.author
        surname = wanted.surname

        def author(text: PaperText) -> bool:
            return surname in text.surnames and any(keys_match(wanted, a) for a in text.authors)

        return author
    if term.field is Field.CATEGORY:
        assert term.category is not None
        category = term.category
        if "." in category:
            return lambda text: category in text.categories
        return lambda text: category_matches(category, text.categories)
    phrase = term.words
    if len(phrase) == 1:  # the common case: one word, a set lookup
        word = phrase[0]
        if term.field is Field.TITLE:
            return lambda text: word in text.title_words
        if term.field is Field.ABSTRACT:
            return lambda text: word in text.abstract_words
    if term.field is Field.TITLE:
        return lambda text: has_phrase(text.title, text.title_words, phrase)
    if term.field is Field.ABSTRACT:
        return lambda text: has_phrase(text.abstract, text.abstract_words, phrase)
    # all: as in `term_matches`, with the typed text's author key and category test done once.
    key = query_key(term.text)
    name = key if key.surname else None
    category_name = term.text.lower() if looks_like_category(term.text) else None

    def anywhere(text: PaperText) -> bool:
        if (
            has_phrase(text.title, text.title_words, phrase)
            or has_phrase(text.abstract, text.abstract_words, phrase)
            or has_phrase(text.comment, text.comment_words, phrase)
        ):
            return True
        if (
            name is not None
            and name.surname in text.surnames
            and any(keys_match(name, a) for a in text.authors)
        ):
            return True
        return category_name is not None and category_name in text.categories

    return anywhere


def positive_terms(node: Node) -> Iterable[Term]:
    if isinstance(node, Term):
        yield node
    elif isinstance(node, And | Or):
        for child in node.children:
            yield from positive_terms(child)


def archive_of(category: str) -> str:
    return category.split(".", 1)[0]
