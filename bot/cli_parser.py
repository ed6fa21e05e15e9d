"""The `paperbell` command line's argument parser: commands, options and their checks.

Only argparse lives here; what each command does is in `bot.cli_commands`, and the
entry point that ties the two together is `bot.cli.main`.
"""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from bot import __version__
from bot.cli_failures import EXIT_CODES, EXIT_USAGE

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
