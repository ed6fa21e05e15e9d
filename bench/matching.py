"""Matching benchmark: one listing of 1,504 announcements against 1,000 and 1,000,000 subscriptions.

Measures the announcement step of `PaperService.announce` after the papers are
stored (recording the announcements, then `PaperService.queue_alerts`: candidate
lookup + `alerts_for` + outbox enqueue; one write transaction, commit included)
on two stores that differ only in the number of subscriptions. The batch holds all four announcement
types in the proportions of the real 2024-11-28 listing (926 new, 569 replace,
9 cross of 1,504; that listing had no replace-cross, so 9 of its replacements
are replace-cross here).

- "1k": 1,000 live subscriptions (10% category, 30% author, 28% keyword, 30%
  query, 2% followers of replaced papers) over 10,000 destinations, several of
  which match papers of the batch;
- "1M": the same 1,000 plus 999,000 subscriptions (2% category, 35% author,
  33% keyword, 30% query) whose keys do not occur in this batch: categories
  absent from it, surnames none of its authors has, keywords whose indexed
  token none of its texts contains, queries none of whose index keys
  (`bot.domain.query.required_keys`) any of its papers has. Both stores therefore
  write the same outbox rows, and the ratio shows what the extra subscriptions
  cost, not a larger output.

The batch is synthetic but shaped like a daily listing: categories drawn with
the frequencies of the real 2024-11-28 all-archives listing (primary and
cross-lists), 1-8 authors (mean about 4) from a pool of 200,000 with
prolific authors and common surnames, titles and abstracts from a
Zipf-distributed vocabulary of 50,000 words. The papers are stored before the
timing; after each run the deliveries and announcements are deleted. The runs alternate
between the stores (medians over `--rounds`, after one warm-up each).
Targets: 1M <= 1 s, 1M / 1k <= 1.5.

Backends: the same stores on SQLite and on PostgreSQL (`--backends`, see
`bench/_common.py`; both by default when a PostgreSQL URL is set), measured in
one run and printed side by side. SQLite stores are built once and cached
under bench/out/ (the 1M one takes about a minute to build); PostgreSQL stores
are schemas `bench_matching_v<FORMAT>_1k` and `..._1m` on the server, built once
(subscriptions bulk-loaded with COPY) and reused while they exist. On
PostgreSQL each run's deliveries are deleted and the table vacuumed (not
timed), so every run inserts into the same clean table, as on SQLite.

    PAPERBELL_BENCH_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test \
        .venv/bin/python -m bench.matching [--rounds 7] [--rebuild] [--profile] \
        [--backends sqlite,postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg
from sqlalchemy import delete, func, insert, select

from bench._common import (
    LISTING,
    OUT,
    add_backends_option,
    chosen_backends,
    drop_schema,
    median,
    rename_schema,
    schema_exists,
)
from bench.bulk_import import remove_store
from bot.arxiv.feeds import parse_rss
from bot.categories import all_categories
from bot.domain.announcements import alerts_for, as_announced, from_listing
from bot.domain.matching import (
    REPLACEMENT_TYPES,
    author_match_key,
    keyword_match_key,
    match_keys,
)
from bot.domain.models import AnnounceType, Paper, SubscriptionKind
from bot.domain.names import author_key, keyword_tokens
from bot.domain.query import parse_query
from bot.domain.timestamps import to_timestamp
from bot.gc_pause import rare_collections
from bot.services import PaperService
from storage.announcements import AnnouncementRepository
from storage.outbox import DeliveryOutbox
from storage.papers import PaperRepository
from storage.postgres import open_postgres
from storage.schema import (
    announcements,
    deliveries,
    destinations,
    subscription_query_keys,
    subscriptions,
)
from storage.sqlite import open_sqlite
from storage.store import Store as Db
from storage.subscriptions import SubscriptionRepository

ROOT = Path(__file__).resolve().parents[1]

SEED = 20261127
FORMAT = 5  # bump when the generated data changes, so stale caches are not reused
# The real listing's mix (926 new, 569 replace, 9 cross), with 9 replace-cross.
MIX = {
    AnnounceType.NEW: 926,
    AnnounceType.CROSS: 9,
    AnnounceType.REPLACE: 560,
    AnnounceType.REPLACE_CROSS: 9,
}
PAPERS = sum(MIX.values())
FOLLOWS = 20  # live paper follows of replaced papers in the batch
LISTING_DAY = date(2026, 11, 27)
DESTINATIONS = 10_000
LIVE = 1_000
BIG = 1_000_000
NOW = datetime(2026, 11, 27, 5, 0, tzinfo=UTC)
SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "ta", "vo", "si", "pe", "da", "go", "hu", "ri", "zen",
             "bar", "tor", "lin", "mor", "quan", "tum", "net", "gra", "dient", "flow", "spec",
             "ion", "fer", "mag", "tis", "ul", "ox", "ber", "chi", "wen", "yo"]  # fmt: skip


def make_words(rng: random.Random, count: int, syllables: tuple[int, int]) -> list[str]:
    words: set[str] = set()
    while len(words) < count:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(*syllables))))
    return sorted(words)


def zipf_cum(count: int, exponent: float) -> list[float]:
    total = 0.0
    cum: list[float] = []
    for rank in range(count):
        total += 1.0 / (rank + 1) ** exponent
        cum.append(total)
    return cum


class Corpus:
    """Vocabulary, author pool and category frequencies, all derived from one seed."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        words = make_words(rng, 50_000, (2, 4))
        rng.shuffle(words)  # rank order unrelated to spelling
        self.words = words
        self.word_cum = zipf_cum(len(words), 1.05)
        first = [w.capitalize() for w in make_words(rng, 4_000, (2, 3))]
        last = [w.capitalize() for w in make_words(rng, 60_000, (2, 4))]
        rng.shuffle(last)
        last_cum = zipf_cum(len(last), 0.9)  # a few surnames are very common
        self.authors = [
            f"{rng.choice(first)} {rng.choices(last, cum_weights=last_cum)[0]}"
            for _ in range(200_000)
        ]
        self.first_names = first
        self.surnames = last
        self.author_cum = zipf_cum(len(self.authors), 0.6)  # prolific authors
        primaries: Counter[str] = Counter()
        crosses: Counter[str] = Counter()
        for paper in parse_rss(LISTING.read_bytes()).papers:
            primaries[paper.primary_category] += 1
            crosses.update(c for c in paper.categories if c != paper.primary_category)
        self.primaries = primaries
        self.crosses = crosses

    def text(self, n: int) -> str:
        return " ".join(self.rng.choices(self.words, cum_weights=self.word_cum, k=n))

    def categories(self) -> tuple[str, ...]:
        rng = self.rng
        primary = rng.choices(list(self.primaries), list(self.primaries.values()))[0]
        extra = rng.choices([0, 1, 2, 3], [45, 33, 15, 7])[0]
        cats = [primary]
        for cat in rng.choices(list(self.crosses), list(self.crosses.values()), k=extra):
            if cat not in cats:
                cats.append(cat)
        return tuple(cats)

    def paper(self, index: int, announce: AnnounceType) -> Paper:
        rng = self.rng
        cats = self.categories()
        count = min(8, max(1, round(rng.lognormvariate(1.2, 0.6))))
        authors: list[str] = []
        while len(authors) < count:
            name = rng.choices(self.authors, cum_weights=self.author_cum)[0]
            if name not in authors:
                authors.append(name)
        published = NOW - timedelta(hours=5)
        return Paper(
            id=f"2611.{index + 1:05d}",
            version=rng.randint(2, 4) if announce in REPLACEMENT_TYPES else 1,
            title=self.text(rng.randint(6, 16)).capitalize(),
            abstract=self.text(rng.randint(100, 220)).capitalize() + ".",
            authors=tuple(authors),
            primary_category=cats[0],
            categories=cats,
            published=published,
            updated=published,
            announce_type=announce,
        )


