"""Which alerts an announcement makes: pure rules, no I/O.

A polled listing's items become `Announcement`s (`from_listing`); the store
keeps them and hands back the ones it had not recorded before; `alerts_for`
turns those into outbox alerts:

- `new` and `cross`: an `announced` alert per matching destination. The outbox
  key (destination, paper, `announced`) makes it once per destination, so a
  late cross-list into a subscribed category reaches that subscription, and a
  destination that already had the paper gets nothing.
- `replace` and `replace-cross`: a `version` alert (key: destination, paper,
  version) for subscriptions with `include_replacements` and for followers of
  the paper. It says which version and when, or that the paper was withdrawn
  when the listing's text says so.

Nothing else alerts: looking a paper up or importing it only fills the catalogue.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime

from bot.domain.matching import REPLACEMENT_TYPES, MatchKeys, match_subscriptions
from bot.domain.models import (
    AlertEvent,
    Announcement,
    AnnounceType,
    ListingSummary,
    OutboxAlert,
    Paper,
    Subscription,
)
from bot.domain.schedule import eastern_day, is_listing_day

log = logging.getLogger(__name__)

_WITHDRAWN_SCAN = 1_000  # characters of comment/abstract looked at: the notice comes first
# No nested or unbounded-overlapping quantifiers: linear in the scanned text.
_WITHDRAWN = re.compile(
    r"\b(?:has\s+been|have\s+been|was|were|is|is\s+being)\s+withdrawn\b"
    r"|\bwithdrawn\s+by\s+(?:the\s+)?(?:authors?|submitter|arxiv)\b"
    r"|^\W{0,5}withdrawn\b",
    re.IGNORECASE,
)


def listing_day(pub_date: datetime | None, *, fallback: datetime) -> date:
    """The listing's announcement day in US Eastern time (its `pubDate`, else `fallback`)."""
    return eastern_day(pub_date or fallback)


def is_withdrawn(paper: Paper) -> bool:
    """Whether the listing's comment or abstract says the paper was withdrawn."""
    for text in (paper.comment, paper.abstract):
        head = text[:_WITHDRAWN_SCAN] if text else ""
        # The substring test is cheap; the regex runs only on the few texts that pass it.
        if "withdrawn" in head.lower() and _WITHDRAWN.search(head):
            return True
    return False


def from_listing(
    papers: Sequence[Paper], listing_date: date, *, late: bool = False
) -> list[Announcement]:
    """One announcement per listed paper (no announce type given: `new`)."""
    return [
        Announcement(
            paper_id=p.id,
            version=p.version,
            announce_type=p.announce_type or AnnounceType.NEW,
            listing_date=listing_date,
            categories=p.categories or ((p.primary_category,) if p.primary_category else ()),
            withdrawn=p.announce_type in REPLACEMENT_TYPES and is_withdrawn(p),
            late=late,
        )
        for p in papers
    ]


def as_announced(paper: Paper, announcement: Announcement) -> Paper:
    """The catalogue's paper as this announcement presents it (type, categories carried)."""
    categories = tuple(dict.fromkeys((*announcement.categories, *paper.categories)))
    primary = paper.primary_category or (categories[0] if categories else "")
    if primary in categories:
        categories = (primary, *(c for c in categories if c != primary))
    return replace(
        paper,
        announce_type=announcement.announce_type,
        categories=categories,
        primary_category=primary,
    )


def version_note(announcement: Announcement) -> str:
    day = announcement.listing_date.isoformat()
    if announcement.withdrawn:
        return f"Withdrawn: v{announcement.version}, announced {day}"
    return f"New version v{announcement.version}, announced {day}"


def late_note(announcement: Announcement) -> str:
    day = announcement.listing_date.isoformat()
    return f"Late alert: announced {day}, recovered after an outage"


def publication_note(journal_ref: str | None, doi: str | None) -> str:
    if journal_ref:
        return f"Published: {journal_ref}"
    return f"Published: DOI {doi}"


def alerts_for(
    fresh: Sequence[Announcement],
    papers: Mapping[str, Paper],
    candidates: Sequence[Subscription],
    keys: MatchKeys | None = None,
) -> list[OutboxAlert]:
    """The outbox alerts that newly recorded announcements make for `candidates`.

    `keys`: the `match_keys` of the announced papers, whose folded texts are reused.
    """
    firsts: list[Paper] = []
    first_of: dict[int, Announcement] = {}
    versions: list[Paper] = []
    version_of: dict[int, Announcement] = {}
    for announcement in fresh:
        stored = papers.get(announcement.paper_id)
        if stored is None:
            log.warning("announcement of a paper not in the catalogue id=%s", announcement.paper_id)
            continue
        shown = as_announced(stored, announcement)
        if announcement.announce_type in REPLACEMENT_TYPES:
            versions.append(shown)
            version_of[id(shown)] = announcement
        else:
            firsts.append(shown)
            first_of[id(shown)] = announcement
    folded = keys.folded if keys is not None else None
    alerts: list[OutboxAlert] = []
    for match in match_subscriptions(firsts, candidates, folded):
        announcement = first_of[id(match.paper)]
        note = late_note(announcement) if announcement.late else None
        alerts.append(OutboxAlert(match.destination.id, match.paper.id, match.matched, note=note))
    for match in match_subscriptions(versions, candidates, folded):
        announcement = version_of[id(match.paper)]
        alerts.append(
            OutboxAlert(
                match.destination.id,
                match.paper.id,
                match.matched,
                AlertEvent.VERSION,
                announcement.version,
                version_note(announcement),
            )
        )
    return alerts


def quiet_listing_note(recent: Sequence[ListingSummary], now: datetime) -> str | None:
    """A plain sentence when today's listing (US Eastern) is missing or empty, else None.

    `recent` is newest first. arXiv rebuilds its feeds around midnight Eastern,
    Monday to Friday; there is nothing on Saturdays and Sundays (no announcement
    on Friday and Saturday nights) or after its holidays.
    """
    today = eastern_day(now)
    latest = recent[0] if recent else None
    if latest is not None and latest.listing_date >= today and latest.total > 0:
        return None
    seen = (
        f"the latest listing seen is {latest.listing_date.isoformat()}"
        if latest
        else ("no listing has been seen yet")
    )
    if not is_listing_day(today):
        why = (
            f"today is {today.strftime('%A')}: arXiv does not announce on Friday or Saturday nights"
        )
    else:
        why = (
            "arXiv does not announce on Friday or Saturday nights or on its holidays, and the "
            "feeds are rebuilt around midnight US Eastern"
        )
    return f"No new listing for {today.isoformat()} ({seen}); {why}."


def listing_lines(listings: Sequence[ListingSummary]) -> list[str]:
    """One line per listing day: `2024-11-28  1,504: 926 new, 9 cross, 569 replace`."""
    lines = []
    for listing in listings:
        parts = [f"{listing.counts[t]:,} {t.value}" for t in AnnounceType if listing.counts.get(t)]
        lines.append(f"{listing.listing_date.isoformat()}  {listing.total:,}: {', '.join(parts)}")
    return lines
