"""The bulk writer's author id cache: ids of committed batches only, bounded."""

from __future__ import annotations

import pytest

from storage.author_cache import AuthorIdCache
from storage.catalogue import CatalogueWriter
from storage.papers import PaperRepository
from storage.store import Store
from tests.storage.conftest import T0, PaperFactory


def test_ids_count_once_their_transaction_committed() -> None:
    cache = AuthorIdCache(limit=3)
    cache.note({"Ada Lovelace": 1})
    assert cache.get("Ada Lovelace") is None
    cache.commit()
    assert cache.get("Ada Lovelace") == 1
    cache.note({"Alan Turing": 2})
    cache.discard()
    cache.commit()
    assert cache.get("Alan Turing") is None


def test_a_full_cache_starts_again() -> None:
    cache = AuthorIdCache(limit=3)
    cache.note({"a": 1, "b": 2})
    cache.commit()
    cache.note({"c": 3, "d": 4})
    cache.commit()
    assert len(cache) == 2 and cache.get("a") is None and cache.get("d") == 4


@pytest.fixture
def db(any_db: Store) -> Store:
    return any_db


async def test_a_failed_batch_leaves_no_author_id_behind(
    db: Store, make_paper: PaperFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ids created by a rolled-back batch are reused by the next one: never cached."""
    async with CatalogueWriter(db) as writer:
        repo = writer._repo
        real_add = repo._search.add
        calls = 0

        async def failing_once(*args: object) -> None:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("disk full")
            await real_add(*args)  # type: ignore[arg-type]

        monkeypatch.setattr(repo._search, "add", failing_once)
        with pytest.raises(RuntimeError):
            await writer.store([make_paper(1, authors=("Ada Lovelace",))], now=T0)
        await writer.store([make_paper(2, authors=("Alan Turing",))], now=T0)
        await writer.store([make_paper(3, authors=("Ada Lovelace", "Alan Turing"))], now=T0)
    reader = PaperRepository(db)
    ada = await reader.by_author("Ada Lovelace")
    alan = await reader.by_author("Alan Turing")
    assert [p.id for p in ada.papers] == ["2411.00003"]
    assert sorted(p.id for p in alan.papers) == ["2411.00002", "2411.00003"]
