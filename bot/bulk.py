"""Filling the catalogue in bulk: arXiv's metadata snapshot and saved OAI-PMH pages.

Catalogue filling never alerts: papers go through `CatalogueWriter`, which
stores them (idempotently: a re-import changes nothing) and never matches
subscriptions or touches the outbox. A snapshot is read as a stream, one
batch at a time, so memory stays flat whatever the file's size; bad lines
are counted and reported with their line numbers, and the import goes on.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import multiprocessing
import os
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, cast

from bot.arxiv import snapshot
from bot.arxiv.snapshot import (
    SnapshotLineError,
    iter_snapshot,
    looks_like_snapshot,
    parse_chunk,
    skip_rest_of_line,
    too_long,
)
from bot.domain.models import Paper
from bot.gc_pause import rare_collections
from bot.progress import BulkProgress
from storage.catalogue import CatalogueWriter, StoreResult
from storage.prepared import AuthorKeys, KeyMemo, PreparedPaper, prepare

log = logging.getLogger(__name__)

# Papers per transaction. 10,000 (with AHEAD 8) imported 7-9 % faster than 5,000 (with 4):
# fewer commits and search-index segments, and the parsers stay ahead of a longer store.
BATCH_SIZE = 10_000
MAX_REPORTED_LINES = 1_000  # bad lines kept for the report; all are counted
GZIP_MAGIC = b"\x1f\x8b"
PARALLEL_MIN_BYTES = 32 * 2**20  # smaller files are parsed here: a worker takes ~1 s to start
CHUNK_BYTES = 4 * 2**20  # lines handed to the worker at a time
WORKER_NICENESS = 10  # see _yield_to_the_writer
AHEAD = 8  # chunks (~2,400 papers each) parsed ahead of the one being stored, at most
WORKERS = 2  # parser processes: parsing and preparing cost about what storing does

# (rows, author keys not handed over before, bad lines, lines read): one parsed chunk.
Prepared = tuple[list[PreparedPaper], AuthorKeys, list[tuple[int, str]], int]

_KEYS = KeyMemo()  # a worker process's own, across the chunks it parses


def _yield_to_the_writer() -> None:
    """Run a parser process at a lower priority than the writer's.

    The writer (this process's SQLite thread and the Python around it) is the
    import's bottleneck, and the parsers only work `AHEAD` chunks in front of
    it: given the CPU first, it sets the pace, and the parsers fill the rest.
    """
    try:
        os.nice(WORKER_NICENESS)
    except OSError:  # not allowed here: same priority, a slower import
        log.debug("could not lower the parser process's priority")


def prepare_chunk(data: bytes, first_line: int) -> Prepared:
    """`parse_chunk`, with each paper made into the rows the store writes (in a worker)."""
    papers, errors, lines = parse_chunk(data, first_line)
    rows = [prepare(p) for p in papers]
    return rows, _KEYS.new_keys(rows), errors, lines


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


MAX_DOCUMENT_BYTES = 100 * 2**20  # a saved listing or API page; the largest real ones are ~10 MiB
_READ_CHUNK = 2**20


class DocumentTooLargeError(Exception):
    """A document to import is larger than MAX_DOCUMENT_BYTES (or endless, like /dev/zero)."""


def read_document(path: Path, limit: int = MAX_DOCUMENT_BYTES) -> bytes:
    """A saved XML document's bytes, gunzipped when it is gzipped, read in chunks and
    abandoned once past `limit` (after decompression): never unbounded."""
    chunks: list[bytes] = []
    size = 0
    with ExitStack() as stack:
        stream, _ = open_maybe_gzip(path, stack)
        while chunk := stream.read(_READ_CHUNK):
            size += len(chunk)
            if size > limit:
                raise DocumentTooLargeError(
                    f"{path}: larger than {limit // 2**20} MiB; one saved document is far smaller"
                )
            chunks.append(chunk)
    return b"".join(chunks)


class SnapshotImporter:
    """Streams snapshot files into the catalogue in batches.

    With `parallel` (by default for files over `PARALLEL_MIN_BYTES`) the JSON is
    parsed by `WORKERS` processes while this one stores the previous batch,
    `AHEAD` chunks ahead at most, so memory stays bounded; the papers come back
    as the rows the store writes (`storage.prepared`), which this process, the
    one SQLite writer, only numbers and inserts. Smaller files are parsed here
    and stored as `Paper`s, the path the bot's polls take.
    """

    def __init__(
        self,
        writer: CatalogueWriter,
        *,
        batch_size: int = BATCH_SIZE,
        progress_stream: IO[str] | None = None,
        live: bool | None = None,
        parallel: bool | None = None,
    ) -> None:
        self._writer = writer
        self._batch_size = batch_size
        self._progress_stream = progress_stream
        self._live = live
        self._parallel = parallel

    async def import_file(self, path: Path, *, now: datetime | None = None) -> BulkReport:
        report = BulkReport()
        started = time.perf_counter()
        size = path.stat().st_size
        parallel = self._parallel if self._parallel is not None else size >= PARALLEL_MIN_BYTES
        with ExitStack() as stack:
            stack.enter_context(rare_collections())  # see bot.gc_pause
            stream, raw = open_maybe_gzip(path, stack)
            progress = stack.enter_context(
                BulkProgress(
                    f"import {path.name}",
                    size,
                    stream=self._progress_stream,  # type: ignore[arg-type]
                    live=self._live,
                )
            )

            def stored(count: int, result: StoreResult) -> None:
                report.papers += count
                report.new += result.new
                report.updated += result.updated
                report.unchanged += result.unchanged
                progress.update(completed=raw.tell(), records=report.papers)

            if parallel:
                async for rows, keys in self._prepared_elsewhere(stream, report, stack):
                    stored(len(rows), await self._writer.store_prepared(rows, keys=keys, now=now))
            else:
                for batch in self._batches(stream, report):
                    stored(len(batch), await self._writer.store(batch, now=now))
            progress.update(completed=size, records=report.papers, force=True)
        report.seconds = time.perf_counter() - started
        log.info(
            "snapshot imported file=%s lines=%d papers=%d new=%d updated=%d bad=%d seconds=%.1f",
            path.name, report.lines, report.papers, report.new, report.updated,
            report.bad_lines, report.seconds,
        )  # fmt: skip
        return report

    def _bad(self, report: BulkReport, error: SnapshotLineError) -> None:
        report.bad_lines += 1
        if len(report.errors) < MAX_REPORTED_LINES:
            report.errors.append(error)
        log.debug("snapshot bad %s", error)

    def _batches(self, stream: IO[bytes], report: BulkReport) -> Iterator[list[Paper]]:
        batch: list[Paper] = []
        for item in iter_snapshot(stream):
            report.lines += 1
            if isinstance(item, SnapshotLineError):
                self._bad(report, item)
                continue
            batch.append(item)
            if len(batch) >= self._batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    async def _prepared_elsewhere(
        self, stream: IO[bytes], report: BulkReport, stack: ExitStack
    ) -> AsyncIterator[tuple[list[PreparedPaper], AuthorKeys]]:
        """Batches prepared by worker processes, `AHEAD` chunks in flight at most, in order."""
        pool = stack.enter_context(
            ProcessPoolExecutor(
                max_workers=WORKERS,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_yield_to_the_writer,
            )
        )
        loop = asyncio.get_running_loop()
        pending: deque[asyncio.Future[Prepared]] = deque()
        chunks = _line_chunks(stream, report, self._bad)
        batch: list[PreparedPaper] = []
        keys: AuthorKeys = {}
        exhausted = False
        while pending or not exhausted:
            while not exhausted and len(pending) < AHEAD:
                chunk = next(chunks, None)
                if chunk is None:
                    exhausted = True
                else:
                    pending.append(loop.run_in_executor(pool, prepare_chunk, *chunk))
            if not pending:
                break
            rows, chunk_keys, errors, lines = await pending.popleft()
            report.lines += lines
            for number, reason in errors:
                self._bad(report, SnapshotLineError(number, reason))
            batch.extend(rows)
            keys.update(chunk_keys)
            if len(batch) >= self._batch_size:
                yield batch, keys
                batch, keys = [], {}
        if batch:
            yield batch, keys


def _line_chunks(
    stream: IO[bytes],
    report: BulkReport,
    bad: Callable[[BulkReport, SnapshotLineError], None],
) -> Iterator[tuple[bytes, int]]:
    """(whole lines, number of the first) of about `CHUNK_BYTES` each, read in blocks.

    A line over `MAX_LINE_BYTES` is reported here and read past without being
    kept; a blank line takes its place so the numbering of the rest stays right.
    """
    cap = snapshot.MAX_LINE_BYTES
    first = 1
    # A block no longer than the cap: every line it holds whole is short enough.
    while block := stream.read(min(CHUNK_BYTES, cap)):
        if not block.endswith(b"\n"):
            start = block.rfind(b"\n") + 1  # of the line the block cuts
            limit = cap + 1 - (len(block) - start)
            rest = stream.readline(limit)
            if rest.endswith(b"\n"):
                block += rest
            elif len(rest) < limit:  # the file's last line, without its newline
                block += rest + b"\n"
            else:
                number = first + block.count(b"\n", 0, start)
                report.lines += 1
                bad(report, too_long(number))
                skip_rest_of_line(stream)
                block = block[:start] + b"\n"
        yield block, first
        first += block.count(b"\n")