SubRow = tuple[int, str, str, str, str, int, int, int, str]
# A query subscription's index keys, by its expression (filled by make_workload).
QUERY_KEYS: dict[str, list[tuple[str, str]]] = {}


def _query_row(
    rng: random.Random, destination: int, expression: str, avoid: frozenset[tuple[str, str]]
) -> SubRow | None:
    """A query subscription row, or None when one of its index keys is in `avoid`."""
    query = parse_query(expression)
    keys = sorted((kind.value, value) for kind, value in query.required_keys)
    if avoid.intersection(keys):
        return None
    QUERY_KEYS[query.source] = keys
    return _row(rng, destination, SubscriptionKind.QUERY, query.source, (query.source, ""))


@dataclass
class Workload:
    papers: list[Paper]
    live: list[SubRow]
    inert: list[SubRow]


def _row(
    rng: random.Random, destination: int, kind: SubscriptionKind, value: str, key: tuple[str, str]
) -> SubRow:
    return (
        destination,
        kind.value,
        value,
        key[0],
        key[1],
        int(rng.random() < 0.8),  # include_cross
        int(rng.random() < 0.1),  # include_replacements
        rng.randrange(1, 50_000),  # created_by
        to_timestamp(NOW - timedelta(days=rng.randrange(1, 700))),
    )


