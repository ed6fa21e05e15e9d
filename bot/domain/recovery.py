"""Missed listings: which announcement days a gap skipped, and how to ask the API for them.

Pure functions, no I/O. arXiv announces Monday to Friday (US Eastern); the
listing of day L holds the papers submitted between the 14:00 Eastern cutoffs
of the two announcement days before L (Tuesday's: Friday 14:00 to Monday
14:00). When the bot (or arXiv's RSS) was down over a listing, the next
listing no longer carries those papers; the API finds them again by
`submittedDate`. Holidays are not known here: a holiday looks like a missed
day, and recovering it finds papers the next listing already announced, which
the outbox's keys then keep from alerting twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime

from bot.domain.schedule import EASTERN, SUBMISSION_CUTOFF, previous_announcement_day

MAX_CATEGORIES_PER_QUERY = 20  # keeps the query string short
MAX_MISSED_DAYS = 10  # a longer gap is recovered for its last ten announcement days
# Archives divided into subject classes: `cat:cs` would not match `cs.LG` papers.
DIVIDED_ARCHIVES = frozenset({
    "astro-ph", "cond-mat", "cs", "econ", "eess", "math", "nlin", "physics", "q-bio", "q-fin",
    "stat",
})  # fmt: skip


def missed_days(last_seen: date, current: date) -> list[date]:
    """Announcement days strictly between the last listing seen and the current one."""
    days: list[date] = []
    day = previous_announcement_day(current)
    while day > last_seen and len(days) < MAX_MISSED_DAYS:
        days.append(day)
        day = previous_announcement_day(day)
    return sorted(days)


def _cutoff(day: date) -> datetime:
    return datetime.combine(day, SUBMISSION_CUTOFF, tzinfo=EASTERN).astimezone(UTC)


def submission_window(listing: date) -> tuple[datetime, datetime]:
    """[start, end) in UTC of the submissions announced in the listing of `listing`."""
    previous = previous_announcement_day(listing)
    return _cutoff(previous_announcement_day(previous)), _cutoff(previous)


def listing_for(submitted: datetime, days: Sequence[date]) -> date | None:
    """Which of the missed listing `days` announced a paper submitted at `submitted`."""
    for day in days:
        start, end = submission_window(day)
        if start <= submitted < end:
            return day
    return None


def recovery_queries(categories: Sequence[str], start: datetime, end: datetime) -> list[str]:
    """API `search_query`s for the papers submitted in [start, end) in `categories`.

    A divided archive (`cs`, `math`) makes one query without a category filter:
    cheaper than one per subject class, and it covers cross-lists too.
    """
    window = (
        f"submittedDate:[{start.astimezone(UTC):%Y%m%d%H%M} TO {end.astimezone(UTC):%Y%m%d%H%M}]"
    )
    cats = sorted(set(categories))
    if not cats or any(c in DIVIDED_ARCHIVES for c in cats):
        return [window]
    queries = []
    for at in range(0, len(cats), MAX_CATEGORIES_PER_QUERY):
        chunk = cats[at : at + MAX_CATEGORIES_PER_QUERY]
        terms = " OR ".join(f"cat:{c}" for c in chunk)
        queries.append(f"({terms}) AND {window}" if len(chunk) > 1 else f"{terms} AND {window}")
    return queries
