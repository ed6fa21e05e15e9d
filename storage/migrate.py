"""Running the schema history (Alembic) from code, on either engine.

The whole upgrade runs in one transaction on the store's writer: a failing
revision leaves the database as it was. On PostgreSQL an advisory lock
serialises it, so several bot processes can start at once. A database from
before Alembic is stamped at the revision its old bookkeeping names, then
carried forward like any other.
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text

from storage.store import StorageError, Store

log = logging.getLogger(__name__)

_MIGRATION_LOCK = 0x70617065  # "pape": serialises migrations across processes
_LEGACY_TABLE = "paperbell_schema"  # PostgreSQL's bookkeeping before Alembic


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option(
        "script_location", str(resources.files("storage").joinpath("migrations"))
    )
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def latest_revision() -> int:
    """The newest revision this paperbell knows, as a number."""
    head = _script().get_current_head()
    if head is None:
        raise StorageError("paperbell ships no schema revisions")
    return int(head)


def _legacy_version(connection: Connection) -> int:
    """The schema version an older paperbell recorded (0: none)."""
    if connection.dialect.name == "sqlite":
        return int(connection.exec_driver_sql("PRAGMA user_version").scalar() or 0)
    if not inspect(connection).has_table(_LEGACY_TABLE):
        return 0
    value = connection.execute(text(f"SELECT coalesce(max(version), 0) FROM {_LEGACY_TABLE}"))
    return int(value.scalar() or 0)


def _revision_of(connection: Connection) -> int:
    current = MigrationContext.configure(connection).get_current_revision()
    return int(current) if current is not None else _legacy_version(connection)


async def current_revision(store: Store) -> int:
    async with store.reading() as conn:
        return await conn.run_sync(_revision_of)


def _upgrade(connection: Connection, target: int | None) -> list[str]:
    script = _script()
    config = _config(connection)
    context = MigrationContext.configure(connection)
    before = context.get_current_revision()
    if before is None:
        legacy = _legacy_version(connection)
        if legacy:
            log.info("schema from before Alembic at version %d: stamping it", legacy)
            command.stamp(config, f"{legacy:04d}")
            before = f"{legacy:04d}"
    head = script.get_current_head()
    goal = head if target is None else f"{target:04d}"
    if goal is None or before == goal or (before is not None and int(before) > int(goal)):
        return []
    command.upgrade(config, goal)
    applied = [Path(rev.path).stem for rev in script.iterate_revisions(goal, before or "base")]
    applied.reverse()
    if connection.dialect.name == "sqlite":
        # Kept in step so an older paperbell refuses a newer schema instead of using it.
        connection.exec_driver_sql(f"PRAGMA user_version = {int(goal)}")
    return applied


async def upgrade(store: Store, target: int | None = None) -> list[str]:
    """Apply pending revisions up to `target` (default: all); return their names."""
    async with store.transaction() as conn:
        if store.is_postgres:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        applied: list[str] = await conn.run_sync(_upgrade, target)
    for name in applied:
        log.info("applied migration %s", name)
    return applied
