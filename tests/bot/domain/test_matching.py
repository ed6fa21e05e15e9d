"""Tests for bot.domain.matching: the rules, the keys, and agreement with a naive reference."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from itertools import count
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.errors import InvalidInputError
from bot.domain.matching import (
    REPLACEMENT_TYPES,
    Match,
    _Index,
    author_match_key,
    keyword_match_key,
    match_keys,
    match_subscriptions,
    stored_query,
)
from bot.domain.models import (
    AnnounceType,
    Destination,
    DestinationKind,
    Paper,
    Subscription,
    SubscriptionKind,
)
from bot.domain.names import author_key, given_compatible, keyword_tokens
from bot.domain.query import KeyKind, PaperText, paper_keys, parse_query
from storage.outbox import DeliveryOutbox
from storage.papers import PaperRepository
from storage.sqlite import open_sqlite
from storage.store import Store
from storage.subscriptions import SubscriptionRepository

NOW = datetime(2024, 11, 28, 5, 0, tzinfo=UTC)
CHANNEL_A = Destination(1, DestinationKind.CHANNEL, 100, 1)
CHANNEL_B = Destination(2, DestinationKind.CHANNEL, 101, 1)
DM = Destination(3, DestinationKind.DM, 7, None)
PAUSED = Destination(4, DestinationKind.CHANNEL, 102, 2, paused_reason="403", paused_at=NOW)
CATEGORY = SubscriptionKind.CATEGORY
AUTHOR = SubscriptionKind.AUTHOR
KEYWORD = SubscriptionKind.KEYWORD
PAPER = SubscriptionKind.PAPER
QUERY = SubscriptionKind.QUERY

_ids = count(1)


def paper(
    number: int = 1,
    *,
    title: str = "A paper",
    abstract: str = "Nothing to see.",
    authors: Sequence[str] = ("Alice Smith",),
    primary: str = "cs.LG",
    categories: Sequence[str] = (),
    announce: AnnounceType | None = AnnounceType.NEW,
) -> Paper:
    return Paper(
        id=f"2411.{number:05d}",
        version=1,
        title=title,
        abstract=abstract,
        authors=tuple(authors),
        primary_category=primary,
        categories=(primary, *categories),
        announce_type=announce,
    )


def sub(
    destination: Destination,
    kind: SubscriptionKind,
    value: str,
    *,
    include_cross: bool = True,
    include_replacements: bool = False,
    sub_id: int | None = None,
) -> Subscription:
    if kind is CATEGORY or kind is PAPER:
        match_key, given_key = value, ""
    elif kind is QUERY:
        match_key, given_key = parse_query(value).source, ""
    elif kind is AUTHOR:
        match_key, given_key = author_match_key(value)
    else:
        match_key, given_key = keyword_match_key(value)
    return Subscription(
        id=next(_ids) if sub_id is None else sub_id,
        destination=destination,
        kind=kind,
        value=value,
        match_key=match_key,
        given_key=given_key,
        include_cross=include_cross,
        include_replacements=include_replacements,
        created_by=7,
        created_at=NOW,
    )


def matched(
    papers: Sequence[Paper],
    subs: Sequence[Subscription],
    folded: Mapping[str, tuple[Paper, PaperText]] | None = None,
) -> list[tuple[int, str]]:
    return [(m.destination.id, m.paper.id) for m in match_subscriptions(papers, subs, folded)]


def test_category_primary_matches_and_cross_needs_flag() -> None:
    """A secondary category is a cross-list: it counts only with include_cross."""
    p = paper(primary="math.CA", categories=("cs.LG",), announce=AnnounceType.CROSS)
    with_cross = sub(CHANNEL_A, CATEGORY, "cs.LG", include_cross=True)
    without_cross = sub(CHANNEL_B, CATEGORY, "cs.LG", include_cross=False)
    primary_only = sub(DM, CATEGORY, "math.CA", include_cross=False)
    assert matched([p], [with_cross, without_cross, primary_only]) == [
        (CHANNEL_A.id, p.id),
        (DM.id, p.id),
    ]


def test_cross_decided_by_primary_not_feed_announce_type() -> None:
    """A paper listed as "new" in a combined feed is a cross-list for its secondary category."""
    p = paper(primary="cs.AI", categories=("cs.LG",), announce=AnnounceType.NEW)
    assert matched([p], [sub(CHANNEL_A, CATEGORY, "cs.LG", include_cross=False)]) == []
    assert matched([p], [sub(CHANNEL_A, CATEGORY, "cs.AI", include_cross=False)]) == [
        (CHANNEL_A.id, p.id)
    ]


@pytest.mark.parametrize("announce", sorted(REPLACEMENT_TYPES))
def test_replacements_need_include_replacements(announce: AnnounceType) -> None:
    """Replacements match only subscriptions that asked for them, whatever their kind."""
    p = paper(
        title="Length generalization",
        authors=("Shane Legg",),
        primary="cs.LG",
        categories=("cs.AI",),
        announce=announce,
    )
    refusing = [
        sub(CHANNEL_A, CATEGORY, "cs.LG"),
        sub(CHANNEL_A, AUTHOR, "Shane Legg"),
        sub(CHANNEL_A, KEYWORD, "length generalization"),
    ]
    accepting = sub(CHANNEL_B, CATEGORY, "cs.AI", include_replacements=True)
    assert matched([p], [*refusing, accepting]) == [(CHANNEL_B.id, p.id)]


def test_one_match_per_destination_lists_every_subscription() -> None:
    """Several subscriptions of one channel give one Match naming all of them, in id order."""
    p = paper(
        title="On length generalization",
        authors=("Marcus Hutter", "Shane Legg"),
        primary="cs.LG",
    )
    subs = [
        sub(CHANNEL_A, KEYWORD, "Length Generalization", sub_id=30),
        sub(CHANNEL_A, CATEGORY, "cs.LG", sub_id=10),
        sub(CHANNEL_A, AUTHOR, "S. Legg", sub_id=20),
        sub(CHANNEL_B, AUTHOR, "Hutter", sub_id=40),
        sub(CHANNEL_A, AUTHOR, "Peter Legg", sub_id=50),
    ]
    assert match_subscriptions([p], subs) == [
        Match(
            CHANNEL_A,
            p,
            (
                "category: cs.LG",
                "author: S. Legg (as Shane Legg)",
                "keyword: Length Generalization",
            ),
        ),
        Match(CHANNEL_B, p, ("author: Hutter (as Marcus Hutter)",)),
    ]


def test_author_hit_names_the_spelling_it_matched() -> None:
    """An author alert says which spellings of the paper it matched, unless typed exactly."""
    p = paper(authors=("S. Legg", "Peter Legg", "Shane Legg"))
    subs = [
        sub(CHANNEL_A, AUTHOR, "Shane Legg", sub_id=1),
        sub(CHANNEL_B, AUTHOR, "Legg", sub_id=2),
    ]
    assert [m.matched for m in match_subscriptions([p], subs)] == [
        ("author: Shane Legg (as S. Legg)",),
        ("author: Legg (as S. Legg, Peter Legg, Shane Legg)",),
    ]


def test_matches_ordered_by_paper_then_destination() -> None:
    """Output follows the input paper order, then destination id."""
    first, second = paper(1, primary="cs.AI"), paper(2, primary="cs.LG")
    subs = [sub(CHANNEL_B, CATEGORY, "cs.LG"), sub(DM, CATEGORY, "cs.AI")]
    subs += [sub(CHANNEL_A, CATEGORY, "cs.LG"), sub(CHANNEL_A, CATEGORY, "cs.AI")]
    assert matched([first, second], subs) == [
        (CHANNEL_A.id, first.id),
        (DM.id, first.id),
        (CHANNEL_A.id, second.id),
        (CHANNEL_B.id, second.id),
    ]


@pytest.mark.parametrize("typed", ["S. Legg", "Legg, Shane", "legg s", "Shane Legg", "Legg"])
def test_author_spellings_match(typed: str) -> None:
    """Initials, "Surname, Given", lower case and a bare surname all find Shane Legg."""
    p = paper(authors=("Marcus Hutter", "Shane Legg"))
    assert matched([p], [sub(CHANNEL_A, AUTHOR, typed)]) == [(CHANNEL_A.id, p.id)]


@pytest.mark.parametrize("author", ["Shane Lee", "Peter Legg", "Shane Leggett"])
def test_other_authors_do_not_match(author: str) -> None:
    """A different surname, or an incompatible given name, is someone else."""
    p = paper(authors=(author,))
    assert matched([p], [sub(CHANNEL_A, AUTHOR, "S. Legg")]) == []


def test_author_accents_are_folded() -> None:
    """A subscription typed without accents matches the accented arXiv spelling."""
    p = paper(authors=("Grégoire Delétang",))
    assert matched([p], [sub(CHANNEL_A, AUTHOR, "Gregoire Deletang")]) == [(CHANNEL_A.id, p.id)]


def test_keyword_matches_whole_phrase_across_spacing_and_case() -> None:
    """The phrase matches as whole words, whatever the case and spacing of the text."""
    p = paper(abstract="We study Length  Generalization in transformers.")
    assert matched([p], [sub(CHANNEL_A, KEYWORD, "length generalization")]) == [
        (CHANNEL_A.id, p.id)
    ]


@pytest.mark.parametrize("phrase", ["gen", "generalization length", "length transformers"])
def test_keyword_does_not_match_parts_or_reordered_words(phrase: str) -> None:
    """Word prefixes, reordered or non-adjacent words do not match."""
    p = paper(abstract="We study length generalization in transformers.")
    assert matched([p], [sub(CHANNEL_A, KEYWORD, phrase)]) == []


def test_keyword_phrase_does_not_span_title_and_abstract() -> None:
    """A phrase split between the end of the title and the start of the abstract is no match."""
    p = paper(title="Studying length", abstract="Generalization is hard.")
    assert matched([p], [sub(CHANNEL_A, KEYWORD, "length generalization")]) == []
    assert matched([p], [sub(CHANNEL_A, KEYWORD, "studying length")]) == [(CHANNEL_A.id, p.id)]


def test_paused_destinations_never_match() -> None:
    """Subscriptions of a paused destination are ignored even if passed in."""
    p = paper(primary="cs.LG")
    assert matched([p], [sub(PAUSED, CATEGORY, "cs.LG")]) == []


def test_match_keys_cover_categories_surnames_and_tokens() -> None:
    """match_keys yields every category, author surname key and text token of the batch."""
    keys = match_keys(
        [
            paper(1, title="Length generalization", authors=("Shane Legg",), categories=("cs.AI",)),
            paper(2, abstract="Universal AI", authors=("Marcus Hutter",), primary="math.CA"),
        ]
    )
    assert keys.categories == {"cs.LG", "cs.AI", "math.CA"}
    assert keys.surnames == {author_key("Shane Legg").surname, author_key("Marcus Hutter").surname}
    assert {"length", "generalization", "universal"} <= keys.keyword_tokens


def test_keyword_match_key_uses_longest_token_and_normalized_phrase() -> None:
    """The index key is the phrase's longest token; the phrase is stored normalized."""
    match_key, phrase = keyword_match_key("  Length   GENERALIZATION ")
    assert match_key == "generalization"
    assert phrase == "length generalization"


