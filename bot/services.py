"""Service functions shared by the command line and the slash commands.

`PaperService` owns no resources: the database, the arXiv client and the
clock are opened by the caller (`bot.cli_commands` or `bot.runner`) and passed in.
Everything a user can ask for — poll, import, look up, search, author pages —
goes through here, so the CLI and Discord always agree. Polling and announcing
live here; imports, missed-listing recovery and publication checks are in
`bot.upkeep`, and what a poll found in `bot.poll_report`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TextIO

from bot.arxiv.client import RSS_ITEM_CAP, ArxivClient, ArxivHTTPError
from bot.arxiv.document import FeedError
from bot.arxiv.rss import RssListing, parse_rss
from bot.domain.announcements import (
    alerts_for,
    as_announced,
    from_listing,
    listing_day,
    quiet_listing_note,
)
from bot.domain.errors import InvalidInputError
from bot.domain.limits import MAX_QUERY_LENGTH
from bot.domain.matching import match_keys
from bot.domain.models import (
    Announcement,
    AuthorMatch,
    FeedState,
    ListingSummary,
    Paper,
    SearchHit,
    StoreStats,
)
from bot.gc_pause import rare_collections
from bot.lookups import ArxivLookups, LookupGate, check_query
from bot.poll_report import FeedPoll, PollOutcome, PollReport
from bot.redact import redact_urls
from bot.upkeep import (
    DocumentImporter,
    ImportReport,
    MissedListingRecovery,
    PublicationCheck,
    require_client,
)
from storage.announcements import AnnouncementRepository
from storage.feeds import FeedStateRepository
from storage.lookups import LookupCache
from storage.meta import MetaRepository
from storage.outbox import DeliveryOutbox
from storage.papers import PaperRepository
from storage.similar import MAX_LIMIT as MAX_SIMILAR
from storage.similar import similar_index
from storage.store import Connection, Store
from storage.subscriptions import SubscriptionRepository

log = logging.getLogger(__name__)

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


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    new: tuple[Paper, ...]
    updated: int
    unchanged: int
    deliveries: int
    announced: int = 0  # announcements recorded for the first time


@dataclass(frozen=True, slots=True)
class SimilarPapers:
    """A paper and the stored papers most like it, best first, with the engine's scores."""

    paper: Paper
    hits: tuple[tuple[Paper, float], ...]


