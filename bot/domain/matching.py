"""Which subscriptions a batch of papers matches: pure functions, no I/O.

The poller stores a batch, computes `match_keys` for the genuinely new papers,
asks storage for the candidate subscriptions with those keys (an indexed
lookup), and `match_subscriptions` makes the exact decision. The keys a
subscription is stored under come from `keyword_match_key` and
`author_match_key` here, so the index and the matcher read the same keys.
Each paper's text is folded once (`PaperText`, in `match_keys`) and reused by
the matcher (`MatchKeys.folded`).

Rules:
- category: the category is one of the paper's categories. When it is not the
  paper's primary category the paper is a cross-list for that subscription and
  counts only with `include_cross`. The primary category decides, not the RSS
  `announce_type`, because arXiv computes that against the requested feed:
  in `cs.AI+cs.LG` a cs.AI paper cross-listed to cs.LG is "new".
- author: some author of the paper has the subscription's surname key and
  compatible given names (`S. Legg` ~ `Shane Legg`, not `Peter Legg`).
- keyword: the phrase's tokens occur consecutively, as whole words, in the
  title or in the abstract (`gen` does not match "generalization").
- query (`bot.domain.query`): found through the paper's index keys (`paper_keys`)
  meeting one of the query's key options (whichever fewest papers of the batch
  have), then the compiled `Query.test` decides; the match says which terms
  matched (`Query.explain`).
- paper (following one paper): only its replacements, whatever the options.
- replacements (`replace`, `replace-cross`) count only for subscriptions with
  `include_replacements` and for the paper's followers. Callers match
  announcements (`bot.domain.announcements`), not whatever the catalogue stored.
- one `Match` per (destination, paper), listing every subscription of that
  destination that matched; paused destinations never match. An author
  subscription says which spelling of the paper it matched when that differs
  from what was typed: `author: Shane Legg (as S. Legg)`.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import repeat

from bot.domain.errors import InvalidInputError
from bot.domain.models import AnnounceType, Destination, Paper, Subscription, SubscriptionKind
from bot.domain.names import given_compatible, keyword_tokens, query_key
from bot.domain.query import KeyKind, PaperText, Query, parse_query
from bot.domain.query_eval import has_phrase

log = logging.getLogger(__name__)

REPLACEMENT_TYPES = frozenset({AnnounceType.REPLACE, AnnounceType.REPLACE_CROSS})
CROSS_TYPES = frozenset({AnnounceType.CROSS, AnnounceType.REPLACE_CROSS})


@dataclass(frozen=True, slots=True)
class MatchKeys:
    """Every key a batch of papers could be matched under, for the candidate lookup."""

    categories: frozenset[str]
    surnames: frozenset[str]
    keyword_tokens: frozenset[str]
    paper_ids: frozenset[str] = frozenset()  # followers are looked up by paper id
    query_keys: frozenset[tuple[str, str]] = frozenset()  # (bot.domain.query.KeyKind, key)
    # Each paper's folded text, by id, with the paper it was folded from: `alerts_for`
    # reuses it (when handed the same paper) instead of folding every text again.
    folded: Mapping[str, tuple[Paper, PaperText]] = field(
        default_factory=dict, compare=False, repr=False
    )


@dataclass(frozen=True, slots=True)
class Match:
    """One paper for one destination, with the descriptions of the subscriptions that matched."""

    destination: Destination
    paper: Paper
    matched: tuple[str, ...]


def keyword_match_key(phrase: str) -> tuple[str, str]:
    """(match_key, given_key) for a keyword subscription.

    given_key is the normalized phrase (its tokens joined by single spaces);
    match_key is its longest token, the most selective one to index on
    (the first of equally long ones).
    """
    tokens = keyword_tokens(phrase)
    if not tokens:
        raise InvalidInputError(f"{phrase!r} has no words to look for")
    return max(tokens, key=len), " ".join(tokens)


def author_match_key(name: str) -> tuple[str, str]:
    """(surname key, given key) for an author subscription typed by a user."""
    key = query_key(name)
    if not key.surname:
        raise InvalidInputError(f"{name!r} does not look like an author name")
    return key.surname, key.given_key


def paper_categories(paper: Paper) -> tuple[str, ...]:
    """The paper's categories, primary first, without repeats or blanks."""
    return tuple(c for c in dict.fromkeys((paper.primary_category, *paper.categories)) if c)


