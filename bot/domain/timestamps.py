"""The one timestamp codec: aware UTC datetimes to and from their stored text."""

from __future__ import annotations

from datetime import UTC, datetime


def to_timestamp(value: datetime) -> str:
    """Store form of an aware datetime: UTC ISO-8601 with fixed microseconds.

    A fixed width keeps lexical order equal to time order, which the outbox's
    `next_attempt_at <= ?` comparison relies on.
    """
    if value.tzinfo is UTC:  # the usual case, and a hot path of the bulk import
        return value.isoformat(timespec="microseconds")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r}: paperbell stores UTC only")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def from_timestamp(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    # Rows written by hand or by older code may lack the offset; they are UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def optional_timestamp(text: str | None) -> datetime | None:
    return None if text is None else from_timestamp(text)
