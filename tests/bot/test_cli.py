"""The `paperbell` command line, run as a real process against a local arXiv server."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.domain.models import Paper
from tests.arxiv_server import FIXTURES, ArxivServer, Scripted

RSS_FIXTURE = FIXTURES / "rss2024_new_all-archives_2024-11-28.xml"
IDLIST_FIXTURE = FIXTURES / "api2026_idlist_0808.05394+1707.08567.xml"


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def env(tmp_path: Path, arxiv_server: ArxivServer) -> dict[str, str]:
    """Environment for the CLI: a fresh database file and the local arXiv server, no delay."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PAPERBELL_", "DISCORD_"))}
    base.update(
        PAPERBELL_DATABASE=str(tmp_path / "cli.db"),
        PAPERBELL_ARXIV_RSS_URL=arxiv_server.rss_url,
        PAPERBELL_ARXIV_API_URL=arxiv_server.api_url,
        PAPERBELL_ARXIV_DELAY="0",
        PAPERBELL_ARXIV_TIMEOUT="5",
    )
    return base


async def paperbell(env: dict[str, str], *args: str) -> Result:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


async def test_import_then_search_author_and_paper_json(env: dict[str, str]) -> None:
    """Importing the real daily listing makes its papers findable by search, author and id."""
    imported = await paperbell(env, "import", str(RSS_FIXTURE))
    assert imported.code == 0, imported.err
    assert "imported 1504 papers (1504 new)" in imported.out

    again = await paperbell(env, "import", str(RSS_FIXTURE))
    assert "(0 new)" in again.out

    found = await paperbell(env, "search", "dark matter halo", "--json", "--limit", "5")
    assert found.code == 0, found.err
    hits = json.loads(found.out)
    assert 1 <= len(hits) <= 5
    for hit in hits:
        assert {
            "id",
            "version",
            "title",
            "authors",
            "primary_category",
            "categories",
            "published",
        } <= hit.keys()
        text = (hit["title"] + hit["abstract"]).lower()
        assert "dark" in text and "matter" in text and "halo" in text

    first = hits[0]
    shown = await paperbell(env, "paper", first["id"], "--json")
    assert shown.code == 0, shown.err
    assert json.loads(shown.out)[0]["title"] == first["title"]

    author = first["authors"][0]
    by_author = await paperbell(env, "author", author, "--json")
    assert by_author.code == 0, by_author.err
    assert first["id"] in {p["id"] for p in json.loads(by_author.out)}


async def test_paper_fetched_from_api_and_stored(
    env: dict[str, str], arxiv_server: ArxivServer
) -> None:
    """An id the store lacks is fetched from the API once, then served from the store."""
    arxiv_server.set_api(IDLIST_FIXTURE.read_bytes())
    first = await paperbell(env, "paper", "https://arxiv.org/abs/1707.08567v1")
    assert first.code == 0, first.err
    assert "Proceedings of Workshop AEW10" in first.out
    assert "Kees A. Schouhamer Immink" in first.out
    api_calls = [r for r in arxiv_server.requests if r.path.startswith("/api")]
    assert len(api_calls) == 1
    assert (
        "User-Agent" in api_calls[0].headers and "paperbell" in api_calls[0].headers["User-Agent"]
    )

    second = await paperbell(env, "paper", "arXiv:1707.08567", "--json")
    assert second.code == 0
    assert json.loads(second.out)[0]["authors"][0] == "Kees A. Schouhamer Immink"
    assert len([r for r in arxiv_server.requests if r.path.startswith("/api")]) == 1


@pytest.mark.parametrize("bad", ["not-an-id", "2313.00001", "x" * 5000, ""])
async def test_invalid_ids_get_one_clear_line(env: dict[str, str], bad: str) -> None:
    """An invalid arXiv id exits 2 with one line and no traceback."""
    result = await paperbell(env, "paper", bad)
    assert result.code == 2
    assert "Traceback" not in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert "arXiv id" in result.err


async def test_unknown_paper_is_not_found(env: dict[str, str], arxiv_server: ArxivServer) -> None:
    """An id arXiv doesn't have (the API silently drops it) is reported as not found."""
    arxiv_server.set_api(IDLIST_FIXTURE.read_bytes())  # holds only 1707.08567
    result = await paperbell(env, "paper", "0808.0539")
    assert result.code == 2
    assert "no paper 0808.0539" in result.err


