"""Tests pinning that the local arXiv server answers like the real one where tests rely on it."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime

import aiohttp

from bot.arxiv.feeds import parse_atom
from bot.domain.models import Paper
from tests.arxiv_server import FIXTURES, ArxivServer, Scripted, api_error_feed

_TIMESTAMP = re.compile(rb"<updated>[^<]*</updated>")


def test_api_error_document_matches_real_one() -> None:
    """The generated API error feed equals arXiv's recorded one, timestamps aside."""
    real = (FIXTURES / "api2026_error_http400_idlist_abc.xml").read_bytes()

    ours = api_error_feed("incorrect id format for abc", "incorrect_id_format_for_abc")

    assert _TIMESTAMP.sub(b"", ours) == _TIMESTAMP.sub(b"", real)


async def test_scripts_filtered_by_path_and_used_once(arxiv_server: ArxivServer) -> None:
    """A path-filtered script waits for its path; each script answers exactly one request."""
    arxiv_server.enqueue(Scripted(status=503, path="/api/"))
    async with aiohttp.ClientSession() as session:
        async with session.get(arxiv_server.rss_url + "cs.AI") as rss:
            rss_status = rss.status
        async with session.get(arxiv_server.api_url, params={"search_query": "all:x"}) as api:
            first_api = api.status
        async with session.get(arxiv_server.api_url, params={"search_query": "all:x"}) as api:
            second_api = api.status

    assert (rss_status, first_api, second_api) == (200, 503, 200)
    assert arxiv_server.pending_scripts == 0


async def test_wait_for_requests_wakes_on_arrival(arxiv_server: ArxivServer) -> None:
    """wait_for_requests returns once the awaited number of requests has arrived."""
    async with aiohttp.ClientSession() as session:
        waiter = asyncio.create_task(arxiv_server.wait_for_requests(2))
        for _ in range(2):
            async with session.get(arxiv_server.author_feed_url + "nobody_x_1.atom") as resp:
                assert resp.status == 404
        seen = await waiter

    assert [r.path for r in seen] == ["/a/nobody_x_1.atom"] * 2


async def test_corpus_answers_au_all_cat_queries_sorted_and_paged(
    arxiv_server: ArxivServer,
) -> None:
    """With a corpus, au:/all:/cat: queries are evaluated (loosely for au:, like arXiv),
    sorted by submission date, paged, parsed back by paperbell's Atom parser; other
    syntax gets the 400 error document."""

    def make(n: int, authors: tuple[str, ...], cats: tuple[str, ...]) -> Paper:
        return Paper(
            id=f"2402.{n:05d}", version=1, title=f"On grokking {n}", abstract="Abstract.",
            authors=authors, primary_category=cats[0], categories=cats,
            published=datetime(2024, 2, n, tzinfo=UTC),
        )  # fmt: skip

    arxiv_server.set_api_corpus(
        [
            make(1, ("Shane Legg",), ("cs.AI",)),
            make(2, ("Sarah Legg",), ("q-bio.PE",)),
            make(3, ("Shane Lee",), ("cs.LG",)),
            make(4, ("S. Legg", "Marcus Hutter"), ("cs.LG",)),
        ]
    )

    async def ask(query: str, **extra: str) -> tuple[int, list[str], int | None]:
        params = {"search_query": query, "sortBy": "submittedDate", "sortOrder": "descending"}
        async with (
            aiohttp.ClientSession() as session,
            session.get(arxiv_server.api_url, params={**params, **extra}) as resp,
        ):
            body = await resp.read()
            if resp.status != 200:
                return resp.status, [], None
        result = parse_atom(body)
        return resp.status, [p.id for p in result.papers], result.total_results

    assert await ask("au:legg_s") == (200, ["2402.00004", "2402.00002", "2402.00001"], 3)
    assert await ask("au:legg_s", start="1", max_results="1") == (200, ["2402.00002"], 3)
    assert (await ask("all:grokking AND cat:cs*"))[1] == ["2402.00004", "2402.00003", "2402.00001"]
    assert (await ask("au:hutter AND all:4"))[1] == ["2402.00004"]
    assert (await ask('au:"legg" OR ti:x'))[0] == 400
    assert len(arxiv_server.api_requests("au:legg_s")) == 2
