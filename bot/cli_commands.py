"""The `paperbell` command line's commands: poll, import, harvest, look-ups and `db`.

Every command opens its resources here (settings, database, HTTP session) and hands
them to the same service functions the slash commands use, then prints the answer.
Read commands (search, author, db stats) never create or migrate a database.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import stat
import sys
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TextIO

import aiohttp

from bot.arxiv.client import ArxivClient
from bot.arxiv.limiter import RequestLimiter
from bot.backup import DatabaseInUseError, backup_database, database_lock, restore_database
from bot.categories import normalize_category
from bot.cli_failures import EXIT_OK, EXIT_USAGE, DatabaseBusyError, UpstreamFailure
from bot.config import Settings
from bot.domain.announcements import listing_lines
from bot.domain.errors import InvalidInputError, UpstreamError
from bot.domain.limits import MAX_QUERY_LENGTH
from bot.domain.models import Paper
from bot.lookups import check_query
from bot.redact import redact_urls
from bot.services import PaperService
from bot.startup import display_host
from bot.useragent import user_agent
from storage.backend import open_database, open_for_reading

log = logging.getLogger(__name__)

# ---- output ------------------------------------------------------------------------------


def paper_to_json(paper: Paper) -> dict[str, Any]:
    return {
        "id": paper.id,
        "version": paper.version,
        "title": paper.title,
        "authors": list(paper.authors),
        "primary_category": paper.primary_category,
        "categories": list(paper.categories),
        "published": paper.published.isoformat() if paper.published else None,
        "updated": paper.updated.isoformat() if paper.updated else None,
        "abstract": paper.abstract,
        "comment": paper.comment,
        "journal_ref": paper.journal_ref,
        "doi": paper.doi,
        "announce_type": paper.announce_type.value if paper.announce_type else None,
        "url": paper.abs_url,
    }


def _authors_line(paper: Paper, limit: int = 6) -> str:
    names = list(paper.authors[:limit])
    if len(paper.authors) > limit:
        names.append(f"and {len(paper.authors) - limit} more")
    return ", ".join(names)


def print_paper_line(paper: Paper, out: TextIO) -> None:
    day = paper.published.date().isoformat() if paper.published else "????-??-??"
    out.write(f"{paper.id:<18} {day}  [{paper.primary_category}] {paper.title}\n")
    out.write(f"{'':<18} {_authors_line(paper)}\n")


def print_paper_full(paper: Paper, out: TextIO) -> None:
    out.write(f"{paper.title}\n")
    out.write(f"{paper.versioned_id}  {paper.abs_url}\n")
    out.write(f"Authors:    {_authors_line(paper, limit=50)}\n")
    out.write(f"Categories: {' '.join(paper.categories)} (primary {paper.primary_category})\n")
    if paper.published:
        out.write(f"Published:  {paper.published.date().isoformat()}")
        if paper.updated and paper.updated.date() != paper.published.date():
            out.write(f", updated {paper.updated.date().isoformat()}")
        out.write("\n")
    for label, value in (
        ("Comment", paper.comment),
        ("Journal", paper.journal_ref),
        ("DOI", paper.doi),
    ):
        if value:
            out.write(f"{label + ':':<12}{value}\n")
    out.write(f"PDF:        {paper.pdf_url}\n\n")
    out.write(textwrap.fill(paper.abstract, width=88) + "\n")


def _dump(obj: Any, out: TextIO) -> None:
    json.dump(obj, out, ensure_ascii=False, indent=2)
    out.write("\n")


# ---- commands ----------------------------------------------------------------------------

# One-shot commands may wait this long for another process's write lock (a running poll or
# import, the bot ingesting a listing) before saying so; the bot itself keeps SQLite's 5 s.
CLI_BUSY_TIMEOUT = 60.0


def _short_reason(message: str) -> str:
    """An arXiv client error without its (long) URL: `HTTP 503`, `timed out after 5s`."""
    return re.sub(r"^GET \S+\s*(?:->\s*|:\s*)?", "", message)[:200]


@contextmanager
def _fetch_failure(raw_id: str, settings: Settings) -> Iterator[None]:
    """A paper that had to be asked of arXiv and could not be: one line naming the host."""
    try:
        yield
    except UpstreamError as exc:
        cause = exc.__context__
        reason = _short_reason(str(cause)) if isinstance(cause, Exception) else str(exc)
        host = display_host(settings.arxiv_api_url)
        raise UpstreamFailure(f"cannot get {raw_id[:40]} from arXiv ({host}): {reason}") from None


@asynccontextmanager
async def open_service(
    settings: Settings, *, network: bool, read_only: bool = False
) -> AsyncIterator[PaperService]:
    """Database (+ HTTP session and arXiv client when `network`) for one CLI command.

    `read_only` commands open an existing, current database and never create or migrate.
    """
    if read_only:
        db = await open_for_reading(settings.database, shown=settings.database_for_display())
    else:
        db = await open_database(settings.database, busy_timeout=CLI_BUSY_TIMEOUT)
    try:
        if not network:
            yield PaperService(db, None)
            return
        async with aiohttp.ClientSession() as session:
            client = ArxivClient(
                session,
                rss_url=settings.arxiv_rss_url,
                api_url=settings.arxiv_api_url,
                oai_url=settings.arxiv_oai_url,
                limiter=RequestLimiter(settings.arxiv_delay),
                user_agent=user_agent(settings),
                timeout=settings.arxiv_timeout,
                max_retries=settings.arxiv_max_retries,
            )
            yield PaperService(db, client)
    finally:
        await db.close()


@contextmanager
def _one_poll_at_a_time(settings: Settings) -> Iterator[None]:
    """A second `paperbell poll` on the same SQLite file says so at once instead of
    queueing behind the first one's writes."""
    if settings.is_postgres:
        yield
        return
    try:
        with database_lock(f"{settings.database}.poll", purpose="poll"):
            yield
    except DatabaseInUseError:
        raise DatabaseBusyError(
            f"another `paperbell poll` is running on {settings.database}; "
            "try again when it has finished"
        ) from None


