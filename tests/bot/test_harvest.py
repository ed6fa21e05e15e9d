"""`paperbell harvest` against a local OAI-PMH server: pages, flow control, errors, resuming."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from bot.arxiv.client import DEFAULT_USER_AGENT, ArxivClient
from bot.arxiv.limiter import RequestLimiter
from bot.domain.errors import UpstreamError
from bot.domain.models import DestinationKind, SubscriptionKind
from bot.harvest import Harvester
from bot.services import PaperService
from storage.backend import AnyDatabase
from storage.harvests import HarvestStateRepository, harvest_key
from storage.outbox import DeliveryOutbox
from storage.papers import PaperRepository
from storage.subscriptions import SubscriptionRepository
from tests.arxiv_server import (
    ArxivServer,
    Scripted,
    oai_error,
    oai_list_records,
    oai_raw_record,
)
from tests.storage.conftest import build_paper

TOTAL = 7


def record(n: int) -> str:
    """Record n of the harvest: 2411.0000n, two versions, a TeX accent in one name."""
    return oai_raw_record(
        f"2411.{n:05d}",
        f"Paper number {n} on harvesting",
        "Gr\\'egoire Del\\'etang, Shane Legg and Pedro A. Ortega",
        versions=("Mon, 4 Nov 2024 10:00:00 GMT", "Tue, 12 Nov 2024 09:30:00 GMT"),
    )


def three_pages() -> tuple[bytes, dict[str, bytes]]:
    """Seven records (one deleted) on three pages joined by resumption tokens."""
    first = oai_list_records(
        [record(1), record(2), record(3)], token="tok|3", cursor=0, complete_list_size=TOTAL
    )
    second = oai_list_records(
        [record(4), oai_raw_record("2411.00099", "", "", deleted=True), record(5)],
        token="tok|6",
        cursor=3,
        complete_list_size=TOTAL,
    )
    third = oai_list_records([record(6)], token=None, cursor=6, complete_list_size=TOTAL)
    return first, {"tok|3": second, "tok|6": third}


@pytest.fixture
async def oai(arxiv_server: ArxivServer) -> ArxivServer:
    first, rest = three_pages()
    arxiv_server.set_oai(first, rest)
    return arxiv_server


@pytest.fixture
async def client(oai: ArxivServer) -> AsyncIterator[tuple[ArxivClient, list[float]]]:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async with aiohttp.ClientSession() as session:
        yield (
            ArxivClient(
                session,
                oai_url=oai.oai_url,
                limiter=RequestLimiter(0),
                user_agent=DEFAULT_USER_AGENT,
                timeout=5,
                sleep=sleep,
            ),
            slept,
        )


async def stored_ids(db: AnyDatabase) -> list[str]:
    return [str(r[0]) for r in await db.fetchall("SELECT id FROM papers ORDER BY id")]


EXPECTED = [f"2411.{n:05d}" for n in range(1, 7)]


async def test_three_pages_with_a_503_in_between(
    any_db: AnyDatabase, oai: ArxivServer, client: tuple[ArxivClient, list[float]]
) -> None:
    """Tokens are followed, a 503's Retry-After is waited out, every record is stored once."""
    arxiv, slept = client
    oai.enqueue(Scripted(status=503, headers={"Retry-After": "7"}, path="/oai"))
    # The 503 answers the first request; the retry and two token pages follow.
    report = await Harvester(any_db, arxiv, live=False).run(set_spec="cs")
    assert (report.pages, report.records, report.papers, report.deleted) == (3, 7, 6, 1)
    assert report.new == 6 and report.total_records == TOTAL
    assert len(slept) == 1 and 7 <= slept[0] <= 8  # Retry-After, plus at most 1 s jitter
    queries = [r.query for r in oai.requests if r.path == "/oai"]
    assert queries == [
        {"verb": "ListRecords", "metadataPrefix": "arXivRaw", "set": "cs"},
        {"verb": "ListRecords", "metadataPrefix": "arXivRaw", "set": "cs"},
        {"verb": "ListRecords", "resumptionToken": "tok|3"},
        {"verb": "ListRecords", "resumptionToken": "tok|6"},
    ]
    assert await stored_ids(any_db) == EXPECTED
    paper = await PaperRepository(any_db).get("2411.00004")
    assert paper is not None and paper.version == 2
    assert paper.published is not None and paper.published.day == 4
    assert paper.authors == ("Grégoire Delétang", "Shane Legg", "Pedro A. Ortega")
    state = await HarvestStateRepository(any_db).get(harvest_key("arXivRaw", "cs", "", ""))
    assert state is not None and state.finished and state.records == TOTAL


