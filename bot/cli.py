"""`paperbell` command line: poll, import, look papers up, manage the database, run the bot.

Every command opens its resources here (settings, database, HTTP session) and
hands them to the same service functions the slash commands use. Every failure
ends as one line on stderr, never a traceback: exit code 2 for a mistake the
user can fix, 1 for an upstream failure or a busy database (`bot.cli_failures`).
Read commands (search, author, db stats) never create or migrate a database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import stat
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

import aiohttp

from bot import __version__
from bot.arxiv.client import ArxivClient, RequestLimiter
from bot.backup import DatabaseInUseError, backup_database, database_lock, restore_database
from bot.categories import normalize_category
from bot.cli_failures import (
    EXIT_CODES,
    EXIT_ERROR,
    EXIT_OK,
    EXIT_USAGE,
    KNOWN_FAILURES,
    DatabaseBusyError,
    UpstreamFailure,
    explain_failure,
    quiet_broken_pipe,
)
from bot.config import ConfigError, Settings, load_settings
from bot.domain.announcements import listing_lines
from bot.domain.errors import InvalidInputError, UpstreamError
from bot.domain.limits import MAX_QUERY_LENGTH
from bot.domain.models import Paper
from bot.logs import configure_logging
from bot.lookups import check_query
from bot.redact import redact_urls
from bot.services import PaperService
from bot.useragent import user_agent
from storage.backend import open_database, open_for_reading

log = logging.getLogger(__name__)

OFFLINE_HELP = "answer from stored papers only; never ask arXiv"
RUN_DESCRIPTION = """Run the Discord bot until SIGINT/SIGTERM.

