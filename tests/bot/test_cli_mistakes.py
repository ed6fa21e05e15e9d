"""Every documented `paperbell` command with its common mistakes, run as a real process.

The README promises one line on stderr, no traceback, exit code 2 for a mistake
the user can fix and 1 for an upstream failure (naming the host) or a database
another process holds. Each case runs `python -m bot ...` against real files
(a real store imported from a real listing, a copy of it damaged mid-file, a
file that is no database, a directory, /dev/zero, /dev/full) and checks exactly that.
"""

from __future__ import annotations

import asyncio
import os
import re
import resource
import shutil
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest

from bot import cli, cli_commands, cli_parser
from bot.backup import database_lock
from bot.bulk import DocumentTooLargeError, read_document
from bot.cli_failures import EXIT_BROKEN_PIPE
from tests.arxiv_server import FIXTURES
from tests.backends import needs_postgres, require_postgres

ROOT = Path(__file__).resolve().parents[2]
RSS_FIXTURE = FIXTURES / "rss2024_new_all-archives_2024-11-28.xml"
CLOSED = "http://127.0.0.1:9"  # the discard port: nothing listens, so arXiv is unreachable


@dataclass
class Result:
    code: int
    out: str
    err: str

    def one_line(self) -> str:
        """The single stderr line; fails on none, several, or a traceback."""
        assert "Traceback" not in self.err, self.err
        assert "Event loop is closed" not in self.err, self.err
        lines = self.err.splitlines()
        assert len(lines) == 1, lines
        return lines[0]


@dataclass(frozen=True)
class World:
    """Files the mistakes are made with (shared by the whole module, never modified)."""

    root: Path
    good: Path  # a store holding the real daily listing (1,504 papers)
    corrupt: Path  # the same store with a third of its pages zeroed
    garbage: Path  # a file that is not a SQLite database
    empty_db: Path  # a 0-byte file
    directory: Path
    empty_xml: Path
    not_xml: Path
    text_file: Path


