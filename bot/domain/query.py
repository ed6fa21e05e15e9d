"""arXiv-style query expressions for query subscriptions: parse, index, match. Pure, no I/O.

The syntax is arXiv's own search syntax, as its API documents it:

- terms are words or quoted phrases, optionally prefixed by a field:
  `ti:` (title), `abs:` (abstract), `au:` (author), `cat:` (category), `all:`
  (any of them, also the comment); a term without a field means `all:`;
- `AND`, `OR`, `ANDNOT` and a leading `NOT` (upper case, as arXiv requires),
  parentheses, and a field in front of a group (`ti:(transformer OR attention)`);
- two terms side by side mean `AND`.

Example: `cat:cs.LG AND (ti:"length generalization" OR abs:"positional encoding") ANDNOT ti:survey`.

Matching reads the same folded words as keyword subscriptions (a phrase's words
occur consecutively, as whole words) and the same author keys as author
subscriptions (`au:"P. A. Ortega"` finds Pedro A. Ortega, not Pedro Domingos;
arXiv's `au:Ortega_P` form works too). `cat:cs` matches every `cs.*` category.

A query is stored under `required_keys`: a set of keys of which every matching
paper has at least one, so the poller looks a query up by the paper's features
the way it looks up keyword and author subscriptions, instead of trying every
query on every paper. A query with no such key (`NOT ti:survey`) is refused.

The parser is Lark's LALR(1): linear in the input, which is capped at
`MAX_QUERY_LENGTH` characters and `MAX_TERMS` terms before anything else runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache

from lark import Lark, Token, Tree
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

from bot.domain.errors import InvalidInputError
from bot.domain.limits import MAX_QUERY_LENGTH
from bot.domain.models import Paper
from bot.domain.names import AuthorKey, author_key, keys_match, keyword_tokens, query_key

log = logging.getLogger(__name__)

MAX_TERMS = 20
MAX_DEPTH = 8

_GRAMMAR = r"""
?start: or_expr

?or_expr: and_expr
        | or_expr OR and_expr            -> or_

?and_expr: unary
         | and_expr AND unary            -> and_
         | and_expr unary                -> and_
         | and_expr ANDNOT unary         -> andnot

?unary: NOT unary                        -> not_
      | atom

?atom: FIELD? operand                    -> field_term

?operand: PHRASE                         -> phrase
        | WORD                           -> word
        | "(" or_expr ")"                -> group

