"""Why a paper was or was not sent to one destination: pure reasoning, no I/O.

`/why` gathers what the store knows about one paper and one destination
(`WhyFacts`: the paper's announcements, the destination and its subscriptions,
its outbox rows for the paper) and `explain` says what happened, in this order:

- an outbox row was sent: when, where (the message), and what matched;
- the ranking filter held it back (`WhyFacts.ranking_filter`, see below);
- an outbox row is waiting: held because the destination is paused, else queued;
- an outbox row failed for good: why;
- arXiv has not announced it in a listing paperbell polled: nothing can alert;
- otherwise each announcement is matched again with the alerting rules
  (`bot.domain.matching`, on the paper as `bot.domain.announcements.as_announced` shows it):
  a match means the destination is paused, or nothing was queued (the
  subscription came later); a match only with `include_cross` /
  `include_replacements` set means the options excluded it; else nothing matched.

The ranking feature plugs in through `WhyFacts.ranking_filter`: the gatherer
fills it with a `RankingFilter` when the destination's threshold kept the alert
back, and `explain` answers `FILTERED` with its rule and score.

Nothing here escapes text: `Explanation` keeps user- and arXiv-controlled text
as data and the renderer (`bot.cogs.why.why_reply`) escapes it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from bot.domain.announcements import as_announced
from bot.domain.matching import REPLACEMENT_TYPES, is_cross, match_subscriptions, paper_categories
from bot.domain.models import (
    AlertEvent,
    Announcement,
    Delivery,
    DeliveryStatus,
    Destination,
    DestinationKind,
    Paper,
    Subscription,
    SubscriptionKind,
)

log = logging.getLogger(__name__)

MESSAGE_LINK = "https://discord.com/channels/{guild}/{channel}/{message}"


class Reason(StrEnum):
    SENT = "sent"
    FILTERED = "filtered"  # kept back by the destination's ranking threshold
    PAUSED = "paused"
    QUEUED = "queued"  # matched and waiting to be posted
    FAILED = "failed"  # the sender gave up (e.g. the channel is gone)
    NOT_ANNOUNCED = "not announced"
    EXCLUDED_CROSS = "excluded cross-list"
    EXCLUDED_REPLACEMENT = "excluded replacement"
    NOT_QUEUED = "matches, not queued"  # e.g. the subscription is newer than the announcement
    NO_MATCH = "no match"


@dataclass(frozen=True, slots=True)
class RankingFilter:
    """The ranking threshold kept this alert back: the rule (`top:5`, `min-score:0.2`) and
    the paper's score for the destination, when known."""

    rule: str
    score: float | None = None


@dataclass(frozen=True, slots=True)
class WhyFacts:
    """What the store knows about one paper for one destination."""

    paper_id: str  # versionless
    paper: Paper | None  # the catalogue's record, if any
    announcements: Sequence[Announcement]  # oldest first
    destination: Destination | None  # None: nothing was ever set up there
    subscriptions: Sequence[Subscription]  # the destination's own
    deliveries: Sequence[Delivery]  # the destination's outbox rows for this paper
    ranking_filter: RankingFilter | None = None


@dataclass(frozen=True, slots=True)
class SentAlert:
    """One posted alert: what it said, when, and a link to the message when one can be formed."""

    event: AlertEvent
    version: int
    sent_at: datetime | None
    link: str | None
    matched: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Explanation:
    """The answer, as data: `reason` first, then what backs it up."""

    reason: Reason
    paper_id: str
    title: str | None = None
    sent: tuple[SentAlert, ...] = ()
    matched: tuple[str, ...] = ()  # what matched (sent, queued, paused, not queued)
    excluded: tuple[str, ...] = ()  # subscriptions an option excluded (EXCLUDED_*)
    subscriptions: tuple[str, ...] = ()  # the destination's subscriptions (NO_MATCH)
    announcement: Announcement | None = None  # the announcement the reason is about
    paused_reason: str | None = None
    error: str | None = None  # FAILED
    ranking: RankingFilter | None = None


def message_link(destination: Destination, message_id: int | None) -> str | None:
    """Our own link to a posted alert; None for DMs (their channel id is not stored)."""
    if message_id is None or destination.kind is not DestinationKind.CHANNEL:
        return None
    if destination.guild_id is None:
        return None
    return MESSAGE_LINK.format(
        guild=destination.guild_id, channel=destination.target_id, message=message_id
    )


