"""arXiv's announcement schedule, in one place: which days have a listing, and when.

Pure, no I/O. arXiv announces Monday to Friday: submissions close at 14:00 US
Eastern and the listings are rebuilt around midnight Eastern ("midnight
Eastern Standard Time", about 05:00 UTC), Sunday to Thursday nights, so there
is no listing on Saturdays and Sundays (nothing is announced on Friday and
Saturday nights). Holidays are not known here. The rebuild window of the
announcement cycle (`cadence.py`), missed-listing recovery (`recovery.py`), the
health check's overdue poll and `/paperbell status` all read these facts here.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

EASTERN = ZoneInfo("America/New_York")
EASTERN_STANDARD = timezone(timedelta(hours=-5), "EST")
LISTING_WEEKDAYS = frozenset({0, 1, 2, 3, 4})  # Monday to Friday (date.weekday())
SUBMISSION_CUTOFF = time(14, 0)  # the daily submission deadline, US Eastern
LISTING_REBUILD_HOUR_UTC = 5  # midnight EST
# When the announcement cycle starts (America/New_York): just before the rebuild
# on the evenings before a listing day. APScheduler 3 reads "sun-thu" as the empty
# range 6..3, so the days are spelled out.
CYCLE_START = {"day_of_week": "mon-thu,sun", "hour": 23, "minute": 55}


def is_listing_day(day: date) -> bool:
    """Whether arXiv publishes a listing dated `day` (holidays aside)."""
    return day.weekday() in LISTING_WEEKDAYS


def previous_announcement_day(day: date) -> date:
    """The announcement day (Monday to Friday) before `day`."""
    before = day - timedelta(days=1)
    while not is_listing_day(before):
        before -= timedelta(days=1)
    return before


def eastern_day(moment: datetime) -> date:
    """The US Eastern calendar day of `moment` (a naive moment is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(EASTERN).date()


def missed_listing(since: datetime, now: datetime) -> bool:
    """Whether arXiv rebuilt its listings (weekdays ~05:00 UTC) in the interval (since, now]."""
    if now - since > timedelta(days=7):
        return True
    day = since.astimezone(UTC).date()
    while day <= now.astimezone(UTC).date():
        if is_listing_day(day):
            rebuild = datetime(day.year, day.month, day.day, LISTING_REBUILD_HOUR_UTC, tzinfo=UTC)
            if since < rebuild <= now:
                return True
        day += timedelta(days=1)
    return False
