"""Tests pinning that the local arXiv server answers like the real one where tests rely on it."""

from __future__ import annotations

import asyncio
import re

import aiohttp

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