async def test_poll_stores_and_reports_new_papers(
    env: dict[str, str], arxiv_server: ArxivServer
) -> None:
    """`poll --categories` fetches one combined RSS URL, stores it, and a second poll is a 304."""
    arxiv_server.set_rss(RSS_FIXTURE.read_bytes())
    first = await paperbell(env, "poll", "--categories", "cs.LG,cs.AI", "--json")
    assert first.code == 0, first.err
    papers = json.loads(first.out)
    assert len(papers) == 1504
    assert arxiv_server.requests[-1].path == "/rss/cs.AI+cs.LG"

    second = await paperbell(env, "poll", "--categories", "cs.LG,cs.AI")
    assert second.code == 0
    assert "not_modified" in second.out
    assert arxiv_server.requests[-1].headers.get("If-None-Match")


async def test_poll_dry_run_stores_nothing(
    env: dict[str, str], arxiv_server: ArxivServer, tmp_path: Path
) -> None:
    """`poll --dry-run` shows what is new without writing papers."""
    arxiv_server.set_rss(RSS_FIXTURE.read_bytes())
    result = await paperbell(env, "poll", "--categories", "cs.LG", "--dry-run")
    assert result.code == 0, result.err
    assert "1504 new" in result.out
    with sqlite3.connect(tmp_path / "cli.db") as conn:
        assert conn.execute("SELECT count(*) FROM papers").fetchone()[0] == 0


async def test_poll_rate_exceeded_is_recorded_not_stored(
    env: dict[str, str], arxiv_server: ArxivServer, tmp_path: Path
) -> None:
    """arXiv's HTTP 200 `Rate exceeded.` body ends as a feed error; nothing is stored."""
    for _ in range(2):
        arxiv_server.enqueue(
            Scripted(status=200, body=b"Rate exceeded.", content_type="text/plain")
        )
    env = {**env, "PAPERBELL_ARXIV_MAX_RETRIES": "1"}
    result = await paperbell(env, "poll", "--categories", "cs.LG")
    assert result.code == 1
    assert "error" in result.out
    with sqlite3.connect(tmp_path / "cli.db") as conn:
        assert conn.execute("SELECT count(*) FROM papers").fetchone()[0] == 0
        failures = conn.execute(
            "SELECT consecutive_failures, last_error FROM feed_state"
        ).fetchall()
    assert failures and failures[0][0] == 1 and failures[0][1]


async def test_poll_without_categories_or_subscriptions(env: dict[str, str]) -> None:
    """With nothing subscribed and no --categories, poll says what to do and exits 2."""
    result = await paperbell(env, "poll")
    assert result.code == 2
    assert "--categories" in result.err


async def test_search_input_never_breaks(env: dict[str, str]) -> None:
    """FTS syntax and huge queries are plain text: a clear answer, never a crash."""
    await paperbell(env, "import", str(RSS_FIXTURE))
    for query in ['"unbalanced', "title:foo AND (bar OR", "NEAR(a b) * -x", "^*:"]:
        result = await paperbell(env, "search", query)
        assert result.code == 0, (query, result.err)
    huge = await paperbell(env, "search", "graph " * 1000)
    assert huge.code == 2
    assert "limit is 300" in huge.err


async def test_bad_setting_exits_2_without_traceback(env: dict[str, str]) -> None:
    """A malformed setting is one line on stderr and exit code 2."""
    result = await paperbell({**env, "PAPERBELL_ARXIV_DELAY": "soon"}, "search", "x")
    assert result.code == 2
    assert result.err.strip() == "paperbell: PAPERBELL_ARXIV_DELAY must be a number, got 'soon'"


async def test_unusable_database_exits_2(env: dict[str, str], tmp_path: Path) -> None:
    """A database path that is not a database is reported in one line, exit code 2."""
    bogus = tmp_path / "not-a-db.db"
    bogus.write_bytes(b"this is not sqlite" * 100)
    result = await paperbell({**env, "PAPERBELL_DATABASE": str(bogus)}, "db", "stats")
    assert result.code == 2
    assert "Traceback" not in result.err
    assert "not-a-db.db" in result.err


async def test_db_migrate_stats_backup(env: dict[str, str], tmp_path: Path) -> None:
    """migrate, stats and an online backup that holds the same papers."""
    assert (await paperbell(env, "db", "migrate")).code == 0
    await paperbell(env, "import", str(RSS_FIXTURE))
    stats = await paperbell(env, "db", "stats", "--json")
    assert json.loads(stats.out)["papers"] == 1504
    backup = tmp_path / "backup" / "copy.db"
    result = await paperbell(env, "db", "backup", str(backup))
    assert result.code == 0, result.err
    with sqlite3.connect(backup) as conn:
        assert conn.execute("SELECT count(*) FROM papers").fetchone()[0] == 1504