Reads the bot token from DISCORD_TOKEN (environment or env file) and every other
setting from PAPERBELL_* variables (see .env.example). When Discord cannot be reached
at start-up (network not up yet, DNS, an outage) it retries with growing waits and
says what fails; a rejected token exits 2."""


class _Parser(argparse.ArgumentParser):
    """argparse that exits with 2 and one line (argparse already does; keep usage short)."""

    def error(self, message: str) -> Any:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see --help)\n")


def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print a JSON list of papers")


_ENV_FILE_HELP = "read settings from this env file (KEY=value lines)"


class _Subparser(_Parser):
    """A subcommand's parser: also takes `--env-file`, so it may follow the subcommand."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # SUPPRESS: when absent here, the value given before the subcommand stays.
        self.add_argument("--env-file", default=argparse.SUPPRESS, help=_ENV_FILE_HELP)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="paperbell",
        description="arXiv paper alerts for Discord: run the bot, poll, import, look papers up.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"paperbell {__version__}")
    parser.add_argument(
        "--env-file",
        metavar="PATH",
        help=_ENV_FILE_HELP + "; the environment wins",
    )
    sub = parser.add_subparsers(
        dest="command", required=True, parser_class=_Subparser, metavar="COMMAND"
    )

    def command(name: str, summary: str, description: str | None = None) -> _Parser:
        made: _Parser = sub.add_parser(
            name,
            help=summary,
            description=description or summary[0].upper() + summary[1:] + ".",
            epilog=EXIT_CODES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        return made

    run = command("run", "run the Discord bot (needs DISCORD_TOKEN)", RUN_DESCRIPTION)
    run.add_argument(
        "--shard-count",
        type=int,
        metavar="N",
        help="total number of gateway shards across all processes (PostgreSQL only)",
    )
    run.add_argument(
        "--shard-ids",
        metavar="IDS",
        help="comma-separated shard ids this process runs, e.g. 0,1 (needs --shard-count)",
    )

    poll = command("poll", "poll arXiv's RSS listings once and print the new papers")
    poll.add_argument(
        "--categories",
        metavar="CATS",
        help="comma-separated, e.g. cs.AI,cs.LG (default: what is subscribed)",
    )
    poll.add_argument("--dry-run", action="store_true", help="fetch and show, store nothing")
    poll.add_argument("--json", action="store_true", help="print the new papers as JSON")

    imp = command(
        "import", "ingest saved RSS, Atom (API) or OAI-PMH documents, or arXiv's metadata snapshot"
    )
    imp.add_argument(
        "files", nargs="+", type=Path, metavar="FILE",
        help="a saved document, or the snapshot's JSON lines (plain or .gz)",
    )  # fmt: skip

    harvest = command(
        "harvest", "fill the catalogue from arXiv's OAI-PMH (resumes where it stopped)"
    )
    harvest.add_argument(
        "--set", dest="set_spec", metavar="SET", help="an OAI set: cs, math, physics:hep-th"
    )
    harvest.add_argument(
        "--from", dest="from_day", type=_day_arg, metavar="YYYY-MM-DD",
        help="records changed on or after this day",
    )  # fmt: skip
    harvest.add_argument(
        "--until", dest="until_day", type=_day_arg, metavar="YYYY-MM-DD",
        help="records changed on or before this day",
    )  # fmt: skip
    harvest.add_argument(
        "--format",
        dest="metadata_prefix",
        choices=("arXivRaw", "arXiv"),
        default="arXivRaw",
        help="arXivRaw (default) has every version's date; arXiv splits author names",
    )

    paper = command("paper", "show one paper (fetched from arXiv when not stored yet)")
    paper.add_argument("id", help="arXiv id or URL, e.g. 2307.15771 or arXiv:hep-th/9901001")
    _json_flag(paper)

    search = command("search", "full-text search (asks arXiv when it was not asked today)")
    search.add_argument("query", help="words to look for in titles and abstracts")
    search.add_argument(
        "--category", metavar="CAT", help="only papers in this category, e.g. cs.LG"
    )
    search.add_argument(
        "--since", type=_date_arg, metavar="YYYY-MM-DD", help="only papers published since then"
    )
    search.add_argument(
        "--limit", type=_limit_arg, default=10, metavar="N", help="at most N results (1-100, 10)"
    )
    search.add_argument("--offline", action="store_true", help=OFFLINE_HELP)
    _json_flag(search)

    author = command(
        "author", "an author's papers, newest first, under every spelling (asks arXiv daily)"
    )
    author.add_argument("name", help="the author's name, e.g. 'Shane Legg' or 'Legg, S.'")
    author.add_argument(
        "--limit", type=_limit_arg, default=25, metavar="N", help="at most N papers (1-100, 25)"
    )
    author.add_argument("--offline", action="store_true", help=OFFLINE_HELP)
    _json_flag(author)

    similar = command("similar", "stored papers most like a paper (by its distinctive words)")
    similar.add_argument("id", help="arXiv id or URL, e.g. 2307.15771")
    similar.add_argument(
        "--limit", type=_limit_arg, default=10, metavar="N", help="at most N papers (1-50, 10)"
    )
    _json_flag(similar)

    db = command("db", "database maintenance: migrate, stats, backup, restore")
    dbsub = db.add_subparsers(
        dest="db_command", required=True, parser_class=_Subparser, metavar="ACTION"
    )

    def action(name: str, summary: str) -> argparse.ArgumentParser:
        made: argparse.ArgumentParser = dbsub.add_parser(
            name,
            help=summary,
            description=summary[0].upper() + summary[1:] + ".",
            epilog=EXIT_CODES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        return made

    action("migrate", "create the database or apply pending migrations")
    stats = action("stats", "counts and size (reads only; never creates tables)")
    stats.add_argument("--json", action="store_true", help="print the counts as JSON")
    backup = action(
        "backup", "checked online backup of the SQLite database to PATH (safe while the bot runs)"
    )
    backup.add_argument("path", type=Path, metavar="PATH", help="the backup file to write")
    backup.add_argument("--force", action="store_true", help="replace PATH if it exists")
    restore = action("restore", "replace the SQLite database with a backup (stop the bot first)")
    restore.add_argument("path", type=Path, metavar="PATH", help="a file made by `db backup`")
    return parser


def _date_arg(text: str) -> datetime:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {text[:40]!r}") from None
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _day_arg(text: str) -> date:
    return _date_arg(text).date()


def _limit_arg(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text[:40]!r}") from None
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError("must be between 1 and 100")
    return value


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


def _host(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or url[:60]
    return f"{host}:{parts.port}" if parts.port else host


def _short_reason(message: str) -> str:
    """An arXiv client error without its (long) URL: `HTTP 503`, `timed out after 5s`."""
    return re.sub(r"^GET \S+\s*(?:->\s*|:\s*)?", "", message)[:200]


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
                author_feed_url=settings.arxiv_author_feed_url,
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
            f"arXiv ({_host(first.url)}) failed for every listing: "
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
        try:
            paper = await service.get_paper(args.id)
        except UpstreamError as exc:
            cause = exc.__context__
            reason = _short_reason(str(cause)) if isinstance(cause, Exception) else str(exc)
            raise UpstreamFailure(
                f"cannot get {args.id[:40]} from arXiv ({_host(settings.arxiv_api_url)}): {reason}"
            ) from None
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
        try:
            found = await service.similar(args.id, limit=args.limit)
        except UpstreamError as exc:  # the paper was not stored and arXiv did not answer
            cause = exc.__context__
            reason = _short_reason(str(cause)) if isinstance(cause, Exception) else str(exc)
            raise UpstreamFailure(
                f"cannot get {args.id[:40]} from arXiv ({_host(settings.arxiv_api_url)}): {reason}"
            ) from None
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


async def _dispatch(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    if args.command == "run":
        from bot.runner import run_bot

        return await run_bot(settings, shard_count=args.shard_count, shard_ids=args.shard_ids)
    handlers = {
        "poll": _cmd_poll,
        "import": _cmd_import,
        "harvest": _cmd_harvest,
        "paper": _cmd_paper,
        "search": _cmd_search,
        "author": _cmd_author,
        "similar": _cmd_similar,
        "db": _cmd_db,
    }
    return await handlers[args.command](args, settings, out)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Entry point of the `paperbell` console script; returns the process exit code.

    Every failure ends as one line on stderr: 2 for a mistake the user can fix, 1 for
    an upstream failure or a busy database (see EXIT_CODES), never a traceback.
    """
    out = out or sys.stdout
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(env_file=args.env_file)
    except ConfigError as exc:
        sys.stderr.write(f"paperbell: {exc}\n")
        return EXIT_USAGE
    # One-shot commands print their results and one line per failure; only the bot logs
    # routine events (PAPERBELL_LOG_LEVEL=DEBUG shows everything, tracebacks included).
    level = (
        settings.log_level if args.command == "run" or settings.log_level == "DEBUG" else "ERROR"
    )
    configure_logging(level, settings.log_format)
    try:
        code = asyncio.run(_dispatch(args, settings, out))
        out.flush()
    except BrokenPipeError:
        return quiet_broken_pipe()
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        code, message = explain_failure(
            exc, database=settings.database_for_display(), busy_timeout=CLI_BUSY_TIMEOUT
        )
        if code == EXIT_ERROR and not isinstance(exc, KNOWN_FAILURES):
            # A bug: one line for the user, the traceback in the log (always for the bot).
            severity = logging.ERROR if args.command == "run" else logging.DEBUG
            log.log(severity, "unexpected error", exc_info=True)
        sys.stderr.write(f"paperbell: {message}\n")
    return code
