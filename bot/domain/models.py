"""Typed records that the storage layer accepts and returns.

Everything above `storage/` talks in these dataclasses, never in rows. All
datetimes are timezone-aware UTC; the constructors below refuse naive ones so a
local-time bug shows up at the storage boundary instead of in a channel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum

from bot.domain.names import names_ambiguous


def _require_utc(name: str, value: datetime | None) -> None:
    # `tzinfo is UTC` first: cheap, and what nearly every datetime here has.
    if value is not None and value.tzinfo is not UTC and value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got naive {value!r}")


class AnnounceType(StrEnum):
    """How a paper appeared in an arXiv listing (RSS `arxiv:announce_type`)."""

    NEW = "new"
    CROSS = "cross"
    REPLACE = "replace"
    REPLACE_CROSS = "replace-cross"


@dataclass(frozen=True, slots=True)
class Paper:
    """One arXiv paper, keyed by its versionless id (`2307.15771`, `hep-th/9901001`)."""

    id: str
    version: int
    title: str
    abstract: str
    authors: tuple[str, ...]
    primary_category: str
    categories: tuple[str, ...]
    published: datetime | None = None  # v1 submission (API) or announcement date (RSS)
    updated: datetime | None = None  # this version
    comment: str | None = None
    journal_ref: str | None = None
    doi: str | None = None
    announce_type: AnnounceType | None = None
    first_seen: datetime | None = None  # set by the store on first insert

    def __post_init__(self) -> None:
        _require_utc("published", self.published)
        _require_utc("updated", self.updated)
        _require_utc("first_seen", self.first_seen)

    @property
    def versioned_id(self) -> str:
        return f"{self.id}v{self.version}"

    @property
    def abs_url(self) -> str:
        return f"https://arxiv.org/abs/{self.id}"

    @property
    def pdf_url(self) -> str:
        return f"https://arxiv.org/pdf/{self.versioned_id}"


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What one batch upsert did: the genuinely new papers and how many were updates."""

    new: tuple[Paper, ...]
    updated: int
    unchanged: int


@dataclass(frozen=True, slots=True)
class AuthorMatch:
    """Answer to an author lookup: the papers, newest first, and the spellings that matched."""

    query: str
    matched_names: tuple[str, ...]
    papers: tuple[Paper, ...]

    @property
    def ambiguous(self) -> bool:
        """True when some two matched spellings cannot be one person (Shane vs Sarah Legg).

        Spellings of one person (`Grégoire Delétang`, `Gregoire Deletang`) are not ambiguous.
        """
        return names_ambiguous(self.matched_names)


@dataclass(frozen=True, slots=True)
class SearchHit:
    paper: Paper
    rank: float


@dataclass(frozen=True, slots=True)
class FeedState:
    """Per-URL polling state: validators for conditional GET and the health of the feed."""

    url: str
    etag: str | None = None
    last_modified: str | None = None
    last_build: str | None = None  # the feed's lastBuildDate/pubDate at the last success
    last_success: datetime | None = None
    last_attempt: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    consecutive_failures: int = 0

    def __post_init__(self) -> None:
        _require_utc("last_success", self.last_success)
        _require_utc("last_attempt", self.last_attempt)
        _require_utc("last_error_at", self.last_error_at)


class DestinationKind(StrEnum):
    CHANNEL = "channel"
    DM = "dm"


class SubscriptionKind(StrEnum):
    AUTHOR = "author"
    CATEGORY = "category"
    KEYWORD = "keyword"
    PAPER = "paper"  # follow one paper (match_key: its versionless id)
    QUERY = "query"  # arXiv search syntax (value = match_key: the expression)


@dataclass(frozen=True, slots=True)
class Destination:
    """Where alerts go: a guild channel, or a user's DMs (guild_id None)."""

    id: int
    kind: DestinationKind
    target_id: int  # channel id for CHANNEL, user id for DM
    guild_id: int | None
    paused_reason: str | None = None
    paused_at: datetime | None = None
    digest: bool = False

    @property
    def paused(self) -> bool:
        return self.paused_reason is not None


@dataclass(frozen=True, slots=True)
class Subscription:
    id: int
    destination: Destination
    kind: SubscriptionKind
    value: str  # what the user typed, cleaned (display form)
    match_key: str  # normalized key used by the matcher's index
    include_cross: bool
    include_replacements: bool
    created_by: int
    created_at: datetime
    given_key: str = ""  # authors: normalized given names/initials

    def describe(self) -> str:
        return f"{self.kind.value}: {self.value}"


class AlertEvent(StrEnum):
    """What an outbox row tells its destination; the outbox key is (destination, paper,
    event, version), so each is said at most once."""

    ANNOUNCED = "announced"  # first announced (new) or cross-listed here; version 0
    VERSION = "version"  # a new version (or a withdrawal); version = the new version
    PUBLISHED = "published"  # gained a journal reference or DOI; version 0


@dataclass(frozen=True, slots=True)
class Announcement:
    """One item of an arXiv listing: this version of this paper, announced as this type."""

    paper_id: str
    version: int
    announce_type: AnnounceType
    listing_date: date  # the listing's day, US Eastern
    categories: tuple[str, ...]
    withdrawn: bool = False
    late: bool = False  # recovered after the listing itself was missed


@dataclass(frozen=True, slots=True)
class ListingSummary:
    """How many announcements of each type one listing day brought."""

    listing_date: date
    counts: dict[AnnounceType, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # gave up (destination gone); kept for the record


@dataclass(frozen=True, slots=True)
class Delivery:
    """One alert in the outbox: paper X for destination Y, posted at most once."""

    id: int
    destination: Destination
    paper: Paper
    status: DeliveryStatus
    matched: tuple[str, ...]  # descriptions of the subscriptions that matched
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    sent_at: datetime | None = None
    message_id: int | None = None
    last_error: str | None = None
    batch_id: int | None = None  # the message this delivery was bound to before sending
    event: AlertEvent = AlertEvent.ANNOUNCED
    version: int = 0
    note: str | None = None  # what the alert says besides the paper ("New version v3 ...")


@dataclass(frozen=True, slots=True)
class StoreStats:
    papers: int
    authors: int
    destinations: int
    subscriptions: int
    pending_deliveries: int
    sent_deliveries: int
    database_bytes: int
    per_category: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OutboxAlert:
    """One alert to queue: `event` (and `version`) of a paper for a destination."""

    destination_id: int
    paper_id: str
    matched: Sequence[str]
    event: AlertEvent = AlertEvent.ANNOUNCED
    version: int = 0
    note: str | None = None