def test_author_match_key_agrees_with_stored_names() -> None:
    """A typed name's surname key equals the key of the arXiv spelling it should find."""
    surname, given_key = author_match_key("Legg, Shane")
    assert surname == author_key("Shane Legg").surname
    assert given_key == author_key("Shane Legg").given_key


@pytest.mark.parametrize("text", ["", "   ", "?!"])
def test_empty_subscription_keys_are_user_errors(text: str) -> None:
    """Input with nothing to match on is refused with a message for the user."""
    with pytest.raises(InvalidInputError):
        keyword_match_key(text)
    with pytest.raises(InvalidInputError):
        author_match_key(text)


# -- agreement with a naive reference -------------------------------------------------------


def naive_match(papers: Sequence[Paper], subs: Sequence[Subscription]) -> list[Match]:
    """Every paper against every subscription, by the rules as written in the docs."""
    result: list[Match] = []
    for p in papers:
        found: dict[int, tuple[Destination, list[str]]] = {}
        for s in sorted({s.id: s for s in subs}.values(), key=lambda s: s.id):
            if s.destination.paused:
                continue
            replacement = p.announce_type in REPLACEMENT_TYPES
            if replacement and not (s.include_replacements or s.kind is PAPER):
                continue
            if s.kind is QUERY:  # every query tried on every paper
                terms = parse_query(s.value).explain(p)
                if terms:
                    description = f"{s.describe()} (matched {', '.join(terms)})"
                    found.setdefault(s.destination.id, (s.destination, []))[1].append(description)
            elif _naive_hit(p, s):
                found.setdefault(s.destination.id, (s.destination, []))[1].append(_naive_says(p, s))
        for dest_id in sorted(found):
            destination, descriptions = found[dest_id]
            result.append(Match(destination, p, tuple(dict.fromkeys(descriptions))))
    return result


