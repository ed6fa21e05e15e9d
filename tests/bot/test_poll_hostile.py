"""A hostile or broken listing during a poll: the loop keeps running, other URLs are polled,
failures land in the feed state, capped listings are refetched (`PaperService.poll`)."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

import bot.services
from bot.arxiv.caps import CAPS
from bot.arxiv.client import RSS_ITEM_CAP, ArxivClient
from bot.arxiv.limiter import RequestLimiter
from bot.poll_report import PollOutcome
from bot.services import PaperService
from storage.db import Database
from tests.arxiv_server import RSS_CONTENT_TYPE, ArxivServer, Scripted
from tests.bot.arxiv.hostile import OVERFLOW_DATE, rss_item, rss_listing


@dataclass
class Polling:
    service: PaperService
    arxiv: ArxivServer
    db: Database


@pytest.fixture
async def polling(tmp_path: Path, arxiv_server: ArxivServer) -> AsyncIterator[Polling]:
    """A PaperService on a real SQLite file, fetching from the local arXiv server."""
    db = await Database.open(tmp_path / "poll.db")
    try:
        async with aiohttp.ClientSession() as session:
            client = ArxivClient(
                session,
                rss_url=arxiv_server.rss_url,
                api_url=arxiv_server.api_url,
                limiter=RequestLimiter(0),
                user_agent="paperbell-tests",
                max_retries=0,
                timeout=30,
            )
            yield Polling(PaperService(db, client), arxiv_server, db)
    finally:
        await db.close()


def paths(arxiv: ArxivServer) -> list[str]:
    return [r.path for r in arxiv.requests]


# Nine categories: three URLs of at most four categories, in sorted order.
FIRST = ("astro-ph", "cond-mat", "cs.AI", "cs.LG")
MIDDLE = ("econ", "gr-qc", "hep-th", "math")
LAST = ("quant-ph",)


async def test_a_bad_listing_is_recorded_and_the_next_urls_still_polled(
    polling: Polling, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Whatever one URL raises (here an OverflowError out of the parser, the way a year-9999
    date used to) lands in that URL's feed state with a traceback in the log, and the URLs
    after it are polled and stored as usual."""
    arxiv = polling.arxiv
    arxiv.set_rss(rss_listing([rss_item(1)]), categories=FIRST)
    arxiv.set_rss(rss_listing([rss_item(2)], categories="poison"), categories=MIDDLE)
    arxiv.set_rss(rss_listing([rss_item(3)]), categories=LAST)
    real_parse = bot.services.parse_rss

    def parse(body: bytes) -> object:
        if b"poison" in body:
            raise OverflowError("date value out of range")
        return real_parse(body)

    monkeypatch.setattr(bot.services, "parse_rss", parse)
    with caplog.at_level(logging.ERROR, logger="bot.services"):
        report = await polling.service.poll([*FIRST, *MIDDLE, *LAST])

    outcomes = [f.outcome for f in report.feeds]
    assert outcomes == [PollOutcome.NEW_LISTING, PollOutcome.ERROR, PollOutcome.NEW_LISTING]
    assert {p.id for p in report.new} == {"2412.00001", "2412.00003"}
    failed = report.feeds[1]
    assert failed.error == "OverflowError: date value out of range"
    state = await polling.service.feeds.get(failed.url)
    assert state is not None and state.consecutive_failures == 1
    assert state.last_error == "OverflowError: date value out of range"
    assert any(r.exc_info and "poll failed" in r.getMessage() for r in caplog.records)
    assert (await polling.service.feeds.get(report.feeds[2].url)) is not None


async def test_overflowing_dates_skip_one_item_and_poll_goes_on(polling: Polling) -> None:
    """A real listing whose channel pubDate and one item are dated 31 Dec 9999 -1200: the item
    is skipped with its reason, the rest is stored, the listing dated by lastBuildDate."""
    items = [rss_item(1), rss_item(2, pub_date=OVERFLOW_DATE), rss_item(3)]
    polling.arxiv.set_rss(rss_listing(items, pub_date=OVERFLOW_DATE), categories=FIRST)
    polling.arxiv.set_rss(rss_listing([rss_item(4)]), categories=MIDDLE)
    report = await polling.service.poll([*FIRST, *MIDDLE])
    assert [f.outcome for f in report.feeds] == [PollOutcome.NEW_LISTING] * 2
    assert {p.id for p in report.new} == {"2412.00001", "2412.00003", "2412.00004"}
    (skip,) = report.feeds[0].skipped
    assert skip.startswith("item 2 (oai:arXiv.org:2412.00002v1) skipped: date ")
    assert report.skipped == 1
    assert report.feeds[0].build_date == "2024-12-03T05:00:03+00:00"
    assert await polling.service.papers.get("2412.00002") is None


# ---- the event loop while a hostile listing is parsed ---------------------------------------


