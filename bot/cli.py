"""`paperbell` command line: poll, import, look papers up, manage the database, run the bot.

Every command opens its resources here (settings, database, HTTP session) and
hands them to the same service functions the slash commands use. Mistakes a
user can fix end as one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import textwrap
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TextIO

import aiohttp

from bot import __version__
from bot.arxiv.client import DEFAULT_USER_AGENT, ArxivClient, RequestLimiter
from bot.config import ConfigError, Settings, load_settings
from bot.errors import UserError
from bot.logs import configure_logging
from bot.redact import redact_urls
from bot.services import PaperService
from storage.backend import open_database
from storage.db import StorageError
from storage.models import Paper

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse that exits with 2 and one line (argparse already does; keep usage short)."""

    def error(self, message: str) -> Any:
        self.exit(EXIT_USAGE, f"paperbell: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="paperbell", description="arXiv paper alerts for Discord.")
    parser.add_argument("--version", action="version", version=f"paperbell {__version__}")
    parser.add_argument("--env-file", help="read settings from this env file (KEY=value lines)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run the Discord bot")
    run.add_argument("--shard-count", type=int, help="total number of gateway shards")
    run.add_argument("--shard-ids", help="comma-separated shard ids this process runs")

    poll = sub.add_parser("poll", help="poll arXiv's RSS listings once and print new papers")
    poll.add_argument(
        "--categories", help="comma-separated, e.g. cs.AI,cs.LG (default: subscribed)"
    )
    poll.add_argument("--dry-run", action="store_true", help="fetch and show, store nothing")
    poll.add_argument("--json", action="store_true", help="print JSON")

    imp = sub.add_parser("import", help="ingest saved RSS, Atom or OAI-PMH documents")
    imp.add_argument("files", nargs="+", type=Path)

    paper = sub.add_parser("paper", help="show one paper (fetched from arXiv when unknown)")
    paper.add_argument("id", help="arXiv id or URL, e.g. 2307.15771")
    paper.add_argument("--json", action="store_true")

    search = sub.add_parser("search", help="full-text search over stored papers")
    search.add_argument("query")
    search.add_argument("--category", help="only papers in this category, e.g. cs.LG")
    search.add_argument("--since", type=_date_arg, help="only papers published since YYYY-MM-DD")
    search.add_argument("--limit", type=_limit_arg, default=10)
    search.add_argument("--json", action="store_true")

    author = sub.add_parser("author", help="an author's stored papers, newest first")
    author.add_argument("name")
    author.add_argument("--limit", type=_limit_arg, default=25)
    author.add_argument("--json", action="store_true")

    similar = sub.add_parser("similar", help="stored papers most like a paper")
    similar.add_argument("id")
    similar.add_argument("--limit", type=_limit_arg, default=10, help="at most 50")
    similar.add_argument("--json", action="store_true")

    db = sub.add_parser("db", help="database maintenance")
    dbsub = db.add_subparsers(dest="db_command", required=True, parser_class=_Parser)
    dbsub.add_parser("migrate", help="apply pending migrations")
    stats = dbsub.add_parser("stats", help="counts and size")
    stats.add_argument("--json", action="store_true")
    backup = dbsub.add_parser("backup", help="online backup to PATH (safe while the bot runs)")
    backup.add_argument("path", type=Path)
    restore = dbsub.add_parser("restore", help="replace the database with a backup")
    restore.add_argument("path", type=Path)
    return parser


def _date_arg(text: str) -> datetime:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {text[:40]!r}") from None
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


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


@asynccontextmanager
async def open_service(settings: Settings, *, network: bool) -> AsyncIterator[PaperService]:
    """Database (+ HTTP session and arXiv client when `network`) for one CLI command."""
    db = await open_database(settings.database)
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
                limiter=RequestLimiter(settings.arxiv_delay),
                user_agent=user_agent(settings),
                timeout=settings.arxiv_timeout,
                max_retries=settings.arxiv_max_retries,
            )
            yield PaperService(db, client)
    finally:
        await db.close()


def user_agent(settings: Settings) -> str:
    if settings.contact:
        return f"{DEFAULT_USER_AGENT} contact: {settings.contact}"
    return DEFAULT_USER_AGENT


async def _cmd_poll(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    categories = (
        [c.strip() for c in args.categories.split(",") if c.strip()] if args.categories else None
    )
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
            out.write(line + "\n")
        for paper in report.new:
            print_paper_line(paper, out)
    return EXIT_ERROR if report.errors and len(report.errors) == len(report.feeds) else EXIT_OK


async def _cmd_import(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    async with open_service(settings, network=False) as service:
        report = await service.import_files(args.files)
    out.write(f"imported {report.papers} papers ({report.new} new) from {report.files} files\n")
    for error in report.errors:
        sys.stderr.write(f"paperbell: {error}\n")
    return EXIT_ERROR if report.errors else EXIT_OK


async def _cmd_paper(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    async with open_service(settings, network=True) as service:
        paper = await service.get_paper(args.id)
    if args.json:
        _dump([paper_to_json(paper)], out)
    else:
        print_paper_full(paper, out)
    return EXIT_OK


async def _cmd_search(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    async with open_service(settings, network=False) as service:
        hits = await service.search(
            args.query, category=args.category, since=args.since, limit=args.limit
        )
    if args.json:
        _dump([paper_to_json(h.paper) for h in hits], out)
    elif not hits:
        out.write("no stored paper matches that query\n")
    else:
        for hit in hits:
            print_paper_line(hit.paper, out)
    return EXIT_OK


async def _cmd_author(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    async with open_service(settings, network=False) as service:
        match = await service.author(args.name, limit=args.limit)
    if args.json:
        _dump([paper_to_json(p) for p in match.papers], out)
        return EXIT_OK
    if not match.papers:
        out.write(f"no stored paper by {args.name}\n")
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
        from bot.backup import restore_database

        restore_database(settings, args.path)
        out.write(f"restored {settings.database_for_display()} from {args.path}\n")
        return EXIT_OK
    db = await open_database(settings.database, migrate=False)
    try:
        if args.db_command == "migrate":
            applied = await db.migrate()
            version = await db.schema_version()
            out.write(
                f"applied {', '.join(applied)}; schema version {version}\n"
                if applied
                else f"up to date (schema version {version})\n"
            )
        elif args.db_command == "stats":
            await db.migrate()
            stats = await PaperService(db, None).stats()
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
        elif args.db_command == "backup":
            await db.backup(args.path)
            out.write(f"backed up to {args.path}\n")
    finally:
        await db.close()
    return EXIT_OK


async def _dispatch(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    if args.command == "run":
        from bot.runner import run_bot

        return await run_bot(settings, shard_count=args.shard_count, shard_ids=args.shard_ids)
    handlers = {
        "poll": _cmd_poll,
        "import": _cmd_import,
        "paper": _cmd_paper,
        "search": _cmd_search,
        "author": _cmd_author,
        "similar": _cmd_similar,
        "db": _cmd_db,
    }
    return await handlers[args.command](args, settings, out)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Entry point of the `paperbell` console script; returns the process exit code."""
    out = out or sys.stdout
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(env_file=args.env_file)
    except ConfigError as exc:
        sys.stderr.write(f"paperbell: {exc}\n")
        return EXIT_USAGE
    # One-shot commands print their results; only the bot logs routine events.
    level = (
        settings.log_level if args.command == "run" or settings.log_level == "DEBUG" else "WARNING"
    )
    configure_logging(level, settings.log_format)
    try:
        return asyncio.run(_dispatch(args, settings, out))
    except (ConfigError, StorageError, UserError) as exc:
        sys.stderr.write(f"paperbell: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
