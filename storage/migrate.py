"""Running the schema history (Alembic) from code, on either engine.

Opening an up-to-date store only reads its revision, on a reading connection:
no write lock, so a read command never queues behind a busy writer. Pending
revisions run in one transaction on the store's writer (SQLite: BEGIN
IMMEDIATE), so a failing revision leaves the database as it was; the revision is
read again inside it, since another process may have migrated meanwhile. On
PostgreSQL an advisory lock serialises that, so several bot processes can start
at once. A database from before Alembic is stamped at the revision its old
bookkeeping names (SQLite's `PRAGMA user_version`, PostgreSQL's
`paperbell_schema` table), then carried forward like any other; that
bookkeeping is kept in step, so an older paperbell sees a newer schema as
newer instead of re-running its migrations on it.
"""

from __future__ import annotations

import logging
from contextlib import AbstractAsyncContextManager
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext, MigrationInfo
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.errors import StorageError

log = logging.getLogger(__name__)


class Store(Protocol):
    """What migrating needs of `storage.store.Store` (which calls in here)."""

    @property
    def is_postgres(self) -> bool: ...

    def reading(self) -> AbstractAsyncContextManager[AsyncConnection]: ...

    def transaction(self) -> AbstractAsyncContextManager[AsyncConnection]: ...


MIGRATION_LOCK = 0x70617065  # "pape": serialises migrations (and schema creation) across processes
LEGACY_TABLE = "paperbell_schema"  # PostgreSQL's bookkeeping before Alembic


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option(
        "script_location", str(resources.files("storage").joinpath("migrations"))
    )
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@cache
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def latest_revision() -> int:
    """The newest revision this paperbell knows, as a number."""
    head = _script().get_current_head()
    if head is None:
        raise StorageError("paperbell ships no schema revisions")
    return int(head)


def revision_names() -> dict[int, str]:
    """Each revision's number and name (its file's stem, e.g. `0004_delivery_claims`)."""
    return {
        int(rev.revision): Path(rev.path).stem
        for rev in _script().walk_revisions()
        if rev.path is not None
    }


def _legacy_version(connection: Connection) -> int:
    """The schema version an older paperbell recorded (0: none)."""
    if connection.dialect.name == "sqlite":
        return int(connection.exec_driver_sql("PRAGMA user_version").scalar() or 0)
    if not inspect(connection).has_table(LEGACY_TABLE):
        return 0
    value = connection.execute(text(f"SELECT coalesce(max(version), 0) FROM {LEGACY_TABLE}"))
    return int(value.scalar() or 0)


def _revision_of(connection: Connection) -> int:
    current = MigrationContext.configure(connection).get_current_revision()
    return int(current) if current is not None else _legacy_version(connection)


async def current_revision(store: Store) -> int:
    """The revision the database is at, as its number (0: no schema yet)."""
    async with store.reading() as conn:
        return await conn.run_sync(_revision_of)


def _keep_legacy_bookkeeping(connection: Connection, applied: list[int]) -> None:
    """Record `applied` where an older paperbell looks for its schema version."""
    if not applied:
        return
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql(f"PRAGMA user_version = {max(applied)}")
        return
    # Only where an older paperbell made the table; a store Alembic created has none.
    if inspect(connection).has_table(LEGACY_TABLE):
        names = revision_names()
        connection.execute(
            text(
                f"INSERT INTO {LEGACY_TABLE} (version, name) VALUES (:version, :name)"
                " ON CONFLICT (version) DO NOTHING"
            ),
            [{"version": number, "name": f"{names[number]}.sql"} for number in applied],
        )


def _upgrade(connection: Connection, goal: int) -> list[int]:
    """Stamp a pre-Alembic schema, then apply the revisions up to `goal`; their numbers."""
    config = _config(connection)
    before = MigrationContext.configure(connection).get_current_revision()
    if before is None:
        legacy = _legacy_version(connection)
        if legacy > latest_revision():
            raise StorageError(
                f"the database has schema version {legacy}, newer than this paperbell knows "
                f"({latest_revision()}); upgrade paperbell"
            )
        if legacy:
            log.info("schema from before Alembic at version %d: stamping it", legacy)
            command.stamp(config, f"{legacy:04d}")
            before = f"{legacy:04d}"
    if before is not None and int(before) >= goal:
        return []
    applied: list[int] = []

    def record(*, step: MigrationInfo, **_: Any) -> None:
        if step.is_upgrade and not step.is_stamp and step.up_revision_id is not None:
            applied.append(int(step.up_revision_id))

    config.attributes["on_version_apply"] = record
    command.upgrade(config, f"{goal:04d}")
    _keep_legacy_bookkeeping(connection, applied)
    return applied


def _up_to(connection: Connection, goal: int) -> bool:
    """Whether Alembic already records `goal` or later (a pre-Alembic store is not yet)."""
    current = MigrationContext.configure(connection).get_current_revision()
    return current is not None and int(current) >= goal


async def upgrade(store: Store, target: int | None = None) -> list[str]:
    """Apply pending revisions up to `target` (default: all); return their names."""
    goal = latest_revision() if target is None else target
    async with store.reading() as conn:
        if await conn.run_sync(_up_to, goal):
            return []  # the common case: read only, no write lock
    async with store.transaction() as conn:
        if store.is_postgres:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        applied: list[int] = await conn.run_sync(_upgrade, goal)
    names = revision_names()
    for number in applied:
        log.info("applied migration %s", names[number])
    return [names[number] for number in applied]
