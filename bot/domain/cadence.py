"""When the announcement cycle asks arXiv again: the rebuild window and the next URL to check.

Pure functions, no I/O. arXiv rebuilds its RSS listings at midnight US
Eastern. Inside the rebuild window (by default 23:58 to 00:30
America/New_York, DST rules included) the cycle checks the listing URLs still
serving yesterday's listing one at a time, as fast as the shared arXiv limiter
lets it (3 s apart): each check a conditional GET, a 304 when nothing changed.
Outside the window it polls everything every `poll_retry_minutes`.

The window is built from the local wall clock of each day, so its UTC times
move with daylight saving time (23:58 EST is 04:58 UTC, 23:58 EDT 03:58 UTC);
US clocks change at 02:00, so the default window never straddles a change.
arXiv's own words are "midnight Eastern Standard Time", which in summer could
mean 01:00 EDT: so while daylight saving time is in force the window also
opens at the same time of Eastern Standard Time (00:58 EDT, 04:58 UTC).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from bot.domain.schedule import EASTERN, EASTERN_STANDARD


@dataclass(frozen=True, slots=True)
class RebuildWindow:
    """`minutes` from `start` (a wall-clock time in America/New_York) every day; 0 is off."""

    start: time = time(23, 58)
    minutes: float = 32.0

    @property
    def enabled(self) -> bool:
        return self.minutes > 0

    def _starts(self, now: datetime) -> Iterator[datetime]:
        """Window starts (UTC) of the local days around `now`, in order: New York time,
        and in summer the same wall-clock time in Eastern Standard Time as well."""
        today = now.astimezone(EASTERN).date()
        starts: set[datetime] = set()
        for days in (-1, 0, 1):
            day = today + timedelta(days=days)
            for zone in (EASTERN, EASTERN_STANDARD):
                starts.add(datetime.combine(day, self.start, tzinfo=zone).astimezone(UTC))
        yield from sorted(starts)

    def bounds(self, now: datetime) -> tuple[datetime, datetime] | None:
        """(start, end) in UTC of the window holding `now` (aware), or None outside any."""
        if not self.enabled:
            return None
        length = timedelta(minutes=self.minutes)
        for start in self._starts(now):
            if start <= now < start + length:
                return start, start + length
        return None

    def next_start(self, now: datetime) -> datetime | None:
        """The first window start after `now` (UTC), or None when the window is off."""
        if not self.enabled:
            return None
        return next(start for start in self._starts(now) if start > now)


def next_url(pending: Sequence[str], checked: Mapping[str, int]) -> str:
    """The pending URL checked longest ago: never-checked ones first, ties in list order.

    `checked` maps a URL to the sequence number of its latest check. Taking
    turns this way, N URLs and a gap of D seconds between requests check each
    URL every N * D seconds (plus the time the answers take).
    """
    if not pending:
        raise ValueError("no URL left to check")
    return min(pending, key=lambda url: checked.get(url, -1))


def check_round(urls: int, delay: float) -> float:
    """Seconds between two checks of one URL when `urls` take turns `delay` seconds apart."""
    return urls * delay