def is_cross(paper: Paper, category: str) -> bool:
    """Whether `paper` is a cross-list as far as a subscription to `category` goes."""
    if paper.primary_category:
        return category != paper.primary_category
    # No primary known (should not happen): trust the listing's own word.
    return paper.announce_type in CROSS_TYPES


def match_keys(papers: Sequence[Paper]) -> MatchKeys:
    """The category, surname and keyword-token keys under which `papers` can match."""
    categories: set[str] = set()
    surnames: set[str] = set()
    tokens: set[str] = set()
    comment_tokens: set[str] = set()
    folded: dict[str, tuple[Paper, PaperText]] = {}
    for paper in papers:
        text = PaperText.of(paper)
        folded[paper.id] = (paper, text)
        categories.update(paper_categories(paper))
        surnames |= text.surnames
        tokens |= text.title_words
        tokens |= text.abstract_words
        comment_tokens |= text.comment_words
    surnames.discard("")
    paper_ids = frozenset(p.id for p in papers if p.announce_type in REPLACEMENT_TYPES)
    # The union of `bot.domain.query.paper_keys` over the papers, from the features already
    # folded above instead of folding every text a second time. zip/repeat builds the
    # pairs in C: tens of thousands per listing.
    query: set[tuple[str, str]] = set(zip(repeat(KeyKind.SURNAME.value), surnames, strict=False))
    query.update(zip(repeat(KeyKind.TOKEN.value), tokens | comment_tokens, strict=False))
    for category in categories:
        folded_category = category.lower()
        query.add((KeyKind.CATEGORY.value, folded_category))
        query.add((KeyKind.ARCHIVE.value, folded_category.split(".", 1)[0]))
    return MatchKeys(
        frozenset(categories),
        frozenset(surnames),
        frozenset(tokens),
        paper_ids,
        frozenset(query),
        folded,
    )


# A parsed, compiled query takes about 2 KB (4,000 of the matching bench's queries,
# tracemalloc), up to a few times that at the 300-character limit; parsing one again
# costs ~0.5 ms. 65,536 entries could hold ~140 MB, most of `paperbell run`'s 150 MB
# budget; 4,096 hold ~8 MB and still keep a day's matching queries (a listing's
# candidates are a few hundred) parsed from one listing to the next.
@lru_cache(maxsize=4096)
def stored_query(source: str) -> Query | None:
    """The parsed form of a stored query subscription (None if it no longer parses)."""
    try:
        return parse_query(source)
    except InvalidInputError:
        return None


def describe_match(sub: Subscription, paper: Paper | PaperText) -> str:
    """What a subscription matched on `paper`: its description, plus a query's matched terms."""
    if sub.kind is SubscriptionKind.QUERY:
        query = stored_query(sub.value)
        terms = query.explain(paper) if query is not None else ()
        if terms:
            return f"{sub.describe()} (matched {', '.join(terms)})"
    return sub.describe()


