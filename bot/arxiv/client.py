"""The polite HTTP client for arXiv: the only code in paperbell that talks to arXiv.

Every request to arXiv (RSS, API, author feeds, OAI-PMH) goes through one
`ArxivClient`, and every client of one process shares one `RequestLimiter`
(`bot.arxiv.limiter`), so arXiv's terms hold across all sources together: one
connection at a time and at least `delay` seconds (3 in production) between
requests. Waiting callers go in `Priority` order: the alert poll before
interactive look-ups.

The client only moves bytes. It does conditional GETs, retries what is worth
retrying with exponential back-off (honouring `Retry-After`), caps the body
size, and raises `ArxivHTTPError` for the rest. Parsing, including deciding that
a 200 answer is an HTML error page rather than a feed, is the parser's job.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from importlib import metadata

import aiohttp
from yarl import URL

from bot.arxiv.endpoints import (
    DEFAULT_API_URL,
    DEFAULT_OAI_URL,
    DEFAULT_RSS_URL,
)
from bot.arxiv.limiter import Priority, RequestLimiter

log = logging.getLogger(__name__)


def _package_version() -> str:
    try:
        return metadata.version("paperbell")
    except metadata.PackageNotFoundError:  # running from a source checkout
        return "0.1.0"


DEFAULT_USER_AGENT = (
    f"paperbell/{_package_version()} "
    "(+https://github.com/paperbell/paperbell; arXiv alerts for Discord)"
)

# rss.arxiv.org returns at most this many items per request, silently dropping the rest.
RSS_ITEM_CAP = 2000
# The API serves pages of at most 2,000 entries.
API_MAX_RESULTS = 2000

# A batch of categories per RSS URL, kept well below the 2,000-item cap: the busiest
# categories (cs.LG, cs.CV, cs.AI, cs.CL) each list several hundred items on a heavy
# day once cross-lists and replacements are counted, so four of them together can
# approach the cap. Few categories per URL costs a few extra requests a day, while a
# truncated listing loses papers silently. A poller that still sees RSS_ITEM_CAP items
# in one answer should refetch those categories one by one.
DEFAULT_MAX_CATEGORIES_PER_URL = 4
# Conservative limit on URL length; proxies and servers commonly accept ~2,000 characters.
DEFAULT_MAX_URL_LENGTH = 2000

_CATEGORY = re.compile(r"[a-z-]+(\.[A-Za-z-]+)?")
_SORT_BY = frozenset({"relevance", "lastUpdatedDate", "submittedDate"})
_SORT_ORDER = frozenset({"ascending", "descending"})

_RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
_XML_CONTENT_TYPES = frozenset({"application/atom+xml", "application/xml", "text/xml"})
_CHUNK_SIZE = 64 * 1024


class ArxivHTTPError(Exception):
    """A request to arXiv failed; the message is short and safe to log (never the body).

    `retryable` says whether asking again later may succeed (rate limits, server
    errors, timeouts, dropped connections) or not (404, 403, oversized body).
    """

    def __init__(self, message: str, *, url: str, status: int | None, retryable: bool) -> None:
        super().__init__(message)
        self.url = url
        self.status = status
        self.retryable = retryable


class ArxivTimeoutError(ArxivHTTPError):
    """arXiv did not answer (or finish the body) within the timeout."""


class ArxivConnectionError(ArxivHTTPError):
    """The connection failed or broke off, including a body cut short."""


class ArxivRateLimitError(ArxivHTTPError):
    """arXiv asked us to slow down: 429, or HTTP 200 with the body `Rate exceeded.`."""


class BodyTooLargeError(ArxivHTTPError):
    """The body exceeded the client's size cap; the download was aborted."""


@dataclass(frozen=True, slots=True)
class FetchResult:
    """One successful answer from arXiv.

    `status` is 200, or 304 (`not_modified`, empty body) after a conditional GET.
    It is 400 only for an API error document (see `ArxivClient.get`).
    """

    url: str
    status: int
    body: bytes
    etag: str | None
    last_modified: str | None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


