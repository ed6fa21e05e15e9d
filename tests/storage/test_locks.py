"""Poller leadership between processes sharing a database (storage.locks.Leadership)."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from storage.locks import Leadership
from storage.postgres import open_postgres
from tests.backends import needs_postgres, open_test_database


def private_key() -> int:
    """An advisory lock key no other test (or bot) in the database uses."""
    return random.randrange(1, 2**62)


async def test_sqlite_process_is_always_the_leader(tmp_path: Path) -> None:
    """On SQLite the single bot process always holds the leadership."""
    async with open_test_database("sqlite", tmp_path) as db:
        leadership = Leadership(db)
        assert await leadership.acquire() and leadership.held


@needs_postgres
async def test_one_leader_and_takeover_after_release(tmp_path: Path) -> None:
    """Of two processes on one PostgreSQL database one leads; the other takes over once the
    leader lets go (its connection closed), and not before."""
    async with open_test_database("postgres", tmp_path) as db:
        key = private_key()
        first, second = Leadership(db, key), Leadership(db, key)
        assert await first.acquire()
        assert not await second.acquire()
        assert await first.acquire() and not await second.acquire()  # re-checks keep it
        await first.release()
        assert not first.held
        assert await second.acquire()
        assert not await first.acquire()
        await second.release()


@needs_postgres
async def test_concurrent_checks_in_one_process_keep_the_leadership(tmp_path: Path) -> None:
    """The leadership job and a poll checking at the same moment both see the lock held,
    and it stays held (one connection, one query at a time)."""
    async with open_test_database("postgres", tmp_path) as db:
        key = private_key()
        leader, other = Leadership(db, key), Leadership(db, key)
        try:
            assert await asyncio.gather(*(leader.acquire() for _ in range(4))) == [True] * 4
            assert await asyncio.gather(*(leader.acquire() for _ in range(4))) == [True] * 4
            assert leader.held
            assert await asyncio.gather(*(other.acquire() for _ in range(4))) == [False] * 4
            assert not await other.acquire()
        finally:
            await leader.release()
            await other.release()


@needs_postgres
async def test_each_schema_has_its_own_leader(tmp_path: Path) -> None:
    """Deployments in two schemas of one database each get a poller; a process reaching a
    schema through `?search_path=` in its URL competes with that schema's leader."""
    async with (
        open_test_database("postgres", tmp_path) as one,
        open_test_database("postgres", tmp_path) as two,
    ):
        assert two.is_postgres and two.schema is not None
        key = private_key()
        url = f"{two.url}{'&' if '?' in two.url else '?'}search_path={two.schema}"
        by_url = await open_postgres(url, migrate=False)
        leaders = [Leadership(one, key), Leadership(two, key)]
        contender = Leadership(by_url, key)
        try:
            assert [await leader.acquire() for leader in leaders] == [True, True]
            assert not await contender.acquire()
            await leaders[1].release()
            assert await contender.acquire()
        finally:
            for leadership in (*leaders, contender):
                await leadership.release()
            await by_url.close()