async def test_harvest_never_alerts(
    any_db: AnyDatabase, oai: ArxivServer, client: tuple[ArxivClient, list[float]]
) -> None:
    """Harvested papers in a subscribed category queue no alert (an announced one would)."""
    subs = SubscriptionRepository(any_db)
    channel = await subs.ensure_destination(DestinationKind.CHANNEL, 555, 1)
    await subs.add(
        channel, SubscriptionKind.CATEGORY, "cs.LG", "cs.LG", "",
        include_cross=True, include_replacements=True, created_by=9, now=datetime.now(UTC),
    )  # fmt: skip
    await Harvester(any_db, client[0], live=False).run()
    assert len(await stored_ids(any_db)) == 6
    outbox = DeliveryOutbox(any_db)
    assert await outbox.pending_count() == 0
    polled = build_paper(9999)
    assert (await PaperService(any_db, None).announce([polled])).deliveries == 1
    assert await outbox.pending_count() == 1


async def test_bad_resumption_token_restarts_the_set(
    any_db: AnyDatabase, oai: ArxivServer, client: tuple[ArxivClient, list[float]]
) -> None:
    """An expired token (OAI `badResumptionToken`) starts that harvest over from page one."""
    oai.enqueue(
        Scripted(passthrough=True, path="/oai"),  # page 1, then page 2's token has expired
        Scripted(body=oai_error("badResumptionToken", "expired"), path="/oai"),
    )
    report = await Harvester(any_db, client[0], live=False).run()
    assert report.restarts == 1
    tokens = [r.query.get("resumptionToken") for r in oai.requests if r.path == "/oai"]
    assert tokens == [None, "tok|3", None, "tok|3", "tok|6"]
    assert await stored_ids(any_db) == EXPECTED
    state = await HarvestStateRepository(any_db).get(harvest_key("arXivRaw", "", "", ""))
    assert state is not None and state.finished and state.records == TOTAL and state.restarts == 1


async def test_error_answer_stops_with_progress_kept(
    any_db: AnyDatabase, oai: ArxivServer, client: tuple[ArxivClient, list[float]]
) -> None:
    """An OAI `<error>` mid-harvest stops it with a clear message; the next run resumes."""
    oai.enqueue(
        Scripted(passthrough=True, path="/oai"),
        Scripted(body=oai_error("badArgument", "Illegal argument"), path="/oai"),
    )
    harvester = Harvester(any_db, client[0], live=False)
    with pytest.raises(UpstreamError, match=r"badArgument.*run the same command again"):
        await harvester.run()
    assert await stored_ids(any_db) == EXPECTED[:3]
    report = await harvester.run()
    assert report.resumed_at == 3 and report.pages == 2 and report.total_records == TOTAL
    tokens = [r.query.get("resumptionToken") for r in oai.requests if r.path == "/oai"]
    assert tokens == [None, "tok|3", "tok|3", "tok|6"]
    assert await stored_ids(any_db) == EXPECTED


async def test_killed_harvest_resumes_without_loss_or_doubles(
    tmp_path: Path, oai: ArxivServer
) -> None:
    """SIGKILL while page 2 is in flight; the next `paperbell harvest` asks for page 2, not 1."""
    database = tmp_path / "harvest.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAPERBELL_", "DISCORD_"))}
    env.update(
        PAPERBELL_DATABASE=str(database),
        PAPERBELL_ARXIV_OAI_URL=oai.oai_url,
        PAPERBELL_ARXIV_DELAY="0",
        PAPERBELL_ARXIV_TIMEOUT="30",
    )
    # Page 1 at once; page 2 hangs until the process is killed.
    oai.enqueue(
        Scripted(passthrough=True, path="/oai"), Scripted(passthrough=True, delay=30, path="/oai")
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "harvest", "--set", "cs",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        await oai.wait_for_requests(2, timeout=30)
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    assert proc.returncode == -signal.SIGKILL
    with sqlite3.connect(database) as conn:
        assert conn.execute("SELECT count(*) FROM papers").fetchone() == (3,)
        assert conn.execute(
            "SELECT resumption_token, records, finished_at FROM harvest_state"
        ).fetchone() == ("tok|3", 3, None)
    again = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "harvest", "--set", "cs",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(again.communicate(), timeout=60)
    assert again.returncode == 0, err.decode()
    assert "resumed at record 3" in out.decode()
    assert "7 records in this harvest" in out.decode()
    tokens = [r.query.get("resumptionToken") for r in oai.requests if r.path == "/oai"]
    assert tokens == [None, "tok|3", "tok|3", "tok|6"]  # page 1 fetched once
    with sqlite3.connect(database) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM papers ORDER BY id")]
        state = conn.execute("SELECT records, pages, finished_at FROM harvest_state").fetchone()
    assert ids == EXPECTED
    assert state[0] == TOTAL and state[1] == 3 and state[2] is not None
