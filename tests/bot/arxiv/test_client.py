"""Tests for the polite arXiv HTTP client, run against the local arXiv server."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import aiohttp
import pytest

from bot.arxiv.client import (
    DEFAULT_USER_AGENT,
    ArxivClient,
    ArxivConnectionError,
    ArxivHTTPError,
    ArxivRateLimitError,
    ArxivTimeoutError,
    BodyTooLargeError,
)
from bot.arxiv.limiter import Priority, RequestLimiter
from tests.arxiv_server import FIXTURES, ArxivServer, Scripted

EMPTY_RSS = (FIXTURES / "rss2024_new_empty_test-archive.xml").read_bytes()
IDLIST_API = (FIXTURES / "api2026_idlist_0808.05394+1707.08567.xml").read_bytes()


class RecordingSleep:
    """Stands in for asyncio.sleep: records the requested back-off and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def sleeps() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
def make_client(
    session: aiohttp.ClientSession, arxiv_server: ArxivServer, sleeps: RecordingSleep
) -> Any:
    def make(**overrides: Any) -> ArxivClient:
        options: dict[str, Any] = {
            "rss_url": arxiv_server.rss_url,
            "api_url": arxiv_server.api_url,
            "limiter": RequestLimiter(0),
            "user_agent": DEFAULT_USER_AGENT,
            "timeout": 5,
            "sleep": sleeps,
        }
        options.update(overrides)
        return ArxivClient(session, **options)

    return make


# -- conditional GET ------------------------------------------------------------------


async def test_etag_round_trip_then_304(arxiv_server: ArxivServer, make_client: Any) -> None:
    """A 200 carries ETag/Last-Modified; sending them back gets a 304 with an empty body."""
    arxiv_server.set_rss(
        EMPTY_RSS, categories="test", etag='"v1"', last_modified="Thu, 28 Nov 2024 05:00:08 GMT"
    )
    client = make_client()
    [url] = client.rss_urls(["test"])

    first = await client.fetch_rss(url)
    second = await client.fetch_rss(url, etag=first.etag, last_modified=first.last_modified)

    assert (first.status, first.body, first.not_modified) == (200, EMPTY_RSS, False)
    assert (first.etag, first.last_modified) == ('"v1"', "Thu, 28 Nov 2024 05:00:08 GMT")
    assert (second.status, second.body, second.not_modified) == (304, b"", True)
    assert second.etag == '"v1"'
    sent = arxiv_server.requests[1].headers
    assert sent["If-None-Match"] == '"v1"'
    assert sent["If-Modified-Since"] == "Thu, 28 Nov 2024 05:00:08 GMT"


async def test_new_listing_after_304_is_fetched(
    arxiv_server: ArxivServer, make_client: Any
) -> None:
    """Once the server publishes a new listing, the old ETag no longer matches: 200 again."""
    arxiv_server.set_rss(EMPTY_RSS, etag='"day1"')
    client = make_client()
    [url] = client.rss_urls(["cs.AI"])
    first = await client.fetch_rss(url)

    new_listing = EMPTY_RSS.replace(b"28 Nov 2024", b"29 Nov 2024")
    arxiv_server.set_rss(new_listing, etag='"day2"')
    second = await client.fetch_rss(url, etag=first.etag)

    assert (second.status, second.body, second.etag) == (200, new_listing, '"day2"')


async def test_if_modified_since_alone_gets_304(
    arxiv_server: ArxivServer, make_client: Any
) -> None:
    """Last-Modified alone is sent as If-Modified-Since and honoured by the server."""
    arxiv_server.set_rss(EMPTY_RSS, last_modified="Thu, 28 Nov 2024 05:00:08 GMT")
    client = make_client()

    result = await client.fetch_rss(
        client.rss_urls(["cs.AI"])[0], last_modified="Thu, 28 Nov 2024 05:00:08 GMT"
    )

    assert result.not_modified
    assert "If-None-Match" not in arxiv_server.requests[0].headers


