"""Fewer garbage collections during a burst of allocation (an import, a listing's matching).

CPython starts a young-generation collection every 700 allocations and, every
hundred of those, may walk the whole heap. A listing's matching allocates about a
million short-lived objects (the folded words of 1,500 papers, candidate rows,
alerts): in `bench/matching.py` the collections it set off added 0.2-0.5 s to a
0.6 s step, at random. In a bulk import each young collection walked the batch
in flight: a sixth of the store process's CPU in py-spy. A burst makes few
reference cycles, so collecting far less often while it runs costs little
memory; the usual thresholds come back when the last burst in the process ends
(bursts may overlap: an import while the poller announces).
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

BURST_THRESHOLD = 200_000  # allocations between young collections while a burst runs

_lock = threading.Lock()
_active = 0
_saved: tuple[int, int, int] = (0, 0, 0)


@contextmanager
def rare_collections(threshold: int = BURST_THRESHOLD) -> Iterator[None]:
    """Raise the first collection threshold to at least `threshold` for the block."""
    global _active, _saved
    with _lock:
        if _active == 0:
            _saved = gc.get_threshold()
        _active += 1
        current = gc.get_threshold()
        if current[0]:  # 0: automatic collection is off, and stays off
            gc.set_threshold(max(current[0], threshold), *current[1:])
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0:
                gc.set_threshold(*_saved)
