"""Look-ups that ask arXiv when the store cannot answer: /paper, /author, /search and the CLI's.

A look-up answers from the store. When arXiv has not been asked about that
name or query in the last 24 hours (the `LookupCache`, kept in the database),
it first asks arXiv's API, newest submissions first, stores what comes back
in the catalogue only (never through the alert-matching ingest: a look-up
never alerts anyone) and then answers from the store, which now holds the
merged list. Author results are filtered by paperbell's own name matching
when read (`PaperRepository.by_author`), so `au:legg_s` answering for Sarah
Legg does not put her papers on Shane Legg's page.

Every such request waits in the process's one `RequestLimiter` behind the
alert poll (`Priority.LOOKUP`), one at a time and spaced as arXiv asks. The
`LookupGate` keeps that queue bounded and gives each user a cooldown; asking
again for a query already on its way joins it for free. arXiv failing (rate
limits, error documents, 503s) is never an error for the user: the stored
results come back with a note saying so.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bot.arxiv.atom import parse_atom
from bot.arxiv.client import ArxivClient, ArxivHTTPError, ArxivRateLimitError
from bot.arxiv.document import ArxivApiError, FeedError, RateExceededError
from bot.arxiv.limiter import Priority
from bot.arxiv.queries import MAX_TERM_LENGTH, author_query, words_query
from bot.domain.errors import InvalidInputError, NotFoundError, UpstreamError
from bot.domain.ids import InvalidArxivIdError, parse_arxiv_id
from bot.domain.models import Paper
from bot.domain.names import keyword_tokens, query_key
from storage.lookups import LookupCache
from storage.papers import PaperRepository

log = logging.getLogger(__name__)

AUTHOR_RESULTS = 100  # one API page per author look-up: twenty pages of five
SEARCH_RESULTS = 50
MAX_FETCHED = 1_000  # results of one query fetched page by page at most, as users page on
DEFAULT_COOLDOWN = 10.0  # seconds between one user's look-ups that cost an arXiv request
DEFAULT_MAX_QUEUE = 20  # look-ups waiting for arXiv at most; more are answered from the store
DEFAULT_WAIT_LIMIT = 3  # with more than this ahead, answer at once and edit when arXiv answers
MAX_TRACKED_USERS = 10_000

INCOMPLETE_NOTE = "Possibly incomplete: still asking arXiv; this message updates when it answers."


class RefreshState(StrEnum):
    CACHED = "cached"  # arXiv was asked within the cache's time-to-live
    FETCHED = "fetched"  # arXiv answered just now
    FAILED = "failed"  # arXiv did not answer usefully: stored results only
    REFUSED = "refused"  # cooldown or full queue: stored results only
    OFFLINE = "offline"  # no arXiv client, or nothing arXiv could be asked


@dataclass(frozen=True, slots=True)
class Refresh:
    """What asking arXiv came to; `note` (plain text, safe to show) explains stored-only answers."""

    state: RefreshState
    note: str | None = None
    found: int = 0


@dataclass(slots=True)
class LookupPlan:
    """How to answer one look-up: at once from the store, or after (or while) arXiv answers.

    `task` is the arXiv request on its way, if any. `wait` says whether to wait
    for it (a short queue: defer the interaction) or to answer at once, marked
    possibly incomplete, and edit the answer when the task finishes.
    """

    query: str | None
    task: asyncio.Task[Refresh] | None = None
    wait: bool = False
    note: str | None = None

    async def settle(self) -> Refresh:
        """The outcome of the arXiv request, or what stands in for it."""
        if self.task is None:
            state = RefreshState.REFUSED if self.note else RefreshState.CACHED
            return Refresh(state, self.note)
        return await self.task


class LookupGate:
    """Admission to arXiv for interactive look-ups: a bounded queue and a per-user cooldown.

    In memory, per process: the queue it bounds is this process's limiter.
    `user_id=None` (the command line) has no cooldown.
    """

    def __init__(
        self,
        *,
        cooldown: float = DEFAULT_COOLDOWN,
        max_queue: int = DEFAULT_MAX_QUEUE,
        wait_limit: int = DEFAULT_WAIT_LIMIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_queue < 1 or wait_limit < 0:
            raise ValueError("max_queue must be >= 1 and wait_limit >= 0")
        self.cooldown = cooldown
        self.max_queue = max_queue
        self.wait_limit = wait_limit
        self._clock = clock
        self._pending = 0
        self._last: OrderedDict[int, float] = OrderedDict()

    @property
    def pending(self) -> int:
        """Look-ups waiting for arXiv or being answered."""
        return self._pending

    def refusal(self, user_id: int | None) -> str | None:
        """Why this user's look-up may not ask arXiv now (a sentence to show), or None."""
        if user_id is not None:
            last = self._last.get(user_id)
            if last is not None:
                left = last + self.cooldown - self._clock()
                if left > 0:
                    return (
                        "You asked arXiv a moment ago; you can ask again in "
                        f"{max(1, round(left))} s."
                    )
        if self._pending >= self.max_queue:
            return (
                f"{self._pending} look-ups are already waiting for arXiv; "
                "try again in a few minutes."
            )
        return None

    def enter(self, user_id: int | None) -> bool:
        """Take a place in the queue; True when the caller should answer before arXiv does."""
        long = self._pending >= self.wait_limit
        self._pending += 1
        if user_id is not None:
            self._last[user_id] = self._clock()
            self._last.move_to_end(user_id)
            while len(self._last) > MAX_TRACKED_USERS:
                self._last.popitem(last=False)
        return long

    def leave(self) -> None:
        self._pending -= 1