def _unique(rows: list[SubRow], row: SubRow, seen: set[tuple[int, str, str, str]]) -> bool:
    key = (row[0], row[1], row[3], row[4])
    if key in seen:
        return False
    seen.add(key)
    rows.append(row)
    return True


def make_workload(corpus: Corpus, *, inert: bool = True) -> Workload:
    """The batch, the live subscriptions and (with `inert`) the 999,000 others."""
    rng = corpus.rng
    types = [kind for kind, count in MIX.items() for _ in range(count)]
    rng.shuffle(types)
    papers = [corpus.paper(i, kind) for i, kind in enumerate(types)]
    keys = match_keys(papers)
    seen: set[tuple[int, str, str, str]] = set()

    # -- 1,000 live subscriptions, some of which match the batch --------------------------
    live: list[SubRow] = []
    batch_cats = Counter(c for p in papers for c in p.categories)
    instances = [name for p in papers for name in p.authors]
    texts = [keyword_tokens(p.abstract) for p in papers]
    rank = {word: i for i, word in enumerate(corpus.words)}
    while len(live) < LIVE // 10:
        cat = rng.choices(list(batch_cats), list(batch_cats.values()))[0]
        row = _row(rng, rng.randrange(1, DESTINATIONS + 1), SubscriptionKind.CATEGORY, cat,
                   (cat, ""))  # fmt: skip
        _unique(live, row, seen)
    while len(live) < LIVE // 10 + LIVE * 30 // 100:
        if rng.random() < 2 / 3:
            name = rng.choice(instances)  # someone in the batch, as a user might type them
            first, last = name.rsplit(" ", 1)
            style = rng.random()
            if style < 0.3:
                name = f"{first[0]}. {last}"
            elif style < 0.4:
                name = f"{last}, {first}"
        else:
            name = rng.choice(corpus.authors)
        row = _row(rng, rng.randrange(1, DESTINATIONS + 1), SubscriptionKind.AUTHOR, name,
                   author_match_key(name))  # fmt: skip
        _unique(live, row, seen)
    while len(live) < LIVE * 68 // 100:
        style = rng.random()
        if style < 0.5:  # a specific term
            phrase = corpus.words[rng.randrange(300, 20_000)]
        elif style < 0.8:  # a phrase that occurs in some paper (no stop words: users
            tokens = rng.choice(texts)  # subscribe to "neural operator", not "of the")
            starts = [
                s for s in range(len(tokens) - 1)
                if min(rank.get(tokens[s], 0), rank.get(tokens[s + 1], 0)) >= 200
            ]  # fmt: skip
            if not starts:
                continue
            start = rng.choice(starts)
            phrase = " ".join(tokens[start : start + 2])
        else:  # a phrase that rarely does
            phrase = f"{rng.choice(corpus.words[:5_000])} {rng.choice(corpus.words[:20_000])}"
        row = _row(rng, rng.randrange(1, DESTINATIONS + 1), SubscriptionKind.KEYWORD, phrase,
                   keyword_match_key(phrase))  # fmt: skip
        _unique(live, row, seen)

    titles = [keyword_tokens(p.title) for p in papers]
    while len(live) < LIVE - FOLLOWS:
        style = rng.random()
        some = rng.choice(papers)
        word = corpus.words[rng.randrange(300, 20_000)]
        if style < 0.3:  # a field narrowed by a title word
            expression = f"cat:{rng.choice(some.categories)} AND ti:{rng.choice(titles)[-1]}"
        elif style < 0.6:  # an author or a phrase
            expression = f'au:"{rng.choice(instances)}" OR abs:"{word}"'
        elif style < 0.8:  # a word, minus a category
            expression = f"ti:{word} ANDNOT cat:{rng.choice(list(batch_cats))}"
        else:  # two words of the abstract
            expression = f"abs:{word} AND abs:{corpus.words[rng.randrange(300, 20_000)]}"
        query_row = _query_row(rng, rng.randrange(1, DESTINATIONS + 1), expression, frozenset())
        if query_row is not None:
            _unique(live, query_row, seen)

    replaced = [p.id for p in papers if p.announce_type in REPLACEMENT_TYPES]
    while len(live) < LIVE:
        paper_id = rng.choice(replaced)
        row = _row(rng, rng.randrange(1, DESTINATIONS + 1), SubscriptionKind.PAPER, paper_id,
                   (paper_id, ""))  # fmt: skip
        _unique(live, row, seen)

    # -- 999,000 subscriptions whose keys are not in this batch ---------------------------
    if not inert:
        return Workload(papers, live, [])
    others: list[SubRow] = []
    ids = [c.id for c in all_categories()]
    # Paper categories: subject classes, and archives that have none (hep-th, quant-ph).
    paper_cats = [i for i in ids if "." in i or not any(j.startswith(i + ".") for j in ids)]
    absent_cats = [c for c in paper_cats if c not in keys.categories]
    absent_surnames = [s for s in corpus.surnames if author_key(s).surname not in keys.surnames]
    absent_words = [w for w in corpus.words if w not in keys.keyword_tokens]
    inert_total = BIG - LIVE
    shares = {
        SubscriptionKind.CATEGORY: 2,
        SubscriptionKind.AUTHOR: 35,
        SubscriptionKind.KEYWORD: 33,
    }
    targets = [(kind, inert_total * share // 100) for kind, share in shares.items()]
    targets.append((SubscriptionKind.QUERY, inert_total - sum(t for _, t in targets)))
    for kind, target in targets:
        goal = len(others) + target
        while len(others) < goal:
            destination = rng.randrange(1, DESTINATIONS + 1)
            if kind is SubscriptionKind.CATEGORY:
                cat = rng.choice(absent_cats)
                row = _row(rng, destination, kind, cat, (cat, ""))
            elif kind is SubscriptionKind.QUERY:
                anchor, other = rng.choice(absent_words), rng.choice(corpus.words)
                style = rng.random()
                if style < 0.4:
                    expression = f"ti:{anchor} AND cat:{rng.choice(paper_cats)}"
                elif style < 0.7:
                    last = rng.choice(absent_surnames)
                    expression = f'au:"{rng.choice(corpus.first_names)} {last}" OR abs:{anchor}'
                else:
                    expression = f'abs:"{anchor} {other}" ANDNOT ti:{other}'
                query_row = _query_row(rng, destination, expression, keys.query_keys)
                if query_row is None:
                    continue
                row = query_row
            elif kind is SubscriptionKind.AUTHOR:
                last = rng.choice(absent_surnames)
                first = rng.choice(corpus.first_names)
                name = f"{first[0]}. {last}" if rng.random() < 0.3 else f"{first} {last}"
                row = _row(rng, destination, kind, name, author_match_key(name))
            else:
                # The longest token is the indexed one: it must be absent from the batch.
                anchor = rng.choice(absent_words)
                words = [anchor]
                for _ in range(rng.choices([0, 1, 2], [50, 35, 15])[0]):
                    other = rng.choice(corpus.words)
                    if len(other) < len(anchor):
                        words.insert(rng.randrange(len(words) + 1), other)
                phrase = " ".join(words)
                row = _row(rng, destination, kind, phrase, keyword_match_key(phrase))
            _unique(others, row, seen)
    return Workload(papers, live, others)


def _with_ids(subs: Sequence[SubRow]) -> list[tuple[object, ...]]:
    return [(i, *row) for i, row in enumerate(subs, start=1)]


def _query_key_rows(subs: Sequence[SubRow]) -> list[tuple[int, str, str]]:
    """The subscription_query_keys rows of `subs` (ids as above): a query subscription's
    index keys, a keyword subscription's match key as a `token` (as `storage.subscriptions`
    writes them)."""
    rows: list[tuple[int, str, str]] = []
    for i, row in enumerate(subs, start=1):
        if row[1] == SubscriptionKind.QUERY.value:
            rows += [(i, kind, key) for kind, key in QUERY_KEYS[row[2]]]
        elif row[1] == SubscriptionKind.KEYWORD.value:
            rows.append((i, "token", row[3]))
    return rows


async def build(path: Path, papers: Sequence[Paper], subs: Sequence[SubRow]) -> None:
    """A fresh store: 10,000 destinations, `subs` and the batch's papers (bulk inserts)."""
    remove_store(path)
    tmp = path.with_name(path.name + ".part")
    remove_store(tmp)
    db = await open_sqlite(tmp)
    try:
        async with db.transaction() as conn:
            await conn.execute(
                insert(destinations),
                [
                    {"id": i, "kind": "channel", "target_id": 10**15 + i, "guild_id": 10**14 + i}
                    for i in range(1, DESTINATIONS + 1)
                ],
            )
            rows = [
                {**dict(zip(_SUB_COLUMNS, row, strict=True)), "created_at": NOW}
                for row in _with_ids(subs)
            ]
            for start in range(0, len(rows), 100_000):
                await conn.execute(insert(subscriptions), rows[start : start + 100_000])
            await conn.execute(
                insert(subscription_query_keys),
                [
                    {"subscription_id": i, "kind": kind, "key": key}
                    for i, kind, key in _query_key_rows(subs)
                ],
            )
        await PaperRepository(db).upsert_many(papers, now=NOW)
        await db.maintain("ANALYZE")
        await db.maintain("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        await db.close()
    tmp.rename(path)


_SUB_COLUMNS = [
    "id", "destination_id", "kind", "value", "match_key", "given_key",
    "include_cross", "include_replacements", "created_by", "created_at",
]  # fmt: skip


def pg_schema(label: str) -> str:
    return f"bench_matching_v{FORMAT}_{label.lower()}"


async def build_postgres(
    url: str, schema: str, papers: Sequence[Paper], subs: Sequence[SubRow]
) -> None:
    """The same store as `build` in schema `schema`: migrated, rows loaded with COPY.

    Built under `<schema>_part` and renamed when complete, so an interrupted
    build is never mistaken for a finished one.
    """
    part = schema + "_part"
    await drop_schema(url, part)
    await drop_schema(url, schema)
    db = await open_postgres(url, schema=part)
    # COPY is asyncpg's own: a connection of the bench's, outside SQLAlchemy.
    conn = await asyncpg.connect(url, server_settings={"search_path": part})
    try:
        async with conn.transaction():
            await conn.copy_records_to_table(
                "destinations",
                schema_name=part,
                columns=["id", "kind", "target_id", "guild_id"],
                records=[
                    (i, "channel", 10**15 + i, 10**14 + i) for i in range(1, DESTINATIONS + 1)
                ],
            )
            await conn.execute(
                "SELECT setval(pg_get_serial_sequence('destinations', 'id'), $1)", DESTINATIONS
            )
            await conn.copy_records_to_table(
                "subscriptions", schema_name=part, columns=_SUB_COLUMNS, records=_with_ids(subs)
            )
            await conn.execute(
                "SELECT setval(pg_get_serial_sequence('subscriptions', 'id'), $1)", len(subs)
            )
            await conn.copy_records_to_table(
                "subscription_query_keys",
                schema_name=part,
                columns=["subscription_id", "kind", "key"],
                records=_query_key_rows(subs),
            )
        await PaperRepository(db).upsert_many(papers, now=NOW)
        await db.maintain("VACUUM ANALYZE")
    finally:
        await conn.close()
        await db.close()
    await rename_schema(url, part, schema)


@dataclass
class RunResult:
    seconds: float
    candidates: int
    matches: int
    rows: int


async def reset(db: Db) -> None:
    """Empty the outbox and the announcements for the next run (not timed)."""
    await db.execute(delete(deliveries))
    await db.execute(delete(announcements))
    if db.is_postgres:
        # No dead rows left for the next run's inserts.
        await db.maintain("VACUUM deliveries")
        await db.maintain("VACUUM announcements")


async def matching_step(db: Db, papers: Sequence[Paper]) -> RunResult:
    """What `PaperService.announce` does after the upsert, timed from BEGIN to COMMIT:
    record the announcements, then `PaperService.queue_alerts` (the code the poller runs,
    matching in a worker thread, collections put off by `bot.gc_pause`)."""
    service = PaperService(db, None)
    announcements = AnnouncementRepository(db)
    by_id = {p.id: p for p in papers}
    started = time.perf_counter()
    async with db.transaction() as conn:
        fresh = await announcements.record_in(conn, from_listing(papers, LISTING_DAY), now=NOW)
        rows = await service.queue_alerts(conn, fresh, by_id, now=NOW)
    elapsed = time.perf_counter() - started
    # The counts of the parts, for the table (not timed).
    keys = match_keys([as_announced(by_id[a.paper_id], a) for a in fresh])
    async with db.transaction() as conn:
        candidates = await SubscriptionRepository(db).candidates_for(conn, keys)
    alerts = alerts_for(fresh, by_id, candidates, keys)
    await reset(db)
    return RunResult(elapsed, len(candidates), len(alerts), rows)


async def _announcement_step(db: Db, papers: Sequence[Paper]) -> tuple[RunResult, dict[str, float]]:
    """`matching_step` in the same thread, each part timed (`--profile`)."""
    subscriptions = SubscriptionRepository(db)
    announcements = AnnouncementRepository(db)
    outbox = DeliveryOutbox(db)
    by_id = {p.id: p for p in papers}
    parts: dict[str, float] = {}
    started = mark = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        parts[name] = now - mark
        mark = now

    async with db.transaction() as conn, rare_collections():
        fresh = await announcements.record_in(conn, from_listing(papers, LISTING_DAY), now=NOW)
        lap("record")
        keys = match_keys([as_announced(by_id[a.paper_id], a) for a in fresh])
        lap("match_keys")
        candidates = await subscriptions.candidates_for(conn, keys)
        lap("candidates")
        alerts = alerts_for(fresh, by_id, candidates, keys)
        lap("alerts_for")
        rows = await outbox.enqueue(conn, alerts, now=NOW)
        lap("enqueue")
    lap("commit")
    elapsed = time.perf_counter() - started
    return RunResult(elapsed, len(candidates), len(alerts), rows), parts


async def profile_step(db: Db, papers: Sequence[Paper], label: str) -> None:
    """cProfile of one announcement step, plus the step's parts timed separately."""
    profiler = cProfile.Profile()
    profiler.enable()
    result, parts = await _announcement_step(db, papers)
    profiler.disable()
    await reset(db)
    print(f"\n--- profile {label}: total {result.seconds:.3f}s")
    print("    " + "  ".join(f"{k}={v:.3f}s" for k, v in parts.items()))
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(18)
    print(out.getvalue())


Store = tuple[str, str]  # (backend, "1k" or "1M")


async def open_stores(
    backends: Sequence[str], url: str | None, rebuild: bool
) -> tuple[list[Paper], dict[Store, Db]]:
    """The batch, and every (backend, size) store, built first where missing (or with `rebuild`)."""
    OUT.mkdir(parents=True, exist_ok=True)
    paths = {
        "1k": OUT / f"matching-v{FORMAT}-{SEED}-{LIVE}.db",
        "1M": OUT / f"matching-v{FORMAT}-{SEED}-{BIG}.db",
    }

    async def missing(backend: str, label: str) -> bool:
        if rebuild:
            return True
        if backend == "sqlite":
            return not paths[label].exists()
        assert url is not None
        return not await schema_exists(url, pg_schema(label))

    started = time.perf_counter()
    build_big = any([await missing(b, "1M") for b in backends])
    workload = make_workload(Corpus(random.Random(SEED)), inert=build_big)
    others = f" + {len(workload.inert):,} others" if workload.inert else ""
    print(f"workload: {len(workload.papers):,} papers, {len(workload.live):,} live"
          f"{others} subscriptions ({time.perf_counter() - started:.1f}s)")  # fmt: skip
    stores: dict[Store, Db] = {}
    for backend in backends:
        for label, subs in (("1k", workload.live), ("1M", workload.live + workload.inert)):
            name = paths[label].name if backend == "sqlite" else f"schema {pg_schema(label)}"
            if await missing(backend, label):
                print(f"building {backend} {name} ...")
                started = time.perf_counter()
                if backend == "sqlite":
                    await build(paths[label], workload.papers, subs)
                else:
                    assert url is not None
                    await build_postgres(url, pg_schema(label), workload.papers, subs)
                print(f"built {backend} {name}: {len(subs):,} subscriptions "
                      f"in {time.perf_counter() - started:.1f}s")  # fmt: skip
            if backend == "sqlite":
                stores[backend, label] = await open_sqlite(paths[label])
            else:
                assert url is not None
                stores[backend, label] = await open_postgres(url, schema=pg_schema(label))
    return workload.papers, stores


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--profile", action="store_true", help="cProfile one run of each")
    add_backends_option(parser)
    args = parser.parse_args()
    backends, url = chosen_backends(args.backends)
    papers, stores = await open_stores(backends, url, args.rebuild)
    try:
        results: dict[Store, list[RunResult]] = {store: [] for store in stores}
        for db in stores.values():  # warm-up: page cache and statement caches
            await matching_step(db, papers)
        for run in range(args.rounds):
            order = list(stores) if run % 2 == 0 else list(reversed(stores))
            for store in order:
                results[store].append(await matching_step(stores[store], papers))
        print()
        print(f"{'backend':<9} {'size':<4} {'subscriptions':>13} {'candidates':>10} "
              f"{'alerts':>8} {'outbox rows':>11} {'median':>8}  (min, max of "
              f"{args.rounds})")  # fmt: skip
        medians: dict[Store, float] = {}
        for (backend, label), runs in results.items():
            last = runs[-1]
            seconds = [r.seconds for r in runs]
            medians[backend, label] = median(seconds)
            stored = await stores[backend, label].scalar(
                select(func.count()).select_from(subscriptions)
            )
            print(
                f"{backend:<9} {label:<4} {int(stored):>13,} {last.candidates:>10,} "
                f"{last.matches:>8,} {last.rows:>11,} {median(seconds):>7.3f}s  "
                f"({min(seconds):.3f}s, {max(seconds):.3f}s)"
            )
        rows = {store: runs[-1].rows for store, runs in results.items()}
        if len(set(rows.values())) > 1:
            print("warning: the stores wrote different outbox rows; the ratios are not fair")
        print()
        for backend in backends:
            big, small = medians[backend, "1M"], medians[backend, "1k"]
            print(f"{backend:<9} 1M: {big:.3f}s ({'meets' if big <= 1.0 else 'MISSES'} <= 1 s)"
                  f"   1M / 1k = {big / small:.2f} "
                  f"({'meets' if big / small <= 1.5 else 'MISSES'} <= 1.5)")  # fmt: skip
        if "sqlite" in backends and "postgres" in backends:
            print("PostgreSQL / SQLite: " + "   ".join(
                f"{label} {medians['postgres', label] / medians['sqlite', label]:.2f}"
                for label in ("1k", "1M")
            ))  # fmt: skip
        if args.profile:
            for (backend, label), db in stores.items():
                await profile_step(db, papers, f"{backend} {label}")
    finally:
        for db in stores.values():
            await db.close()


if __name__ == "__main__":
    asyncio.run(main())
