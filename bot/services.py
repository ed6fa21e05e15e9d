"""Service functions shared by the command line and the slash commands.

`PaperService` owns no resources: the database, the arXiv client and the
clock are opened by the caller (`bot.cli` or the bot's `main`) and passed in.
Everything a user can ask for — poll, import, look up, search, author pages —
goes through here, so the CLI and Discord always agree.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from bot.arxiv.client import RSS_ITEM_CAP, ArxivClient, ArxivHTTPError
from bot.arxiv.feeds import FeedError, RssListing, parse_document_report, parse_rss
from bot.errors import InvalidInputError, UpstreamError
from bot.lookups import ArxivLookups, LookupGate, check_query
from bot.matching import match_keys, match_subscriptions
from bot.redact import redact_urls
from storage.backend import AnyDatabase
from storage.feeds import FeedStateRepository
from storage.lookups import LookupCache
from storage.meta import MetaRepository
from storage.models import AuthorMatch, Paper, SearchHit, StoreStats
from storage.outbox import DeliveryOutbox
from storage.papers import PaperRepository
from storage.subscriptions import SubscriptionRepository

log = logging.getLogger(__name__)

MAX_QUERY_LENGTH = 300
MAX_RESULTS = 100

# Author and keyword subscriptions are matched locally, so they need every new
# paper: these are arXiv's archives (the "all archives" RSS listing).
ALL_ARCHIVES: tuple[str, ...] = (
    "astro-ph", "cond-mat", "cs", "econ", "eess", "gr-qc", "hep-ex", "hep-lat", "hep-ph",
    "hep-th", "math", "math-ph", "nlin", "nucl-ex", "nucl-th", "physics", "q-bio", "q-fin",
    "quant-ph", "stat",
)  # fmt: skip


def utcnow() -> datetime:
    return datetime.now(UTC)


class PollOutcome(StrEnum):
    NEW_LISTING = "new_listing"  # a listing we had not seen yet was ingested
    STALE = "stale"  # the feed still serves the listing of the previous poll
    NOT_MODIFIED = "not_modified"  # HTTP 304
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class FeedPoll:
    """The result of polling one RSS URL."""

    url: str
    outcome: PollOutcome
    items: int = 0
    new: tuple[Paper, ...] = ()
    deliveries: int = 0
    error: str | None = None
    build_date: str | None = None
    seconds: float = 0.0  # wall time of fetch + parse + ingest for this URL
    skipped: tuple[str, ...] = ()  # items left out of the listing, each with its reason
    listed: int = 0  # <item> elements in the listing, skipped ones included
    warning: str | None = None  # e.g. a one-category listing cut at arXiv's item cap

    @property
    def capped(self) -> bool:
        """The listing holds as many items as rss.arxiv.org serves at most: maybe cut short."""
        return self.listed >= RSS_ITEM_CAP


@dataclass(frozen=True, slots=True)
class PollReport:
    feeds: tuple[FeedPoll, ...]
    categories: tuple[str, ...]

    @property
    def new(self) -> tuple[Paper, ...]:
        return tuple(p for f in self.feeds for p in f.new)

    @property
    def deliveries(self) -> int:
        return sum(f.deliveries for f in self.feeds)

    @property
    def complete(self) -> bool:
        """True when every feed served a listing we had not ingested before."""
        return bool(self.feeds) and all(f.outcome is PollOutcome.NEW_LISTING for f in self.feeds)

    @property
    def errors(self) -> tuple[FeedPoll, ...]:
        return tuple(f for f in self.feeds if f.outcome is PollOutcome.ERROR)

    @property
    def skipped(self) -> int:
        return sum(len(f.skipped) for f in self.feeds)

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(f"{f.url}: {f.warning}" for f in self.feeds if f.warning)


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    new: tuple[Paper, ...]
    updated: int
    unchanged: int
    deliveries: int


@dataclass(slots=True)
class ImportReport:
    files: int = 0
    papers: int = 0
    new: int = 0
    errors: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "<file>: item N (...) skipped: why"


MAX_DOCUMENT_BYTES = 100 * 2**20  # a saved listing or API page; the largest real ones are ~10 MiB
_READ_CHUNK = 2**20


class DocumentTooLargeError(Exception):
    """A document to import is larger than MAX_DOCUMENT_BYTES (or endless, like /dev/zero)."""


def read_document(path: Path, limit: int = MAX_DOCUMENT_BYTES) -> bytes:
    """The file's bytes, read in chunks and abandoned once past `limit`: never unbounded."""
    chunks: list[bytes] = []
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_READ_CHUNK):
            size += len(chunk)
            if size > limit:
                raise DocumentTooLargeError(
                    f"{path}: larger than {limit // 2**20} MiB; one saved document is far smaller"
                )
            chunks.append(chunk)
    return b"".join(chunks)