def explain(facts: WhyFacts) -> Explanation:
    """Why `facts.paper_id` was or was not sent to `facts.destination` (see the module doc)."""
    base = Explanation(
        Reason.NO_MATCH,
        facts.paper_id,
        title=facts.paper.title if facts.paper else None,
        paused_reason=facts.destination.paused_reason if facts.destination else None,
    )
    by_status = {
        status: [d for d in facts.deliveries if d.status is status] for status in DeliveryStatus
    }
    if by_status[DeliveryStatus.SENT]:
        sent = tuple(
            SentAlert(
                d.event, d.version, d.sent_at, message_link(d.destination, d.message_id), d.matched
            )
            for d in sorted(by_status[DeliveryStatus.SENT], key=_sent_order)
        )
        return replace(base, reason=Reason.SENT, sent=sent, matched=sent[0].matched)
    if facts.ranking_filter is not None:
        matched = _first_matched(facts.deliveries)
        return replace(base, reason=Reason.FILTERED, ranking=facts.ranking_filter, matched=matched)
    if by_status[DeliveryStatus.PENDING]:
        matched = _first_matched(by_status[DeliveryStatus.PENDING])
        paused = facts.destination is not None and facts.destination.paused
        return replace(base, reason=Reason.PAUSED if paused else Reason.QUEUED, matched=matched)
    if by_status[DeliveryStatus.FAILED]:
        failed = by_status[DeliveryStatus.FAILED][-1]
        return replace(base, reason=Reason.FAILED, matched=failed.matched, error=failed.last_error)
    if not facts.announcements or facts.paper is None:
        return replace(base, reason=Reason.NOT_ANNOUNCED)
    if facts.destination is None or not facts.subscriptions:
        return base
    outcomes = [_outcome(base, facts.paper, a, facts) for a in facts.announcements]
    # The most telling announcement wins: a match beats an exclusion beats nothing.
    return min(outcomes, key=lambda o: _RANK[o.reason])


_RANK = {
    Reason.PAUSED: 0,
    Reason.NOT_QUEUED: 0,
    Reason.EXCLUDED_REPLACEMENT: 1,
    Reason.EXCLUDED_CROSS: 1,
    Reason.NO_MATCH: 2,
}


def _sent_order(delivery: Delivery) -> tuple[int, datetime | None, int]:
    # The first announcement leads, then versions and publications as they went out.
    first = 0 if delivery.event is AlertEvent.ANNOUNCED else 1
    return first, delivery.sent_at, delivery.id


def _first_matched(deliveries: Sequence[Delivery]) -> tuple[str, ...]:
    return next((d.matched for d in deliveries if d.matched), ())


def _outcome(
    base: Explanation, paper: Paper, announcement: Announcement, facts: WhyFacts
) -> Explanation:
    """The reason one announcement gives, with what backs it."""
    destination = facts.destination
    assert destination is not None
    shown = as_announced(paper, announcement)
    # Match as if the destination were running: pausing is reported, not matched away.
    running = replace(destination, paused_reason=None, paused_at=None)
    subs = [replace(sub, destination=running) for sub in facts.subscriptions]
    here = replace(base, announcement=announcement)
    strict = match_subscriptions([shown], subs)
    if strict:
        reason = Reason.PAUSED if destination.paused else Reason.NOT_QUEUED
        return replace(here, reason=reason, matched=strict[0].matched)
    replacement = announcement.announce_type in REPLACEMENT_TYPES
    excluded: list[str] = []
    offs: set[str] = set()
    for sub in subs:
        relaxed = replace(sub, include_cross=True, include_replacements=True)
        if match_subscriptions([shown], [relaxed]):
            options = _options_off(sub, shown, replacement)
            offs.update(options)
            excluded.append(f"{sub.describe()} ({', '.join(options)})")
    if excluded:
        reason = Reason.EXCLUDED_REPLACEMENT if _NO_REPLACEMENTS in offs else Reason.EXCLUDED_CROSS
        return replace(here, reason=reason, excluded=tuple(excluded))
    described = tuple(sub.describe() for sub in facts.subscriptions)
    return replace(here, reason=Reason.NO_MATCH, subscriptions=described)


_NO_REPLACEMENTS = "replacements off"
_NO_CROSS = "cross-lists off"


def _options_off(sub: Subscription, paper: Paper, replacement: bool) -> list[str]:
    """Which of the subscription's options kept `paper` out (it matches with both on)."""
    options = []
    if replacement and not sub.include_replacements and sub.kind is not SubscriptionKind.PAPER:
        options.append(_NO_REPLACEMENTS)
    if (
        sub.kind is SubscriptionKind.CATEGORY
        and not sub.include_cross
        and sub.match_key in paper_categories(paper)
        and is_cross(paper, sub.match_key)
    ):
        options.append(_NO_CROSS)
    return options
