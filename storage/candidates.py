"""Candidate lookup for matching: the subscriptions a batch of papers may match.

This is the matcher's hot path (one call per listing, tens of thousands of keys
against up to millions of subscriptions), and the one place where each engine
needs its own planner-tuned SQL, so it is written as `text()` per engine:

- SQLite: the batch's keys arrive as one JSON object, {kind: [key, ...]}, that
  drives the join (json_each), so each key is one probe of the
  subscriptions(kind, match_key) index; CROSS JOIN pins that loop order
  (SQLAlchemy's joins cannot spell it). Nothing scans all subscriptions.
- PostgreSQL: the same JSON object; LATERAL ... OFFSET 0 keeps one probe of
  subscriptions(kind, match_key) per key (a plain join may scan every
  subscription), and no temp table means no dead rows piling up in a pooled
  connection's temp schema.

Measured against the old driver-level code (scratch A/B, the real 1,504-paper
listing's ~40,000 keys against 1k and 1M subscriptions, medians of 7 per run,
4 interleaved runs on a loaded 2-core machine): SQLite 338-641 ms (1k) and
375-545 ms (1M) against 390-647 and 404-666 ms; PostgreSQL client CPU 199-200 ms
against 179-198 ms, wall time within the noise. SQLAlchemy costs less than 10 %
here, so the lookup stays on it.

Keyword subscriptions are indexed in subscription_query_keys as `token` keys
beside the queries' (revision 0011), so a listing's ~30,000 words are probed
once, not once per table: with the collections put off during matching
(`bot.gc_pause`), `python -m bench.matching` went from 0.87 s (SQLite) and
1.42 s (PostgreSQL) at 1M subscriptions to 0.69 s and 0.91 s.

Keys went as two text arrays on PostgreSQL until asyncpg's encoding of them (an
isinstance check per element) showed as ~80 ms of Python per listing; as one
JSON text the lookup took 240 ms instead of 270-310 ms (`--profile`-style
scratch runs on the bench's 1M store).

`candidate_finder(dialect)` picks the engine's SQL once, in the repository;
the rows come labelled as `storage.subscriptions` decodes them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.selectable import TextualSelect

from storage.schema import UtcTimestamp
from storage.store import Dialect

log = logging.getLogger(__name__)

Keys = Mapping[str, Collection[str]]
"""Keys by kind: a subscription kind's match keys, or an index key kind's keys."""

# Same names as the Core select in storage.subscriptions, so one decoder reads both.
_COLUMNS = (
    "s.id, s.kind, s.value, s.match_key, s.given_key, s.include_cross,"
    " s.include_replacements, s.created_by, s.created_at,"
    " d.id AS d_id, d.kind AS d_kind, d.target_id AS d_target_id, d.guild_id AS d_guild_id,"
    " d.paused_reason AS d_paused_reason, d.paused_at AS d_paused_at, d.digest AS d_digest"
)


def _typed(sql: str) -> TextualSelect:
    """`text(sql)` whose timestamp columns come back as aware datetimes."""
    return text(sql).columns(created_at=UtcTimestamp(), d_paused_at=UtcTimestamp())


# The keys arrive as one JSON object, {kind: [key, ...]}, and json_each drives the join,
# so each key is one probe of subscriptions(kind, match_key); CROSS JOIN pins that loop
# order (SQLAlchemy's joins cannot spell it). Nothing scans all subscriptions. This
# replaced a TEMP key table filled from a JSON array of [kind, key] pairs: the table's
# inserts and the pairs' parsing were 40 % of the token lookup (80 -> 48 ms for a daily
# listing's ~32,000 words, driver-level A/B).
CANDIDATES_SQL = (
    "SELECT " + _COLUMNS + " FROM json_each(:keys) AS g CROSS JOIN json_each(g.value) AS k"
    " CROSS JOIN subscriptions AS s ON s.kind = g.key AND s.match_key = k.value"
    " CROSS JOIN destinations AS d ON d.id = s.destination_id"
    " WHERE d.paused_reason IS NULL"
)
# Query and keyword subscriptions are found through their index keys
# (`bot.domain.query.required_keys`; a keyword's match key as a `token`): one probe of
# subscription_query_keys(kind, key) per key of the batch's papers.
QUERY_CANDIDATES_SQL = (
    "SELECT " + _COLUMNS + " FROM json_each(:keys) AS g CROSS JOIN json_each(g.value) AS k"
    " CROSS JOIN subscription_query_keys AS q ON q.kind = g.key AND q.key = k.value"
    " CROSS JOIN subscriptions AS s ON s.id = q.subscription_id"
    " CROSS JOIN destinations AS d ON d.id = s.destination_id"
    " WHERE d.paused_reason IS NULL"
)

# PostgreSQL: the same JSON object (not two text arrays: see the module docstring).
_PG_KEYS = (
    "json_each(CAST(:keys AS json)) AS g"
    " CROSS JOIN LATERAL json_array_elements_text(g.value) AS k(key)"
)
_PG_CANDIDATES_SQL = (
    "SELECT " + _COLUMNS + " FROM " + _PG_KEYS + " CROSS JOIN LATERAL (SELECT * FROM"
    " subscriptions AS s0 WHERE s0.kind = g.key AND s0.match_key = k.key OFFSET 0) AS s"
    " JOIN destinations AS d ON d.id = s.destination_id"
    " WHERE d.paused_reason IS NULL"
)
_PG_QUERY_CANDIDATES_SQL = (
    "SELECT " + _COLUMNS + " FROM " + _PG_KEYS + " CROSS JOIN LATERAL (SELECT"
    " q0.subscription_id FROM subscription_query_keys AS q0"
    " WHERE q0.kind = g.key AND q0.key = k.key OFFSET 0) AS q"
    " JOIN subscriptions AS s ON s.id = q.subscription_id"
    " JOIN destinations AS d ON d.id = s.destination_id"
    " WHERE d.paused_reason IS NULL"
)


class CandidateFinder:
    """One engine's candidate lookup, run on the caller's (write) connection."""

    def __init__(self, plain: str, indexed: str) -> None:
        self._plain = _typed(plain)
        self._indexed = _typed(indexed)

    async def find(self, conn: AsyncConnection, keys: Keys, index_keys: Keys) -> list[Row[Any]]:
        """Subscriptions of unpaused destinations under one of `keys` (their kind's match
        keys), then those indexed in subscription_query_keys under one of `index_keys`;
        each part ordered by subscription id, each subscription once."""
        rows: list[Row[Any]] = []
        for statement, by_kind in ((self._plain, keys), (self._indexed, index_keys)):
            wanted = {kind: list(values) for kind, values in by_kind.items() if values}
            if not wanted:
                continue
            part: dict[int, Row[Any]] = {}  # a subscription under several keys comes once
            for row in await conn.execute(statement, {"keys": json.dumps(wanted)}):
                part.setdefault(row.id, row)
            rows += sorted(part.values(), key=lambda row: int(row.id))
        return rows


def candidate_finder(dialect: Dialect) -> CandidateFinder:
    if dialect == "postgresql":
        return CandidateFinder(_PG_CANDIDATES_SQL, _PG_QUERY_CANDIDATES_SQL)
    return CandidateFinder(CANDIDATES_SQL, QUERY_CANDIDATES_SQL)