async def test_304_without_validators_keeps_callers(
    arxiv_server: ArxivServer, make_client: Any
) -> None:
    """A bare 304 keeps the caller's ETag and Last-Modified so the cache stays usable."""
    arxiv_server.enqueue(Scripted(status=304))
    client = make_client()

    result = await client.fetch_rss(client.rss_urls(["cs.AI"])[0], etag='"x"', last_modified="L")

    assert (result.status, result.etag, result.last_modified) == (304, '"x"', "L")


# -- retries and back-off -------------------------------------------------------------


async def test_429_retry_after_seconds_honoured(
    arxiv_server: ArxivServer, make_client: Any, sleeps: RecordingSleep
) -> None:
    """A 429 with `Retry-After: 7` waits 7 s (plus at most 10% jitter), then succeeds."""
    arxiv_server.set_rss(EMPTY_RSS)
    arxiv_server.enqueue(Scripted(status=429, headers={"Retry-After": "7"}))
    client = make_client()

    result = await client.fetch_rss(client.rss_urls(["cs.AI"])[0])

    assert result.body == EMPTY_RSS
    assert len(arxiv_server.requests) == 2
    [delay] = sleeps.delays
    assert 7 <= delay <= 7.7


async def test_503_retry_after_http_date_honoured(
    arxiv_server: ArxivServer, make_client: Any, sleeps: RecordingSleep
) -> None:
    """A 503 with an HTTP-date Retry-After two minutes ahead waits about two minutes."""
    when = datetime.now(UTC) + timedelta(seconds=120)
    arxiv_server.enqueue(
        Scripted(status=503, headers={"Retry-After": format_datetime(when, usegmt=True)})
    )
    client = make_client()

    result = await client.fetch_rss(client.rss_urls(["cs.AI"])[0])

    assert result.status == 200
    [delay] = sleeps.delays
    assert 118 <= delay <= 121  # the date has whole seconds; jitter adds at most 1 s


async def test_retry_after_capped_at_max_backoff(
    arxiv_server: ArxivServer, make_client: Any, sleeps: RecordingSleep
) -> None:
    """A Retry-After longer than max_backoff is cut to max_backoff."""
    arxiv_server.enqueue(Scripted(status=503, headers={"Retry-After": "3600"}))
    client = make_client(max_backoff=300)

    await client.fetch_rss(client.rss_urls(["cs.AI"])[0])

    assert sleeps.delays == [300]


async def test_exponential_backoff_without_retry_after(
    arxiv_server: ArxivServer, make_client: Any, sleeps: RecordingSleep
) -> None:
    """Without Retry-After the waits grow as backoff_base * 2^n with a small jitter."""
    arxiv_server.enqueue(Scripted(status=500), Scripted(status=502), Scripted(status=504))
    client = make_client(backoff_base=2.0)

    result = await client.fetch_rss(client.rss_urls(["cs.AI"])[0])

    assert result.status == 200
    assert len(sleeps.delays) == 3
    for delay, expected in zip(sleeps.delays, [2, 4, 8], strict=True):
        assert expected <= delay <= expected * 1.1


async def test_rate_exceeded_body_is_retried(
    arxiv_server: ArxivServer, make_client: Any, sleeps: RecordingSleep
) -> None:
    """HTTP 200 with the body `Rate exceeded.` is a rate limit: back off and ask again."""
    arxiv_server.set_rss(EMPTY_RSS)
    arxiv_server.enqueue(Scripted(status=200, body=b"Rate exceeded."))
    client = make_client()

    result = await client.fetch_rss(client.rss_urls(["cs.AI"])[0])

    assert result.body == EMPTY_RSS
    assert len(sleeps.delays) == 1
    assert len(arxiv_server.requests) == 2


async def test_retries_exhausted_raise_retryable(
    arxiv_server: ArxivServer, make_client: Any, sleeps: RecordingSleep
) -> None:
    """After max_retries failed retries the client raises ArxivHTTPError(retryable=True)."""
    arxiv_server.enqueue(*[Scripted(status=503, body=b"SECRET-BODY") for _ in range(3)])
    client = make_client(max_retries=2)

    with pytest.raises(ArxivHTTPError) as caught:
        await client.fetch_rss(client.rss_urls(["cs.AI"])[0])

    assert caught.value.retryable is True
    assert caught.value.status == 503
    assert caught.value.url.endswith("/rss/cs.AI")
    assert "SECRET-BODY" not in str(caught.value)
    assert len(arxiv_server.requests) == 3
    assert len(sleeps.delays) == 2


