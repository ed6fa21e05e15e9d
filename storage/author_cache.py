"""Author ids a bulk job has already looked up or created, kept across its batches.

A bulk import looks up every author name of each batch (about 4 per paper): with
the ids of earlier batches at hand, only the names not met yet are read. Authors
are never renamed or deleted, so a committed id stays right; ids a batch found or
created are kept only once its transaction has committed (`commit`), and dropped
if it failed (`discard`), so a rolled-back id is never handed out. The cache is
bounded: past `MAX_AUTHORS` names it starts again empty.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping

log = logging.getLogger(__name__)

MAX_AUTHORS = 300_000  # ~30 MB of names and ids at most


class AuthorIdCache:
    """name -> author id, for one writer's batches (one transaction at a time)."""

    def __init__(self, limit: int = MAX_AUTHORS) -> None:
        self._limit = limit
        self._known: dict[str, int] = {}
        self._pending: dict[str, int] = {}

    def get(self, name: str) -> int | None:
        return self._known.get(name)

    def split(self, names: Iterable[str]) -> tuple[dict[str, int], list[str]]:
        """(the ids known here of `names`, the names not known here)."""
        known = self._known
        listed = names if isinstance(names, Collection) else list(names)
        return {n: known[n] for n in listed if n in known}, [n for n in listed if n not in known]

    def note(self, ids: Mapping[str, int]) -> None:
        """Ids seen in the open transaction: kept if it commits."""
        self._pending.update(ids)

    def commit(self) -> None:
        if len(self._known) + len(self._pending) > self._limit:
            self._known.clear()
        self._known.update(self._pending)
        self._pending.clear()

    def discard(self) -> None:
        self._pending.clear()

    def __len__(self) -> int:
        return len(self._known)
