"""Backups and restores of the SQLite store, and the lock that marks a running bot.

`paperbell run` holds an exclusive `flock` on `<database>.lock` for its whole
life; `paperbell db restore` takes the same lock without waiting, so it refuses
to replace the database under a running bot. `paperbell db backup` needs no
lock: SQLite's online backup API copies a consistent snapshot while the bot writes.
A backup is written next to its target, checked (`PRAGMA quick_check`) and only
then renamed into place, so a corrupt database or a full disk never leaves a
file that looks like a good backup.
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
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise ConfigError(
            f"cannot create the lock file {path} (cannot {purpose}): {_reason(exc)}"
        ) from None
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


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _quick_check(connection: sqlite3.Connection) -> str | None:
    """None when SQLite's quick_check passes, else its first complaint."""
    rows = connection.execute("PRAGMA quick_check").fetchall()
    if rows and rows[0][0] == "ok":
        return None
    # The first complaint spans lines ("*** in database main ***\nPage 5: ..."): one line.
    return " ".join(str(rows[0][0]).split())[:160] if rows else "no answer"


def backup_database(settings: Settings, target: Path, *, force: bool = False) -> None:
    """Copy the SQLite database to `target` with the online backup API, checked first.

    Refuses a directory, an existing file without `force`, and anything that is not a
    regular file. The copy is made in a staging file next to `target` and must pass
    `quick_check` before it replaces `target`; on any failure nothing is left behind.
    """
    if settings.is_postgres:
        raise ConfigError("backup works on SQLite files; for PostgreSQL use pg_dump")
    source = Path(settings.database)
    if not source.is_file():
        raise ConfigError(f"no database at {source} to back up")
    if target.is_dir():
        raise ConfigError(f"{target} is a directory; give a file name, e.g. {target}/backup.db")
    if target.exists() or target.is_symlink():
        if not force:
            raise ConfigError(f"{target} already exists; pass --force to replace it")
        if not target.is_file():
            raise ConfigError(f"{target} is not a regular file; give a file name")
        if target.samefile(source):
            raise ConfigError(f"{target} is the database itself; give another file name")
    staging = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _copy_checked(source, staging, target)
        os.replace(staging, target)
    except OSError as exc:
        raise ConfigError(f"cannot write the backup {target}: {_reason(exc)}") from None
    finally:
        for leftover in ("", "-journal", "-wal", "-shm"):
            Path(f"{staging}{leftover}").unlink(missing_ok=True)
    log.info("backed up database")


def _copy_checked(source: Path, staging: Path, target: Path) -> None:
    try:
        src = sqlite3.connect(f"{source.absolute().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise ConfigError(f"cannot open database {source}: {exc}") from None
    try:
        try:
            dest = sqlite3.connect(staging)
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot write the backup next to {staging.parent}: {exc}") from None
        try:
            try:
                src.backup(dest)
            except sqlite3.DatabaseError as exc:
                # Reading the source fails on some corruptions, writing on a full disk.
                raise ConfigError(f"backup of {source} to {target} failed: {exc}") from None
            try:
                problem = _quick_check(dest)
            except sqlite3.DatabaseError as exc:
                problem = str(exc)
            if problem is not None:
                raise ConfigError(
                    f"database {source} failed its integrity check ({problem}); no backup written"
                )
        finally:
            dest.close()
    finally:
        src.close()


def restore_database(settings: Settings, source: Path) -> None:
    """Replace the SQLite database with `source`, refusing while a bot runs on it."""
    if settings.is_postgres:
        raise ConfigError("restore works on SQLite files; for PostgreSQL use pg_restore")
    if not source.is_file():
        raise ConfigError(f"backup file {source} does not exist or is not a file")
    try:
        with sqlite3.connect(f"{source.absolute().as_uri()}?mode=ro", uri=True) as check:
            problem = _quick_check(check)
            version = check.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"{source} is not a usable SQLite database: {exc}") from None
    if problem is not None or version < 1:
        raise ConfigError(f"{source} is not a paperbell backup (integrity or schema check failed)")
    target = Path(settings.database)
    if target.is_dir():
        raise ConfigError(f"database {target} is a directory; give a file path")
    with database_lock(settings.database, purpose="restore"):
        staging = target.with_name(target.name + ".restoring")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, staging)
            for suffix in ("-wal", "-shm"):
                Path(f"{target}{suffix}").unlink(missing_ok=True)
            os.replace(staging, target)
        except OSError as exc:
            staging.unlink(missing_ok=True)
            raise ConfigError(f"cannot restore into {target}: {_reason(exc)}") from None
    log.info("restored database from backup")