def _api_paper(number: int, authors: tuple[str, ...]) -> Paper:
    return Paper(
        id=f"2402.{number:05d}",
        version=1,
        title=f"Look-up paper {number}",
        abstract="We study grokking.",
        authors=authors,
        primary_category="cs.LG",
        categories=("cs.LG",),
        published=datetime(2024, 2, number, tzinfo=UTC),
    )


async def test_author_asks_arxiv_once_across_runs(
    env: dict[str, str], arxiv_server: ArxivServer
) -> None:
    """`author` on an empty store lists arXiv's papers by that name; a second run the same
    day (another process) asks nothing; --offline never asks."""
    arxiv_server.set_api_corpus(
        [
            _api_paper(1, ("Shane Legg",)),
            _api_paper(2, ("Sarah Legg",)),
            _api_paper(3, ("S. Legg",)),
        ]
    )
    first = await paperbell(env, "author", "Shane Legg", "--json")
    assert first.code == 0, first.err
    assert [p["id"] for p in json.loads(first.out)] == ["2402.00003", "2402.00001"]
    assert [r.query["search_query"] for r in arxiv_server.api_requests()] == ["au:legg_s"]
    second = await paperbell(env, "author", "Legg, S.")
    assert second.code == 0 and "2402.00003" in second.out
    offline = await paperbell(env, "search", "grokking", "--offline")
    assert offline.code == 0 and "2402.00001" in offline.out
    assert len(arxiv_server.api_requests()) == 1


async def test_search_when_arxiv_fails_prints_stored_results_and_a_note(
    env: dict[str, str], arxiv_server: ArxivServer
) -> None:
    """A 503 from arXiv leaves --json output clean and says why on stderr."""
    arxiv_server.enqueue(Scripted(status=503, path="/api/query"))
    result = await paperbell(env, "search", "grokking", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out) == []
    assert result.err.strip() == (
        "paperbell: Stored results only: arXiv answered with an error (503); "
        "try again in a few minutes."
    )


async def test_db_stats_shows_the_last_listings_and_why_none_today(
    env: dict[str, str], arxiv_server: ArxivServer
) -> None:
    """After a poll, `db stats` counts the listing's announcements by type, and says plainly
    that there is no listing for today (the fixture's day is long past)."""
    arxiv_server.set_rss(RSS_FIXTURE.read_bytes())
    assert (await paperbell(env, "poll", "--categories", "cs.LG")).code == 0
    stats = await paperbell(env, "db", "stats")
    assert stats.code == 0, stats.err
    assert "2024-11-28  1,504: 926 new, 9 cross, 569 replace" in stats.out
    assert "arXiv does not announce on Friday or" in stats.out
    listings = json.loads((await paperbell(env, "db", "stats", "--json")).out)["listings"]
    assert listings == [
        {"date": "2024-11-28", "new": 926, "cross": 9, "replace": 569, "replace-cross": 0}
    ]


async def test_similar_lists_stored_papers_like_one(
    env: dict[str, str], arxiv_server: ArxivServer
) -> None:
    """`similar ID` lists the papers most like a stored one, never itself; bad ids exit 2."""
    await paperbell(env, "import", str(RSS_FIXTURE))
    found = await paperbell(env, "similar", "arXiv:2411.17702", "--json")
    assert found.code == 0, found.err
    hits = json.loads(found.out)
    ids = [hit["id"] for hit in hits]
    assert len(ids) == 10 and len(set(ids)) == 10 and "2411.17702" not in ids
    assert ids[0] == "2411.17711"  # the other electrocardiogram paper
    scores = [hit["score"] for hit in hits]
    assert scores == sorted(scores, reverse=True)

    three = await paperbell(env, "similar", "2411.17702", "--limit", "3")
    assert three.code == 0, three.err
    lines = three.out.splitlines()
    assert lines[0].startswith("papers like 2411.17702: Finding")
    assert [line.split()[0] for line in lines[2:] if not line.startswith(" ")] == ids[:3]

    bad = await paperbell(env, "similar", "not-an-id")
    assert bad.code == 2 and "arXiv id" in bad.err and "Traceback" not in bad.err
    arxiv_server.set_api(IDLIST_FIXTURE.read_bytes())  # holds only 1707.08567
    unknown = await paperbell(env, "similar", "0808.0539")
    assert unknown.code == 2 and "no paper 0808.0539" in unknown.err
