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
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TextIO

from bot.arxiv.atom import parse_atom
from bot.arxiv.client import RSS_ITEM_CAP, ArxivClient, ArxivHTTPError
from bot.arxiv.document import FeedError
from bot.arxiv.feeds import parse_document_report
from bot.arxiv.oai import is_oai_document, parse_list_records
from bot.arxiv.rss import RssListing, parse_rss
from bot.arxiv.snapshot import SnapshotLineError
from bot.bulk import DocumentTooLargeError, SnapshotImporter, is_snapshot, read_document
from bot.domain.announcements import (
    alerts_for,
    as_announced,
    from_listing,
    listing_day,
    publication_note,
    quiet_listing_note,
)
from bot.domain.errors import InvalidInputError, UpstreamError
from bot.domain.limits import MAX_QUERY_LENGTH
from bot.domain.matching import match_keys
from bot.domain.models import (
    AlertEvent,
    AnnounceType,
    AuthorMatch,
    FeedState,
    ListingSummary,
    OutboxAlert,
    Paper,
    SearchHit,
    StoreStats,
)
from bot.domain.recovery import listing_for, missed_days, recovery_queries, submission_window
from bot.lookups import ArxivLookups, LookupGate, check_query
from bot.redact import redact_urls
from storage.announcements import AnnouncementRepository
from storage.backend import AnyDatabase
from storage.catalogue import CatalogueWriter
from storage.feeds import FeedStateRepository
from storage.lookups import LookupCache
from storage.meta import MetaRepository
from storage.outbox import DeliveryOutbox
from storage.papers import PaperRepository
from storage.similar import MAX_LIMIT as MAX_SIMILAR
from storage.similar import similar_index
from storage.subscriptions import SubscriptionRepository

log = logging.getLogger(__name__)

MAX_RESULTS = 100
PUBLICATION_CHECK_KEY = "publications_checked_at"
PUBLICATION_CHECK_EVERY = timedelta(hours=23)  # once a day, a little slack for the cron
PUBLICATION_BATCH = 100  # ids per API request
RECOVERED_KEY = "missed_listings_recovered_through"
RECOVERY_PAGE = 1000  # API results per request when recovering missed listings
RECOVERY_MAX_RESULTS = 10_000  # per query; arXiv serves at most 30,000

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
    announced: int = 0  # announcements recorded for the first time


@dataclass(frozen=True, slots=True)
class SimilarPapers:
    """A paper and the stored papers most like it, best first, with the engine's scores."""

    paper: Paper
    hits: tuple[tuple[Paper, float], ...]