async def test_rate_limit_exhausted_raises_rate_limit_error(
    arxiv_server: ArxivServer, make_client: Any
) -> None:
    """Persistent `Rate exceeded.` ends in ArxivRateLimitError, retryable later."""
    arxiv_server.enqueue(Scripted(body=b"Rate exceeded.\n"), Scripted(status=429))
    client = make_client(max_retries=1)

    with pytest.raises(ArxivRateLimitError) as caught:
        await client.fetch_rss(client.rss_urls(["cs.AI"])[0])

    assert (caught.value.status, caught.value.retryable) == (429, True)


async def test_slow_response_times_out(
    arxiv_server: ArxivServer, make_client: Any, sleeps: RecordingSleep
) -> None:
    """An answer slower than the timeout raises ArxivTimeoutError once retries run out."""
    arxiv_server.enqueue(*[Scripted(delay=30, passthrough=True) for _ in range(2)])
    client = make_client(timeout=0.2, max_retries=1)

    with pytest.raises(ArxivTimeoutError) as caught:
        await client.fetch_rss(client.rss_urls(["cs.AI"])[0])

    assert (caught.value.status, caught.value.retryable) == (None, True)
    assert len(sleeps.delays) == 1


async def test_timeout_then_success(arxiv_server: ArxivServer, make_client: Any) -> None:
    """A timed-out attempt is retried and the next, prompt answer is returned."""
    arxiv_server.set_rss(EMPTY_RSS)
    arxiv_server.enqueue(Scripted(delay=30, passthrough=True))
    client = make_client(timeout=0.2)

    result = await client.fetch_rss(client.rss_urls(["cs.AI"])[0])

    assert result.body == EMPTY_RSS


async def test_truncated_body_is_retried(
    arxiv_server: ArxivServer, make_client: Any, sleeps: RecordingSleep
) -> None:
    """A body cut short of its Content-Length is a broken connection, retried."""
    arxiv_server.set_rss(EMPTY_RSS)
    arxiv_server.enqueue(Scripted(body=EMPTY_RSS, truncate_at=100))
    client = make_client()

    result = await client.fetch_rss(client.rss_urls(["cs.AI"])[0])

    assert result.body == EMPTY_RSS
    assert len(sleeps.delays) == 1


async def test_dropped_connection_exhausted(
    arxiv_server: ArxivServer, make_client: Any, sleeps: RecordingSleep
) -> None:
    """A server that hangs up every time ends in a retryable ArxivConnectionError."""
    # aiohttp resends a GET once by itself after a hang-up, so script plenty of them.
    arxiv_server.enqueue(*[Scripted(disconnect=True) for _ in range(8)])
    client = make_client(max_retries=1)

    with pytest.raises(ArxivConnectionError) as caught:
        await client.fetch_rss(client.rss_urls(["cs.AI"])[0])

    assert caught.value.retryable
    assert len(sleeps.delays) == 1


# -- answers that are not retried -----------------------------------------------------


async def test_body_over_cap_with_content_length(
    arxiv_server: ArxivServer, make_client: Any, sleeps: RecordingSleep
) -> None:
    """A declared body above max_body_bytes is refused at once and not retried."""
    arxiv_server.enqueue(Scripted(body=b"x" * 5000))
    client = make_client(max_body_bytes=1000)

    with pytest.raises(BodyTooLargeError) as caught:
        await client.fetch_rss(client.rss_urls(["cs.AI"])[0])

    assert caught.value.retryable is False
    assert sleeps.delays == []
    assert len(arxiv_server.requests) == 1