class PaperService:
    """Polling, ingestion and look-ups over one store and one arXiv client."""

    def __init__(
        self,
        db: AnyDatabase,
        client: ArxivClient | None,
        *,
        clock: Callable[[], datetime] = utcnow,
        lookup_gate: LookupGate | None = None,
    ) -> None:
        self.db = db
        self.client = client
        self.clock = clock
        self.papers = PaperRepository(db)
        self.feeds = FeedStateRepository(db)
        self.subscriptions = SubscriptionRepository(db)
        self.outbox = DeliveryOutbox(db)
        self.meta = MetaRepository(db)
        # Look-ups (/paper, /author, /search) fill the catalogue from arXiv; never alert.
        self.lookups = ArxivLookups(
            self.papers, LookupCache(db), client, gate=lookup_gate or LookupGate(), clock=clock
        )

    def _require_client(self) -> ArxivClient:
        if self.client is None:
            raise UpstreamError("arXiv is not reachable from this command.")
        return self.client

    # ---- ingestion -------------------------------------------------------------------

    async def ingest(self, batch: Sequence[Paper]) -> IngestOutcome:
        """Store a batch and queue alerts for its genuinely new papers, in one transaction.

        Because the outbox rows are written in the same transaction as the papers,
        a crash between ingest and posting loses nothing: the alerts wait in the outbox.
        """
        now = self.clock()
        async with self.db.transaction() as conn:
            result = await self.papers.upsert_many_in(conn, batch, now=now)
            deliveries = 0
            if result.new:
                # Matching is pure CPU (tokens of every title and abstract): off the loop.
                keys = await asyncio.to_thread(match_keys, result.new)
                candidates = await self.subscriptions.candidates(
                    conn,
                    categories=keys.categories,
                    surnames=keys.surnames,
                    keyword_tokens=keys.keyword_tokens,
                )
                matches = await asyncio.to_thread(match_subscriptions, result.new, candidates)
                if matches:
                    deliveries = await self.outbox.enqueue(
                        conn,
                        [(m.destination.id, m.paper.id, m.matched) for m in matches],
                        now=now,
                    )
        if result.new:
            log.info(
                "ingested batch=%d new=%d updated=%d deliveries=%d",
                len(batch), len(result.new), result.updated, deliveries,
            )  # fmt: skip
        return IngestOutcome(result.new, result.updated, result.unchanged, deliveries)

    async def poll_categories(self) -> tuple[str, ...]:
        """What the scheduled poll asks arXiv for: subscribed categories, or every archive
        when author/keyword subscriptions need to see all new papers."""
        categories = set(await self.subscriptions.all_categories())
        if await self.subscriptions.needs_all_papers():
            # Whole archives cover their subject classes; drop the redundant ones.
            categories = {c for c in categories if c.split(".")[0] not in ALL_ARCHIVES}
            categories.update(ALL_ARCHIVES)
        return tuple(sorted(categories))

    async def poll(
        self, categories: Sequence[str] | None = None, *, dry_run: bool = False
    ) -> PollReport:
        """One poll pass over the RSS listings of `categories` (default: what is subscribed)."""
        client = self._require_client()
        cats = tuple(categories) if categories else await self.poll_categories()
        if not cats:
            return PollReport((), ())
        try:
            urls = client.rss_urls(cats)
        except ValueError as exc:
            raise InvalidInputError(str(exc)) from None
        results: list[FeedPoll] = []
        for url in urls:
            results.extend(await self._poll_covering(client, url, dry_run=dry_run))
        return PollReport(tuple(results), cats)

    async def _poll_covering(
        self, client: ArxivClient, url: str, *, dry_run: bool
    ) -> list[FeedPoll]:
        """Poll `url`; when its listing hit arXiv's item cap, poll its categories again in
        halves (their own URLs and feed states), down to one category per URL."""
        started = time.perf_counter()
        result = await self._poll_url(client, url, dry_run=dry_run)
        result = replace(result, seconds=time.perf_counter() - started)
        if not result.capped:
            return [result]
        categories = _url_categories(url)
        if len(categories) < 2:
            warning = (
                f"listing truncated: {result.listed:,} items is the most arXiv serves per "
                "listing, so some papers of this category may be missing"
            )
            log.warning("%s url=%s", warning, redact_urls(url))
            return [replace(result, warning=warning)]
        log.info(
            "listing hit the %d-item cap url=%s; refetching its %d categories in two groups",
            RSS_ITEM_CAP, redact_urls(url), len(categories),
        )  # fmt: skip
        results = [result]
        half = (len(categories) + 1) // 2
        for group in (categories[:half], categories[half:]):
            for sub_url in client.rss_urls(group, max_categories_per_url=len(group)):
                results.extend(await self._poll_covering(client, sub_url, dry_run=dry_run))
        return results

    async def poll_urls(self, urls: Sequence[str]) -> PollReport:
        """One pass over some RSS URLs from `rss_urls`: the announcement cycle checks those
        still serving yesterday's listing one at a time inside the rebuild window."""
        client = self._require_client()
        results: list[FeedPoll] = []
        for url in urls:
            results.extend(await self._poll_covering(client, url, dry_run=False))
        cats = {cat for url in urls for cat in url.rstrip("/").rsplit("/", 1)[-1].split("+")}
        return PollReport(tuple(results), tuple(sorted(cats)))

    async def _poll_url(self, client: ArxivClient, url: str, *, dry_run: bool) -> FeedPoll:
        """Poll one URL; whatever goes wrong is recorded in its feed state, never raised."""
        started = self.clock()
        try:
            return await self._fetch_and_ingest(client, url, started, dry_run=dry_run)
        except (ArxivHTTPError, FeedError) as exc:
            # Stored, logged and shown in /paperbell status: never with the URL's credentials.
            message = _one_line(redact_urls(str(exc)))
            log.warning("poll failed url=%s error=%s", redact_urls(url), message)
        except Exception as exc:  # a bug or a surprise must not stop the URLs after this one
            message = _one_line(redact_urls(f"{type(exc).__name__}: {exc}"))
            log.error("poll failed url=%s error=%s", redact_urls(url), message, exc_info=True)
        if not dry_run:
            try:
                await self.feeds.record_failure(url, message, at=started)
            except Exception:
                log.exception("cannot record the poll failure url=%s", redact_urls(url))
        return FeedPoll(url, PollOutcome.ERROR, error=message)

    async def _fetch_and_ingest(
        self, client: ArxivClient, url: str, started: datetime, *, dry_run: bool
    ) -> FeedPoll:
        state = None if dry_run else await self.feeds.get(url)
        fetched = await client.fetch_rss(
            url,
            etag=state.etag if state else None,
            last_modified=state.last_modified if state else None,
        )
        if fetched.not_modified:
            if not dry_run:
                await self.feeds.record_not_modified(url, at=started)
            return FeedPoll(url, PollOutcome.NOT_MODIFIED)
        # Parsing a listing is seconds of CPU on a hostile one: never on the event loop.
        listing: RssListing = await asyncio.to_thread(parse_rss, fetched.body)
        skipped = tuple(str(skip) for skip in listing.skips)

        build = listing.build_date.isoformat() if listing.build_date else None
        stale = state is not None and build is not None and state.last_build == build
        if dry_run:
            known = {p.id for p in await self.papers.get_many([p.id for p in listing.papers])}
            new = tuple(p for p in listing.papers if p.id not in known)
            return FeedPoll(
                url, PollOutcome.NEW_LISTING, len(listing.papers), new, 0, None, build,
                skipped=skipped, listed=listing.items,
            )  # fmt: skip
        outcome = await self.ingest(listing.papers)
        # A capped listing of several categories is refetched in smaller groups; without
        # validators the next poll fetches it whole again (a 304 would hide the cap).
        split = listing.items >= RSS_ITEM_CAP and len(_url_categories(url)) > 1
        await self.feeds.record_success(
            url,
            etag=None if split else fetched.etag,
            last_modified=None if split else fetched.last_modified,
            build_date=build,
            at=started,
        )
        return FeedPoll(
            url,
            PollOutcome.STALE if stale else PollOutcome.NEW_LISTING,
            len(listing.papers),
            outcome.new,
            outcome.deliveries,
            None,
            build,
            skipped=skipped,
            listed=listing.items,
        )

    async def import_files(self, paths: Sequence[Path]) -> ImportReport:
        """Ingest saved RSS, Atom or OAI-PMH documents; a bad file is reported, not fatal."""
        report = ImportReport()
        for path in paths:
            try:
                data = read_document(path)
            except OSError as exc:
                report.errors.append(f"{path}: cannot read ({exc.strerror or exc})")
                continue
            except DocumentTooLargeError as exc:
                report.errors.append(str(exc))
                continue
            try:
                parsed = await asyncio.to_thread(parse_document_report, data)
            except FeedError as exc:
                report.errors.append(f"{path}: {exc}")
                continue
            except Exception as exc:  # one broken file must not stop the others
                log.error("import failed file=%s", path, exc_info=True)
                report.errors.append(f"{path}: unreadable ({type(exc).__name__})")
                continue
            report.skipped.extend(f"{path}: {skip}" for skip in parsed.skips)
            outcome = await self.ingest(parsed.papers)
            report.files += 1
            report.papers += len(parsed.papers)
            report.new += len(outcome.new)
        return report

    # ---- look-ups ----------------------------------------------------------------------

    async def get_paper(self, raw_id: str, *, user_id: int | None = None) -> Paper:
        """A paper by id or URL, from the store or else from arXiv (catalogued, never alerted)."""
        return await self.lookups.paper(raw_id, user_id=user_id)

    @staticmethod
    def _check_query(query: str, what: str) -> str:
        return check_query(query, what, limit=MAX_QUERY_LENGTH)

    async def search(
        self,
        query: str,
        *,
        category: str | None = None,
        since: datetime | None = None,
        limit: int = 10,
        offset: int = 0,
    ) -> list[SearchHit]:
        cleaned = self._check_query(query, "search query")
        limit = max(1, min(limit, MAX_RESULTS))
        return await self.papers.search(
            cleaned, category=category, since=since, limit=limit, offset=max(0, offset)
        )

    async def author(self, name: str, *, limit: int = 25, offset: int = 0) -> AuthorMatch:
        cleaned = self._check_query(name, "name")
        limit = max(1, min(limit, MAX_RESULTS))
        return await self.papers.by_author(cleaned, limit=limit, offset=max(0, offset))

    async def stats(self) -> StoreStats:
        return await self.papers.stats()

    async def get_meta(self, key: str) -> str | None:
        return await self.meta.get(key)

    async def set_meta(self, key: str, value: str) -> None:
        await self.meta.set(key, value)


def _url_categories(url: str) -> list[str]:
    """The categories of an RSS listing URL (`.../rss/cs.AI+cs.LG`)."""
    return [c for c in url.rstrip("/").rsplit("/", 1)[-1].split("+") if c]


def _one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
