"""What one poll pass found: each RSS URL's outcome and the pass's report.

`PaperService.poll` (`bot.services`) makes them; the scheduler, health checks,
metrics, `/paperbell poll` and `paperbell poll` read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.arxiv.client import RSS_ITEM_CAP
from bot.domain.models import Paper


class PollOutcome(StrEnum):
    NEW_LISTING = "new_listing"  # a listing we had not seen yet was ingested
    STALE = "stale"  # the feed still serves the listing of the previous poll
    NOT_MODIFIED = "not_modified"  # HTTP 304
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class FeedPoll:
    """The result of polling one RSS URL."""

    url: str
    outcome: PollOutcome
    items: int = 0
    new: tuple[Paper, ...] = ()
    deliveries: int = 0
    error: str | None = None
    build_date: str | None = None
    seconds: float = 0.0  # wall time of fetch + parse + ingest for this URL
    skipped: tuple[str, ...] = ()  # items left out of the listing, each with its reason
    listed: int = 0  # <item> elements in the listing, skipped ones included
    warning: str | None = None  # e.g. a one-category listing cut at arXiv's item cap

    @property
    def capped(self) -> bool:
        """The listing holds as many items as rss.arxiv.org serves at most: maybe cut short."""
        return self.listed >= RSS_ITEM_CAP


@dataclass(frozen=True, slots=True)
class PollReport:
    feeds: tuple[FeedPoll, ...]
    categories: tuple[str, ...]

    @property
    def new(self) -> tuple[Paper, ...]:
        return tuple(p for f in self.feeds for p in f.new)

    @property
    def deliveries(self) -> int:
        return sum(f.deliveries for f in self.feeds)

    @property
    def complete(self) -> bool:
        """True when every feed served a listing we had not ingested before."""
        return bool(self.feeds) and all(f.outcome is PollOutcome.NEW_LISTING for f in self.feeds)

    @property
    def errors(self) -> tuple[FeedPoll, ...]:
        return tuple(f for f in self.feeds if f.outcome is PollOutcome.ERROR)

    @property
    def skipped(self) -> int:
        return sum(len(f.skipped) for f in self.feeds)

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(f"{f.url}: {f.warning}" for f in self.feeds if f.warning)
