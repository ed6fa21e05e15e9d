"""Tests for look-ups that ask arXiv: the real client, the local arXiv API, a real SQLite store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.arxiv.client import DEFAULT_USER_AGENT, ArxivClient
from bot.arxiv.limiter import RequestLimiter
from bot.config import Settings
from bot.domain.errors import UpstreamError
from bot.domain.models import Paper, SubscriptionKind
from bot.lookups import ArxivLookups, LookupGate, RefreshState
from bot.services import PaperService
from bot.subscribing import SubscriptionService
from storage.db import Database
from storage.lookups import LookupCache
from tests.arxiv_server import ArxivServer, Scripted, api_error_feed, api_feed

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def api_paper(number: int, authors: tuple[str, ...], *, title: str = "A study") -> Paper:
    """A paper as the API serves it; larger numbers were submitted later."""
    return Paper(
        id=f"2402.{number:05d}",
        version=1,
        title=title,
        abstract="We study grokking in deep networks.",
        authors=authors,
        primary_category="cs.LG",
        categories=("cs.LG",),
        published=NOW - timedelta(days=400 - number),
    )


CORPUS = [
    api_paper(1, ("Shane Legg", "Marcus Hutter"), title="Universal intelligence"),
    api_paper(2, ("S. Legg",), title="Machine super intelligence"),
    api_paper(3, ("Sarah Legg", "Ann Other"), title="Soil carbon"),
    api_paper(4, ("Shane Lee",), title="Lee's paper"),
    api_paper(5, ("Pedro A. Ortega", "Daniel A. Braun"), title="Thermodynamics of decisions"),
    api_paper(6, ("Pedro Domingos",), title="The master algorithm"),
    api_paper(7, ("Pedro B. Ortega",), title="Another Ortega"),
]


@dataclass
class Lookups:
    db: Database
    service: PaperService
    arxiv: ArxivServer
    clock: list[datetime]
    ticks: list[float]


@pytest.fixture
async def make_lookups(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    opened: list[Database] = []
    async with ArxivServer() as arxiv, aiohttp.ClientSession() as session:
        arxiv.set_api_corpus(CORPUS)

        async def make(**gate: Any) -> Lookups:
            db = await Database.open(tmp_path / f"store{len(opened)}.db")
            opened.append(db)
            clock = [NOW]
            ticks = [1000.0]
            client = ArxivClient(
                session,
                api_url=arxiv.api_url,
                limiter=RequestLimiter(0),
                user_agent=DEFAULT_USER_AGENT,
                timeout=5,
            )
            service = PaperService(
                db,
                client,
                clock=lambda: clock[0],
                lookup_gate=LookupGate(clock=lambda: ticks[0], **gate),
            )
            return Lookups(db, service, arxiv, clock, ticks)

        try:
            yield make
        finally:
            for db in opened:
                await db.close()


async def test_author_asks_arxiv_once_a_day_and_filters_by_name(
    make_lookups: Callable[..., Any],
) -> None:
    """A fresh store asks au:legg_s newest first, stores catalogue-only, lists only Shane Legg."""
    w: Lookups = await make_lookups()
    await SubscriptionService(w.service, Settings()).subscribe(
        actor_id=1, guild_id=10, channel_id=20, kind=SubscriptionKind.AUTHOR, value="Shane Legg"
    )
    plan = await w.service.lookups.plan_author("Shane Legg", user_id=1)
    assert plan.wait and (await plan.settle()).state is RefreshState.FETCHED
    (request,) = w.arxiv.api_requests()
    assert request.query["search_query"] == "au:legg_s"
    assert (request.query["sortBy"], request.query["sortOrder"]) == ("submittedDate", "descending")

    match = await w.service.author("Shane Legg")
    assert [p.id for p in match.papers] == ["2402.00002", "2402.00001"]  # newest first
    assert set(match.matched_names) == {"Shane Legg", "S. Legg"}
    assert await w.service.papers.get("2402.00003") is not None  # Sarah Legg: stored, not listed
    assert await w.service.outbox.pending_count() == 0  # catalogue only: no alert queued

    w.ticks[0] += 3600  # no cooldown involved: the cache answers
    w.clock[0] = NOW + timedelta(hours=23)
    again = await w.service.lookups.plan_author("legg, s.", user_id=1)  # same au:legg_s
    assert again.task is None and (await again.settle()).state is RefreshState.CACHED
    assert len(w.arxiv.api_requests()) == 1
    w.clock[0] = NOW + timedelta(hours=25)
    stale = await w.service.lookups.plan_author("Shane Legg", user_id=1)
    assert (await stale.settle()).state is RefreshState.FETCHED
    assert len(w.arxiv.api_requests()) == 2


async def test_loose_api_answers_are_filtered_by_paperbells_name_matching(
    make_lookups: Callable[..., Any],
) -> None:
    """Whatever arXiv returns, "Pedro A. Ortega" never lists Domingos and Legg never Lee."""
    w: Lookups = await make_lookups()
    w.arxiv.set_api(api_feed(CORPUS), search_query="au:ortega_p")  # everything, like a bad day
    w.arxiv.set_api(api_feed(CORPUS), search_query="au:legg_s")
    for name, user in (("Pedro A. Ortega", 1), ("Shane Legg", 2)):
        await (await w.service.lookups.plan_author(name, user_id=user)).settle()
    ortega = await w.service.author("Pedro A. Ortega")
    assert [p.id for p in ortega.papers] == ["2402.00005"]
    legg = await w.service.author("Shane Legg")
    assert "Shane Lee" not in {a for p in legg.papers for a in p.authors}
    bare = await w.service.author("Legg")
    assert bare.ambiguous  # Shane and Sarah: the ambiguity note still applies


@pytest.mark.parametrize(
    ("scripted", "reason"),
    [
        (Scripted(status=200, body=b"Rate exceeded."), "slow down"),
        (Scripted(status=503, headers={"Retry-After": "60"}), "error (503)"),
        (
            Scripted(
                status=400,
                body=api_error_feed("malformed query", "x"),
                content_type="application/atom+xml",
            ),
            "refused the query",
        ),
        (Scripted(status=200, body=b"<html><title>oops</title></html>"), "could not be read"),
    ],
)
async def test_arxiv_errors_give_stored_results_and_a_note(
    make_lookups: Callable[..., Any], scripted: Scripted, reason: str
) -> None:
    """Rate limits, 503s and error documents end as a note beside the stored results."""
    w: Lookups = await make_lookups()
    await w.service.papers.upsert_many([CORPUS[0]], now=NOW)
    w.arxiv.enqueue(scripted)
    refresh = await (await w.service.lookups.plan_author("Shane Legg", user_id=1)).settle()
    assert refresh.state is RefreshState.FAILED
    assert refresh.note is not None and reason in refresh.note
    assert len(w.arxiv.api_requests()) == 1  # no retries while a user waits
    assert [p.id for p in (await w.service.author("Shane Legg")).papers] == ["2402.00001"]
    w.ticks[0] += 60  # a failure is not cached: asking later tries arXiv again
    await (await w.service.lookups.plan_author("Shane Legg", user_id=1)).settle()
    assert len(w.arxiv.api_requests()) == 2


async def test_cooldown_per_user_and_joining_a_running_lookup(
    make_lookups: Callable[..., Any],
) -> None:
    """A user's second uncached look-up within the cooldown is refused; others are not."""
    w: Lookups = await make_lookups(cooldown=10)
    await (await w.service.lookups.plan_author("Shane Legg", user_id=1)).settle()
    refused = await w.service.lookups.plan_search("grokking", category=None, user_id=1)
    assert refused.task is None and refused.note is not None
    assert "ask again in 10 s" in refused.note
    other = await w.service.lookups.plan_search("grokking", category=None, user_id=2)
    assert (await other.settle()).state is RefreshState.FETCHED
    w.ticks[0] += 10
    later = await w.service.lookups.plan_search("deep networks", category=None, user_id=1)
    assert (await later.settle()).state is RefreshState.FETCHED


