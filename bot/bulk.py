"""Filling the catalogue in bulk: arXiv's metadata snapshot and saved OAI-PMH pages.

Catalogue filling never alerts: papers go through `CatalogueWriter`, which
stores them (idempotently: a re-import changes nothing) and never matches
subscriptions or touches the outbox. A snapshot is read as a stream, one
batch at a time, so memory stays flat whatever the file's size; bad lines
are counted and reported with their line numbers, and the import goes on.
"""

from __future__ import annotations

import gzip
import logging
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, cast

from bot.arxiv.snapshot import SnapshotLineError, iter_snapshot, looks_like_snapshot
from bot.progress import BulkProgress
from storage.catalogue import CatalogueWriter
from storage.models import Paper

log = logging.getLogger(__name__)

BATCH_SIZE = 5_000
MAX_REPORTED_LINES = 1_000  # bad lines kept for the report; all are counted
GZIP_MAGIC = b"\x1f\x8b"


@dataclass(slots=True)
class BulkReport:
    """What one bulk import did."""

    lines: int = 0
    papers: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    bad_lines: int = 0
    errors: list[SnapshotLineError] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.papers / self.seconds if self.seconds > 0 else 0.0


def open_maybe_gzip(path: Path, stack: ExitStack) -> tuple[IO[bytes], IO[bytes]]:
    """(stream of the decompressed content, the raw file for progress by bytes read)."""
    raw = stack.enter_context(path.open("rb"))
    if raw.read(2) == GZIP_MAGIC:
        raw.seek(0)
        unzipped = gzip.GzipFile(fileobj=raw, mode="rb")
        stack.callback(unzipped.close)
        return cast(IO[bytes], unzipped), raw
    raw.seek(0)
    return raw, raw


def is_snapshot(path: Path) -> bool:
    """Whether the file (plain or gzipped) holds JSON lines rather than an XML document."""
    with ExitStack() as stack:
        stream, _ = open_maybe_gzip(path, stack)
        try:
            head = stream.read(256)
        except (OSError, EOFError):
            return False
    return looks_like_snapshot(head)


def read_document(path: Path) -> bytes:
    """A saved XML document's bytes, gunzipped when it is gzipped."""
    with ExitStack() as stack:
        stream, _ = open_maybe_gzip(path, stack)
        return stream.read()


class SnapshotImporter:
    """Streams snapshot files into the catalogue in batches."""

    def __init__(
        self,
        writer: CatalogueWriter,
        *,
        batch_size: int = BATCH_SIZE,
        progress_stream: IO[str] | None = None,
        live: bool | None = None,
    ) -> None:
        self._writer = writer
        self._batch_size = batch_size
        self._progress_stream = progress_stream
        self._live = live

    async def import_file(self, path: Path, *, now: datetime | None = None) -> BulkReport:
        report = BulkReport()
        started = time.perf_counter()
        size = path.stat().st_size
        with ExitStack() as stack:
            stream, raw = open_maybe_gzip(path, stack)
            progress = stack.enter_context(
                BulkProgress(
                    f"import {path.name}",
                    size,
                    stream=self._progress_stream,  # type: ignore[arg-type]
                    live=self._live,
                )
            )
            for batch in self._batches(stream, report):
                result = await self._writer.store(batch, now=now)
                report.papers += len(batch)
                report.new += result.new
                report.updated += result.updated
                report.unchanged += result.unchanged
                progress.update(completed=raw.tell(), records=report.papers)
            progress.update(completed=size, records=report.papers, force=True)
        report.seconds = time.perf_counter() - started
        log.info(
            "snapshot imported file=%s lines=%d papers=%d new=%d updated=%d bad=%d seconds=%.1f",
            path.name, report.lines, report.papers, report.new, report.updated,
            report.bad_lines, report.seconds,
        )  # fmt: skip
        return report

    def _batches(self, stream: IO[bytes], report: BulkReport) -> Iterator[list[Paper]]:
        batch: list[Paper] = []
        for item in iter_snapshot(stream):
            report.lines += 1
            if isinstance(item, SnapshotLineError):
                report.bad_lines += 1
                if len(report.errors) < MAX_REPORTED_LINES:
                    report.errors.append(item)
                log.debug("snapshot bad %s", item)
                continue
            batch.append(item)
            if len(batch) >= self._batch_size:
                yield batch
                batch = []
        if batch:
            yield batch
