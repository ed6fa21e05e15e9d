"""`paperbell poll` and `paperbell import` on listings with broken items: report and go on."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from pathlib import Path

import pytest

from tests.arxiv_server import ArxivServer
from tests.bot.arxiv.hostile import OVERFLOW_DATE, rss_item, rss_listing


@pytest.fixture
def env(tmp_path: Path, arxiv_server: ArxivServer) -> dict[str, str]:
    """A fresh database file and the local arXiv server, no delay."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PAPERBELL_", "DISCORD_"))}
    base.update(
        PAPERBELL_DATABASE=str(tmp_path / "cli.db"),
        PAPERBELL_ARXIV_RSS_URL=arxiv_server.rss_url,
        PAPERBELL_ARXIV_API_URL=arxiv_server.api_url,
        PAPERBELL_ARXIV_DELAY="0",
        PAPERBELL_ARXIV_TIMEOUT="5",
    )
    return base


async def paperbell(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def stored_ids(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {row[0] for row in conn.execute("SELECT id FROM papers")}


async def test_poll_with_year_9999_dates_reports_the_item_and_exits_0(
    env: dict[str, str], arxiv_server: ArxivServer, tmp_path: Path
) -> None:
    """A channel pubDate and an item dated `Fri, 31 Dec 9999 23:00:00 -1200` no longer crash
    `poll`: the item is named on stderr with its reason, the others are stored."""
    items = [rss_item(1), rss_item(2, pub_date=OVERFLOW_DATE), rss_item(3)]
    arxiv_server.set_rss(rss_listing(items, pub_date=OVERFLOW_DATE))
    code, out, err = await paperbell(env, "poll", "--categories", "cs.LG")
    assert code == 0, err
    assert "Traceback" not in err
    assert "2 items, 2 new, 1 skipped" in out
    assert "item 2 (oai:arXiv.org:2412.00002v1) skipped: date 'Fri, 31 Dec 9999" in err
    assert stored_ids(tmp_path / "cli.db") == {"2412.00001", "2412.00003"}


async def test_import_reports_a_bad_item_and_goes_on(env: dict[str, str], tmp_path: Path) -> None:
    """`import` of a file with an out-of-range item and one over a size cap stores the rest,
    names both items with their reasons, and goes on to the next file."""
    bad = tmp_path / "bad.xml"
    bad.write_bytes(
        rss_listing([rss_item(1, pub_date=OVERFLOW_DATE), rss_item(2, title="T" * 5000)])
    )
    good = tmp_path / "good.xml"
    good.write_bytes(rss_listing([rss_item(3)]))
    code, out, err = await paperbell(env, "import", str(bad), str(good))
    assert code == 0, err
    assert "Traceback" not in err
    assert "imported 1 papers (1 new) from 2 files, 2 items skipped" in out
    lines = err.splitlines()
    assert any("bad.xml: item 1 (oai:arXiv.org:2412.00001v1) skipped: date" in x for x in lines)
    assert any(
        "bad.xml: item 2 (oai:arXiv.org:2412.00002v1) skipped: title 5,000" in x for x in lines
    )
    assert stored_ids(tmp_path / "cli.db") == {"2412.00003"}
