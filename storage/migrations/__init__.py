"""paperbell's one schema history, kept by Alembic (`env.py`, `versions/`).

Revisions 0001-0009 predate Alembic: each runs the SQL it always ran, one file
per engine under `sql/<dialect>/`, so a database created by an older paperbell
and one created today have the same schema. Databases from before Alembic
(SQLite's `PRAGMA user_version`, PostgreSQL's `paperbell_schema` table) are
stamped at their revision and carried forward with their data. New revisions
use Alembic's operations against `storage.schema`, in one file for both engines.
"""

from __future__ import annotations