def _naive_says(p: Paper, s: Subscription) -> str:
    """The description an alert gives: an author's differing spellings in paper order."""
    if s.kind is not AUTHOR:
        return s.describe()
    spellings: list[str] = []
    for name in p.authors:
        key = author_key(name)
        hit = key.surname == s.match_key and given_compatible(tuple(s.given_key.split()), key.given)
        if hit and name != s.value and name not in spellings:
            spellings.append(name)
    return f"{s.describe()} (as {', '.join(spellings)})" if spellings else s.describe()


def _naive_hit(p: Paper, s: Subscription) -> bool:
    if s.kind is PAPER:  # followers hear of new versions only
        return s.match_key == p.id and p.announce_type in REPLACEMENT_TYPES
    if s.kind is CATEGORY:
        in_paper = s.match_key == p.primary_category or s.match_key in p.categories
        return in_paper and (s.include_cross or s.match_key == p.primary_category)
    if s.kind is AUTHOR:
        return any(
            author_key(name).surname == s.match_key
            and given_compatible(tuple(s.given_key.split()), author_key(name).given)
            for name in p.authors
        )
    return any(
        f" {s.given_key} " in f" {' '.join(keyword_tokens(text))} "
        for text in (p.title, p.abstract)
    )


CATEGORIES = ["cs.LG", "cs.AI", "math.CA", "stat.ML"]
NAMES = [
    "Shane Legg",
    "S. Legg",
    "Peter Legg",
    "Shane Lee",
    "Marcus Hutter",
    "M. Hutter",
    "Grégoire Delétang",
    "Gregoire Deletang",
    "John von Neumann",
]
WORDS = ["length", "generalization", "Neural", "networks", "of", "the", "transformers", "gen"]
SEPARATORS = [" ", "  ", ", ", ". ", " - ", "\n"]