async def test_bounded_queue_and_answer_first_when_long(
    make_lookups: Callable[..., Any],
) -> None:
    """Past the wait limit a look-up answers first; past the bound it does not queue at all."""
    w: Lookups = await make_lookups(wait_limit=1, max_queue=2)
    w.arxiv.enqueue(*[Scripted(delay=0.3, passthrough=True) for _ in range(2)])
    first = await w.service.lookups.plan_search("grokking", category=None, user_id=1)
    second = await w.service.lookups.plan_search("networks", category=None, user_id=2)
    joined = await w.service.lookups.plan_search("grokking", category=None, user_id=3)
    third = await w.service.lookups.plan_search("decisions", category=None, user_id=4)
    assert first.wait and not second.wait  # one ahead: answer now, edit later
    assert joined.task is first.task  # the same query rides along for free
    assert third.task is None and third.note is not None and "waiting for arXiv" in third.note
    await asyncio.gather(first.settle(), second.settle())
    assert w.arxiv.max_in_flight == 1
    assert len(w.arxiv.api_requests()) == 2
    assert w.service.lookups.gate.pending == 0


async def test_search_query_is_built_from_words_only(make_lookups: Callable[..., Any]) -> None:
    """Quotes, parentheses, operators and fields typed by a user reach arXiv as plain words."""
    w: Lookups = await make_lookups()
    hostile = 'grokking") OR au:"x" ANDNOT (ti:* [2020 TO 2030]'
    await (await w.service.lookups.plan_search(hostile, category="cs.LG", user_id=1)).settle()
    (request,) = w.arxiv.api_requests()
    sent = request.query["search_query"]
    assert sent == (
        "all:grokking AND all:or AND all:au AND all:x AND all:andnot AND all:ti"
        " AND all:2020 AND all:to AND cat:cs.LG"
    )