def check_query(query: str, what: str, *, limit: int) -> str:
    """`query` with its whitespace collapsed; a clear InvalidInputError when empty or too long."""
    cleaned = " ".join(query.split())
    if not cleaned:
        raise InvalidInputError(f"Give a {what} to look for.")
    if len(cleaned) > limit:
        raise InvalidInputError(
            f"That {what} is {len(cleaned):,} characters long; the limit is {limit}."
        )
    return cleaned


def author_search_query(name: str) -> str | None:
    """The API query for a typed name (`au:legg_s`), or None when no surname can be read."""
    key = query_key(name)
    try:
        return author_query(key.surname, key.given[0] if key.given else None)
    except ValueError:
        return None


def text_search_query(text: str, category: str | None = None) -> str | None:
    """The API query for a typed search (`all:` words, optional category), or None."""
    words = [w for w in keyword_tokens(text) if len(w) <= MAX_TERM_LENGTH]
    try:
        return words_query(words, category=category)
    except ValueError:
        return None


def _failure_note(exc: Exception) -> str:
    if isinstance(exc, ArxivRateLimitError | RateExceededError):
        reason = "arXiv asked us to slow down"
    elif isinstance(exc, ArxivApiError):
        reason = "arXiv refused the query"
    elif isinstance(exc, ArxivHTTPError) and exc.status is not None:
        reason = f"arXiv answered with an error ({exc.status})"
    elif isinstance(exc, ArxivHTTPError):
        reason = "arXiv did not answer"
    else:
        reason = "arXiv's answer could not be read"
    return f"Stored results only: {reason}; try again in a few minutes."


