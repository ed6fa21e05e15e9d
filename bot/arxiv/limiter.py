"""The one request limiter every arXiv client of a process shares.

arXiv's terms ask for one connection at a time and a pause between requests, across
all its services together. `RequestLimiter` keeps both: callers wait for the
connection in `Priority` order (the alert poll before interactive look-ups), and
each request starts at least `delay` seconds after the previous one ended.
`bot.arxiv.client.ArxivClient` makes every request inside it.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from enum import IntEnum


class Priority(IntEnum):
    """Who gets the arXiv connection first when several callers wait (lower goes first)."""

    POLL = 0  # alert polls and everything else that feeds alerts
    LOOKUP = 1  # interactive look-ups: they can answer from the store meanwhile


class RequestLimiter:
    """Keeps requests one at a time and at least `delay` seconds apart.

    Share one instance between every client of the process. The gap is measured
    from the end of one request to the start of the next, so the server sees the
    spacing even when answers are slow. `delay=0` still serialises (for tests).

    `slot()` covers one request. `turn()` holds the connection for a series of
    attempts (a request and its retries), each made inside `turn.request()`, so a
    caller backing off from a rate limit keeps everyone else waiting too.

    Waiters are served by `Priority`, first come first served within one
    priority: a poll that arrives behind forty queued look-ups goes next.
    """

    def __init__(self, delay: float = 3.0) -> None:
        if delay < 0:
            raise ValueError("delay must be >= 0")
        self.delay = delay
        self._held = False
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []  # a heap
        self._order = itertools.count()
        self._last_end: float | None = None

    def waiting(self, priority: Priority | None = None) -> int:
        """How many callers wait for the connection (of `priority`, or in all)."""
        return sum(
            1
            for p, _, future in self._waiters
            if not future.done() and (priority is None or p == priority)
        )

    async def _acquire(self, priority: Priority) -> None:
        if not self._held and not self._waiters:
            self._held = True
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (int(priority), next(self._order), future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._release()  # handed the connection just as we were cancelled
            raise

    def _release(self) -> None:
        # Hand the connection straight to the next waiter, so nobody can cut in.
        while self._waiters:
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():  # skip waiters that were cancelled
                future.set_result(None)
                return
        self._held = False

    @asynccontextmanager
    async def turn(self, priority: Priority = Priority.POLL) -> AsyncIterator[LimiterTurn]:
        """Wait until no one else holds the arXiv connection, then hold it."""
        await self._acquire(priority)
        try:
            yield LimiterTurn(self)
        finally:
            self._release()

    @asynccontextmanager
    async def slot(self, priority: Priority = Priority.POLL) -> AsyncIterator[None]:
        """Hold the arXiv connection for one request, spaced from the previous one."""
        async with self.turn(priority) as turn, turn.request():
            yield

    async def _wait_gap(self) -> None:
        if self._last_end is not None:
            wait = self._last_end + self.delay - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)

    def _mark_end(self) -> None:
        self._last_end = time.monotonic()


class LimiterTurn:
    """A held `RequestLimiter`; each request made during the turn goes in `request()`."""

    def __init__(self, limiter: RequestLimiter) -> None:
        self._limiter = limiter

    @asynccontextmanager
    async def request(self) -> AsyncIterator[None]:
        """Wait out the gap since the previous request, then mark when this one ends."""
        await self._limiter._wait_gap()
        try:
            yield
        finally:
            self._limiter._mark_end()
