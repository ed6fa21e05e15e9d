"""Progress of long bulk jobs (snapshot import, OAI-PMH harvest): records, rate, ETA.

On a terminal it is a `rich` progress bar redrawn in place; anywhere else
(a pipe, a log file, systemd) it is one plain line per step, at most one every
`LINE_INTERVAL` seconds unless the step is a page the caller wants shown.
"""

from __future__ import annotations

import logging
import sys
import time
from types import TracebackType
from typing import TYPE_CHECKING, Self, TextIO

if TYPE_CHECKING:
    # Imported where the bar is drawn: `paperbell run` never draws one, and rich
    # costs it about 7 MiB of memory.
    from rich.progress import Progress, TaskID

log = logging.getLogger(__name__)

LINE_INTERVAL = 5.0


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


class BulkProgress:
    """Shows `records` done and how far through `total` (bytes or records) the job is."""

    def __init__(
        self,
        description: str,
        total: int | None,
        *,
        stream: TextIO | None = None,
        live: bool | None = None,
    ) -> None:
        self.description = description
        self.total = total
        self._stream = stream or sys.stderr
        self._live = self._stream.isatty() if live is None else live
        self._started = time.monotonic()
        self._last_line = 0.0
        self._records = 0
        self._last_shown: tuple[int, int] | None = None
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> Self:
        if self._live:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("{task.percentage:>5.1f}%"),
                TextColumn("{task.fields[records]:>12,} records"),
                TextColumn("{task.fields[rate]:>9,.0f}/s"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(file=self._stream),
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(
                self.description, total=self.total, records=0, rate=0.0
            )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(
        self, *, completed: int, records: int, total: int | None = None, force: bool = False
    ) -> None:
        """`completed` units of `total` done (bytes read, records harvested), `records` stored."""
        if total is not None:
            self.total = total
        self._records = records
        elapsed = max(time.monotonic() - self._started, 1e-9)
        rate = records / elapsed
        if self._progress is not None and self._task is not None:
            self._progress.update(
                self._task, completed=completed, total=self.total, records=records, rate=rate
            )
            return
        now = time.monotonic()
        if (not force and now - self._last_line < LINE_INTERVAL) or (
            self._last_shown == (completed, records)
        ):
            return
        if (completed, records) == (0, 0):
            return  # nothing to say yet (and a failure before the first page stays one line)
        self._last_line = now
        self._last_shown = (completed, records)
        share = eta = ""
        if self.total:
            fraction = min(1.0, completed / self.total)
            remaining = elapsed * (1 - fraction) / fraction if fraction > 0 else None
            share = f", {fraction:.1%}"
            eta = f", ETA {_eta(remaining)}"
        line = f"{self.description}: {records:,} records ({rate:,.0f}/s){share}{eta}"
        self._stream.write(line + "\n")
        self._stream.flush()