@dataclass(slots=True)
class ImportReport:
    files: int = 0
    papers: int = 0
    new: int = 0
    errors: list[str] = field(default_factory=list)
    # Snapshot files: bad lines are reported (the first MAX_REPORTED_LINES) but not fatal.
    bad_lines: int = 0
    line_errors: list[tuple[Path, SnapshotLineError]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "<file>: item N (...) skipped: why"


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
        self.announcements = AnnouncementRepository(db)
        # Look-ups (/paper, /author, /search) fill the catalogue from arXiv; never alert.
        self.lookups = ArxivLookups(
            self.papers, LookupCache(db), client, gate=lookup_gate or LookupGate(), clock=clock
        )
        self.similar_index = similar_index(db)

    def _require_client(self) -> ArxivClient:
        if self.client is None:
            raise UpstreamError("arXiv is not reachable from this command.")
        return self.client

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
                # Matching is pure CPU (tokens of every title and abstract): off the loop.
                announced = [as_announced(by_id[a.paper_id], a) for a in fresh]
                keys = await asyncio.to_thread(match_keys, announced)
                candidates = await self.subscriptions.candidates(
                    conn,
                    categories=keys.categories,
                    surnames=keys.surnames,
                    keyword_tokens=keys.keyword_tokens,
                    paper_ids=keys.paper_ids,
                    query_keys=keys.query_keys,
                )
                alerts = await asyncio.to_thread(alerts_for, fresh, by_id, candidates, keys)
                if alerts:
                    deliveries = await self.outbox.enqueue(conn, alerts, now=now)
        if fresh:
            log.info(
                "announced listing=%s batch=%d announcements=%d new=%d deliveries=%d",
                day.isoformat(), len(papers), len(fresh), len(result.new), deliveries,
            )  # fmt: skip
        return IngestOutcome(result.new, result.updated, result.unchanged, deliveries, len(fresh))

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
        """Ingest saved RSS, Atom or OAI-PMH documents and metadata snapshots (JSON lines),
        plain or gzipped, told apart by their content; a bad file is reported, not fatal.

        Snapshots and OAI-PMH pages fill the catalogue without alerting anyone.
        """
        report = ImportReport()
        for path in paths:
            try:
                if is_snapshot(path):
                    await self._import_snapshot(path, report, progress_stream)
                    continue
                data = read_document(path)
            except (OSError, EOFError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
                report.errors.append(f"{path}: cannot read ({reason})")
                continue
            except DocumentTooLargeError as exc:
                report.errors.append(str(exc))
                continue
            try:
                oai = is_oai_document(data)
                if oai:
                    batch = list((await asyncio.to_thread(parse_list_records, data)).papers)
                else:
                    parsed = await asyncio.to_thread(parse_document_report, data)
                    batch = list(parsed.papers)
                    report.skipped.extend(f"{path}: {skip}" for skip in parsed.skips)
            except FeedError as exc:
                report.errors.append(f"{path}: {exc}")
                continue
            except Exception as exc:  # one broken file must not stop the others
                log.error("import failed file=%s", path, exc_info=True)
                report.errors.append(f"{path}: unreadable ({type(exc).__name__})")
                continue
            # Storing is outside the parse guard: a store failure ends the import (one line).
            if oai:
                async with CatalogueWriter(self.db) as writer:
                    new = (await writer.store(batch, now=self.clock())).new
            else:
                new = len((await self.ingest(batch)).new)
            report.files += 1
            report.papers += len(batch)
            report.new += new
        return report

    async def recover_missed_listings(self, current: date, categories: Sequence[str]) -> int:
        """Announce, marked late, the papers of listings missed before `current`; returns alerts.

        When the last listing seen is older than the announcement day before
        `current` (the bot or arXiv's RSS was down), the API is asked for the
        papers submitted in the missed listings' windows (`bot.domain.recovery`), one
        paged query per group of categories, through the client's pacing. They
        are announced under the missed days, so each alerts once, as late.
        """
        done = await self.meta.get(RECOVERED_KEY)
        if done is not None and done >= current.isoformat():
            return 0
        last = await self.announcements.last_listing_before(current)
        missed = missed_days(last, current) if last is not None else []
        if not missed:
            return 0
        client = self._require_client()
        start, end = submission_window(missed[0])[0], submission_window(missed[-1])[1]
        found: dict[str, Paper] = {}
        for query in recovery_queries(categories, start, end):
            offset = 0
            while offset < RECOVERY_MAX_RESULTS:
                fetched = await client.query_api(
                    search_query=query, start=offset, max_results=RECOVERY_PAGE
                )
                page = parse_atom(fetched.body)
                found.update((p.id, p) for p in page.papers)
                offset += RECOVERY_PAGE
                total = page.total_results if page.total_results is not None else 0
                if len(page.papers) < RECOVERY_PAGE or offset >= total:
                    break
        by_day: dict[date, list[Paper]] = {}
        for paper in found.values():
            day = listing_for(paper.published, missed) if paper.published else None
            if day is not None:
                by_day.setdefault(day, []).append(replace(paper, announce_type=AnnounceType.NEW))
        queued = 0
        for day in sorted(by_day):
            queued += (await self.announce(by_day[day], listing_date=day, late=True)).deliveries
        await self.meta.set(RECOVERED_KEY, current.isoformat())
        log.warning(
            "recovered missed listings days=%s papers=%d queued=%d",
            ",".join(d.isoformat() for d in missed), sum(map(len, by_day.values())), queued,
        )  # fmt: skip
        return queued

    # ---- followed papers --------------------------------------------------------------

    async def check_publications(self, *, force: bool = False) -> int:
        """Alert followers of papers that gained a journal reference or DOI; returns alerts queued.

        At most once a day (unless `force`): the followed papers not yet known
        to be published are asked of the API in batches of `PUBLICATION_BATCH`
        ids per request, through the client's one-at-a-time, 3 s pacing. The
        answers also refresh the catalogue.
        """
        now = self.clock()
        last = await self.meta.get(PUBLICATION_CHECK_KEY)
        if not force and last is not None:
            try:
                if now - datetime.fromisoformat(last) < PUBLICATION_CHECK_EVERY:
                    return 0
            except ValueError:
                log.warning("unreadable %s=%r; checking now", PUBLICATION_CHECK_KEY, last)
        followed = await self.subscriptions.followed_papers()
        known = await self.announcements.published(followed)
        todo = [paper_id for paper_id in followed if paper_id not in known]
        if not todo:
            await self.meta.set(PUBLICATION_CHECK_KEY, now.isoformat())
            return 0
        client = self._require_client()
        queued = 0
        for start in range(0, len(todo), PUBLICATION_BATCH):
            chunk = todo[start : start + PUBLICATION_BATCH]
            try:
                fetched = await client.query_api(id_list=chunk, max_results=len(chunk))
                result = parse_atom(fetched.body)
            except (ArxivHTTPError, FeedError) as exc:
                log.warning("publication check failed ids=%d error=%s", len(chunk), exc)
                return queued  # not marked done: the next poll tries again
            wanted = set(chunk)
            found = [p for p in result.papers if p.id in wanted]
            async with self.db.transaction() as conn:
                await self.papers.upsert_many_in(conn, found, now=now)
                for paper in found:
                    if not (paper.journal_ref or paper.doi):
                        continue
                    if not await self.announcements.note_publication_in(
                        conn, paper.id, journal_ref=paper.journal_ref, doi=paper.doi, now=now
                    ):
                        continue
                    note = publication_note(paper.journal_ref, paper.doi)
                    followers = await self.subscriptions.followers_in(conn, paper.id)
                    queued += await self.outbox.enqueue(
                        conn,
                        [
                            OutboxAlert(
                                f.destination.id,
                                paper.id,
                                (f.describe(),),
                                AlertEvent.PUBLISHED,
                                0,
                                note,
                            )
                            for f in followers
                        ],
                        now=now,
                    )
        await self.meta.set(PUBLICATION_CHECK_KEY, now.isoformat())
        log.info("publication check papers=%d queued=%d", len(todo), queued)
        return queued

    async def note_known_publication(self, paper: Paper) -> None:
        """Remember that `paper` is already published (a new follower is not told so later)."""
        if paper.journal_ref or paper.doi:
            await self.announcements.note_publication(
                paper.id, journal_ref=paper.journal_ref, doi=paper.doi, now=self.clock()
            )

    # ---- what was announced ------------------------------------------------------------

    async def recent_listings(self, limit: int = 7) -> list[ListingSummary]:
        """Announcements of the last `limit` listing days, newest first, counted by type."""
        return await self.announcements.recent_listings(limit)

    async def no_listing_note(self) -> str | None:
        """A plain explanation when tonight's listing is missing, empty or unchanged."""
        return quiet_listing_note(await self.recent_listings(1), self.clock())

    async def _import_snapshot(
        self, path: Path, report: ImportReport, progress_stream: TextIO | None
    ) -> None:
        async with CatalogueWriter(self.db) as writer:
            importer = SnapshotImporter(writer, progress_stream=progress_stream)
            done = await importer.import_file(path, now=self.clock())
        report.files += 1
        report.papers += done.papers
        report.new += done.new
        report.bad_lines += done.bad_lines
        report.line_errors.extend((path, error) for error in done.errors)

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
