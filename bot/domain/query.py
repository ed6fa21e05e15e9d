"""arXiv-style query expressions for query subscriptions: parse, index, match. Pure, no I/O.

(The query tree and the matching test itself live in `bot.domain.query_eval`.)

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
from bot.domain.names import keyword_tokens, query_key
from bot.domain.query_eval import (
    And,
    Field,
    Node,
    Not,
    Or,
    Term,
    archive_of,
    compile_node,
    evaluate,
    looks_like_category,
    positive_terms,
    term_matches,
)
from bot.domain.query_eval import PaperText as PaperText  # re-exported: callers match with it

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
        if not evaluate(self.root, text):
            return ()
        return tuple(
            dict.fromkeys(t.describe() for t in positive_terms(self.root) if term_matches(t, text))
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


# ---- index keys ------------------------------------------------------------------------


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
    if looks_like_category(term.text):
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
        keys.add((KeyKind.ARCHIVE, archive_of(category)))
    return frozenset(keys)
