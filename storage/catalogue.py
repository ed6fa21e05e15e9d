"""The catalogue writer: stores papers in bulk (snapshot import, OAI-PMH harvest).

Filling the catalogue never alerts: unlike `PaperService.ingest`, nothing here
matches subscriptions or writes the outbox, so a million imported papers queue
no message. Storing is `PaperRepository.upsert_many_in`, so it is idempotent
and merges with what the bot polled; a re-import changes nothing.

While a writer is open on SQLite, the writing connection gets a larger page
cache (the author and id indexes of millions of papers are written at random
places) and skips the foreign-key checks of the link tables (every author and
category link is a parent lookup: 6 % of the import's writer CPU, measured with
`python -m bench.bulk_import`; the writer links only authors and papers it has
just found or written in the same transaction). Both are set back when the
writer closes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Self

from sqlalchemy import text

from bot.domain.models import Paper
from storage.author_cache import AuthorIdCache
from storage.papers import PaperRepository
from storage.prepared import AuthorKeys, PreparedPaper
from storage.store import Connection, Store

log = logging.getLogger(__name__)

BULK_CACHE_KIB = 262_144  # 256 MiB of page cache for the writer during a bulk job
COMPACT_AFTER_NEW = 50_000  # new papers after which the search index is merged at the end


@dataclass(frozen=True, slots=True)
class StoreResult:
    new: int
    updated: int
    unchanged: int


class CatalogueWriter:
    """Stores batches of papers without alerting anyone."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._repo = PaperRepository(store)
        self._saved_cache: int | None = None
        self._author_ids = AuthorIdCache()  # for `store`'s batches, see storage.author_cache
        self.new = 0  # papers this writer stored for the first time

    async def __aenter__(self) -> Self:
        if not self._store.is_postgres:
            # The SQLite writer engine has one connection: this sets it for every batch.
            async with self._store.transaction() as conn:
                saved = (await conn.execute(text("PRAGMA cache_size"))).scalar()
                self._saved_cache = None if saved is None else int(saved)
                await conn.execute(text(f"PRAGMA cache_size = -{BULK_CACHE_KIB}"))
            await self._store.maintain("PRAGMA foreign_keys = OFF")  # not inside a transaction
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None and self.new >= COMPACT_AFTER_NEW:
                log.info("merging the search index after %d new papers", self.new)
                await self._repo.compact_index()
        finally:
            if not self._store.is_postgres:
                await self._store.maintain("PRAGMA foreign_keys = ON")
            if self._saved_cache is not None:
                async with self._store.transaction() as conn:
                    await conn.execute(text(f"PRAGMA cache_size = {self._saved_cache}"))

    async def store(self, papers: Sequence[Paper], *, now: datetime | None = None) -> StoreResult:
        """Store one batch in its own transaction."""

        async def upsert(conn: Connection) -> tuple[int, int, int]:
            result = await self._repo.upsert_many_in(
                conn, papers, now=now, author_ids=self._author_ids
            )
            return len(result.new), result.updated, result.unchanged

        return await self._stored(upsert)

    async def store_prepared(
        self,
        rows: Sequence[PreparedPaper],
        *,
        keys: AuthorKeys | None = None,
        now: datetime | None = None,
    ) -> StoreResult:
        """`store` for rows `storage.prepared.prepare` made (the bulk import's parser processes),
        with the author keys worked out beside them."""
        return await self._stored(
            lambda conn: self._repo.upsert_prepared_in(
                conn, rows, keys=keys, now=now, author_ids=self._author_ids
            )
        )

    async def _stored(
        self, upsert: Callable[[Connection], Awaitable[tuple[int, int, int]]]
    ) -> StoreResult:
        try:
            async with self._store.transaction() as conn:
                new, updated, unchanged = await upsert(conn)
        except BaseException:
            self._author_ids.discard()
            raise
        self._author_ids.commit()  # the transaction committed: its ids are real
        self.new += new
        return StoreResult(new, updated, unchanged)

    async def store_in(
        self,
        conn: Connection,
        papers: Sequence[Paper],
        *,
        now: datetime | None = None,
    ) -> StoreResult:
        """Store one batch inside the caller's transaction (with its harvest progress)."""
        result = await self._repo.upsert_many_in(conn, papers, now=now)
        self.new += len(result.new)
        return StoreResult(len(result.new), result.updated, result.unchanged)