async def test_streamed_body_over_cap_aborted(
    arxiv_server: ArxivServer, make_client: Any, sleeps: RecordingSleep
) -> None:
    """A chunked body with no Content-Length is aborted once it passes the cap."""
    arxiv_server.enqueue(Scripted(body=b"x" * 300_000, chunked=True))
    client = make_client(max_body_bytes=1000)

    with pytest.raises(BodyTooLargeError):
        await client.fetch_rss(client.rss_urls(["cs.AI"])[0])

    assert sleeps.delays == []


async def test_body_at_cap_accepted(arxiv_server: ArxivServer, make_client: Any) -> None:
    """A streamed body of exactly max_body_bytes is accepted whole."""
    arxiv_server.enqueue(Scripted(body=b"y" * 1000, chunked=True))
    client = make_client(max_body_bytes=1000)

    result = await client.fetch_rss(client.rss_urls(["cs.AI"])[0])

    assert result.body == b"y" * 1000


async def test_404_not_retried(
    arxiv_server: ArxivServer, make_client: Any, sleeps: RecordingSleep
) -> None:
    """A 404 (an unknown page) raises a non-retryable ArxivHTTPError after one request."""
    client = make_client()

    with pytest.raises(ArxivHTTPError) as caught:
        await client.get(f"{arxiv_server.author_feed_url}nobody_x_1.atom")

    assert (caught.value.status, caught.value.retryable) == (404, False)
    assert len(arxiv_server.requests) == 1
    assert sleeps.delays == []


async def test_html_error_page_with_200_is_returned(
    arxiv_server: ArxivServer, make_client: Any
) -> None:
    """An HTML page served with 200 comes back as the body: rejecting it is the parser's job."""
    page = b"<!DOCTYPE html><html><body>Service temporarily unavailable</body></html>"
    arxiv_server.enqueue(Scripted(body=page, content_type="text/html"))
    client = make_client()

    result = await client.fetch_rss(client.rss_urls(["cs.AI"])[0])

    assert (result.status, result.body) == (200, page)


async def test_api_400_atom_error_document_returned(
    arxiv_server: ArxivServer, make_client: Any, sleeps: RecordingSleep
) -> None:
    """The API's HTTP 400 Atom error document is returned (status 400) for the parser."""
    client = make_client()

    result = await client.query_api(id_list=["abc"])

    assert result.status == 400
    assert b"<title>Error</title>" in result.body
    assert b"incorrect id format for abc" in result.body
    assert sleeps.delays == []


async def test_400_html_raises(arxiv_server: ArxivServer, make_client: Any) -> None:
    """A 400 that is not an Atom/XML document raises a non-retryable ArxivHTTPError."""
    arxiv_server.enqueue(Scripted(status=400, body=b"<html>bad</html>", content_type="text/html"))
    client = make_client()

    with pytest.raises(ArxivHTTPError) as caught:
        await client.query_api(id_list=["2307.15771"])

    assert (caught.value.status, caught.value.retryable) == (400, False)


# -- requests as sent -----------------------------------------------------------------


async def test_user_agent_sent(arxiv_server: ArxivServer, make_client: Any) -> None:
    """Every request carries the caller's descriptive User-Agent."""
    client = make_client(user_agent="paperbell-test/1 (+mailto:ops@example.org)")

    await client.fetch_rss(client.rss_urls(["cs.AI"])[0])
    await client.query_api(search_query="all:testing")

    agents = [request.headers["User-Agent"] for request in arxiv_server.requests]
    assert agents == ["paperbell-test/1 (+mailto:ops@example.org)"] * 2


def test_default_user_agent_is_descriptive() -> None:
    """The default User-Agent names the bot, its version and a contact URL."""
    assert DEFAULT_USER_AGENT.startswith("paperbell/")
    assert "(+https://github.com/paperbell/paperbell; arXiv alerts for Discord)" in (
        DEFAULT_USER_AGENT
    )


async def test_query_api_by_id_list(arxiv_server: ArxivServer, make_client: Any) -> None:
    """id_list is sent comma-joined with paging and submittedDate-descending sort."""
    arxiv_server.set_api(IDLIST_API, id_list=["0808.05394", "1707.08567"])
    client = make_client()

    result = await client.query_api(id_list=["0808.05394", "1707.08567"])

    assert (result.status, result.body) == (200, IDLIST_API)
    assert arxiv_server.requests[0].query == {
        "id_list": "0808.05394,1707.08567",
        "start": "0",
        "max_results": "50",
        "sortBy": "submittedDate",
        "sortOrder": "descending",
    }


