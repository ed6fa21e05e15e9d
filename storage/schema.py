"""paperbell's tables as SQLAlchemy Core metadata: the schema migrations 0001..0009 build.

One `metadata` describes both engines. Where they differ in a column's type (PostgreSQL
BIGINT where SQLite has INTEGER, DOUBLE PRECISION where SQLite has REAL) the type is a
`with_variant`; names of unique and check constraints are PostgreSQL's own, so the
metadata matches a migrated PostgreSQL database exactly (SQLite keeps them unnamed).

Objects one engine has and the other does not (the search index, bookkeeping tables) are
not part of `metadata`: `ENGINE_SPECIFIC_TABLES` and `ENGINE_SPECIFIC_INDEXES` name them,
so a comparison of a live database with `metadata` can leave them out.

Timestamps are TEXT in both engines (UTC ISO-8601, see bot/domain/timestamps.py);
`UtcTimestamp` maps them to aware datetimes. Dates and other text stay `Text`.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import (
    REAL,
    BigInteger,
    CheckConstraint,
    Column,
    Dialect,
    Double,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeDecorator, TypeEngine

from bot.domain.timestamps import from_timestamp, to_timestamp

log = logging.getLogger(__name__)


class UtcTimestamp(TypeDecorator[datetime]):
    """An aware datetime stored as TEXT in the one fixed-width UTC form.

    Lexical order of the stored text is time order (the outbox compares
    `next_attempt_at <= ?` as text), so every write goes through `to_timestamp`;
    a naive datetime is refused there. Reads accept any ISO-8601 text, including
    rows older code wrote without microseconds or offset.
    """

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> str | None:
        return None if value is None else to_timestamp(value)

    def process_result_value(self, value: Any | None, dialect: Dialect) -> datetime | None:
        return None if value is None else from_timestamp(str(value))

    @property
    def python_type(self) -> type[datetime]:
        return datetime


def _big() -> TypeEngine[int]:
    """PostgreSQL BIGINT (Discord snowflakes, ids); INTEGER in SQLite, where it is 64-bit.

    An `INTEGER PRIMARY KEY` is SQLite's rowid alias; `BIGINT PRIMARY KEY` would not be.
    """
    return BigInteger().with_variant(Integer(), "sqlite")


def _double() -> TypeEngine[float]:
    """PostgreSQL DOUBLE PRECISION; REAL (an 8-byte float) in SQLite."""
    return Double().with_variant(REAL(), "sqlite")


def _check_in(column: str, values: tuple[str, ...], name: str) -> CheckConstraint:
    listed = ", ".join(f"'{v}'" for v in values)
    return CheckConstraint(f"{column} IN ({listed})", name=name)


# Objects left out of `metadata` because only one engine has them. A comparison of a
# live database with `metadata` (tests/storage/test_schema.py) skips exactly these.
ENGINE_SPECIFIC_TABLES: frozenset[str] = frozenset(
    {
        # Full-text index. SQLite: a contentless FTS5 virtual table (migration 0003) and
        # its shadow tables. PostgreSQL: a plain table (rowid -> papers ON DELETE CASCADE,
        # tsv TSVECTOR NOT NULL, GIN index papers_fts_tsv). No shared table has a
        # PostgreSQL-only column: the tsvector lives in this table of its own.
        "papers_fts",
        "papers_fts_data",
        "papers_fts_idx",
        "papers_fts_content",
        "papers_fts_docsize",
        "papers_fts_config",
        # PostgreSQL's migration bookkeeping (SQLite uses PRAGMA user_version).
        "paperbell_schema",
        # SQLite's internal tables (AUTOINCREMENT counters, ANALYZE statistics).
        "sqlite_sequence",
        "sqlite_stat1",
        "sqlite_stat4",
    }
)
ENGINE_SPECIFIC_INDEXES: frozenset[str] = frozenset(
    {
        # PostgreSQL: GIN index of papers_fts.tsv (its table is excluded above).
        "papers_fts_tsv",
    }
)
# In `metadata` but created on SQLite only (`ddl_if`), so a PostgreSQL comparison skips
# it: PostgreSQL's migration 0007 did not add it. Alembic does not honour `ddl_if`.
SQLITE_ONLY_INDEXES: frozenset[str] = frozenset({"papers_rowid_published"})

metadata = MetaData()

papers = Table(
    "papers",
    metadata,
    # Assigned by the store (it is also the search index's key), never by the database.
    Column("rowid", _big(), primary_key=True, autoincrement=False),
    Column("id", Text, nullable=False),  # versionless arXiv id
    Column("version", Integer, nullable=False),
    Column("title", Text, nullable=False),
    Column("abstract", Text, nullable=False),
    Column("authors_json", Text, nullable=False),  # JSON array of names, in order
    Column("primary_category", Text, nullable=False),
    Column("categories", Text, nullable=False),  # space-separated, primary first
    Column("published", UtcTimestamp),
    Column("updated", UtcTimestamp),
    Column("comment", Text),
    Column("journal_ref", Text),
    Column("doi", Text),
    Column("announce_type", Text),
    Column("first_seen", UtcTimestamp, nullable=False),
    UniqueConstraint("id", name="papers_id_key"),
)
Index("papers_published", papers.c.published.desc(), papers.c.id)
# SQLite only (migration 0007, the author page's sort); PostgreSQL's 0007 has no such index.
Index("papers_rowid_published", papers.c.rowid, papers.c.published, papers.c.id).ddl_if(
    dialect="sqlite"
)

authors = Table(
    "authors",
    metadata,
    Column("id", _big(), primary_key=True, autoincrement=False),  # assigned by the store
    Column("name", Text, nullable=False),  # exact spelling as arXiv gave it
    Column("surname_key", Text, nullable=False),
    Column("given_key", Text, nullable=False),
    UniqueConstraint("name", name="authors_name_key"),
)
Index("authors_surname_given", authors.c.surname_key, authors.c.given_key, authors.c.name)

# The three pure key tables are WITHOUT ROWID in SQLite: the key is the row.
paper_authors = Table(
    "paper_authors",
    metadata,
    Column("author_id", _big(), ForeignKey("authors.id"), nullable=False),
    Column("paper_rowid", _big(), ForeignKey("papers.rowid", ondelete="CASCADE"), nullable=False),
    PrimaryKeyConstraint("author_id", "paper_rowid", name="paper_authors_pkey"),
    sqlite_with_rowid=False,
)

paper_categories = Table(
    "paper_categories",
    metadata,
    Column("category", Text, nullable=False),
    Column("paper_rowid", _big(), ForeignKey("papers.rowid", ondelete="CASCADE"), nullable=False),
    PrimaryKeyConstraint("category", "paper_rowid", name="paper_categories_pkey"),
    sqlite_with_rowid=False,
)
Index("paper_categories_paper", paper_categories.c.paper_rowid)

feed_state = Table(
    "feed_state",
    metadata,
    Column("url", Text, primary_key=True),
    # HTTP validators and the feed's build date, kept exactly as the server sent them.
    Column("etag", Text),
    Column("last_modified", Text),
    Column("last_build", Text),
    Column("last_success", UtcTimestamp),
    Column("last_attempt", UtcTimestamp),
    Column("last_error", Text),
    Column("last_error_at", UtcTimestamp),
    Column("consecutive_failures", Integer, nullable=False, server_default=text("0")),
)

destinations = Table(
    "destinations",
    metadata,
    Column("id", _big(), Identity(), primary_key=True),
    Column("kind", Text, nullable=False),
    Column("target_id", _big(), nullable=False),  # channel id or user id
    Column("guild_id", _big()),  # NULL for DMs
    Column("paused_reason", Text),
    Column("paused_at", UtcTimestamp),
    Column("digest", Integer, nullable=False, server_default=text("0")),
    UniqueConstraint("kind", "target_id", name="destinations_kind_target_id_key"),
    _check_in("kind", ("channel", "dm"), "destinations_kind_check"),
)
Index("destinations_guild", destinations.c.guild_id)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", _big(), Identity(), primary_key=True),
    Column(
        "destination_id",
        _big(),
        ForeignKey("destinations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("kind", Text, nullable=False),
    Column("value", Text, nullable=False),
    # Category id, author surname key, keyword's index token, paper id or query expression.
    Column("match_key", Text, nullable=False),
    # Authors: normalized given names; keywords: the normalized phrase.
    Column("given_key", Text, nullable=False, server_default=text("''")),
    Column("include_cross", Integer, nullable=False, server_default=text("1")),
    Column("include_replacements", Integer, nullable=False, server_default=text("0")),
    Column("created_by", _big(), nullable=False),
    Column("created_at", UtcTimestamp, nullable=False),
    UniqueConstraint(
        "destination_id",
        "kind",
        "match_key",
        "given_key",
        name="subscriptions_destination_id_kind_match_key_given_key_key",
    ),
    _check_in(
        "kind", ("author", "category", "keyword", "paper", "query"), "subscriptions_kind_check"
    ),
)
Index("subscriptions_match", subscriptions.c.kind, subscriptions.c.match_key)
Index("subscriptions_creator", subscriptions.c.created_by)

subscription_query_keys = Table(
    "subscription_query_keys",
    metadata,
    Column(
        "subscription_id",
        _big(),
        ForeignKey("subscriptions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("kind", Text, nullable=False),
    Column("key", Text, nullable=False),
    PrimaryKeyConstraint("subscription_id", "kind", "key", name="subscription_query_keys_pkey"),
    _check_in(
        "kind", ("category", "archive", "surname", "token"), "subscription_query_keys_kind_check"
    ),
    sqlite_with_rowid=False,
)
Index(
    "subscription_query_keys_lookup",
    subscription_query_keys.c.kind,
    subscription_query_keys.c.key,
    subscription_query_keys.c.subscription_id,
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", _big(), Identity(), primary_key=True),
    Column(
        "destination_id",
        _big(),
        ForeignKey("destinations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("paper_rowid", _big(), ForeignKey("papers.rowid", ondelete="CASCADE"), nullable=False),
    Column("event", Text, nullable=False, server_default="announced"),
    Column("version", Integer, nullable=False, server_default=text("0")),  # 0 unless 'version'
    Column("note", Text),  # what the alert says besides the paper
    Column("status", Text, nullable=False, server_default="pending"),
    Column("matched_json", Text, nullable=False, server_default="[]"),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("created_at", UtcTimestamp, nullable=False),
    Column("next_attempt_at", UtcTimestamp, nullable=False),
    Column("sent_at", UtcTimestamp),
    Column("message_id", _big()),
    Column("last_error", Text),
    Column("batch_id", _big()),
    Column("claimed_until", UtcTimestamp),
    Column("claimed_by", Text),
    UniqueConstraint(
        "destination_id", "paper_rowid", "event", "version", name="deliveries_alert_key"
    ),
    _check_in("event", ("announced", "version", "published"), "deliveries_event_check"),
    _check_in("status", ("pending", "sent", "failed"), "deliveries_status_check"),
)
Index(
    "deliveries_due",
    deliveries.c.status,
    deliveries.c.next_attempt_at,
    sqlite_where=deliveries.c.status == "pending",
    postgresql_where=deliveries.c.status == "pending",
)
Index(
    "deliveries_batch",
    deliveries.c.batch_id,
    sqlite_where=deliveries.c.batch_id.is_not(None),
    postgresql_where=deliveries.c.batch_id.is_not(None),
)

meta = Table(
    "meta",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
)

arxiv_lookups = Table(
    "arxiv_lookups",
    metadata,
    Column("query", Text, primary_key=True),  # the exact search_query sent
    Column("fetched_at", UtcTimestamp, nullable=False),
    Column("results", Integer, nullable=False, server_default=text("0")),
    Column("total", Integer),
)
Index("arxiv_lookups_by_age", arxiv_lookups.c.fetched_at)

announcements = Table(
    "announcements",
    metadata,
    Column("id", _big(), Identity(), primary_key=True),
    Column("paper_id", Text, nullable=False),  # versionless arXiv id
    Column("version", Integer, nullable=False),
    Column("announce_type", Text, nullable=False),
    Column("listing_date", Text, nullable=False),  # YYYY-MM-DD, the listing's day (US Eastern)
    Column("categories", Text, nullable=False),  # as the listing carried them
    Column("withdrawn", Integer, nullable=False, server_default=text("0")),
    Column("late", Integer, nullable=False, server_default=text("0")),
    Column("recorded_at", UtcTimestamp, nullable=False),
    UniqueConstraint(
        "paper_id",
        "version",
        "announce_type",
        "listing_date",
        name="announcements_paper_id_version_announce_type_listing_date_key",
    ),
    _check_in(
        "announce_type",
        ("new", "cross", "replace", "replace-cross"),
        "announcements_announce_type_check",
    ),
)
Index("announcements_listing", announcements.c.listing_date, announcements.c.announce_type)

publications = Table(
    "publications",
    metadata,
    Column("paper_id", Text, primary_key=True),
    Column("journal_ref", Text),
    Column("doi", Text),
    Column("noted_at", UtcTimestamp, nullable=False),
)

harvest_state = Table(
    "harvest_state",
    metadata,
    Column("harvest_key", Text, primary_key=True),
    Column("metadata_prefix", Text, nullable=False),
    Column("set_spec", Text, nullable=False, server_default=text("''")),
    # OAI-PMH from/until as given (dates), '' when unbounded.
    Column("from_date", Text, nullable=False, server_default=text("''")),
    Column("until_date", Text, nullable=False, server_default=text("''")),
    Column("resumption_token", Text),  # the page to ask for next; NULL: from the start
    Column("cursor", _big()),  # the server's record offset of that page
    Column("complete_list_size", _big()),
    Column("records", _big(), nullable=False, server_default=text("0")),
    Column("pages", Integer, nullable=False, server_default=text("0")),
    Column("restarts", Integer, nullable=False, server_default=text("0")),
    Column("started_at", UtcTimestamp, nullable=False),
    Column("updated_at", UtcTimestamp, nullable=False),
    Column("finished_at", UtcTimestamp),
)

ratings = Table(
    "ratings",
    metadata,
    Column(
        "destination_id",
        _big(),
        ForeignKey("destinations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("paper_id", Text, nullable=False),  # versionless arXiv id
    Column("user_id", _big(), nullable=False),
    Column("liked", Integer, nullable=False),
    Column("rated_at", UtcTimestamp, nullable=False),
    PrimaryKeyConstraint("destination_id", "paper_id", "user_id", name="ratings_pkey"),
    CheckConstraint("liked IN (0, 1)", name="ratings_liked_check"),
)
Index("ratings_recent", ratings.c.destination_id, ratings.c.rated_at)

ranking_tuning = Table(
    "ranking_tuning",
    metadata,
    Column(
        "destination_id",
        _big(),
        ForeignKey("destinations.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("top_k", Integer),  # at most this many alerts per UTC day
    Column("min_score", _double()),  # alerts scoring below this are kept back
    Column("updated_by", _big(), nullable=False),
    Column("updated_at", UtcTimestamp, nullable=False),
)

ranking_filtered = Table(
    "ranking_filtered",
    metadata,
    Column(
        "delivery_id",
        _big(),
        ForeignKey("deliveries.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("score", _double(), nullable=False),
    Column("reason", Text, nullable=False),  # 'top_k' or 'min_score'
    Column("filtered_at", UtcTimestamp, nullable=False),
)