class _Index:
    """Candidates bucketed by the key each paper feature is looked up with."""

    def __init__(self, candidates: Iterable[Subscription], texts: Sequence[PaperText]) -> None:
        self.by_category: dict[str, list[Subscription]] = defaultdict(list)
        self.by_surname: dict[str, list[tuple[Subscription, tuple[str, ...]]]] = defaultdict(list)
        # Keyword subscriptions are bucketed by their phrase's first token, so a
        # paper's word set finds the phrases that can start in it; the stored
        # match_key only has to be selective enough for the database lookup.
        self.by_first_token: dict[str, list[tuple[Subscription, tuple[str, ...]]]] = defaultdict(
            list
        )
        self.by_paper: dict[str, list[Subscription]] = defaultdict(list)
        # Query subscriptions bucketed by a required key set, one dict per key kind,
        # so a paper's words meet them in one set intersection: a paper's keys find
        # the queries worth evaluating, never every query on every paper.
        self.by_query_key: dict[KeyKind, dict[str, list[tuple[Subscription, Query]]]] = {
            kind: defaultdict(list) for kind in KeyKind
        }
        queries: list[tuple[Subscription, Query]] = []
        seen: set[int] = set()
        for sub in candidates:
            if sub.id in seen or sub.destination.paused:
                continue
            seen.add(sub.id)
            if sub.kind is SubscriptionKind.PAPER:
                self.by_paper[sub.match_key].append(sub)
            elif sub.kind is SubscriptionKind.CATEGORY:
                self.by_category[sub.match_key].append(sub)
            elif sub.kind is SubscriptionKind.AUTHOR:
                self.by_surname[sub.match_key].append((sub, tuple(sub.given_key.split())))
            elif sub.kind is SubscriptionKind.QUERY:
                query = stored_query(sub.value)
                if query is None:
                    log.warning("query subscription %d no longer parses", sub.id)
                    continue
                queries.append((sub, query))
            else:
                phrase = tuple(sub.given_key.split())
                if phrase:
                    self.by_first_token[phrase[0]].append((sub, phrase))
                else:
                    log.warning("keyword subscription %d has an empty phrase", sub.id)
        self.has_queries = bool(queries)
        self.first_tokens = frozenset(self.by_first_token)
        # Any of a query's key options finds every paper it matches; the one fewest
        # papers of this batch have means the fewest evaluations. The stored (and
        # looked-up) required keys are chosen without the batch and can be common words.
        counts = _key_counts(queries, texts)
        for sub, query in queries:
            option = min(
                query.key_options,
                key=lambda keys: sum(counts[kind][key] for kind, key in keys),
            )
            for kind, key in option:
                self.by_query_key[kind][key].append((sub, query))
        # The keys as sets, once: intersecting a paper's words with them then runs in
        # C over the smaller side (a dict's keys view would be copied on every `&`).
        self.query_keys = {kind: frozenset(keys) for kind, keys in self.by_query_key.items()}

    def matching_queries(self, text: PaperText) -> Iterable[Subscription]:
        """The query subscriptions that match `text`: each one bucketed under a key
        `text` has is tried once.

        The same keys as `bot.domain.query.paper_keys`, met kind by kind with set
        intersections instead of building and probing every key of the paper.
        """
        by_key, keys = self.by_query_key, self.query_keys
        tokens = by_key[KeyKind.TOKEN]
        buckets = [
            *(tokens[t] for t in keys[KeyKind.TOKEN] & text.title_words),
            *(tokens[t] for t in keys[KeyKind.TOKEN] & text.abstract_words),
            *(tokens[t] for t in keys[KeyKind.TOKEN] & text.comment_words),
            *(by_key[KeyKind.SURNAME][s] for s in keys[KeyKind.SURNAME] & text.surnames if s),
            *(by_key[KeyKind.CATEGORY][c] for c in keys[KeyKind.CATEGORY] & text.categories),
            *(by_key[KeyKind.ARCHIVE][a] for a in keys[KeyKind.ARCHIVE] & text.archives),
        ]
        tried: set[int] = set()
        for bucket in buckets:
            for sub, query in bucket:
                if sub.id not in tried:
                    tried.add(sub.id)
                    if query.test(text):
                        yield sub


def _key_counts(
    queries: Iterable[tuple[Subscription, Query]], texts: Iterable[PaperText]
) -> dict[KeyKind, Counter[str]]:
    """How many of `texts` have each key of the queries' key options (when there is a choice)."""
    wanted: dict[KeyKind, set[str]] = {kind: set() for kind in KeyKind}
    for _, query in queries:
        if len(query.key_options) > 1:
            for option in query.key_options:
                for kind, key in option:
                    wanted[kind].add(key)
    counts: dict[KeyKind, Counter[str]] = {kind: Counter() for kind in KeyKind}
    if any(wanted.values()):
        tokens, surnames = frozenset(wanted[KeyKind.TOKEN]), frozenset(wanted[KeyKind.SURNAME])
        categories = frozenset(wanted[KeyKind.CATEGORY])
        archives = frozenset(wanted[KeyKind.ARCHIVE])
        for text in texts:  # set operations and Counter.update all run in C
            counts[KeyKind.TOKEN].update(
                (tokens & text.title_words) | (tokens & text.abstract_words)
                | (tokens & text.comment_words)
            )  # fmt: skip
            counts[KeyKind.SURNAME].update(surnames & text.surnames)
            counts[KeyKind.CATEGORY].update(categories & text.categories)
            counts[KeyKind.ARCHIVE].update(archives & text.archives)
    return counts


