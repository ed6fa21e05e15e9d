"""Tests for bot.domain.merge: what the store keeps when a paper arrives again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from bot.domain.merge import merge_papers, normalized
from bot.domain.models import AnnounceType, Paper

T0 = datetime(2024, 11, 28, 5, 0, tzinfo=UTC)


def paper(**changes: Any) -> Paper:
    fields: dict[str, Any] = {
        "id": "2411.00001",
        "version": 1,
        "title": "A title",
        "abstract": "An abstract.",
        "authors": ("Ada Lovelace", "Alan Turing"),
        "primary_category": "cs.LG",
        "categories": ("cs.LG", "stat.ML"),
        "published": T0,
        "announce_type": AnnounceType.NEW,
    }
    fields.update(changes)
    return Paper(**fields)


def test_merge_prefers_the_primary_listing_of_one_version() -> None:
    """For one version, "new" beats "cross" in either arrival order; a later version's type wins."""
    new = paper(announce_type=AnnounceType.NEW)
    cross = paper(announce_type=AnnounceType.CROSS)
    assert merge_papers(new, cross).announce_type is AnnounceType.NEW
    assert merge_papers(cross, new).announce_type is AnnounceType.NEW
    v2 = paper(version=2, announce_type=AnnounceType.REPLACE_CROSS)
    assert merge_papers(new, v2).announce_type is AnnounceType.REPLACE_CROSS


def test_higher_version_wins_and_gaps_are_filled() -> None:
    """A stale v1 after v3 keeps v3's text and only fills the values v3 lacked."""
    v3 = paper(version=3, title="Third", doi=None, first_seen=T0)
    v1 = paper(version=1, title="First", doi="10.1/x", comment="12 pages")
    merged = merge_papers(v3, v1)
    assert (merged.version, merged.title, merged.doi, merged.comment) == (
        3, "Third", "10.1/x", "12 pages",
    )  # fmt: skip
    assert merged.first_seen == T0


def test_dates_keep_the_earliest_published_and_latest_updated() -> None:
    day = timedelta(days=1)
    old = paper(published=T0, updated=T0)
    new = paper(version=2, published=T0 - 3 * day, updated=T0 + day)
    merged = merge_papers(old, new)
    assert (merged.published, merged.updated) == (T0 - 3 * day, T0 + day)
    assert merge_papers(new, old).published == T0 - 3 * day


def test_normalized_cleans_names_categories_and_zones() -> None:
    """Blank names go, spaces collapse, the primary category comes first, times become UTC."""
    eastern = T0.astimezone(timezone(timedelta(hours=-5)))
    odd = paper(
        authors=("  Ada   Lovelace ", "", "Alan Turing"),
        primary_category="cs.AI",
        categories=("cs.LG", "cs.AI", "cs.LG"),
        published=eastern,
    )
    clean = normalized(odd)
    assert clean.authors == ("Ada Lovelace", "Alan Turing")
    assert clean.categories == ("cs.AI", "cs.LG")
    assert clean.published == T0 and clean.published.tzinfo is UTC
    assert normalized(clean) is clean  # already normal: returned as it is
    assert normalized(clean, T0).first_seen == T0