class ArxivLookups:
    """Look-ups over the catalogue that ask arXiv first when it was not asked recently."""

    def __init__(
        self,
        papers: PaperRepository,
        cache: LookupCache,
        client: ArxivClient | None,
        *,
        gate: LookupGate,
        clock: Callable[[], datetime],
        author_results: int = AUTHOR_RESULTS,
        search_results: int = SEARCH_RESULTS,
    ) -> None:
        self._papers = papers
        self._cache = cache
        self._client = client
        self.gate = gate
        self._clock = clock
        self._author_results = author_results
        self._search_results = search_results
        self._inflight: dict[str, asyncio.Task[Refresh]] = {}

    # ---- planning --------------------------------------------------------------------

    async def plan_author(self, name: str, *, user_id: int | None) -> LookupPlan:
        return await self._plan(author_search_query(name), self._author_results, user_id)

    async def plan_search(
        self, text: str, *, category: str | None, user_id: int | None
    ) -> LookupPlan:
        return await self._plan(text_search_query(text, category), self._search_results, user_id)

    async def _plan(self, query: str | None, results: int, user_id: int | None) -> LookupPlan:
        if query is None or self._client is None:
            return LookupPlan(query)
        running = self._inflight.get(query)
        if running is not None:  # someone asked already: wait for the same answer, for free
            return LookupPlan(query, running, wait=self.gate.pending <= self.gate.wait_limit)
        if await self._cache.fresh(query, now=self._clock()) is not None:
            return LookupPlan(query)
        refusal = self.gate.refusal(user_id)
        if refusal is not None:
            log.info("arXiv look-up refused query=%s pending=%d", query, self.gate.pending)
            return LookupPlan(query, note=f"Stored results only, arXiv not asked: {refusal}")
        answer_first = self.gate.enter(user_id)
        return LookupPlan(query, self._start(query, results), wait=not answer_first)

    async def close(self) -> None:
        """Cancel the arXiv requests still on their way (shutdown)."""
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def more(self, query: str | None, *, user_id: int | None) -> Refresh:
        """Ask arXiv for its next page of `query` when the store ran short of a page.

        Only when arXiv was asked today and said it has more than it gave (up to
        `MAX_FETCHED` results a query); the same gate as a first look-up applies.
        """
        if query is None or self._client is None:
            return Refresh(RefreshState.OFFLINE)
        cached = await self._cache.fresh(query, now=self._clock())
        if (
            cached is None
            or cached.total is None
            or cached.results >= min(cached.total, MAX_FETCHED)
        ):
            return Refresh(RefreshState.CACHED)
        running = self._inflight.get(query)
        if running is not None:
            return await running
        refusal = self.gate.refusal(user_id)
        if refusal is not None:
            return Refresh(RefreshState.REFUSED, f"Stored results only, arXiv not asked: {refusal}")
        self.gate.enter(user_id)
        size = self._author_results if query.startswith("au:") else self._search_results
        return await self._start(query, size, start=cached.results)

    def _start(self, query: str, results: int, *, start: int = 0) -> asyncio.Task[Refresh]:
        task = asyncio.create_task(
            self._fetch(query, results, start=start), name=f"arxiv-lookup {query}"
        )
        self._inflight[query] = task
        task.add_done_callback(lambda _: self._finished(query))
        return task

    def _finished(self, query: str) -> None:
        self._inflight.pop(query, None)
        self.gate.leave()

    async def _fetch(self, query: str, results: int, *, start: int = 0) -> Refresh:
        assert self._client is not None
        started = time.monotonic()
        try:
            fetched = await self._client.query_api(
                search_query=query,
                start=start,
                max_results=results,
                sort_by="submittedDate",
                sort_order="descending",
                priority=Priority.LOOKUP,
                max_retries=0,  # a user is waiting: answer from the store rather than back off
            )
            result = await asyncio.to_thread(parse_atom, fetched.body)
        except (ArxivHTTPError, FeedError) as exc:
            # The user is told in the answer; not an operator's problem (the poll's are).
            log.info("arXiv look-up failed query=%s error=%s", query, exc)
            return Refresh(RefreshState.FAILED, _failure_note(exc))
        await self._store_in_catalogue(result.papers)
        total = result.total_results
        if start and not result.papers:
            total = start  # an empty page past the first: take it as the end, ask no further
        await self._cache.record(
            query, at=self._clock(), results=start + len(result.papers), total=total
        )
        log.info(
            "arXiv look-up query=%s start=%d found=%d total=%s seconds=%.2f",
            query, start, len(result.papers), result.total_results, time.monotonic() - started,
        )  # fmt: skip
        return Refresh(RefreshState.FETCHED, found=len(result.papers))

    async def _store_in_catalogue(self, papers: Sequence[Paper]) -> None:
        """The one catalogue write of a look-up: stored and indexed, never matched or alerted."""
        if papers:
            await self._papers.upsert_many(papers, now=self._clock())

    # ---- /paper ----------------------------------------------------------------------

    async def paper(self, raw_id: str, *, user_id: int | None = None) -> Paper:
        """A paper by id or URL, from the store or else from the arXiv API (then catalogued)."""
        try:
            arxiv_id = parse_arxiv_id(raw_id)
        except InvalidArxivIdError as exc:
            raise InvalidInputError(str(exc)) from None
        stored = await self._papers.get(arxiv_id.id)
        if stored is not None and (arxiv_id.version is None or arxiv_id.version <= stored.version):
            return stored
        if self._client is None:
            if stored is not None:
                return stored
            raise UpstreamError("arXiv is not reachable from this command.")
        refusal = self.gate.refusal(user_id)
        if refusal is not None:
            if stored is not None:
                return stored
            raise UpstreamError(f"Not asking arXiv for that paper now: {refusal}")
        self.gate.enter(user_id)
        try:
            fetched = await self._client.query_api(
                id_list=[arxiv_id.id],
                max_results=1,
                priority=Priority.LOOKUP,
                # Backing off holds the arXiv connection: a Discord user's look-up must not
                # hold up the poll that way (the command line has no poll to hold up).
                max_retries=None if user_id is None else 0,
            )
            result = await asyncio.to_thread(parse_atom, fetched.body)
        except (ArxivHTTPError, FeedError) as exc:
            log.warning("paper lookup failed id=%s error=%s", arxiv_id.id, exc)
            if stored is not None:
                return stored
            raise UpstreamError(
                "arXiv did not answer for that paper just now; try again in a minute."
            ) from None
        finally:
            self.gate.leave()
        found = [p for p in result.papers if p.id == arxiv_id.id]
        if not found:
            if stored is not None:
                return stored
            raise NotFoundError(f"arXiv has no paper {arxiv_id.id}.")
        await self._store_in_catalogue(found)
        again = await self._papers.get(arxiv_id.id)
        return again if again is not None else found[0]