texts = st.lists(st.tuples(st.sampled_from(WORDS), st.sampled_from(SEPARATORS)), max_size=12).map(
    lambda parts: "".join(word + sep for word, sep in parts)
)


@st.composite
def papers_strategy(draw: st.DrawFn) -> list[Paper]:
    result = []
    for number in range(draw(st.integers(1, 4))):
        result.append(
            paper(
                number,
                title=draw(texts),
                abstract=draw(texts),
                authors=draw(st.lists(st.sampled_from(NAMES), max_size=4)),
                primary=draw(st.sampled_from(CATEGORIES)),
                categories=draw(st.lists(st.sampled_from(CATEGORIES), max_size=3)),
                announce=draw(st.sampled_from([None, *AnnounceType])),
            )
        )
    return result


@st.composite
def query_strategy(draw: st.DrawFn, depth: int = 0) -> str:
    """An arXiv-style query over the words, names and categories the papers use."""
    if depth >= 2 or draw(st.booleans()):
        field = draw(st.sampled_from(["ti", "abs", "au", "cat", "all", ""]))
        if field == "au":
            value = f'"{draw(st.sampled_from(NAMES))}"'
        elif field == "cat":
            value = draw(st.sampled_from([*CATEGORIES, "cs", "math"]))
        else:
            words = draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=2))
            value = f'"{" ".join(words)}"' if len(words) > 1 else words[0]
        return f"{field}:{value}" if field else value
    op = draw(st.sampled_from(["AND", "OR", "ANDNOT"]))
    left = draw(query_strategy(depth + 1))
    right = draw(query_strategy(depth + 1))
    return f"({left} {op} {right})"


@st.composite
def subscriptions_strategy(draw: st.DrawFn) -> list[Subscription]:
    result = []
    for sub_id in range(1, draw(st.integers(0, 12)) + 1):
        kind = draw(st.sampled_from(list(SubscriptionKind)))
        if kind is CATEGORY:
            value = draw(st.sampled_from(CATEGORIES))
        elif kind is AUTHOR:
            value = draw(st.sampled_from(NAMES))
        elif kind is PAPER:
            value = f"2411.{draw(st.integers(0, 4)):05d}"
        elif kind is QUERY:
            value = draw(query_strategy())
        else:
            value = " ".join(draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=3)))
        try:
            subscription = sub(
                draw(st.sampled_from([CHANNEL_A, CHANNEL_B, DM, PAUSED])),
                kind,
                value,
                include_cross=draw(st.booleans()),
                include_replacements=draw(st.booleans()),
                sub_id=sub_id,
            )
        except InvalidInputError:
            continue  # e.g. a phrase of words the tokenizer drops
        result.append(subscription)
    return result


@settings(max_examples=100, deadline=None)
@given(papers=papers_strategy())
def test_match_keys_query_keys_are_every_papers_query_keys(papers: list[Paper]) -> None:
    """The poll's query lookup keys are exactly the union of `bot.domain.query.paper_keys`."""
    expected = {(kind.value, key) for p in papers for kind, key in paper_keys(p)}
    assert match_keys(papers).query_keys == expected