async def test_query_api_search_query_arrives_intact(
    arxiv_server: ArxivServer, make_client: Any
) -> None:
    """A search query with quotes, spaces and colons reaches the server unchanged."""
    client = make_client()
    query = 'au:"Shane Legg" AND cat:cs.AI'

    await client.query_api(search_query=query, start=100, max_results=2000, sort_order="ascending")

    sent = arxiv_server.requests[0].query
    assert sent["search_query"] == query
    assert (sent["start"], sent["max_results"], sent["sortOrder"]) == ("100", "2000", "ascending")
    assert "id_list" not in sent


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"search_query": "all:x", "max_results": 2001},
        {"search_query": "all:x", "max_results": 0},
        {"search_query": "all:x", "start": -1},
        {"search_query": "all:x", "sort_by": "date"},
        {"search_query": "all:x", "sort_order": "up"},
    ],
)
async def test_query_api_rejects_bad_arguments(
    arxiv_server: ArxivServer, make_client: Any, kwargs: dict[str, Any]
) -> None:
    """Impossible API queries raise ValueError before any request is made."""
    client = make_client()

    with pytest.raises(ValueError):
        await client.query_api(**kwargs)

    assert arxiv_server.requests == []


def test_default_urls_are_arxivs(session: aiohttp.ClientSession) -> None:
    """Without overrides the client points at rss.arxiv.org."""
    client = ArxivClient(session, limiter=RequestLimiter(), user_agent=DEFAULT_USER_AGENT)

    assert client.rss_urls(["cs.LG", "cs.AI"]) == ["https://rss.arxiv.org/rss/cs.AI+cs.LG"]


# -- rss_urls -------------------------------------------------------------------------


def test_rss_urls_join_dedupe_sort(make_client: Any, arxiv_server: ArxivServer) -> None:
    """Categories are deduplicated, sorted and joined with + into one URL."""
    urls = make_client().rss_urls(["cs.LG", "cs.AI", "cs.LG", "hep-th", "math.CA"])

    assert urls == [arxiv_server.rss_url + "cs.AI+cs.LG+hep-th+math.CA"]


def test_rss_urls_split_by_count(make_client: Any, arxiv_server: ArxivServer) -> None:
    """More categories than max_categories_per_url are split over several URLs."""
    categories = [f"cs.{name}" for name in ["AI", "AR", "CC", "CE", "CG", "CL", "CR", "CV", "CY"]]

    urls = make_client().rss_urls(categories, max_categories_per_url=4)

    batches = [url.removeprefix(arxiv_server.rss_url).split("+") for url in urls]
    assert [len(batch) for batch in batches] == [4, 4, 1]
    assert [c for batch in batches for c in batch] == sorted(categories)


def test_rss_urls_split_by_length(make_client: Any, arxiv_server: ArxivServer) -> None:
    """A batch whose URL would pass max_url_length is split; no URL exceeds it."""
    categories = [f"physics.{chr(ord('a') + i) * 20}" for i in range(26)]
    limit = len(arxiv_server.rss_url) + 100

    urls = make_client().rss_urls(categories, max_categories_per_url=100, max_url_length=limit)

    assert len(urls) > 1
    assert all(len(url) <= limit for url in urls)
    joined = [c for url in urls for c in url.removeprefix(arxiv_server.rss_url).split("+")]
    assert joined == sorted(categories)


def test_rss_urls_empty(make_client: Any) -> None:
    """No categories means no requests."""
    assert make_client().rss_urls([]) == []


@pytest.mark.parametrize(
    "bad", ["", "cs AI", "CS.AI", "cs.AI/../x", "cs.AI+cs.LG", "cs.", "cs.A.B"]
)
def test_rss_urls_rejects_malformed_categories(make_client: Any, bad: str) -> None:
    """Anything not shaped like an arXiv category raises ValueError."""
    with pytest.raises(ValueError):
        make_client().rss_urls(["cs.AI", bad])


