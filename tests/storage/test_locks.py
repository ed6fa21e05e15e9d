"""Poller leadership between processes sharing a database (storage.locks.Leadership)."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from storage.locks import Leadership
from tests.backends import open_test_database


def private_key() -> int:
    """An advisory lock key no other test (or bot) in the database uses."""
    return random.randrange(1, 2**62)


async def test_sqlite_process_is_always_the_leader(tmp_path: Path) -> None:
    """On SQLite the single bot process always holds the leadership."""
    async with open_test_database("sqlite", tmp_path) as db:
        leadership = Leadership(db)
        assert await leadership.acquire() and leadership.held


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
