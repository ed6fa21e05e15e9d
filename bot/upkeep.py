"""Catalogue upkeep beside the poll: imports, missed-listing recovery, publication checks.

`PaperService` (`bot.services`) builds one of each over its own store and arXiv client
and hands its calls on to them; nothing here is wired anywhere else.

- `DocumentImporter`: saved RSS, Atom and OAI-PMH documents and metadata snapshots.
- `MissedListingRecovery`: papers of the listings an outage skipped, announced late.
- `PublicationCheck`: followers told when a followed paper gains a journal ref or DOI.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TextIO

from bot.arxiv.atom import parse_atom
from bot.arxiv.client import ArxivClient, ArxivHTTPError
from bot.arxiv.document import FeedError
from bot.arxiv.feeds import parse_document_report
from bot.arxiv.oai import is_oai_document, parse_list_records
from bot.arxiv.snapshot import SnapshotLineError
from bot.bulk import DocumentTooLargeError, SnapshotImporter, is_snapshot, read_document
from bot.domain.announcements import publication_note
from bot.domain.errors import UpstreamError
from bot.domain.models import AlertEvent, AnnounceType, OutboxAlert, Paper
from bot.domain.recovery import listing_for, missed_days, recovery_queries, submission_window
from storage.announcements import AnnouncementRepository
from storage.backend import AnyDatabase
from storage.catalogue import CatalogueWriter
from storage.meta import MetaRepository
from storage.outbox import DeliveryOutbox
from storage.papers import PaperRepository
from storage.subscriptions import SubscriptionRepository

log = logging.getLogger(__name__)

PUBLICATION_CHECK_KEY = "publications_checked_at"
PUBLICATION_CHECK_EVERY = timedelta(hours=23)  # once a day, a little slack for the cron
PUBLICATION_BATCH = 100  # ids per API request
RECOVERED_KEY = "missed_listings_recovered_through"
RECOVERY_PAGE = 1000  # API results per request when recovering missed listings
RECOVERY_MAX_RESULTS = 10_000  # per query; arXiv serves at most 30,000


def require_client(client: ArxivClient | None) -> ArxivClient:
    """The arXiv client, or the user-facing error of a command opened without network."""
    if client is None:
        raise UpstreamError("arXiv is not reachable from this command.")
    return client


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


class DocumentImporter:
    """Saved documents and snapshots into the catalogue; `ingest` stores a batch (never
    alerting) and returns how many of its papers were new."""

    def __init__(
        self,
        db: AnyDatabase,
        ingest: Callable[[Sequence[Paper]], Awaitable[int]],
        *,
        clock: Callable[[], datetime],
    ) -> None:
        self.db = db
        self.ingest = ingest
        self.clock = clock

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
                new = await self.ingest(batch)
            report.files += 1
            report.papers += len(batch)
            report.new += new
        return report

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


class MissedListingRecovery:
    """Listings an outage skipped, asked of the API; `announce_late` announces one day's
    papers marked late and returns the alerts it queued."""

    def __init__(
        self,
        client: ArxivClient | None,
        *,
        meta: MetaRepository,
        announcements: AnnouncementRepository,
        announce_late: Callable[[list[Paper], date], Awaitable[int]],
    ) -> None:
        self.client = client
        self.meta = meta
        self.announcements = announcements
        self.announce_late = announce_late

    async def recover(self, current: date, categories: Sequence[str]) -> int:
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
        client = require_client(self.client)
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
            queued += await self.announce_late(by_day[day], day)
        await self.meta.set(RECOVERED_KEY, current.isoformat())
        log.warning(
            "recovered missed listings days=%s papers=%d queued=%d",
            ",".join(d.isoformat() for d in missed), sum(map(len, by_day.values())), queued,
        )  # fmt: skip
        return queued


class PublicationCheck:
    """Followed papers asked of the API once a day for a journal reference or DOI."""

    def __init__(
        self,
        db: AnyDatabase,
        client: ArxivClient | None,
        *,
        papers: PaperRepository,
        announcements: AnnouncementRepository,
        subscriptions: SubscriptionRepository,
        outbox: DeliveryOutbox,
        meta: MetaRepository,
        clock: Callable[[], datetime],
    ) -> None:
        self.db = db
        self.client = client
        self.papers = papers
        self.announcements = announcements
        self.subscriptions = subscriptions
        self.outbox = outbox
        self.meta = meta
        self.clock = clock

    async def run(self, *, force: bool = False) -> int:
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
        client = require_client(self.client)
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

    async def note_known(self, paper: Paper) -> None:
        """Remember that `paper` is already published (a new follower is not told so later)."""
        if paper.journal_ref or paper.doi:
            await self.announcements.note_publication(
                paper.id, journal_ref=paper.journal_ref, doi=paper.doi, now=self.clock()
            )
