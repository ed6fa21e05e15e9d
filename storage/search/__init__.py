"""Full-text search and the planner-tuned look-ups, one implementation per engine.

`search_for(store)` picks, once, `SqliteSearch` (a contentless FTS5 table ranked
with bm25) or `PostgresSearch` (a tsvector per paper, GIN-indexed, ranked with
ts_rank). Both index `fold_for_index()` of each paper's title, abstract and
author list, written by `PaperRepository` through `add`/`remove` rather than by
triggers, so TeX accents and `ł`/`ø` fold the same in the index and in a query.
Which normalizer built the index is kept in meta; when it differs from
`FTS_NORMALIZER` the whole index is rebuilt once, in one transaction.

SQLite ranks with bm25 (title above authors above abstract) among the
`SEARCH_CANDIDATES` most recently stored matches, ties broken by recency: over
a million papers, ranking every paper that contains "learning" costs far more
than the 20 ms a search may take, and a bot announcing new papers cares about
recent ones first. See `SqliteSearch._plan` for when bm25 is skipped.

The engine-specific SQL (FTS5 MATCH/bm25, tsvector @@, join orders pinned with
SQLite's CROSS JOIN) is `text()` with named binds, inside the engine's class.
"""

from __future__ import annotations

import logging

from storage.search.base import (
    BM25_BUDGET,
    COMMON_CANDIDATES,
    FTS_NORMALIZER,
    MAX_SEARCH_TERMS,
    SEARCH_CANDIDATES,
    Search,
    search_tokens,
)
from storage.search.postgres import PostgresSearch
from storage.search.sqlite import SqliteSearch, match_expression
from storage.store import Store

log = logging.getLogger(__name__)

__all__ = [
    "BM25_BUDGET",
    "COMMON_CANDIDATES",
    "FTS_NORMALIZER",
    "MAX_SEARCH_TERMS",
    "SEARCH_CANDIDATES",
    "PostgresSearch",
    "Search",
    "SqliteSearch",
    "match_expression",
    "search_for",
    "search_tokens",
]


def search_for(
    store: Store,
    *,
    search_candidates: int = SEARCH_CANDIDATES,
    common_candidates: int = COMMON_CANDIDATES,
    bm25_budget: int = BM25_BUDGET,
) -> Search:
    """The search implementation for `store`'s engine."""
    kind = PostgresSearch if store.is_postgres else SqliteSearch
    return kind(
        store,
        search_candidates=search_candidates,
        common_candidates=common_candidates,
        bm25_budget=bm25_budget,
    )