async def test_paper_lookup_is_catalogue_only_and_gated(make_lookups: Callable[..., Any]) -> None:
    """/paper of an unknown id stores it without alerting; a user in cooldown is told so."""
    w: Lookups = await make_lookups(cooldown=30)
    w.arxiv.set_api(api_feed([CORPUS[0]]), id_list=["2402.00001"])
    await SubscriptionService(w.service, Settings()).subscribe(
        actor_id=1, guild_id=10, channel_id=20, kind=SubscriptionKind.AUTHOR, value="Shane Legg"
    )
    found = await w.service.get_paper("arXiv:2402.00001", user_id=1)
    assert found.title == "Universal intelligence"
    assert await w.service.outbox.pending_count() == 0
    with pytest.raises(UpstreamError, match="ask again in 30 s"):
        await w.service.get_paper("2402.00002", user_id=1)
    assert (await w.service.get_paper("2402.00001", user_id=1)).id == "2402.00001"  # stored


async def test_poll_goes_ahead_of_queued_paper_lookups_and_the_queue_is_bounded(
    tmp_path: Path,
) -> None:
    """Ten users' /paper look-ups of unknown ids: five queue, five are told arXiv is busy,
    and a poll arriving behind the queue is the next request arXiv sees."""
    db = await Database.open(tmp_path / "store.db")
    try:
        async with ArxivServer() as arxiv, aiohttp.ClientSession() as session:
            arxiv.enqueue(Scripted(delay=0.3, passthrough=True, path="/api/query"))
            client = ArxivClient(
                session,
                rss_url=arxiv.rss_url,
                api_url=arxiv.api_url,
                limiter=RequestLimiter(0.02),
                user_agent=DEFAULT_USER_AGENT,
                timeout=5,
            )
            service = PaperService(db, client, lookup_gate=LookupGate(max_queue=5))
            lookups = [
                asyncio.create_task(service.get_paper(f"2402.{n:05d}", user_id=n))
                for n in range(1, 11)
            ]
            await arxiv.wait_for_requests(1)
            poll = await service.poll(["cs.AI"])
            outcomes = await asyncio.gather(*lookups, return_exceptions=True)
        busy = [
            o for o in outcomes if isinstance(o, UpstreamError) and "waiting for arXiv" in str(o)
        ]
        assert len(busy) == 5
        assert poll.feeds and not poll.errors
        paths = [r.path for r in arxiv.requests]
        assert paths[:2] == ["/api/query", "/rss/cs.AI"], paths
        assert paths.count("/api/query") == 5
        assert service.lookups.gate.pending == 0
    finally:
        await db.close()


async def test_close_cancels_lookups_on_their_way(make_lookups: Callable[..., Any]) -> None:
    """Shutdown cancels a look-up waiting for arXiv and frees its place in the queue."""
    w: Lookups = await make_lookups()
    w.arxiv.enqueue(Scripted(delay=5, passthrough=True, path="/api/query"))
    plan = await w.service.lookups.plan_author("Shane Legg", user_id=1)
    await w.arxiv.wait_for_requests(1)
    await w.service.lookups.close()
    assert plan.task is not None and plan.task.cancelled()
    assert w.service.lookups.gate.pending == 0
    assert await LookupCache(w.db).count() == 0  # nothing recorded as asked


async def test_paging_past_what_arxiv_gave_asks_for_its_next_page(
    make_lookups: Callable[..., Any],
) -> None:
    """When the store runs short of a page and arXiv said it has more, the next API page
    (start=N) is fetched, until arXiv's total; then nothing more is asked."""
    w: Lookups = await make_lookups(cooldown=0)
    legg = [api_paper(n, ("Shane Legg",), title=f"Paper {n}") for n in range(10, 22)]
    w.arxiv.set_api_corpus(legg)
    lookups = ArxivLookups(
        w.service.papers,
        LookupCache(w.db),
        w.service.client,
        gate=LookupGate(cooldown=0),
        clock=lambda: w.clock[0],
        author_results=5,
    )
    await (await lookups.plan_author("Shane Legg", user_id=1)).settle()
    assert len((await w.service.author("Shane Legg", limit=100)).papers) == 5
    assert (await lookups.more("au:legg_s", user_id=1)).state is RefreshState.FETCHED
    assert (await lookups.more("au:legg_s", user_id=1)).state is RefreshState.FETCHED
    assert (await lookups.more("au:legg_s", user_id=1)).state is RefreshState.CACHED
    assert [r.query["start"] for r in w.arxiv.api_requests()] == ["0", "5", "10"]
    found = (await w.service.author("Shane Legg", limit=100)).papers
    assert [p.id for p in found] == [p.id for p in reversed(legg)]  # all twelve, newest first
