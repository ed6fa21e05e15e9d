"""Shared fixtures for the storage tests: a real SQLite file per test and paper factories."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from bot.arxiv.feeds import parse_rss
from bot.domain.models import AnnounceType, Paper
from storage.store import Store

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RSS_ALL = FIXTURES / "rss2024_new_all-archives_2024-11-28.xml"
T0 = datetime(2024, 11, 28, 5, 0, tzinfo=UTC)

PaperFactory = Callable[..., Paper]


def build_paper(number: int, **changes: Any) -> Paper:
    """A plausible new cs.LG paper `2411.<number>`; keyword arguments override fields."""
    fields: dict[str, Any] = {
        "id": f"2411.{number:05d}",
        "version": 1,
        "title": f"Paper number {number}",
        "abstract": f"We study problem {number} carefully.",
        "authors": ("Ada Lovelace", "Alan Turing"),
        "primary_category": "cs.LG",
        "categories": ("cs.LG", "stat.ML"),
        "published": T0 - timedelta(days=1),
        "announce_type": AnnounceType.NEW,
    }
    fields.update(changes)
    return Paper(**fields)


@cache
def rss_listing_papers() -> tuple[Paper, ...]:
    """The 1,504 papers of the real all-archives RSS listing, parsed once per session."""
    return parse_rss(RSS_ALL.read_bytes()).papers


@pytest.fixture
def db(any_db: Store) -> Store:
    """Each storage test runs on SQLite and on PostgreSQL (see tests/backends.py)."""
    return any_db


@pytest.fixture
def make_paper() -> PaperFactory:
    return build_paper
