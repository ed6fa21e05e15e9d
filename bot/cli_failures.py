"""How a `paperbell` command's failure reaches the user: one line and an exit code.

0 done; 1 try again later (an upstream server failed, named by its host, or
another process holds the database); 2 a mistake the user can fix first;
130 interrupted; 141 the reader of our output went away (`| head -1`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import sys

from bot.config import ConfigError
from bot.domain.errors import UpstreamError, UserError
from storage.store import (
    DriverError,
    StorageError,
    StorageUnavailableError,
    describe,
    driver_error,
)

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_ERROR = 1  # upstream failure (names the host) or a busy database: try again later
EXIT_USAGE = 2  # a mistake the user can fix
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a filter killed by `| head` reports

EXIT_CODES = """exit codes:
  0  done
  1  an upstream failure (arXiv, Discord or PostgreSQL unreachable or failing; the message
     names the host) or another process holding the database: try again later
  2  a mistake to fix: a bad argument, setting, token, file or database
  130  interrupted (Ctrl-C)
  141  output cut short by a closed pipe (| head)"""


class UpstreamFailure(Exception):
    """arXiv (or another server) failed; the message names the host. Exit code 1."""


class DatabaseBusyError(Exception):
    """Another process holds the database. Exit code 1: try again later."""


_TRY_LATER = (UpstreamFailure, UpstreamError, DatabaseBusyError, StorageUnavailableError)
_MISTAKES = (ConfigError, StorageError, UserError)
# Failures whose message says everything; anything else is a bug worth a traceback.
KNOWN_FAILURES = (*_TRY_LATER, *_MISTAKES, sqlite3.DatabaseError, DriverError, OSError)


def explain_failure(exc: Exception, *, database: str, busy_timeout: float) -> tuple[int, str]:
    """The exit code and the one line (without the `paperbell: ` prefix) for `exc`."""
    orig = driver_error(exc)
    if isinstance(orig, sqlite3.DatabaseError):
        exc = orig  # told apart by sqlite3's own class and message below
    if isinstance(exc, _TRY_LATER):
        return EXIT_ERROR, str(exc)
    if isinstance(exc, _MISTAKES):
        return EXIT_USAGE, str(exc)
    if isinstance(exc, sqlite3.DatabaseError):
        text = str(exc)
        if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
            return EXIT_ERROR, (
                f"database {database} is locked by another process (a poll or an import?) "
                f"for over {busy_timeout:g} s; try again later"
            )
        return EXIT_USAGE, (
            f"cannot use database {database}: {text[:200]}; "
            "`paperbell db restore` a backup if it is damaged"
        )
    if isinstance(exc, DriverError):  # PostgreSQL failed mid-command (SQLite's is above)
        return EXIT_ERROR, f"the database failed: {describe(exc)}"
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        return EXIT_ERROR, f"{exc.strerror or exc}{where}"
    return EXIT_ERROR, (
        f"unexpected error: {type(exc).__name__}: {str(exc)[:200]} "
        "(details with PAPERBELL_LOG_LEVEL=DEBUG)"
    )


def quiet_broken_pipe() -> int:
    """The reader went away (`| head -1`): stop quietly, like any Unix filter."""
    # Python would complain again when it flushes stdout at exit; point stdout elsewhere.
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return EXIT_BROKEN_PIPE
