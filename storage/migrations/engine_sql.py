"""Running a revision's per-engine SQL file (revisions 0001-0009, from before Alembic).

Kept out of the package's `__init__`: importing `storage.migrations` (to find
the revision files) must not import Alembic, which an up-to-date store never needs.
"""

from __future__ import annotations

import sqlite3
from importlib import resources

from alembic import op


def split_sql(script: str) -> list[str]:
    """Split a script into statements, keeping trigger bodies (BEGIN ... END;) whole."""
    statements: list[str] = []
    buffer: list[str] = []
    for line in script.splitlines():
        stripped = line.strip()
        if not buffer and (not stripped or stripped.startswith("--")):
            continue
        buffer.append(line)
        candidate = "\n".join(buffer)
        if stripped.endswith(";") and sqlite3.complete_statement(candidate):
            statements.append(candidate.strip())
            buffer = []
    if "\n".join(buffer).strip():
        statements.append("\n".join(buffer).strip())
    return statements


def run_engine_sql(name: str) -> None:
    """Run `sql/<this engine>/<name>.sql`, statement by statement, as the driver reads it."""
    bind = op.get_bind()
    script = resources.files("storage.migrations").joinpath("sql", bind.dialect.name, f"{name}.sql")
    for statement in split_sql(script.read_text("utf-8")):
        # As written: SQLAlchemy's text() would take a ':word' inside a literal for
        # a parameter.
        bind.exec_driver_sql(statement)