class _Retry(Exception):
    """Internal: one attempt failed in a way worth retrying."""

    def __init__(self, error: ArxivHTTPError, retry_after: float | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


def _parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP-date)."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # isdigit() alone takes `²`, which float() refuses
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # HTTP-dates are GMT by definition
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _is_rate_exceeded(body: bytes) -> bool:
    # arXiv sometimes answers HTTP 200 with exactly this text instead of a 429.
    return len(body) < 64 and body.strip().lower() == b"rate exceeded."


class ArxivClient:
    """Fetches arXiv RSS feeds, API queries and author feeds, politely.

    The aiohttp session is owned by the caller (opened in `main()`); so is the
    limiter, which must be shared by everything that talks to arXiv.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        rss_url: str = DEFAULT_RSS_URL,
        api_url: str = DEFAULT_API_URL,
        oai_url: str = DEFAULT_OAI_URL,
        limiter: RequestLimiter,
        user_agent: str,
        timeout: float = 30,
        max_retries: int = 4,
        backoff_base: float = 2.0,
        max_backoff: float = 300,
        max_body_bytes: int = 50 * 2**20,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if not user_agent.strip():
            raise ValueError("arXiv asks for a descriptive User-Agent")
        self._session = session
        self._rss_url = rss_url.rstrip("/") + "/"
        self._api_url = api_url
        self._oai_url = oai_url
        self._limiter = limiter
        self._user_agent = user_agent
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._max_retries = max_retries
        self._backoff_base = backoff_base
        self._max_backoff = max_backoff
        self._max_body_bytes = max_body_bytes
        self._sleep = sleep

    async def get(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        params: Mapping[str, str] | None = None,
        priority: Priority = Priority.POLL,
        max_retries: int | None = None,
    ) -> FetchResult:
        """GET `url`, conditionally when validators are given, retrying transient failures.

        Returns status 200 with the body, or 304 with an empty body. HTTP 400 whose
        Content-Type is Atom/XML is returned too (status 400, body kept): that is how
        the arXiv API reports a bad query, and the feed parser turns the document into
        its typed API error with arXiv's own message. Any other 4xx raises at once.
        An HTML page served with 200 is returned as is; rejecting it is the parser's job.

        `priority` places the request among those waiting for the connection;
        `max_retries` overrides the client's (a look-up with a user waiting gives up
        at once and answers from the store instead of backing off for minutes).

        Note: aiohttp itself resends a GET once, at once, when the server hangs up
        before answering; only our own retries are spaced and counted.
        """
        retries = self._max_retries if max_retries is None else max(0, max_retries)
        full_url = URL(url).update_query(params) if params else URL(url)
        headers = {"User-Agent": self._user_agent}
        if etag is not None:
            headers["If-None-Match"] = etag
        if last_modified is not None:
            headers["If-Modified-Since"] = last_modified

        # The whole series of attempts is one turn of the limiter: arXiv rate-limits
        # the client, not the URL, so while we back off from a 429/503 every other
        # arXiv request of the process waits as well, and our retry keeps its place.
        async with self._limiter.turn(priority) as turn:
            attempt = 0
            while True:
                try:
                    async with turn.request():
                        return await self._attempt(full_url, headers, etag, last_modified)
                except _Retry as retry:
                    if attempt >= retries:
                        error = retry.error
                        raise type(error)(
                            f"{error} (gave up after {attempt + 1} attempts)",
                            url=error.url,
                            status=error.status,
                            retryable=True,
                        ) from None
                    delay = self._backoff(attempt, retry.retry_after)
                    attempt += 1
                    log.warning("%s; retry %d/%d in %.1fs", retry.error, attempt, retries, delay)
                    await self._sleep(delay)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Seconds before the next attempt: the server's Retry-After when given, else 2^n."""
        base = retry_after if retry_after is not None else self._backoff_base * 2**attempt
        # Small jitter so several bots behind one address do not retry in lockstep.
        jitter = random.uniform(0, min(1.0, 0.1 * base))
        return min(self._max_backoff, base + jitter)

    async def _attempt(
        self,
        url: URL,
        headers: Mapping[str, str],
        etag: str | None,
        last_modified: str | None,
    ) -> FetchResult:
        shown = str(url)
        started = time.monotonic()
        try:
            async with self._session.get(url, headers=headers, timeout=self._timeout) as resp:
                status = resp.status
                if status == 304:
                    log.debug("GET %s -> 304 in %.2fs", shown, time.monotonic() - started)
                    return FetchResult(
                        url=shown,
                        status=304,
                        body=b"",
                        # Keep the caller's validators when the 304 omits them.
                        etag=resp.headers.get("ETag", etag),
                        last_modified=resp.headers.get("Last-Modified", last_modified),
                    )
                if status in _RETRYABLE_STATUSES:
                    log.debug("GET %s -> %d in %.2fs", shown, status, time.monotonic() - started)
                    error_type = ArxivRateLimitError if status == 429 else ArxivHTTPError
                    raise _Retry(
                        error_type(
                            f"GET {shown} -> HTTP {status}",
                            url=shown,
                            status=status,
                            retryable=True,
                        ),
                        _parse_retry_after(resp.headers.get("Retry-After")),
                    )
                keep_400 = status == 400 and resp.content_type in _XML_CONTENT_TYPES
                if status != 200 and not keep_400:
                    log.debug("GET %s -> %d in %.2fs", shown, status, time.monotonic() - started)
                    raise ArxivHTTPError(
                        f"GET {shown} -> HTTP {status}", url=shown, status=status, retryable=False
                    )
                body = await self._read_capped(resp, shown)
                log.debug(
                    "GET %s -> %d (%d bytes) in %.2fs",
                    shown,
                    status,
                    len(body),
                    time.monotonic() - started,
                )
                if status == 200 and _is_rate_exceeded(body):
                    raise _Retry(
                        ArxivRateLimitError(
                            f"GET {shown} -> 200 'Rate exceeded.'",
                            url=shown,
                            status=status,
                            retryable=True,
                        ),
                        _parse_retry_after(resp.headers.get("Retry-After")),
                    )
                return FetchResult(
                    url=shown,
                    status=status,
                    body=body,
                    etag=resp.headers.get("ETag"),
                    last_modified=resp.headers.get("Last-Modified"),
                )
        except TimeoutError:
            log.debug("GET %s timed out after %.2fs", shown, time.monotonic() - started)
            raise _Retry(
                ArxivTimeoutError(
                    f"GET {shown} timed out after {self._timeout.total}s",
                    url=shown,
                    status=None,
                    retryable=True,
                ),
                None,
            ) from None
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            log.debug("GET %s failed: %s", shown, type(exc).__name__)
            raise _Retry(
                ArxivConnectionError(
                    f"GET {shown} failed: {type(exc).__name__}",
                    url=shown,
                    status=None,
                    retryable=True,
                ),
                None,
            ) from None
        except aiohttp.ClientError as exc:  # bad URL, too many redirects, bad headers
            raise ArxivHTTPError(
                f"GET {shown} failed: {type(exc).__name__}", url=shown, status=None, retryable=False
            ) from None

    async def _read_capped(self, resp: aiohttp.ClientResponse, shown: str) -> bytes:
        """Read the body, aborting as soon as it exceeds `max_body_bytes` (decoded size)."""
        limit = self._max_body_bytes
        too_large = BodyTooLargeError(
            f"GET {shown}: body exceeds {limit} bytes",
            url=shown,
            status=resp.status,
            retryable=False,
        )
        if resp.content_length is not None and resp.content_length > limit:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(_CHUNK_SIZE):
            size += len(chunk)
            if size > limit:
                # Leaving the `async with` releases (closes) the half-read connection.
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)

    def rss_urls(
        self,
        categories: Sequence[str],
        *,
        max_categories_per_url: int = DEFAULT_MAX_CATEGORIES_PER_URL,
        max_url_length: int = DEFAULT_MAX_URL_LENGTH,
    ) -> list[str]:
        """RSS URLs covering `categories`, several joined with `+` per request.

        Categories are deduplicated and sorted so the same set always yields the
        same URLs (and so the same cached ETags). A batch is split when it would
        hold more than `max_categories_per_url` categories (see
        DEFAULT_MAX_CATEGORIES_PER_URL for why few) or when the URL would exceed
        `max_url_length` characters. Raises ValueError for a malformed category.
        """
        if max_categories_per_url < 1:
            raise ValueError("max_categories_per_url must be >= 1")
        for category in categories:
            if not _CATEGORY.fullmatch(category):
                raise ValueError(f"not an arXiv category: {category!r}")
        urls: list[str] = []
        batch: list[str] = []
        for category in sorted(set(categories)):
            candidate = [*batch, category]
            too_long = len(self._rss_url + "+".join(candidate)) > max_url_length
            if batch and (len(candidate) > max_categories_per_url or too_long):
                urls.append(self._rss_url + "+".join(batch))
                batch = [category]
            else:
                batch = candidate
        if batch:
            urls.append(self._rss_url + "+".join(batch))
        return urls

    async def fetch_rss(
        self, url: str, *, etag: str | None = None, last_modified: str | None = None
    ) -> FetchResult:
        """Fetch one RSS URL from `rss_urls`, conditionally when validators are given."""
        return await self.get(url, etag=etag, last_modified=last_modified)

    async def query_api(
        self,
        *,
        search_query: str | None = None,
        id_list: Sequence[str] = (),
        start: int = 0,
        max_results: int = 50,
        sort_by: str = "submittedDate",
        sort_order: str = "descending",
        priority: Priority = Priority.POLL,
        max_retries: int | None = None,
    ) -> FetchResult:
        """Run one arXiv API query (one page); an error document comes back with status 400.

        `search_query` goes to arXiv as is: build it with `bot.arxiv.queries`, never
        from raw user text.
        """
        if search_query is None and not id_list:
            raise ValueError("give search_query, id_list or both")
        if not 1 <= max_results <= API_MAX_RESULTS:
            raise ValueError(f"max_results must be between 1 and {API_MAX_RESULTS}")
        if start < 0:
            raise ValueError("start must be >= 0")
        if sort_by not in _SORT_BY:
            raise ValueError(f"sort_by must be one of {sorted(_SORT_BY)}")
        if sort_order not in _SORT_ORDER:
            raise ValueError(f"sort_order must be one of {sorted(_SORT_ORDER)}")
        params: dict[str, str] = {}
        if search_query is not None:
            params["search_query"] = search_query
        if id_list:
            params["id_list"] = ",".join(id_list)
        params.update(
            start=str(start),
            max_results=str(max_results),
            sortBy=sort_by,
            sortOrder=sort_order,
        )
        return await self.get(
            self._api_url, params=params, priority=priority, max_retries=max_retries
        )

    async def list_records(
        self,
        *,
        resumption_token: str | None = None,
        metadata_prefix: str = "arXivRaw",
        set_spec: str | None = None,
        from_date: str | None = None,
        until_date: str | None = None,
    ) -> FetchResult:
        """One OAI-PMH `ListRecords` page: the first of a harvest, or the one a token names.

        With a resumption token OAI-PMH allows no other argument. A 503 with
        `Retry-After` (OAI-PMH's flow control) is waited out and retried by `get`.
        """
        params = {"verb": "ListRecords"}
        if resumption_token is not None:
            params["resumptionToken"] = resumption_token
        else:
            params["metadataPrefix"] = metadata_prefix
            for name, value in (("set", set_spec), ("from", from_date), ("until", until_date)):
                if value:
                    params[name] = value
        return await self.get(self._oai_url, params=params)
