"""Backups and restores of the SQLite store, and the lock that marks a running bot.

`paperbell run` holds an exclusive `flock` on `<database>.lock` for its whole
life; `paperbell db restore` takes the same lock without waiting, so it refuses
to replace the database under a running bot. `paperbell db backup` needs no
lock: SQLite's online backup API copies a consistent snapshot while the bot writes.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bot.config import ConfigError, Settings

log = logging.getLogger(__name__)


class DatabaseInUseError(ConfigError):
    """Another paperbell process holds the database."""


def lock_path(database: str) -> Path:
    return Path(f"{database}.lock")


@contextmanager
def database_lock(database: str, *, purpose: str) -> Iterator[None]:
    """Hold the exclusive lock on `database` (non-blocking) for the body's duration."""
    path = lock_path(database)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DatabaseInUseError(
                f"{database} is in use by a running paperbell (cannot {purpose}); "
                "stop the bot first"
            ) from None
        yield
    finally:
        os.close(fd)


def restore_database(settings: Settings, source: Path) -> None:
    """Replace the SQLite database with `source`, refusing while a bot runs on it."""
    if settings.is_postgres:
        raise ConfigError("restore works on SQLite files; for PostgreSQL use pg_restore")
    if not source.is_file():
        raise ConfigError(f"backup file {source} does not exist")
    try:
        with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as check:
            result = check.execute("PRAGMA quick_check").fetchone()
            version = check.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"{source} is not a usable SQLite database: {exc}") from None
    if not result or result[0] != "ok" or version < 1:
        raise ConfigError(f"{source} is not a paperbell backup (integrity or schema check failed)")
    target = Path(settings.database)
    with database_lock(settings.database, purpose="restore"):
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.with_name(target.name + ".restoring")
        shutil.copyfile(source, staging)
        for suffix in ("-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        os.replace(staging, target)
    log.info("restored database from backup")
