"""`paperbell harvest`: fill the catalogue from arXiv's OAI-PMH interface.

`ListRecords` pages (about 1,000 records each) are fetched one at a time
through the shared, rate-limited arXiv client, which also waits out the 503 +
`Retry-After` answers OAI-PMH uses for flow control. Each page's papers and
the harvest's progress (the next resumption token) are stored in one
transaction, so after Ctrl-C, a crash or a restart the next run asks for the
page after the last one stored: no record is lost or stored twice. A
`badResumptionToken` (tokens expire) restarts that harvest from its first
page; storing is idempotent, so the pages seen again change nothing.

Harvested papers fill the catalogue only: they never alert.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TextIO

from bot.arxiv.client import ArxivClient, ArxivHTTPError
from bot.arxiv.document import FeedError
from bot.arxiv.oai import FORMATS, OaiError, parse_list_records
from bot.domain.errors import InvalidInputError, UpstreamError
from bot.progress import BulkProgress
from storage.catalogue import CatalogueWriter
from storage.harvests import HarvestStateRepository, harvest_key
from storage.store import Store

log = logging.getLogger(__name__)

MAX_RESTARTS = 3  # badResumptionToken restarts per run before giving up


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class HarvestReport:
    pages: int = 0
    records: int = 0  # records on the pages fetched in this run (deleted ones included)
    papers: int = 0
    new: int = 0
    updated: int = 0
    deleted: int = 0
    skipped: int = 0
    restarts: int = 0
    resumed_at: int | None = None  # records already stored when this run resumed
    total_records: int = 0  # records stored by the whole harvest, earlier runs included
    complete_list_size: int | None = None
    seconds: float = 0.0


def check_set(set_spec: str | None) -> str:
    """An OAI set name (`cs`, `math`, `physics:hep-th`); refuse anything else early."""
    if not set_spec:
        return ""
    cleaned = set_spec.strip()
    if len(cleaned) > 60 or not all(c.isalnum() or c in ":-._" for c in cleaned):
        raise InvalidInputError(f"not an OAI-PMH set name: {cleaned[:40]!r} (e.g. cs, math)")
    return cleaned


def check_day(value: date | None) -> str:
    return value.isoformat() if value else ""


class Harvester:
    """Runs (or resumes) one harvest; one page in flight at a time."""

    def __init__(
        self,
        db: Store,
        client: ArxivClient,
        *,
        clock: Callable[[], datetime] = utcnow,
        progress_stream: TextIO | None = None,
        live: bool | None = None,
    ) -> None:
        self._db = db
        self._client = client
        self._clock = clock
        self._states = HarvestStateRepository(db)
        self._progress_stream = progress_stream
        self._live = live

    async def run(
        self,
        *,
        set_spec: str | None = None,
        from_day: date | None = None,
        until_day: date | None = None,
        metadata_prefix: str = "arXivRaw",
    ) -> HarvestReport:
        if metadata_prefix not in FORMATS:
            raise InvalidInputError(f"metadata format must be one of {', '.join(FORMATS)}")
        spec, start, end = check_set(set_spec), check_day(from_day), check_day(until_day)
        if start and end and start > end:
            raise InvalidInputError("--from is after --until")
        key = harvest_key(metadata_prefix, spec, start, end)
        report = HarvestReport()
        started = time.perf_counter()
        state = await self._states.get(key)
        if state is None or state.finished:
            state = await self._states.start(metadata_prefix, spec, start, end, now=self._clock())
        else:
            report.resumed_at = state.records
            log.info(
                "harvest resumed key=%s cursor=%s records=%d", key, state.cursor, state.records
            )
        token, done = state.resumption_token, state.records
        report.complete_list_size = state.complete_list_size
        label = f"harvest {spec or 'all'} ({metadata_prefix})"
        async with CatalogueWriter(self._db) as writer:
            with BulkProgress(
                label, state.complete_list_size, stream=self._progress_stream, live=self._live
            ) as progress:
                progress.update(completed=done, records=done, force=report.resumed_at is not None)
                while True:
                    try:
                        fetched = await self._client.list_records(
                            resumption_token=token,
                            metadata_prefix=metadata_prefix,
                            set_spec=spec or None,
                            from_date=start or None,
                            until_date=end or None,
                        )
                        page = parse_list_records(fetched.body)
                    except OaiError as exc:
                        if (
                            exc.code == "badResumptionToken"
                            and token
                            and (report.restarts < MAX_RESTARTS)
                        ):
                            log.warning("harvest token expired key=%s; starting over", key)
                            report.restarts += 1
                            state = await self._states.start(
                                metadata_prefix, spec, start, end,
                                now=self._clock(), restarts=state.restarts + 1,
                            )  # fmt: skip
                            token, done = None, 0
                            continue
                        raise UpstreamError(self._stopped(report, str(exc))) from None
                    except (ArxivHTTPError, FeedError) as exc:
                        raise UpstreamError(self._stopped(report, str(exc))) from None
                    async with self._db.transaction() as conn:
                        result = await writer.store_in(conn, page.papers, now=self._clock())
                        await self._states.advance(
                            conn,
                            key,
                            token=page.resumption_token,
                            cursor=page.cursor,
                            complete_list_size=page.complete_list_size,
                            records=page.records,
                            now=self._clock(),
                        )
                    token = page.resumption_token
                    done += page.records
                    report.pages += 1
                    report.records += page.records
                    report.papers += len(page.papers)
                    report.new += result.new
                    report.updated += result.updated
                    report.deleted += page.deleted
                    report.skipped += page.skipped
                    if page.complete_list_size is not None:
                        report.complete_list_size = page.complete_list_size
                    progress.update(
                        completed=done,
                        records=done,
                        total=report.complete_list_size,
                        force=True,
                    )
                    if token is None:
                        break
        report.total_records = done
        report.seconds = time.perf_counter() - started
        log.info(
            "harvest finished key=%s pages=%d records=%d new=%d",
            key, report.pages, report.records, report.new,
        )  # fmt: skip
        return report

    @staticmethod
    def _stopped(report: HarvestReport, reason: str) -> str:
        return (
            f"harvest stopped after {report.pages} pages this run ({reason}); "
            "progress is kept: run the same command again to resume"
        )