async def _cmd_poll(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    categories = (
        [c.strip() for c in args.categories.split(",") if c.strip()] if args.categories else None
    )
    with _one_poll_at_a_time(settings):
        async with open_service(settings, network=True) as service:
            report = await service.poll(categories, dry_run=args.dry_run)
    if not report.categories:
        sys.stderr.write(
            "paperbell: nothing to poll: no subscriptions yet; pass --categories cs.AI,cs.LG\n"
        )
        return EXIT_USAGE
    if args.json:
        _dump([paper_to_json(p) for p in report.new], out)
    else:
        for feed in report.feeds:
            line = f"# {redact_urls(feed.url)}: {feed.outcome.value}"
            if feed.error:
                line += f" ({redact_urls(feed.error)})"
            else:
                line += f", {feed.items} items, {len(feed.new)} new"
                if feed.skipped:
                    line += f", {len(feed.skipped)} skipped"
            out.write(line + "\n")
        for paper in report.new:
            print_paper_line(paper, out)
    _report_skips(
        [f"{feed.url}: {skip}" for feed in report.feeds for skip in feed.skipped],
        [f"warning: {warning}" for warning in report.warnings],
    )
    if report.errors and len(report.errors) == len(report.feeds):
        first = report.errors[0]
        raise UpstreamFailure(
            f"arXiv ({display_host(first.url)}) failed for every listing: "
            f"{_short_reason(first.error or 'unknown error')}"
        )
    return EXIT_OK


def _check_import_paths(paths: Sequence[Path]) -> None:
    """Refuse what cannot be a saved document before touching the database."""
    for path in paths:
        try:
            info = path.stat()
        except OSError as exc:
            raise InvalidInputError(f"cannot read {path}: {exc.strerror or exc}") from None
        if stat.S_ISDIR(info.st_mode):
            raise InvalidInputError(f"{path} is a directory; give the document files in it")
        if not stat.S_ISREG(info.st_mode):
            raise InvalidInputError(f"{path} is not a regular file; save the document first")
        if info.st_size == 0:
            raise InvalidInputError(f"{path} is empty")
        if not os.access(path, os.R_OK):
            raise InvalidInputError(f"cannot read {path}: permission denied")


async def _cmd_import(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    _check_import_paths(args.files)
    async with open_service(settings, network=False) as service:
        report = await service.import_files(args.files, progress_stream=sys.stderr)
    skipped = f", {len(report.skipped)} items skipped" if report.skipped else ""
    out.write(
        f"imported {report.papers} papers ({report.new} new) from {report.files} files{skipped}\n"
    )
    _report_skips(report.skipped, [])
    if report.bad_lines:
        out.write(f"skipped {report.bad_lines} bad lines\n")
        for path, line_error in report.line_errors:
            sys.stderr.write(f"paperbell: {path}: {line_error}\n")
        if report.bad_lines > len(report.line_errors):
            sys.stderr.write(
                f"paperbell: ... and {report.bad_lines - len(report.line_errors)} more\n"
            )
    for error in report.errors:
        sys.stderr.write(f"paperbell: {error}\n")
    # A file that is not a document arXiv serves is the caller's to fix.
    return EXIT_USAGE if report.errors else EXIT_OK


async def _cmd_harvest(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from bot.harvest import Harvester

    async with open_service(settings, network=True) as service:
        assert service.client is not None
        harvester = Harvester(service.db, service.client, progress_stream=sys.stderr)
        report = await harvester.run(
            set_spec=args.set_spec,
            from_day=args.from_day,
            until_day=args.until_day,
            metadata_prefix=args.metadata_prefix,
        )
    resumed = f", resumed at record {report.resumed_at:,}" if report.resumed_at is not None else ""
    out.write(
        f"harvested {report.records:,} records in {report.pages} pages{resumed}: "
        f"{report.papers:,} papers ({report.new:,} new, {report.updated:,} updated), "
        f"{report.deleted:,} deleted, {report.skipped:,} skipped; "
        f"{report.total_records:,} records in this harvest\n"
    )
    return EXIT_OK


_SHOWN_SKIPS = 20


def _report_skips(skips: Sequence[str], warnings: Sequence[str]) -> None:
    """Items left out (the first few, then a count) and warnings, one line each on stderr."""
    for line in skips[:_SHOWN_SKIPS]:
        sys.stderr.write(f"paperbell: {redact_urls(line)}\n")
    if len(skips) > _SHOWN_SKIPS:
        sys.stderr.write(f"paperbell: … and {len(skips) - _SHOWN_SKIPS} more items skipped\n")
    for line in warnings:
        sys.stderr.write(f"paperbell: {redact_urls(line)}\n")


async def _cmd_paper(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    async with open_service(settings, network=True) as service:
        with _fetch_failure(args.id, settings):
            paper = await service.get_paper(args.id)
    if args.json:
        _dump([paper_to_json(paper)], out)
    else:
        print_paper_full(paper, out)
    return EXIT_OK


def _note(text: str | None) -> None:
    """A look-up's note (arXiv not asked, or failing) on stderr, so --json output stays clean."""
    if text:
        sys.stderr.write(f"paperbell: {text}\n")


async def _cmd_search(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    # Asking arXiv fills the catalogue, so it opens the store like `import` does (a fresh
    # install gets answers at once); --offline only reads, never creating or migrating.
    async with open_service(settings, network=not args.offline, read_only=args.offline) as service:
        query = check_query(args.query, "search query", limit=MAX_QUERY_LENGTH)
        category = normalize_category(args.category) if args.category else None
        plan = await service.lookups.plan_search(query, category=category, user_id=None)
        note = (await plan.settle()).note
        hits = await service.search(query, category=category, since=args.since, limit=args.limit)
        _note(note)  # only once the answer stands: a failure stays one line
    if args.json:
        _dump([paper_to_json(h.paper) for h in hits], out)
    elif not hits:
        out.write("no paper matches that query\n")
    else:
        for hit in hits:
            print_paper_line(hit.paper, out)
    return EXIT_OK


async def _cmd_author(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    async with open_service(settings, network=not args.offline, read_only=args.offline) as service:
        name = check_query(args.name, "name", limit=MAX_QUERY_LENGTH)
        plan = await service.lookups.plan_author(name, user_id=None)
        note = (await plan.settle()).note
        match = await service.author(name, limit=args.limit)
        _note(note)  # only once the answer stands: a failure stays one line
    if args.json:
        _dump([paper_to_json(p) for p in match.papers], out)
        return EXIT_OK
    if not match.papers:
        out.write(f"no paper by {args.name}\n")
        return EXIT_OK
    if match.ambiguous:
        out.write(
            f"'{args.name}' matches several names: {'; '.join(match.matched_names)}\n"
            "(give a full first name to narrow it down)\n\n"
        )
    elif match.matched_names:
        out.write(f"papers by {match.matched_names[0]}\n\n")
    for paper in match.papers:
        print_paper_line(paper, out)
    return EXIT_OK


async def _cmd_similar(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    async with open_service(settings, network=True) as service:
        with _fetch_failure(args.id, settings):  # not stored, and arXiv did not answer
            found = await service.similar(args.id, limit=args.limit)
    if args.json:
        _dump([{**paper_to_json(p), "score": score} for p, score in found.hits], out)
        return EXIT_OK
    out.write(f"papers like {found.paper.id}: {found.paper.title}\n\n")
    if not found.hits:
        out.write("no stored paper shares distinctive words with it\n")
    for paper, _ in found.hits:
        print_paper_line(paper, out)
    return EXIT_OK


async def _cmd_db(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    if args.db_command == "restore":
        restore_database(settings, args.path)
        out.write(f"restored {settings.database_for_display()} from {args.path}\n")
        return EXIT_OK
    if args.db_command == "backup":
        backup_database(settings, args.path, force=args.force)
        out.write(f"backed up to {args.path} (integrity checked)\n")
        return EXIT_OK
    if args.db_command == "migrate":
        db = await open_database(settings.database, migrate=False, busy_timeout=CLI_BUSY_TIMEOUT)
        try:
            applied = await db.migrate()
            version = await db.schema_version()
        finally:
            await db.close()
        out.write(
            f"applied {', '.join(applied)}; schema version {version}\n"
            if applied
            else f"up to date (schema version {version})\n"
        )
        return EXIT_OK
    # stats: a read command, so it never creates or migrates anything.
    db = await open_for_reading(settings.database, shown=settings.database_for_display())
    try:
        service = PaperService(db, None)
        stats = await service.stats()
        listings = await service.recent_listings(7)
        quiet = await service.no_listing_note()
    finally:
        await db.close()
    if args.json:
        _dump(
            {
                "papers": stats.papers,
                "authors": stats.authors,
                "destinations": stats.destinations,
                "subscriptions": stats.subscriptions,
                "pending_deliveries": stats.pending_deliveries,
                "sent_deliveries": stats.sent_deliveries,
                "database_bytes": stats.database_bytes,
                "listings": [
                    {
                        "date": listing.listing_date.isoformat(),
                        **{t.value: n for t, n in listing.counts.items()},
                    }
                    for listing in listings
                ],
                "no_listing_today": quiet,
            },
            out,
        )
    else:
        out.write(
            f"database       {settings.database_for_display()}\n"
            f"papers         {stats.papers:,}\n"
            f"authors        {stats.authors:,}\n"
            f"destinations   {stats.destinations:,}\n"
            f"subscriptions  {stats.subscriptions:,}\n"
            f"alerts pending {stats.pending_deliveries:,}\n"
            f"alerts sent    {stats.sent_deliveries:,}\n"
            f"size           {stats.database_bytes / 2**20:,.1f} MiB\n"
        )
        out.write("announcements of the last listings:\n" if listings else "")
        out.writelines(f"  {line}\n" for line in listing_lines(listings))
        if quiet:
            out.write(f"{quiet}\n")
    return EXIT_OK


Command = Callable[[argparse.Namespace, Settings, TextIO], Awaitable[int]]

# Every subcommand but `run` (which `bot.cli` starts itself), by name.
COMMANDS: dict[str, Command] = {
    "poll": _cmd_poll,
    "import": _cmd_import,
    "harvest": _cmd_harvest,
    "paper": _cmd_paper,
    "search": _cmd_search,
    "author": _cmd_author,
    "similar": _cmd_similar,
    "db": _cmd_db,
}
