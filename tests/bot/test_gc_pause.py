"""bot.gc_pause: collections put off during bursts, the thresholds restored after the last."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from bot.gc_pause import BURST_THRESHOLD, rare_collections


@pytest.fixture(autouse=True)
def usual_thresholds() -> Iterator[None]:
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*saved)


def test_a_burst_raises_the_first_threshold_and_restores_it() -> None:
    with rare_collections():
        assert gc.get_threshold() == (BURST_THRESHOLD, 10, 10)
    assert gc.get_threshold() == (700, 10, 10)


def test_overlapping_bursts_restore_the_usual_thresholds_only_after_the_last() -> None:
    """An import and a listing's matching may overlap in either order of ending."""
    first, second = rare_collections(), rare_collections(300_000)
    first.__enter__()
    second.__enter__()
    assert gc.get_threshold()[0] == 300_000
    first.__exit__(None, None, None)  # the first to start ends first
    assert gc.get_threshold()[0] == 300_000
    second.__exit__(None, None, None)
    assert gc.get_threshold() == (700, 10, 10)


def test_restored_after_an_exception() -> None:
    with pytest.raises(RuntimeError), rare_collections():
        raise RuntimeError("boom")
    assert gc.get_threshold() == (700, 10, 10)


def test_automatic_collection_turned_off_stays_off() -> None:
    gc.set_threshold(0, 10, 10)
    with rare_collections():
        assert gc.get_threshold()[0] == 0
    assert gc.get_threshold()[0] == 0