def _keyword_hits(
    tokens: tuple[str, ...], words: frozenset[str], index: _Index
) -> Iterable[Subscription]:
    """Keyword subscriptions whose phrase occurs in one text (its tokens, and their set)."""
    for token in index.first_tokens & words:
        for sub, phrase in index.by_first_token[token]:
            if has_phrase(tokens, words, phrase):
                yield sub


def _matching_subscriptions(
    paper: Paper, index: _Index, text: PaperText
) -> Iterable[tuple[Subscription, str | None]]:
    """(subscription, the author spelling it matched, for author subscriptions).

    Reads the paper's words and author keys from `text`, folded once per paper.
    """
    if index.has_queries:
        yield from ((sub, None) for sub in index.matching_queries(text))
    if paper.announce_type in REPLACEMENT_TYPES:
        yield from ((sub, None) for sub in index.by_paper.get(paper.id, ()))
    for category in paper_categories(paper):
        subs = index.by_category.get(category)
        if subs:
            cross = is_cross(paper, category)
            yield from ((sub, None) for sub in subs if sub.include_cross or not cross)
    for name, key in zip(paper.authors, text.authors, strict=True):
        for sub, given in index.by_surname.get(key.surname, ()):
            if given_compatible(given, key.given):
                yield sub, name
    # A phrase found in both title and abstract is yielded twice; hits are keyed by id.
    yield from ((sub, None) for sub in _keyword_hits(text.title, text.title_words, index))
    yield from ((sub, None) for sub in _keyword_hits(text.abstract, text.abstract_words, index))


def describe_hit(sub: Subscription, spellings: Iterable[str] = ()) -> str:
    """What matched, for the alert: the subscription, and the paper's author spellings
    when they differ from what was typed (`author: Shane Legg (as S. Legg)`)."""
    other = [name for name in dict.fromkeys(spellings) if name != sub.value]
    if not other:
        return sub.describe()
    return f"{sub.describe()} (as {', '.join(other)})"


def _folded(paper: Paper, folded: Mapping[str, tuple[Paper, PaperText]]) -> PaperText:
    """`paper`'s folded text: `match_keys`'s when it folded this very paper, else folded now."""
    known = folded.get(paper.id)
    if known is not None and known[0] == paper:
        return known[1]
    return PaperText.of(paper)


def match_subscriptions(
    papers: Sequence[Paper],
    candidates: Sequence[Subscription],
    folded: Mapping[str, tuple[Paper, PaperText]] | None = None,
) -> list[Match]:
    """One `Match` per (destination, paper) that some candidate subscription matches.

    Ordered by paper (input order), then destination id; `matched` lists the
    descriptions of the matching subscriptions in subscription-id order
    (`describe_hit`).
    Cost is linear in the papers' features plus the hits: candidates are
    bucketed once, never scanned per paper. `folded` is `MatchKeys.folded`, when
    the caller has it: texts folded for an equal paper are not folded again.
    """
    # Folded once per paper, for every kind of subscription and the explanations alike.
    texts = [_folded(paper, folded or {}) for paper in papers]
    index = _Index(candidates, texts)
    matches: list[Match] = []
    for paper, text in zip(papers, texts, strict=True):
        replacement = paper.announce_type in REPLACEMENT_TYPES
        hits: dict[int, dict[int, tuple[Subscription, list[str]]]] = defaultdict(dict)
        for sub, spelling in _matching_subscriptions(paper, index, text):
            if replacement and not (sub.include_replacements or sub.kind is SubscriptionKind.PAPER):
                continue
            _, spellings = hits[sub.destination.id].setdefault(sub.id, (sub, []))
            if spelling is not None:
                spellings.append(spelling)
        for destination_id in sorted(hits):
            found = [hits[destination_id][sub_id] for sub_id in sorted(hits[destination_id])]
            descriptions = tuple(
                dict.fromkeys(
                    describe_match(sub, text)
                    if sub.kind is SubscriptionKind.QUERY
                    else describe_hit(sub, names)
                    for sub, names in found
                )
            )
            matches.append(Match(found[0][0].destination, paper, descriptions))
    return matches
