"""`paperbell import` of arXiv's metadata snapshot: streamed, bad lines reported, idempotent."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot import bulk
from bot.arxiv import snapshot
from bot.bulk import SnapshotImporter
from bot.domain.models import DestinationKind, SubscriptionKind
from bot.services import PaperService
from storage.backend import AnyDatabase
from storage.catalogue import CatalogueWriter
from storage.outbox import DeliveryOutbox
from storage.papers import PaperRepository
from storage.subscriptions import SubscriptionRepository


def record(arxiv_id: str, *, versions: int = 1, **changes: object) -> dict[str, object]:
    created = [
        {"version": f"v{n}", "created": f"Mon, {n} Apr 2007 19:18:42 GMT"}
        for n in range(1, versions + 1)
    ]
    base: dict[str, object] = {
        "id": arxiv_id,
        "submitter": "Someone",
        "authors": "Shane Legg, Marcus Hutter",
        "title": f"Universal intelligence number {arxiv_id}",
        "comments": None,
        "journal-ref": None,
        "doi": None,
        "report-no": None,
        "categories": "cs.AI cs.LG",
        "license": None,
        "abstract": "  A definition of machine\nintelligence.\n",
        "versions": created,
        "update_date": "2007-04-02",
        "authors_parsed": [["Legg", "Shane", ""], ["Hutter", "Marcus", ""]],
    }
    base.update(changes)
    return base


def snapshot_lines() -> list[bytes]:
    """Good lines, three kinds of bad line, a duplicate (newer version) and a TeX-accented name."""
    rows = [
        json.dumps(record("0712.3329")),  # 1
        "{this is not json",  # 2: invalid JSON
        json.dumps(record("0712.3330", versions=1)),  # 3
        json.dumps({k: v for k, v in record("0712.3331").items() if k != "id"}),  # 4: no id
        "",  # 5: blank, skipped
        json.dumps(record("not-an-id/123")),  # 6: not an arXiv id
        json.dumps(record("0712.3330", versions=3)),  # 7: the same paper, v3
        json.dumps(
            record(
                "math/0611800",
                authors="Gr\\'egoire Del\\'etang",
                authors_parsed=[["Del\\'etang", "Gr\\'egoire", ""]],
                title='Schr\\"odinger bridges',
            )
        ),  # 8
    ]
    return [r.encode() + b"\n" for r in rows]


@pytest.fixture(params=["plain", "gzip"])
def snapshot_file(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    data = b"".join(snapshot_lines())
    if request.param == "gzip":
        path = tmp_path / "arxiv-metadata-oai-snapshot.json.gz"
        path.write_bytes(gzip.compress(data))
    else:
        path = tmp_path / "arxiv-metadata-oai-snapshot.json"
        path.write_bytes(data)
    return path


async def dump(db: AnyDatabase) -> list[object]:
    """Everything the catalogue holds, to compare stores before and after."""
    tables = {
        "papers": "SELECT * FROM papers ORDER BY rowid",
        "authors": "SELECT * FROM authors ORDER BY id",
        "paper_authors": "SELECT * FROM paper_authors ORDER BY author_id, paper_rowid",
        "paper_categories": "SELECT * FROM paper_categories ORDER BY category, paper_rowid",
    }
    return [[tuple(r) for r in await db.fetchall(sql)] for sql in tables.values()]


async def test_snapshot_import(any_db: AnyDatabase, snapshot_file: Path) -> None:
    """Good lines stored, bad ones reported by number, the duplicate merged; re-import: no-op."""
    service = PaperService(any_db, None)
    report = await service.import_files([snapshot_file], progress_stream=io.StringIO())
    assert report.errors == []
    assert (report.papers, report.new, report.bad_lines) == (4, 3, 3)
    reported = [(e.line, e.reason) for _, e in report.line_errors]
    assert [n for n, _ in reported] == [2, 4, 6]
    assert "invalid JSON" in reported[0][1] and reported[1][1] == "no id"
    assert "not an arXiv id" in reported[2][1]

    repo = PaperRepository(any_db)
    assert await repo.count() == 3
    merged = await repo.get("0712.3330")
    assert merged is not None and merged.version == 3
    assert merged.published == datetime(2007, 4, 1, 19, 18, 42, tzinfo=UTC)
    assert merged.abstract == "A definition of machine intelligence."
    assert merged.categories == ("cs.AI", "cs.LG")

    before = await dump(any_db)
    again = await service.import_files([snapshot_file], progress_stream=io.StringIO())
    assert (again.papers, again.new, again.bad_lines) == (4, 0, 3)
    assert await dump(any_db) == before


async def test_tex_accented_author_found_by_plain_spelling(
    any_db: AnyDatabase, snapshot_file: Path
) -> None:
    """`Del\\'etang` in authors_parsed is found as "Gregoire Deletang", and its title by search."""
    await PaperService(any_db, None).import_files([snapshot_file], progress_stream=io.StringIO())
    repo = PaperRepository(any_db)
    match = await repo.by_author("Gregoire Deletang")
    assert [p.id for p in match.papers] == ["math/0611800"]
    assert match.papers[0].authors == ("Grégoire Delétang",)
    assert [h.paper.id for h in await repo.search("schrodinger bridges")] == ["math/0611800"]


async def test_snapshot_import_never_alerts(any_db: AnyDatabase, tmp_path: Path) -> None:
    """Imported papers in a subscribed category queue no alert."""
    subs = SubscriptionRepository(any_db)
    channel = await subs.ensure_destination(DestinationKind.CHANNEL, 77, 1)
    await subs.add(
        channel, SubscriptionKind.CATEGORY, "cs.AI", "cs.AI", "",
        include_cross=True, include_replacements=True, created_by=9, now=datetime.now(UTC),
    )  # fmt: skip
    path = tmp_path / "snap.json"
    path.write_bytes(b"".join(snapshot_lines()))
    report = await PaperService(any_db, None).import_files([path], progress_stream=io.StringIO())
    assert report.new == 3
    assert await DeliveryOutbox(any_db).pending_count() == 0


@pytest.mark.parametrize("parallel", [False, True], ids=["here", "worker-process"])
async def test_streams_in_batches(
    any_db: AnyDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parallel: bool
) -> None:
    """A file bigger than a batch (and than a worker's chunk) is stored whole, bad and
    over-long lines reported with their numbers; progress lines name the records."""
    monkeypatch.setattr(bulk, "CHUNK_BYTES", 20_000)
    # One cap for both readers (`capped_lines`): lines cut into chunks and read one by one.
    monkeypatch.setattr(snapshot, "MAX_LINE_BYTES", 5_000)
    rows = [json.dumps(record(f"0801.{n:04d}")).encode() for n in range(1, 1201)]
    rows[99] = b"{broken"  # line 100
    rows[699] = b'{"id": "0801.0700", "title": "' + b"x" * 6_000 + b'"}'  # line 700: too long
    rows.insert(1000, b"")  # a blank line 1001 shifts the rest
    path = tmp_path / "many.json"
    path.write_bytes(b"\n".join(rows) + b"\n")
    progress = io.StringIO()
    async with CatalogueWriter(any_db) as writer:
        done = await SnapshotImporter(
            writer, batch_size=500, progress_stream=progress, live=False, parallel=parallel
        ).import_file(path)
    assert (done.papers, done.new, done.lines, done.bad_lines) == (1198, 1198, 1200, 2)
    assert sorted((e.line, e.reason.split(" ")[0]) for e in done.errors) == [
        (100, "invalid"), (700, "longer"),
    ]  # fmt: skip
    assert await PaperRepository(any_db).count() == 1198
    assert "1,198 records" in progress.getvalue()


async def test_cli_import_reports_bad_lines(tmp_path: Path, snapshot_file: Path) -> None:
    """`paperbell import` prints the counts and one stderr line per bad line; exit code 0."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAPERBELL_", "DISCORD_"))}
    env["PAPERBELL_DATABASE"] = str(tmp_path / "cli.db")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "import", str(snapshot_file),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    assert "imported 4 papers (3 new) from 1 files" in out.decode()
    assert "skipped 3 bad lines" in out.decode()
    lines = [ln for ln in err.decode().splitlines() if ln.startswith("paperbell:")]
    assert [ln.split(": ", 2)[2].split(":")[0] for ln in lines] == ["line 2", "line 4", "line 6"]