@settings(max_examples=300, deadline=None)
@given(papers=papers_strategy(), subs=subscriptions_strategy())
def test_match_subscriptions_equals_naive_reference(
    papers: list[Paper], subs: list[Subscription]
) -> None:
    """The indexed matcher gives exactly what checking every pair would give."""
    expected = naive_match(papers, subs)
    assert match_subscriptions(papers, subs) == expected
    # The same with the texts match_keys folded handed over, as the poller does.
    assert match_subscriptions(papers, subs, match_keys(papers).folded) == expected


def test_folded_texts_are_reused_for_the_same_paper_only() -> None:
    """`MatchKeys.folded` saves folding a paper again, but never stands in for another paper."""
    old = paper(1, title="Graph networks")
    new = paper(1, title="Attention for graphs")  # same id, other text
    subs = [sub(CHANNEL_A, KEYWORD, "attention"), sub(CHANNEL_B, QUERY, "ti:networks")]
    assert matched([new], subs, match_keys([old]).folded) == [(1, new.id)]
    assert matched([old], subs, match_keys([old]).folded) == [(2, old.id)]
    # Handed a text for this very paper, the matcher reads it rather than folding again.
    planted = {new.id: (new, PaperText.of(old))}
    assert matched([new], subs, planted) == [(2, new.id)]


def test_a_query_is_tried_under_its_rarest_key_option_in_the_batch() -> None:
    """`cat:math.CA AND ti:the` is bucketed under math.CA when every paper has "the"."""
    batch = [paper(n, title="The graph", primary="cs.LG") for n in range(1, 6)]
    batch.append(paper(6, title="The integral", primary="math.CA"))
    query = sub(CHANNEL_A, QUERY, "ti:the AND cat:math.CA")
    index = _Index([query], [PaperText.of(p) for p in batch])
    assert index.by_query_key[KeyKind.CATEGORY]["math.ca"] == [(query, stored_query(query.value))]
    assert not index.by_query_key[KeyKind.TOKEN]
    assert matched(batch, [query]) == [(1, batch[-1].id)]


# -- the pipeline against a real database ---------------------------------------------------


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Store]:
    database = await open_sqlite(tmp_path / "paperbell.sqlite3")
    yield database
    await database.close()


async def test_keys_find_stored_subscriptions_and_matches_queue_once(db: Store) -> None:
    """Stored subscriptions are found by match_keys, matched, and queued once per destination."""
    repo, outbox = SubscriptionRepository(db), DeliveryOutbox(db)
    channel = await repo.ensure_destination(DestinationKind.CHANNEL, 100, 1)
    dm = await repo.ensure_destination(DestinationKind.DM, 7, None)
    for destination, kind, value in [
        (channel, AUTHOR, "S. Legg"),
        (channel, KEYWORD, "length generalization"),
        (dm, CATEGORY, "math.CA"),
        (dm, AUTHOR, "Peter Legg"),
    ]:
        if kind is CATEGORY:
            sub_keys = (value, "")
        elif kind is AUTHOR:
            sub_keys = author_match_key(value)
        else:
            sub_keys = keyword_match_key(value)
        await repo.add(
            destination, kind, value, *sub_keys,
            include_cross=True, include_replacements=False, created_by=7, now=NOW,
        )  # fmt: skip
    batch = [
        paper(1, title="Length Generalization of transformers", authors=("Shane Legg",)),
        paper(2, authors=("Marcus Hutter",), primary="cs.AI"),
    ]
    await PaperRepository(db).upsert_many(batch)
    keys = match_keys(batch)
    async with db.transaction() as conn:
        candidates = await repo.candidates(
            conn,
            categories=keys.categories,
            surnames=keys.surnames,
            keyword_tokens=keys.keyword_tokens,
        )
        matches = match_subscriptions(batch, candidates)
        items = [(m.destination.id, m.paper.id, m.matched) for m in matches]
        assert await outbox.enqueue(conn, items, now=NOW) == 1
        assert await outbox.enqueue(conn, items, now=NOW) == 0
    assert {s.value for s in candidates} == {"S. Legg", "length generalization", "Peter Legg"}
    [delivery] = await outbox.claim_due(now=NOW, limit=10)
    assert (delivery.destination, delivery.paper.id, delivery.matched) == (
        channel,
        batch[0].id,
        ("author: S. Legg (as Shane Legg)", "keyword: length generalization"),
    )
