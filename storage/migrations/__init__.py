"""paperbell's one schema history, kept by Alembic (`env.py`, `versions/`).

Revisions 0001-0009 predate Alembic: each runs the SQL it always ran, one file
per engine under `sql/<dialect>/`, so a database created by an older paperbell
and one created today have the same schema. Databases from before Alembic
(SQLite's `PRAGMA user_version`, PostgreSQL's `paperbell_schema` table) are
stamped at their revision and carried forward with their data. New revisions
use Alembic's operations against `storage.schema`, in one file for both engines.
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
    script = resources.files(__name__).joinpath("sql", bind.dialect.name, f"{name}.sql")
    for statement in split_sql(script.read_text("utf-8")):
        # As written: SQLAlchemy's text() would take a ':word' inside a literal for
        # a parameter.
        bind.exec_driver_sql(statement)
