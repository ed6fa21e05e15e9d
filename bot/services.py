"""Service functions shared by the command line and the slash commands.

`PaperService` owns no resources: the database, the arXiv client and the
clock are opened by the caller (`bot.cli` or the bot's `main`) and passed in.
Everything a user can ask for — poll, import, look up, search, author pages —
goes through here, so the CLI and Discord always agree.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from bot.arxiv.client import ArxivClient, ArxivHTTPError
from bot.arxiv.feeds import FeedError, parse_atom, parse_document, parse_rss
from bot.arxiv.ids import InvalidArxivIdError, parse_arxiv_id
from bot.errors import InvalidInputError, NotFoundError, UpstreamError
from bot.matching import match_keys, match_subscriptions
from bot.redact import redact_urls
from storage.backend import AnyDatabase
from storage.feeds import FeedStateRepository
from storage.meta import MetaRepository
from storage.models import AuthorMatch, Paper, SearchHit, StoreStats
from storage.outbox import DeliveryOutbox
from storage.papers import PaperRepository
from storage.similar import MAX_LIMIT as MAX_SIMILAR
from storage.similar import similar_index
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


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    new: tuple[Paper, ...]
    updated: int
    unchanged: int
    deliveries: int


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


class PaperService:
    """Polling, ingestion and look-ups over one store and one arXiv client."""

    def __init__(
        self,
        db: AnyDatabase,
        client: ArxivClient | None,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.client = client
        self.clock = clock
        self.papers = PaperRepository(db)
        self.feeds = FeedStateRepository(db)
        self.subscriptions = SubscriptionRepository(db)
        self.outbox = DeliveryOutbox(db)
        self.meta = MetaRepository(db)
        self.similar_index = similar_index(db)

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
                keys = match_keys(result.new)
                candidates = await self.subscriptions.candidates(
                    conn,
                    categories=keys.categories,
                    surnames=keys.surnames,
                    keyword_tokens=keys.keyword_tokens,
                )
                matches = match_subscriptions(result.new, candidates)
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
        results = []
        for url in urls:
            started = time.perf_counter()
            result = await self._poll_url(client, url, dry_run=dry_run)
            results.append(replace(result, seconds=time.perf_counter() - started))
        return PollReport(tuple(results), cats)

    async def _poll_url(self, client: ArxivClient, url: str, *, dry_run: bool) -> FeedPoll:
        state = None if dry_run else await self.feeds.get(url)
        started = self.clock()
        try:
            fetched = await client.fetch_rss(
                url,
                etag=state.etag if state else None,
                last_modified=state.last_modified if state else None,
            )
            if fetched.not_modified:
                if not dry_run:
                    await self.feeds.record_not_modified(url, at=started)
                return FeedPoll(url, PollOutcome.NOT_MODIFIED)
            listing = parse_rss(fetched.body)
        except (ArxivHTTPError, FeedError) as exc:
            # Stored, logged and shown in /paperbell status: never with the URL's credentials.
            message = redact_urls(str(exc))
            log.warning("poll failed url=%s error=%s", redact_urls(url), message)
            if not dry_run:
                await self.feeds.record_failure(url, message, at=started)
            return FeedPoll(url, PollOutcome.ERROR, error=message)

        build = listing.build_date.isoformat() if listing.build_date else None
        stale = state is not None and build is not None and state.last_build == build
        if dry_run:
            known = {p.id for p in await self.papers.get_many([p.id for p in listing.papers])}
            new = tuple(p for p in listing.papers if p.id not in known)
            return FeedPoll(url, PollOutcome.NEW_LISTING, len(listing.papers), new, 0, None, build)
        outcome = await self.ingest(listing.papers)
        await self.feeds.record_success(
            url,
            etag=fetched.etag,
            last_modified=fetched.last_modified,
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
        )

    async def import_files(self, paths: Sequence[Path]) -> ImportReport:
        """Ingest saved RSS, Atom or OAI-PMH documents; a bad file is reported, not fatal."""
        report = ImportReport()
        for path in paths:
            try:
                data = path.read_bytes()
            except OSError as exc:
                report.errors.append(f"{path}: cannot read ({exc.strerror or exc})")
                continue
            try:
                batch = parse_document(data)
            except FeedError as exc:
                report.errors.append(f"{path}: {exc}")
                continue
            outcome = await self.ingest(batch)
            report.files += 1
            report.papers += len(batch)
            report.new += len(outcome.new)
        return report

    # ---- look-ups ----------------------------------------------------------------------

    async def get_paper(self, raw_id: str) -> Paper:
        """A paper by id or URL, from the store or else from the arXiv API (and then stored)."""
        try:
            arxiv_id = parse_arxiv_id(raw_id)
        except InvalidArxivIdError as exc:
            raise InvalidInputError(str(exc)) from None
        paper = await self.papers.get(arxiv_id.id)
        if paper is not None and (arxiv_id.version is None or arxiv_id.version <= paper.version):
            return paper
        client = self._require_client()
        try:
            fetched = await client.query_api(id_list=[arxiv_id.id], max_results=1)
            result = parse_atom(fetched.body)
        except (ArxivHTTPError, FeedError) as exc:
            log.warning("paper lookup failed id=%s error=%s", arxiv_id.id, exc)
            if paper is not None:
                return paper
            raise UpstreamError(
                "arXiv did not answer for that paper just now; try again in a minute."
            ) from None
        found = [p for p in result.papers if p.id == arxiv_id.id]
        if not found:
            if paper is not None:
                return paper
            raise NotFoundError(f"arXiv has no paper {arxiv_id.id}.")
        await self.ingest(found)
        stored = await self.papers.get(arxiv_id.id)
        return stored if stored is not None else found[0]

    @staticmethod
    def _check_query(query: str, what: str) -> str:
        cleaned = " ".join(query.split())
        if not cleaned:
            raise InvalidInputError(f"Give a {what} to look for.")
        if len(cleaned) > MAX_QUERY_LENGTH:
            raise InvalidInputError(
                f"That {what} is {len(cleaned):,} characters long; the limit is {MAX_QUERY_LENGTH}."
            )
        return cleaned

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

    async def get_meta(self, key: str) -> str | None:
        return await self.meta.get(key)

    async def set_meta(self, key: str, value: str) -> None:
        await self.meta.set(key, value)