def hostile_listing() -> bytes:
    """About 9 MB: 30 items with 280 KB author fields of nested parentheses and spaces, 20
    over the caps, and 600 ordinary items."""
    filler = "(" * 60_000 + " " * 160_000 + ")" * 60_000
    items = [rss_item(n, creators=f"Alice Smith {filler}, Bob Jones") for n in range(1, 31)]
    over = "A" * (CAPS["authors"] + 1)
    items += [rss_item(n, creators=over) for n in range(31, 51)]
    items += [rss_item(n) for n in range(51, 651)]
    return rss_listing(items)


async def test_parsing_a_large_hostile_listing_never_stalls_the_loop(polling: Polling) -> None:
    """A ticker sampling every 5 ms while the real poll path fetches, parses and stores a
    9 MB hostile listing never waits more than 100 ms for the loop."""
    # Streamed in 16 KB writes: one 15 MB write would stall the loop in the test server
    # (which shares it), not in the code under test.
    polling.arxiv.enqueue(
        Scripted(body=hostile_listing(), content_type=RSS_CONTENT_TYPE, chunked=True, path="/rss/")
    )
    # The loop's default executor starts its worker thread on first use, and thread start
    # waits for the OS to schedule it: a once-per-process cost, not the listing's.
    await asyncio.to_thread(lambda: None)
    # In a long test session the heap holds every earlier test's leftovers, and one full
    # collection of it can pause the loop for 100+ ms: collect and freeze it first, so the
    # ticker measures this poll, not the garbage of the tests before it.
    gc.collect()
    gc.freeze()
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticking = asyncio.create_task(ticker())
    try:
        report = await polling.service.poll(list(LAST))
    finally:
        done.set()
        await ticking
        gc.unfreeze()
    (feed,) = report.feeds
    assert feed.outcome is PollOutcome.NEW_LISTING, feed.error
    assert (feed.items, len(feed.skipped), feed.listed) == (630, 20, 650)
    assert len(gaps) > 10
    assert max(gaps) < 0.100, f"longest stall {max(gaps) * 1000:.0f} ms"


# ---- listings at arXiv's item cap -----------------------------------------------------------


def capped(start: int, count: int = RSS_ITEM_CAP) -> bytes:
    return rss_listing([rss_item(n) for n in range(start, start + count)])


async def test_a_capped_listing_is_refetched_in_halves_down_to_one_category(
    polling: Polling,
) -> None:
    """`cs.AI+cs.CL+cs.LG` at the 2,000-item cap is fetched again as `cs.AI+cs.CL` and `cs.LG`;
    the first is capped too, so `cs.AI` and `cs.CL` follow. Papers only the smaller listings
    hold are stored; `cs.CL`, capped alone, carries a truncation warning."""
    arxiv = polling.arxiv
    arxiv.set_rss(capped(1), categories="cs.AI+cs.CL+cs.LG")
    arxiv.set_rss(capped(1), categories="cs.AI+cs.CL")
    arxiv.set_rss(capped(5001, 10), categories="cs.AI")
    arxiv.set_rss(capped(6001), categories="cs.CL")
    arxiv.set_rss(capped(9001, 10), categories="cs.LG")
    report = await polling.service.poll(["cs.AI", "cs.CL", "cs.LG"])
    assert paths(arxiv) == [
        "/rss/cs.AI+cs.CL+cs.LG",
        "/rss/cs.AI+cs.CL",
        "/rss/cs.AI",
        "/rss/cs.CL",
        "/rss/cs.LG",
    ]
    assert all(f.outcome is PollOutcome.NEW_LISTING for f in report.feeds)
    stored = await polling.service.papers.get_many(["2412.05001", "2412.06001", "2412.09010"])
    assert len(stored) == 3
    (warning,) = report.warnings
    assert warning.startswith(f"{arxiv.rss_url}cs.CL: listing truncated: 2,000 items")

    # The capped combined listing keeps no validators: the next poll fetches it whole again
    # (a 304 would hide the cap); the one-category listings answer 304.
    before = len(arxiv.requests)
    again = await polling.service.poll(["cs.AI", "cs.CL", "cs.LG"])
    conditional = {
        r.path: r.headers.get("If-None-Match") is not None for r in arxiv.requests[before:]
    }
    assert conditional == {
        "/rss/cs.AI+cs.CL+cs.LG": False,
        "/rss/cs.AI+cs.CL": False,
        "/rss/cs.AI": True,
        "/rss/cs.CL": True,
        "/rss/cs.LG": True,
    }
    assert [f.outcome for f in again.feeds][2:] == [PollOutcome.NOT_MODIFIED] * 3


async def test_a_listing_below_the_cap_is_not_refetched(polling: Polling) -> None:
    """1,999 items in a combined listing are taken as complete: one request."""
    polling.arxiv.set_rss(capped(1, RSS_ITEM_CAP - 1), categories="cs.AI+cs.LG")
    report = await polling.service.poll(["cs.AI", "cs.LG"])
    assert paths(polling.arxiv) == ["/rss/cs.AI+cs.LG"]
    assert report.warnings == ()