def base_env(database: Path | str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAPERBELL_", "DISCORD_"))}
    env.update(
        PAPERBELL_DATABASE=str(database),
        PAPERBELL_ARXIV_RSS_URL=f"{CLOSED}/rss/",
        PAPERBELL_ARXIV_API_URL=f"{CLOSED}/api/query",
        PAPERBELL_ARXIV_OAI_URL=f"{CLOSED}/oai",
        PAPERBELL_ARXIV_DELAY="0",
        PAPERBELL_ARXIV_MAX_RETRIES="0",
        PAPERBELL_ARXIV_TIMEOUT="5",
    )
    return env


def paperbell(env: dict[str, str], *args: str, **kwargs: object) -> Result:
    done = subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
        **kwargs,  # type: ignore[arg-type]
    )  # fmt: skip
    return Result(done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("mistakes")
    good = root / "good.db"
    imported = paperbell(base_env(good), "import", str(RSS_FIXTURE))
    assert imported.code == 0, imported.err
    with sqlite3.connect(good) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    corrupt = root / "corrupt.db"
    shutil.copyfile(good, corrupt)
    size = corrupt.stat().st_size
    with corrupt.open("r+b") as handle:
        handle.seek(size // 3)
        handle.write(b"\0" * (size // 3))
    garbage = root / "garbage.db"
    garbage.write_bytes(b"this is not a SQLite database\n" * 200)
    empty_db = root / "empty.db"
    empty_db.touch()
    directory = root / "a-directory"
    directory.mkdir()
    empty_xml = root / "empty.xml"
    empty_xml.touch()
    not_xml = root / "notes.txt"
    not_xml.write_text("just some notes, not an arXiv document\n")
    text_file = root / "precious.txt"
    text_file.write_text("not a database\n")
    return World(root, good, corrupt, garbage, empty_db, directory, empty_xml, not_xml, text_file)


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]
    code: int
    says: str  # a fragment of the one line on stderr
    database: str = "good"  # a World attribute, or a path relative to the world's root
    env: dict[str, str] = field(default_factory=dict)


def case(id: str, args: str | tuple[str, ...], code: int, says: str, **kw: object) -> Case:
    parts = tuple(args.split()) if isinstance(args, str) else args
    return Case(id, parts, code, says, **kw)  # type: ignore[arg-type]


CASES = [
    # the command line itself
    case("no-command", (), 2, "required: COMMAND"),
    case("unknown-command", "fetch 2307.15771", 2, "invalid choice: 'fetch'"),
    case("unknown-option", "search x --colour", 2, "unrecognized arguments: --colour"),
    case("missing-env-file", "--env-file {root}/nope.env search x", 2, "cannot read env file"),
    case("bad-setting", "search x", 2, "PAPERBELL_ARXIV_DELAY must be a number",
         env={"PAPERBELL_ARXIV_DELAY": "soon"}),
    case("bad-database-url", "search x", 2, "PAPERBELL_DATABASE must be a SQLite file path",
         env={"PAPERBELL_DATABASE": "mysql://db/x"}),
    # run
    case("run-no-token", "run", 2, "DISCORD_TOKEN is not set"),
    case("run-shard-ids-alone", "run --shard-ids 0", 2, "--shard-ids needs --shard-count",
         env={"DISCORD_TOKEN": "x"}),
    case("run-shards-on-sqlite", "run --shard-count 2", 2, "--shard-count needs PostgreSQL",
         env={"DISCORD_TOKEN": "x"}),
    case("run-bad-shard-count", "run --shard-count two", 2, "invalid int value"),
    case("run-unversioned-api-url", "run", 2, "must end in a version path like /api/v10",
         env={"DISCORD_TOKEN": "x", "PAPERBELL_DISCORD_API_URL": "https://proxy.internal"}),
    # poll
    case("poll-nothing-subscribed", "poll", 2, "pass --categories"),
    case("poll-bad-category", "poll --categories cs.LG,../../etc", 2, "categor"),
    case("poll-arxiv-unreachable", "poll --categories cs.LG", 1,
         "arXiv (127.0.0.1:9) failed for every listing"),
    # import
    case("import-missing-file", "import {root}/missing.xml", 2, "No such file or directory"),
    case("import-directory", "import {root}/a-directory", 2, "is a directory"),
    case("import-empty-file", "import {root}/empty.xml", 2, "is empty"),
    case("import-dev-zero", "import /dev/zero", 2, "/dev/zero is not a regular file"),
    case("import-not-a-document", "import {root}/notes.txt", 2, "notes.txt:"),
    case("import-into-corrupt-db", f"import {RSS_FIXTURE}", 2, "database disk image is malformed",
         database="corrupt"),
    # harvest
    case("harvest-bad-from", "harvest --from 2024-13-01", 2, "expected YYYY-MM-DD"),
    case("harvest-from-after-until", "harvest --from 2024-05-01 --until 2024-01-01", 2,
         "--from is after --until"),
    case("harvest-bad-format", "harvest --format json", 2, "invalid choice: 'json'"),
    case("harvest-arxiv-unreachable", "harvest --set cs", 1, "127.0.0.1:9/oai"),
    # similar
    case("similar-bad-id", "similar 2313.00001", 2, "arXiv id"),
    case("similar-limit-zero", "similar 2411.17700 --limit 0", 2, "between 1 and 100"),
    case("similar-arxiv-unreachable", "similar 2101.00001", 1, "127.0.0.1:9"),
    # paper
    case("paper-bad-id", "paper 2313.00001", 2, "arXiv id"),
    case("paper-arxiv-unreachable", "paper 2101.00001", 1, "from arXiv (127.0.0.1:9)"),
    # search and author (read commands)
    case("search-empty-query", ("search", "  "), 2, "Give a"),
    case("search-bad-since", "search x --since yesterday", 2, "expected YYYY-MM-DD"),
    case("search-limit-zero", "search x --limit 0", 2, "between 1 and 100"),
    case("search-corrupt-db", "search dark", 2, "database disk image is malformed",
         database="corrupt"),
    case("search-not-a-db", "search x", 2, "file is not a database", database="garbage"),
    case("search-no-db-yet", "search x --offline", 2, "no database at", database="missing.db"),
    case("search-empty-file", "search x --offline", 2, "has no paperbell tables yet",
         database="empty_db"),
    case("search-db-is-directory", "search x", 2, "is a directory", database="directory"),
    case("author-corrupt-db", "author Smith", 2, "database disk image is malformed",
         database="corrupt"),
    case("author-limit-too-big", "author Smith --limit 1000", 2, "between 1 and 100"),
    # db
    case("db-no-action", "db", 2, "required: ACTION"),
    case("db-stats-no-db-yet", "db stats", 2, "no database at", database="missing.db"),
    case("db-stats-corrupt", "db stats", 2, "database disk image is malformed",
         database="corrupt"),
    case("db-migrate-directory", "db migrate", 2, "is a directory", database="directory"),
    case("db-migrate-unwritable", "db migrate", 2, "cannot open database /sys/paperbell.db",
         database="/sys/paperbell.db"),
    case("db-stats-postgres-down", "db stats", 1, "cannot reach PostgreSQL at 127.0.0.1:9",
         env={"PAPERBELL_DATABASE": "postgresql://paperbell:secret@127.0.0.1:9/paperbell"}),
    case("db-backup-onto-itself", "db backup {root}/good.db", 2, "already exists"),
    case("db-backup-existing-file", "db backup {root}/precious.txt", 2,
         "already exists; pass --force"),
    case("db-backup-directory", "db backup {root}/a-directory", 2, "is a directory"),
    case("db-backup-dev-full", "db backup /dev/full", 2, "already exists"),
    case("db-backup-dev-full-forced", "db backup /dev/full --force", 2, "not a regular file"),
    case("db-backup-corrupt", "db backup {root}/from-corrupt.db", 2,
         "failed its integrity check", database="corrupt"),
    case("db-backup-no-db", "db backup {root}/b.db", 2, "no database at", database="missing.db"),
    case("db-restore-missing", "db restore {root}/missing.db", 2, "does not exist"),
    case("db-restore-not-a-db", "db restore {root}/garbage.db", 2, "not a usable SQLite database"),
    case("db-restore-corrupt", "db restore {root}/corrupt.db", 2, "not a"),
]  # fmt: skip


@pytest.mark.parametrize("mistake", CASES, ids=[c.id for c in CASES])
def test_mistake_is_one_line_with_its_exit_code(world: World, mistake: Case) -> None:
    """The mistake ends with exactly one stderr line saying what is wrong, no traceback,
    and exit code 2 (the user's to fix) or 1 (upstream failure naming the host)."""
    target = getattr(world, mistake.database, None)
    database = target if isinstance(target, Path) else world.root / mistake.database
    env = {**base_env(database), **mistake.env}
    args = [a.replace("{root}", str(world.root)) for a in mistake.args]
    result = paperbell(env, *args)
    line = result.one_line()
    assert result.code == mistake.code, (result.code, line)
    assert line.startswith("paperbell"), line
    assert mistake.says in line, line


def test_every_documented_command_has_mistake_cases() -> None:
    """Each command in the README's command-line table is covered above."""
    readme = (ROOT / "README.md").read_text("utf-8")
    documented = set(re.findall(r"^\| `paperbell (\w+)", readme, re.MULTILINE))
    assert documented >= {"run", "poll", "import", "paper", "search", "author", "db"}
    covered = {c.args[0] for c in CASES if c.args and not c.args[0].startswith("-")}
    assert documented <= covered, documented - covered


def test_read_commands_never_create_or_migrate(world: World, tmp_path: Path) -> None:
    """search --offline, author --offline and db stats on a missing or empty SQLite file leave
    it as it was (without --offline they store arXiv's answers, like import)."""
    missing, empty = tmp_path / "missing.db", tmp_path / "empty.db"
    empty.touch()
    for database in (missing, empty):
        for args in (
            ("search", "x", "--offline"),
            ("author", "Smith", "--offline"),
            ("db", "stats"),
        ):
            result = paperbell(base_env(database), *args)
            assert result.code == 2, (database, args, result.err)
            result.one_line()
    assert not missing.exists() and not (tmp_path / "missing.db-wal").exists()
    assert empty.stat().st_size == 0


@needs_postgres
async def test_read_commands_never_migrate_postgres() -> None:
    """On an empty PostgreSQL schema db stats, search --offline and author --offline say to
    migrate and create no table; db migrate then makes them work."""
    url = require_postgres()
    schema = f"pbcli_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        separator = "&" if "?" in url else "?"
        env = base_env(f"{url}{separator}search_path={schema}")
        for args in (("db", "stats"), ("search", "x", "--offline"), ("author", "S", "--offline")):
            result = await asyncio.to_thread(paperbell, env, *args)
            assert result.code == 2, (args, result.err)
            assert "has no paperbell tables yet" in result.one_line()
        tables = await conn.fetchval(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1", schema
        )
        assert tables == 0
        assert (await asyncio.to_thread(paperbell, env, "db", "migrate")).code == 0
        stats = await asyncio.to_thread(paperbell, env, "db", "stats", "--json")
        assert stats.code == 0, stats.err
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


def test_backup_force_replaces_a_file_with_a_checked_copy(world: World, tmp_path: Path) -> None:
    """--force replaces an existing non-database file with a complete backup."""
    target = tmp_path / "old-notes.txt"
    target.write_text("not a database\n")
    result = paperbell(base_env(world.good), "db", "backup", str(target), "--force")
    assert result.code == 0 and result.err == "", result.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old-notes.txt"]  # no staging left
    with sqlite3.connect(target) as conn:
        assert conn.execute("SELECT count(*) FROM papers").fetchone()[0] == 1504
        assert conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"


def test_backup_of_corrupt_database_leaves_no_file(world: World, tmp_path: Path) -> None:
    """A database damaged mid-file is reported and no backup (or partial file) is left."""
    result = paperbell(base_env(world.corrupt), "db", "backup", str(tmp_path / "b.db"))
    assert result.code == 2
    assert "failed its integrity check" in result.one_line()
    assert list(tmp_path.iterdir()) == []


def _small_file_limit() -> None:
    # Files this process writes may not grow past 1 MiB: a full disk, as the backup sees it.
    resource.setrlimit(resource.RLIMIT_FSIZE, (2**20, 2**20))


def test_backup_to_a_full_disk_fails_cleanly(world: World, tmp_path: Path) -> None:
    """A disk that fills up during the backup ends in one line and leaves nothing behind."""
    assert world.good.stat().st_size > 2 * 2**20
    result = paperbell(
        base_env(world.good), "db", "backup", str(tmp_path / "b.db"),
        preexec_fn=_small_file_limit,
    )  # fmt: skip
    assert result.code == 2
    line = result.one_line()
    # SQLite says "database or disk is full" for ENOSPC, "disk I/O error" for EFBIG.
    assert "b.db failed" in line and ("full" in line or "I/O error" in line), line
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory this process cannot write to (root writes anywhere, except to /sys)."""
    if os.geteuid() == 0:
        yield Path("/sys")
        return
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    yield locked
    locked.chmod(0o755)


def test_restore_into_read_only_directory(world: World, read_only_dir: Path) -> None:
    """db restore into a directory it cannot write says so in one line, exit 2."""
    result = paperbell(base_env(read_only_dir / "paperbell.db"), "db", "restore", str(world.good))
    assert result.code == 2
    line = result.one_line()
    assert str(read_only_dir) in line and "Permission denied" in line, line


def test_broken_pipe_is_quiet(world: World) -> None:
    """`search --json | head -c 10`: the reader leaves early; no traceback, nothing on stderr."""
    read_end, write_end = os.pipe()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "search", "the", "--json", "--limit", "100", "--offline"],
        cwd=ROOT, env=base_env(world.good), stdout=write_end, stderr=subprocess.PIPE,
    )  # fmt: skip
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        assert len(reader.read(10)) == 10
    _, err = proc.communicate(timeout=60)
    assert err.decode() == ""
    assert proc.returncode == EXIT_BROKEN_PIPE


def test_second_poll_says_another_poll_is_running(world: World, tmp_path: Path) -> None:
    """While one poll runs on a database, a second says so at once (exit 1)."""
    database = tmp_path / "paperbell.db"
    with database_lock(f"{database}.poll", purpose="test"):  # what a running poll holds
        result = paperbell(base_env(database), "poll", "--categories", "cs.LG")
    assert result.code == 1
    assert "another `paperbell poll` is running" in result.one_line()


async def test_writer_waits_out_another_process_holding_the_write_lock(
    world: World, tmp_path: Path
) -> None:
    """An import started while another process holds the write lock for 6 s (longer than
    SQLite's usual 5 s) waits for it and succeeds."""
    database = tmp_path / "paperbell.db"
    assert paperbell(base_env(database), "db", "migrate").code == 0
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        running = asyncio.create_task(
            asyncio.to_thread(paperbell, base_env(database), "import", str(RSS_FIXTURE))
        )
        await asyncio.sleep(6)
        assert not running.done()
    finally:
        holder.execute("COMMIT")
        holder.close()
    result = await running
    assert result.code == 0, result.err
    assert "imported 1504 papers (1504 new)" in result.out


def test_lock_held_too_long_is_one_line_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """When the write lock stays taken past the CLI's wait, it says so: exit 1, one line."""
    database = tmp_path / "paperbell.db"
    for key, value in base_env(database).items():
        monkeypatch.setenv(key, value)
    assert cli.main(["db", "migrate"]) == 0
    capsys.readouterr()
    monkeypatch.setattr(cli_commands, "CLI_BUSY_TIMEOUT", 0.3)
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        code = cli.main(["import", str(RSS_FIXTURE)])
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    err = capsys.readouterr().err
    assert code == 1
    assert err.splitlines() == [
        f"paperbell: database {database} is locked by another process (a poll or an import?) "
        "for over 0.3 s; try again later"
    ]


def test_document_reads_are_capped() -> None:
    """An endless file is read only up to the cap, never until memory runs out."""
    with pytest.raises(DocumentTooLargeError, match="larger than 1 MiB"):
        read_document(Path("/dev/zero"), limit=2**20)
    assert read_document(RSS_FIXTURE) == RSS_FIXTURE.read_bytes()


def _actions(parser: object, path: str) -> Iterator[tuple[str, object]]:
    import argparse

    assert isinstance(parser, argparse.ArgumentParser)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                yield f"{path} {choice.dest}", choice
            for name, sub in action.choices.items():
                yield from _actions(sub, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction):
            yield f"{path} {'/'.join(action.option_strings) or action.dest}", action


def test_help_is_complete() -> None:
    """Every command, action and option has a help text; run --help names DISCORD_TOKEN."""
    import argparse

    missing = [
        where
        for where, action in _actions(cli_parser.build_parser(), "paperbell")
        if isinstance(action, argparse.Action)
        and action.help in (None, "", argparse.SUPPRESS)
        and not isinstance(action, argparse._VersionAction)
    ]
    assert missing == []
    shown = paperbell(base_env("/nonexistent/x.db"), "run", "--help")
    assert shown.code == 0 and shown.err == ""
    assert "DISCORD_TOKEN" in shown.out and "--shard-count" in shown.out
    assert "exit codes" in shown.out