async def test_rss_url_batch_served_for_its_category_set(
    arxiv_server: ArxivServer, make_client: Any
) -> None:
    """A joined URL reaches /rss/cs.AI+cs.LG and gets that set's listing."""
    arxiv_server.set_rss(EMPTY_RSS, categories=["cs.LG", "cs.AI"])
    client = make_client()
    [url] = client.rss_urls(["cs.LG", "cs.AI"])

    result = await client.fetch_rss(url)

    assert result.body == EMPTY_RSS
    assert arxiv_server.requests[0].path == "/rss/cs.AI+cs.LG"


# -- the shared limiter ---------------------------------------------------------------


async def test_real_limiter_spaces_request_arrivals(
    arxiv_server: ArxivServer, make_client: Any
) -> None:
    """With a 0.2 s limiter, concurrent fetches arrive at the server at least 0.2 s apart."""
    client = make_client(limiter=RequestLimiter(0.2))
    [url] = client.rss_urls(["cs.AI"])

    await asyncio.gather(*(client.fetch_rss(url) for _ in range(3)))

    arrivals = [request.arrived for request in arxiv_server.requests]
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert len(gaps) == 2
    assert all(gap >= 0.2 for gap in gaps), gaps


async def test_limiter_spaces_retries_even_with_instant_backoff(
    arxiv_server: ArxivServer, make_client: Any, sleeps: RecordingSleep
) -> None:
    """A retry still waits for the limiter even when the back-off sleep returns at once."""
    arxiv_server.enqueue(Scripted(status=503, headers={"Retry-After": "0"}))
    client = make_client(limiter=RequestLimiter(0.2))

    await client.fetch_rss(client.rss_urls(["cs.AI"])[0])

    first, second = (request.arrived for request in arxiv_server.requests)
    assert second - first >= 0.2


async def test_concurrent_callers_serialized(
    arxiv_server: ArxivServer, session: aiohttp.ClientSession, make_client: Any
) -> None:
    """Clients sharing one limiter never have two requests in flight at once."""
    limiter = RequestLimiter(0)
    clients = [make_client(limiter=limiter) for _ in range(3)]
    arxiv_server.enqueue(*[Scripted(delay=0.1, passthrough=True) for _ in range(3)])

    await asyncio.gather(*(c.fetch_rss(c.rss_urls(["cs.AI"])[0]) for c in clients))

    assert len(arxiv_server.requests) == 3
    assert arxiv_server.max_in_flight == 1


async def test_separate_limiters_overlap(arxiv_server: ArxivServer, make_client: Any) -> None:
    """Control for the test above: clients with their own limiters do overlap."""
    clients = [make_client(limiter=RequestLimiter(0)) for _ in range(3)]
    arxiv_server.enqueue(*[Scripted(delay=0.3, passthrough=True) for _ in range(3)])

    await asyncio.gather(*(c.fetch_rss(c.rss_urls(["cs.AI"])[0]) for c in clients))

    assert arxiv_server.max_in_flight > 1


async def test_backoff_pauses_other_callers(arxiv_server: ArxivServer, make_client: Any) -> None:
    """While one caller backs off from a 429, other callers wait instead of hitting arXiv."""
    sleeping = asyncio.Event()
    release = asyncio.Event()

    async def blocking_sleep(delay: float) -> None:
        sleeping.set()
        await release.wait()

    limiter = RequestLimiter(0)
    first = make_client(limiter=limiter, sleep=blocking_sleep)
    second = make_client(limiter=limiter)
    arxiv_server.enqueue(Scripted(status=429, headers={"Retry-After": "5"}, path="/rss/cs.AI"))

    first_task = asyncio.create_task(first.fetch_rss(first.rss_urls(["cs.AI"])[0]))
    await sleeping.wait()
    second_task = asyncio.create_task(second.fetch_rss(second.rss_urls(["cs.LG"])[0]))
    for _ in range(5):  # let the second caller reach the limiter's queue
        await asyncio.sleep(0)
    release.set()
    await asyncio.gather(first_task, second_task)

    assert [r.path for r in arxiv_server.requests] == ["/rss/cs.AI", "/rss/cs.AI", "/rss/cs.LG"]


