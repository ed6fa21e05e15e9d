"""The arXiv client reads digits in stranger-controlled headers as ASCII only."""

from __future__ import annotations

import aiohttp
import pytest

from bot.arxiv.client import DEFAULT_USER_AGENT, ArxivClient
from bot.arxiv.limiter import RequestLimiter
from tests.arxiv_server import FIXTURES, ArxivServer, Scripted

EMPTY_RSS = (FIXTURES / "rss2024_new_empty_test-archive.xml").read_bytes()


@pytest.mark.parametrize("value", ["²", "٣", "３"])
async def test_retry_after_in_non_ascii_digits_is_ignored(
    arxiv_server: ArxivServer, value: str
) -> None:
    """`Retry-After: ²` (isdigit() says yes, float() says no) or other scripts' digits fall
    back to the client's own back-off instead of raising or being obeyed."""
    delays: list[float] = []

    async def sleep(delay: float) -> None:
        delays.append(delay)

    arxiv_server.set_rss(EMPTY_RSS, categories="test")
    arxiv_server.enqueue(Scripted(status=429, headers={"Retry-After": value}))
    async with aiohttp.ClientSession() as session:
        client = ArxivClient(
            session,
            rss_url=arxiv_server.rss_url,
            limiter=RequestLimiter(0),
            user_agent=DEFAULT_USER_AGENT,
            timeout=5,
            sleep=sleep,
            backoff_base=1.0,
        )
        result = await client.fetch_rss(arxiv_server.rss_url + "test")
    assert result.status == 200
    (delay,) = delays
    assert 1.0 <= delay <= 1.1  # backoff_base * 2**0 plus jitter, not 2 or 3 seconds