// Operators are upper case and whole words; a lower-case "and" is a word.
OR.3: /OR(?=[\s()"]|$)/
AND.3: /AND(?=[\s()"]|$)/
ANDNOT.3: /ANDNOT(?=[\s()"]|$)/
NOT.3: /NOT(?=[\s()"]|$)/
FIELD.2: /(?i:ti|abs|au|cat|all):/
PHRASE: /"[^"]*"/
WORD: /[^\s()"]+/

%import common.WS
%ignore WS
"""


class Field(StrEnum):
    TITLE = "ti"
    ABSTRACT = "abs"
    AUTHOR = "au"
    CATEGORY = "cat"
    ALL = "all"


class KeyKind(StrEnum):
    """The paper features a query can be looked up by (the poller computes the same)."""

    CATEGORY = "category"  # a full category, `cs.LG`
    ARCHIVE = "archive"  # the part before the dot, `cs`
    SURNAME = "surname"  # an author key's surname
    TOKEN = "token"  # a folded word of the title or abstract


Key = tuple[KeyKind, str]


class QuerySyntaxError(InvalidInputError):
    """A query that does not parse; the message says where and what was expected."""


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
    words: frozenset[str] = field(init=False, repr=False, compare=False)  # all three
    surnames: frozenset[str] = field(init=False, repr=False, compare=False)
    archives: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        title, abstract = frozenset(self.title), frozenset(self.abstract)
        comment = frozenset(self.comment)
        object.__setattr__(self, "title_words", title)
        object.__setattr__(self, "abstract_words", abstract)
        object.__setattr__(self, "comment_words", comment)
        object.__setattr__(self, "words", title | abstract | comment)
        object.__setattr__(self, "surnames", frozenset(a.surname for a in self.authors))
        object.__setattr__(self, "archives", frozenset(_archive(c) for c in self.categories))

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


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed query subscription."""

    source: str  # the expression as the user typed it (whitespace collapsed)
    root: Node
    required_keys: frozenset[Key]
    # `root` compiled once into nested closures (`compile_node`): the poller tries
    # a query on many papers, and a tree walk per paper costs several times more.
    test: Callable[[PaperText], bool] = field(init=False, repr=False, compare=False)
    # Every key set that, like `required_keys`, meets the keys of each matching paper
    # (`required_keys` first): the poller buckets the query under whichever of them
    # is rarest in the batch at hand (`cat:cs.LG AND ti:the` under cs.LG, not "the").
    key_options: tuple[frozenset[Key], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "test", compile_node(self.root))
        options = dict.fromkeys((self.required_keys, *_key_options(self.root)))
        object.__setattr__(self, "key_options", tuple(o for o in options if o))

    def matches(self, paper: Paper | PaperText) -> bool:
        text = paper if isinstance(paper, PaperText) else PaperText.of(paper)
        return self.test(text)

    def explain(self, paper: Paper | PaperText) -> tuple[str, ...]:
        """The positive terms that matched `paper` (empty when the query does not match)."""
        text = paper if isinstance(paper, PaperText) else PaperText.of(paper)
        if not _evaluate(self.root, text):
            return ()
        return tuple(
            dict.fromkeys(t.describe() for t in _positive_terms(self.root) if _term(t, text))
        )


@cache
def _parser() -> Lark:
    return Lark(_GRAMMAR, parser="lalr", lexer="basic", maybe_placeholders=False)


_EXPECTED_NAMES = {
    "WORD": "a word",
    "PHRASE": 'a "quoted phrase"',
    "FIELD": "a field (ti:, abs:, au:, cat:, all:)",
    "LPAR": "(",
    "RPAR": ")",
    "AND": "AND",
    "OR": "OR",
    "ANDNOT": "ANDNOT",
    "NOT": "NOT",
    "$END": "the end of the query",
}


def _expected(names: Iterable[str]) -> str:
    words = sorted({_EXPECTED_NAMES.get(n, n.lower()) for n in names})
    if not words:
        return "something else"
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _syntax_error(source: str, error: LarkError) -> QuerySyntaxError:
    if isinstance(error, UnexpectedEOF):
        return QuerySyntaxError(
            f"The query ends too early: expected {_expected(error.expected)} at the end."
        )
    if isinstance(error, UnexpectedToken):
        column = error.column if isinstance(error.column, int) and error.column > 0 else 0
        if error.token.type == "$END":
            return QuerySyntaxError(
                f"The query ends too early: expected {_expected(error.expected)} at the end."
            )
        found = str(error.token)[:20]
        return QuerySyntaxError(
            f"Query syntax error at character {column}: found `{_safe(found)}`, "
            f"expected {_expected(error.expected)}."
        )
    if isinstance(error, UnexpectedCharacters):
        pos = error.pos_in_stream if isinstance(error.pos_in_stream, int) else -1
        char = source[pos] if 0 <= pos < len(source) else "?"
        what = "a quote that is never closed" if char == '"' else f"`{_safe(char)}`"
        return QuerySyntaxError(f"Query syntax error at character {error.column}: found {what}.")
    return QuerySyntaxError("The query could not be read.")


def _safe(text: str) -> str:
    """Echo of user text inside an error: no backticks, no mentions, short."""
    return text.replace("`", "'").replace("@", "@\u200b")[:20]


def parse_query(expression: str) -> Query:
    """Parse an arXiv-style query.

    Raises `QuerySyntaxError` or `InvalidInputError`, whose messages are safe to show.
    """
    source = " ".join(expression.split())
    if not source:
        raise InvalidInputError("The query is empty.")
    if len(source) > MAX_QUERY_LENGTH:
        raise InvalidInputError(
            f"The query is {len(source)} characters long; the limit is {MAX_QUERY_LENGTH}."
        )
    try:
        tree = _parser().parse(source)
    except LarkError as error:
        raise _syntax_error(source, error) from None
    root = _build(tree, Field.ALL, depth=0, counter=[0])
    keys = _required_keys(root)
    if not keys:
        raise InvalidInputError(
            "The query needs a term that every match must contain, "
            "e.g. `cat:cs.LG ANDNOT ti:survey` rather than `NOT ti:survey`."
        )
    return Query(source, root, keys)


def _build(node: Tree[Token] | Token, field: Field, *, depth: int, counter: list[int]) -> Node:
    if isinstance(node, Token):  # pragma: no cover - every token sits under a rule
        raise QuerySyntaxError("The query could not be read.")
    data = node.data
    children = [c for c in node.children if not (isinstance(c, Token) and c.type in _OPS)]
    if data == "or_":
        parts = [_build(c, field, depth=depth, counter=counter) for c in children]
        return Or(tuple(_flatten(parts, Or)))
    if data == "and_":
        parts = [_build(c, field, depth=depth, counter=counter) for c in children]
        return And(tuple(_flatten(parts, And)))
    if data == "andnot":
        left, right = children
        return And(
            (
                _build(left, field, depth=depth, counter=counter),
                Not(_build(right, field, depth=depth, counter=counter)),
            )
        )
    if data == "not_":
        return Not(_build(children[0], field, depth=depth, counter=counter))
    if data == "field_term":
        if len(children) == 2:
            field = Field(str(children[0]).rstrip(":").lower())
        return _build(children[-1], field, depth=depth, counter=counter)
    if data == "group":
        if depth >= MAX_DEPTH:
            raise InvalidInputError(f"The query nests parentheses more than {MAX_DEPTH} deep.")
        return _build(children[0], field, depth=depth + 1, counter=counter)
    if data in ("word", "phrase"):
        counter[0] += 1
        if counter[0] > MAX_TERMS:
            raise InvalidInputError(f"The query has more than {MAX_TERMS} terms.")
        raw = str(children[0])
        return _make_term(field, raw[1:-1] if data == "phrase" else raw)
    raise QuerySyntaxError("The query could not be read.")  # pragma: no cover


_OPS = frozenset({"OR", "AND", "ANDNOT", "NOT"})


def _flatten(parts: list[Node], kind: type[And] | type[Or]) -> Iterable[Node]:
    for part in parts:
        if isinstance(part, kind):
            yield from part.children
        else:
            yield part


def _make_term(field: Field, text: str) -> Term:
    text = " ".join(text.split())
    if not text:
        raise InvalidInputError('An empty phrase ("") has nothing to look for.')
    if field is Field.AUTHOR:
        key = query_key(text.replace("_", " "))
        if not key.surname:
            raise InvalidInputError(f"`au:{_safe(text)}` does not look like an author name.")
        return Term(field, text, (), author=key)
    if field is Field.CATEGORY:
        category = text.lower().removesuffix(".*").removesuffix("*")
        if not category or any(c.isspace() for c in category):
            raise InvalidInputError(f"`cat:{_safe(text)}` is not a category.")
        return Term(field, text, (), category=category)
    words = tuple(keyword_tokens(text))
    if not words:
        raise InvalidInputError(f"`{_safe(text)}` has no words to look for.")
    return Term(field, text, words)


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


def _category_matches(wanted: str, categories: frozenset[str]) -> bool:
    if "." in wanted:
        return wanted in categories
    # An archive (`cs`, `math`) or a category without subject class (`hep-th`).
    return wanted in categories or any(c.startswith(wanted + ".") for c in categories)


def _looks_like_category(text: str) -> bool:
    """`cs.LG`, `math-ph.XX`: a bare `all:` term that can also name a category."""
    archive, dot, subject = text.partition(".")
    return bool(dot and archive and subject) and " " not in text


def _term(term: Term, text: PaperText) -> bool:
    field = term.field
    if field is Field.AUTHOR:
        assert term.author is not None
        return any(keys_match(term.author, key) for key in text.authors)
    if field is Field.CATEGORY:
        assert term.category is not None
        return _category_matches(term.category, text.categories)
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
    return _looks_like_category(term.text) and term.text.lower() in text.categories


def _evaluate(node: Node, text: PaperText) -> bool:
    """The tree-walking reference for `compile_node` (which `Query.matches` uses)."""
    if isinstance(node, Term):
        return _term(node, text)
    if isinstance(node, Not):
        return not _evaluate(node.child, text)
    if isinstance(node, And):
        return all(_evaluate(child, text) for child in node.children)
    return any(_evaluate(child, text) for child in node.children)


Test = Callable[[PaperText], bool]


def compile_node(node: Node) -> Test:
    """`node` as one function of a paper's text, deciding exactly as `_evaluate(node, text)`.

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
        return lambda text: _category_matches(category, text.categories)
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
    # all: as in `_term`, with the typed text's author key and category test done once.
    key = query_key(term.text)
    name = key if key.surname else None
    category_name = term.text.lower() if _looks_like_category(term.text) else None

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


def _positive_terms(node: Node) -> Iterable[Term]:
    if isinstance(node, Term):
        yield node
    elif isinstance(node, And | Or):
        for child in node.children:
            yield from _positive_terms(child)


# ---- index keys ------------------------------------------------------------------------


def _archive(category: str) -> str:
    return category.split(".", 1)[0]


def _term_keys(term: Term) -> frozenset[Key]:
    if term.field is Field.AUTHOR:
        assert term.author is not None
        return frozenset({(KeyKind.SURNAME, term.author.surname)})
    if term.field is Field.CATEGORY:
        assert term.category is not None
        if "." in term.category:
            return frozenset({(KeyKind.CATEGORY, term.category)})
        return frozenset({(KeyKind.ARCHIVE, term.category)})
    token = max(term.words, key=len)
    if term.field in (Field.TITLE, Field.ABSTRACT):
        return frozenset({(KeyKind.TOKEN, token)})
    # all: a word of the title, abstract or comment, an author surname, a category.
    keys: set[Key] = {(KeyKind.TOKEN, token)}
    key = query_key(term.text)
    if key.surname:
        keys.add((KeyKind.SURNAME, key.surname))
    if _looks_like_category(term.text):
        keys.add((KeyKind.CATEGORY, term.text.lower()))
    return frozenset(keys)


_KIND_COST = {
    KeyKind.SURNAME: 1.0,
    KeyKind.TOKEN: 4.0,
    KeyKind.CATEGORY: 50.0,
    KeyKind.ARCHIVE: 500.0,
}


def _cost(keys: frozenset[Key]) -> float:
    """A rough guess of how many papers a key set lets through: smaller is better."""
    total = 0.0
    for kind, value in keys:
        cost = _KIND_COST[kind]
        if kind is KeyKind.TOKEN:
            cost *= 8.0 / max(len(value), 1)  # short words are common words
        total += cost
    return total


def _required_keys(node: Node) -> frozenset[Key]:
    """Keys of which every paper matching `node` has one; empty when there is no such set."""
    if isinstance(node, Term):
        return _term_keys(node)
    if isinstance(node, Not):
        return frozenset()
    if isinstance(node, And):
        options = [k for k in (_required_keys(c) for c in node.children) if k]
        return min(options, key=_cost) if options else frozenset()
    keys: set[Key] = set()
    for child in node.children:
        child_keys = _required_keys(child)
        if not child_keys:
            return frozenset()
        keys |= child_keys
    return frozenset(keys)


def _key_options(node: Node) -> list[frozenset[Key]]:
    """Key sets each of which every paper matching `node` meets (one per conjunct of an AND)."""
    if isinstance(node, Term):
        return [_term_keys(node)]
    if isinstance(node, Not):
        return []
    if isinstance(node, And):
        return [option for child in node.children for option in _key_options(child)]
    keys = _required_keys(node)  # an OR: every branch must give a key
    return [keys] if keys else []


def paper_keys(paper: Paper | PaperText) -> frozenset[Key]:
    """Every key `paper` can be looked up by; a query is a candidate when its keys meet these."""
    text = paper if isinstance(paper, PaperText) else PaperText.of(paper)
    keys: set[Key] = {(KeyKind.TOKEN, t) for t in (*text.title, *text.abstract, *text.comment)}
    keys.update((KeyKind.SURNAME, a.surname) for a in text.authors if a.surname)
    for category in text.categories:
        keys.add((KeyKind.CATEGORY, category))
        keys.add((KeyKind.ARCHIVE, _archive(category)))
    return frozenset(keys)