async def test_poll_goes_ahead_of_queued_lookups(
    arxiv_server: ArxivServer, make_client: Any
) -> None:
    """A poll that arrives behind queued look-ups is the next request arXiv sees."""
    limiter = RequestLimiter(0)
    client = make_client(limiter=limiter)
    arxiv_server.enqueue(Scripted(delay=0.2, passthrough=True))  # the look-up in flight
    lookups = [
        asyncio.create_task(
            client.query_api(id_list=[f"2501.0000{n}"], max_results=1, priority=Priority.LOOKUP)
        )
        for n in range(1, 6)
    ]
    await arxiv_server.wait_for_requests(1)
    assert limiter.waiting(Priority.LOOKUP) == 4
    poll = asyncio.create_task(client.fetch_rss(client.rss_urls(["cs.AI"])[0]))
    await asyncio.gather(poll, *lookups)

    paths = [r.path for r in arxiv_server.requests]
    assert paths[1] == "/rss/cs.AI", paths
    ids = [r.query.get("id_list") for r in arxiv_server.requests if r.path == "/api/query"]
    assert ids == [f"2501.0000{n}" for n in range(1, 6)]  # first come, first served
    assert arxiv_server.max_in_flight == 1


async def test_cancelled_waiter_does_not_block_the_limiter(
    arxiv_server: ArxivServer, make_client: Any
) -> None:
    """A caller cancelled while waiting gives up its place; the others still get theirs."""
    limiter = RequestLimiter(0)
    client = make_client(limiter=limiter)
    arxiv_server.enqueue(Scripted(delay=0.2, passthrough=True))
    first = asyncio.create_task(client.fetch_rss(client.rss_urls(["cs.AI"])[0]))
    await arxiv_server.wait_for_requests(1)
    doomed = asyncio.create_task(client.query_api(id_list=["2501.00001"], priority=Priority.LOOKUP))
    last = asyncio.create_task(client.query_api(id_list=["2501.00002"], priority=Priority.LOOKUP))
    await asyncio.sleep(0.01)
    doomed.cancel()
    await asyncio.wait_for(asyncio.gather(first, last), 5)
    assert limiter.waiting() == 0
    assert [r.query.get("id_list") for r in arxiv_server.requests[1:]] == ["2501.00002"]


async def test_max_retries_override_gives_up_at_once(
    arxiv_server: ArxivServer, make_client: Any, sleeps: RecordingSleep
) -> None:
    """A look-up asking for no retries raises on the first 503 without backing off."""
    arxiv_server.enqueue(Scripted(status=503, headers={"Retry-After": "30"}))
    client = make_client(max_retries=4)
    with pytest.raises(ArxivHTTPError) as caught:
        await client.query_api(search_query="au:legg_s", max_retries=0)
    assert caught.value.retryable
    assert sleeps.delays == []
    assert len(arxiv_server.requests) == 1


def test_limiter_rejects_negative_delay() -> None:
    """A negative delay is a configuration error."""
    with pytest.raises(ValueError):
        RequestLimiter(-1)


# -- logging --------------------------------------------------------------------------


async def test_logs_requests_and_retries_without_body(
    arxiv_server: ArxivServer, make_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Each request is logged at DEBUG with URL and status, retries at WARNING, never the body."""
    arxiv_server.enqueue(Scripted(status=503, body=b"SECRET-BODY"))
    client = make_client()
    [url] = client.rss_urls(["cs.AI"])

    with caplog.at_level(logging.DEBUG, logger="bot.arxiv.client"):
        await client.fetch_rss(url)

    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(debug) == 2
    assert f"{url} -> 503" in debug[0]
    assert f"{url} -> 200" in debug[1]
    assert len(warnings) == 1
    assert "retry 1/4" in warnings[0]
    assert all("SECRET-BODY" not in r.getMessage() for r in caplog.records)