class PaperService:
    """Polling, ingestion and look-ups over one store and one arXiv client."""

    def __init__(
        self,
        db: Store,
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
        self.announcements = AnnouncementRepository(db)
        # Look-ups (/paper, /author, /search) fill the catalogue from arXiv; never alert.
        self.lookups = ArxivLookups(
            self.papers, LookupCache(db), client, gate=lookup_gate or LookupGate(), clock=clock
        )
        self.similar_index = similar_index(db)
        self.importer = DocumentImporter(db, self._ingest_counting_new, clock=clock)
        self.recovery = MissedListingRecovery(
            client,
            meta=self.meta,
            announcements=self.announcements,
            announce_late=self._announce_late,
        )
        self.publications = PublicationCheck(
            db,
            client,
            papers=self.papers,
            announcements=self.announcements,
            subscriptions=self.subscriptions,
            outbox=self.outbox,
            meta=self.meta,
            clock=clock,
        )

    def _require_client(self) -> ArxivClient:
        return require_client(self.client)

    # ---- ingestion -------------------------------------------------------------------

    async def ingest(self, batch: Sequence[Paper]) -> IngestOutcome:
        """Store a batch in the catalogue. Never alerts.

        Look-ups, imports and backfills fill the catalogue through here; only
        `announce` (what a polled listing says arXiv announced) queues alerts.
        """
        result = await self.papers.upsert_many(batch, now=self.clock())
        return IngestOutcome(result.new, result.updated, result.unchanged, 0)

    async def announce(
        self,
        papers: Sequence[Paper],
        *,
        listing_date: date | None = None,
        alert: bool = True,
        late: bool = False,
    ) -> IngestOutcome:
        """Store a listing's papers, record its announcements, and queue the alerts
        the new announcements make, all in one transaction.

        Because the outbox rows are written in the same transaction as the papers
        and the announcements, a crash loses nothing and a repeat adds nothing:
        an announcement already recorded is not matched again. `alert=False`
        records without matching (a listing its feed state says was processed).
        """
        now = self.clock()
        day = listing_date or listing_day(None, fallback=now)
        by_id = {p.id: p for p in papers}
        async with self.db.transaction() as conn:
            result = await self.papers.upsert_many_in(conn, papers, now=now)
            fresh = await self.announcements.record_in(
                conn, from_listing(papers, day, late=late), now=now
            )
            deliveries = 0
            if fresh and alert:
                deliveries = await self.queue_alerts(conn, fresh, by_id, now=now)
        if fresh:
            log.info(
                "announced listing=%s batch=%d announcements=%d new=%d deliveries=%d",
                day.isoformat(), len(papers), len(fresh), len(result.new), deliveries,
            )  # fmt: skip
        return IngestOutcome(result.new, result.updated, result.unchanged, deliveries, len(fresh))

    async def queue_alerts(
        self,
        conn: Connection,
        fresh: Sequence[Announcement],
        by_id: Mapping[str, Paper],
        *,
        now: datetime,
    ) -> int:
        """Match new announcements against the subscriptions and queue their alerts in the
        caller's transaction (`announce`); returns the deliveries queued."""
        # Matching allocates about a million short-lived objects: collections it would
        # set off are put off until it ends (`bot.gc_pause`).
        with rare_collections():
            # Matching is pure CPU (tokens of every title and abstract): off the loop.
            announced = [as_announced(by_id[a.paper_id], a) for a in fresh]
            keys = await asyncio.to_thread(match_keys, announced)
            candidates = await self.subscriptions.candidates_for(conn, keys)
            alerts = await asyncio.to_thread(alerts_for, fresh, by_id, candidates, keys)
            return await self.outbox.enqueue(conn, alerts, now=now) if alerts else 0

    async def poll_categories(self) -> tuple[str, ...]:
        """What the scheduled poll asks arXiv for: subscribed categories, or every archive
        when author/keyword subscriptions need to see all new papers."""
        categories = set(await self.subscriptions.all_categories())
        followed = await self.subscriptions.followed_papers()
        if followed:
            # A followed paper's new versions are announced in its primary category.
            categories.update(p.primary_category for p in await self.papers.get_many(followed))
            categories.discard("")
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
        if not dry_run:
            await self._after_poll(results, cats, scheduled=not categories)
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
        # No publication check here: inside the rebuild window every second counts;
        # the hourly safety poll does it.
        await self._after_poll(results, tuple(sorted(cats)), scheduled=False)
        return PollReport(tuple(results), tuple(sorted(cats)))

    async def _after_poll(
        self, results: Sequence[FeedPoll], categories: Sequence[str], *, scheduled: bool
    ) -> None:
        """After a pass: recover listings an outage skipped, then (scheduled passes, at most
        once a day) check followed papers for publication. Neither may sink the poll."""
        listed = [
            listing_day(datetime.fromisoformat(f.build_date), fallback=self.clock())
            for f in results
            if f.outcome is PollOutcome.NEW_LISTING and f.build_date
        ]
        if listed:
            try:
                await self.recover_missed_listings(max(listed), categories)
            except (ArxivHTTPError, FeedError) as exc:
                # Not marked done: the next poll tries again.
                log.warning("missed listing recovery failed error=%s", exc)
        if scheduled:
            try:
                await self.check_publications()
            except Exception:
                # The poll's own result stands; tomorrow's poll tries again.
                log.exception("publication check failed")

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
        # A listing this URL already served was processed (its feed state is recorded
        # after its alerts were queued): record it again, but alert nothing. This also
        # keeps a store migrated from before announcements from alerting old listings.
        day = listing_day(listing.pub_date or listing.build_date, fallback=started)
        outcome = await self.announce(listing.papers, listing_date=day, alert=not stale)
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

    async def import_files(
        self, paths: Sequence[Path], *, progress_stream: TextIO | None = None
    ) -> ImportReport:
        """Ingest saved documents and metadata snapshots (`bot.upkeep.DocumentImporter`)."""
        return await self.importer.import_files(paths, progress_stream=progress_stream)

    async def recover_missed_listings(self, current: date, categories: Sequence[str]) -> int:
        """Announce, marked late, the listings missed before `current` (`bot.upkeep`)."""
        return await self.recovery.recover(current, categories)

    async def _announce_late(self, papers: list[Paper], day: date) -> int:
        return (await self.announce(papers, listing_date=day, late=True)).deliveries

    async def _ingest_counting_new(self, batch: Sequence[Paper]) -> int:
        return len((await self.ingest(batch)).new)

    # ---- followed papers --------------------------------------------------------------

    async def check_publications(self, *, force: bool = False) -> int:
        """Alert followers of papers that gained a journal reference or DOI, at most once
        a day unless `force` (`bot.upkeep.PublicationCheck`); returns alerts queued."""
        return await self.publications.run(force=force)

    async def note_known_publication(self, paper: Paper) -> None:
        """Remember that `paper` is already published (a new follower is not told so later)."""
        await self.publications.note_known(paper)

    # ---- what was announced ------------------------------------------------------------

    async def recent_listings(self, limit: int = 7) -> list[ListingSummary]:
        """Announcements of the last `limit` listing days, newest first, counted by type."""
        return await self.announcements.recent_listings(limit)

    async def no_listing_note(self) -> str | None:
        """A plain explanation when tonight's listing is missing, empty or unchanged."""
        return quiet_listing_note(await self.recent_listings(1), self.clock())

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

    async def author_spellings(self, name: str) -> tuple[str, ...]:
        """The stored spellings of an author name (no papers, no length check)."""
        return tuple((await self.papers.by_author(name, limit=0, offset=0)).matched_names)

    async def author_names(self, prefix: str, limit: int = 25) -> list[str]:
        """Stored author names starting like `prefix` (autocomplete)."""
        return await self.papers.author_names(prefix, limit=limit)

    async def similar(self, raw_id: str, *, limit: int = 10) -> SimilarPapers:
        """The stored papers most like paper `raw_id` (fetched from arXiv when unknown)."""
        paper = await self.get_paper(raw_id)
        limit = max(1, min(limit, MAX_SIMILAR))
        hits = await self.similar_index.similar(paper.id, limit=limit) or []
        found = {p.id: p for p in await self.papers.get_many([h.paper_id for h in hits])}
        return SimilarPapers(
            paper, tuple((found[h.paper_id], h.score) for h in hits if h.paper_id in found)
        )

    async def stats(self) -> StoreStats:
        return await self.papers.stats()

    async def feed_states(self) -> list[FeedState]:
        """Every polled listing URL's health, by URL."""
        return await self.feeds.all()

    async def creators_for_feed(self, categories: Collection[str]) -> list[int]:
        """Users whose alerts a listing of `categories` feeds (to tell them it fails)."""
        return await self.subscriptions.creators_for_feed(categories)

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
