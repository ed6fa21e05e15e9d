"""Size caps on the fields of one arXiv record, and the range of dates a record may carry.

Feed text comes from strangers (anyone can submit to arXiv; a proxy or a
compromised mirror can serve anything), so every field has a cap far above
what arXiv really serves. Measured on a full all-archives listing (1,504
items): titles up to 218 characters, descriptions up to 1,973, author strings
up to 2,516 characters and 207 names, 6 categories. arXiv limits new abstracts
to 1,920 characters; the largest collaboration papers list about 5,000 names.

A record over any cap is skipped whole and counted, never truncated: a cut
title or author list would be stored and alerted as if it were right.
"""

from __future__ import annotations

from datetime import UTC, datetime

# Characters of raw text (before whitespace is collapsed), or a count where named so.
CAPS: dict[str, int] = {
    "title": 2_000,
    "abstract": 20_000,
    "authors": 300_000,  # the whole author text of one record
    "author count": 6_000,
    "comment": 5_000,
    "journal reference": 2_000,
    "doi": 1_000,
    "categories": 10_000,  # all category terms of one record together
    "category count": 200,
}

# Dates outside this range are not arXiv's (it opened in August 1991). The upper
# bound keeps date arithmetic far from datetime's year 9999 limit.
EARLIEST_DATE = datetime(1991, 1, 1, tzinfo=UTC)
LATEST_DATE = datetime(2200, 1, 1, tzinfo=UTC)


class ItemSkippedError(ValueError):
    """A record is left out of a parse result; the message says why, short and safe to log."""


class OverCapError(ItemSkippedError):
    """A record field is over its cap; the message names the field and both sizes."""


def check_caps(**sizes: int) -> None:
    """Raise OverCapError for the first field (named as in CAPS, `_` for space) over its cap."""
    for name, size in sizes.items():
        field = name.replace("_", " ")
        cap = CAPS[field]
        if size > cap:
            unit = "" if field.endswith("count") else " characters"
            raise OverCapError(f"{field} {size:,}{unit} is over the cap of {cap:,}")


def date_in_range(value: datetime) -> bool:
    """Whether an (aware) date is one an arXiv record can plausibly carry."""
    return EARLIEST_DATE <= value < LATEST_DATE
