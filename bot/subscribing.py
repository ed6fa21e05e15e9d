"""Subscriptions as users see them: subscribe, unsubscribe, list, backfill.

`SubscriptionService` holds the rules (validation, quotas, who may remove
what); the cogs and the CLI only translate. It never imports discord:
permission checks happen on Discord objects in the cog and arrive here as
booleans. A new subscription never posts the past on its own; matching happens
at ingest, and a backfill (`bot.backfill`) queues at most 10 stored papers
through the outbox.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.backfill import MAX_BACKFILL, Backfiller
from bot.categories import normalize_category
from bot.config import Settings
from bot.domain.announcements import as_announced, listing_day
from bot.domain.errors import (
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
)
from bot.domain.ids import InvalidArxivIdError, parse_arxiv_id
from bot.domain.matching import author_match_key, keyword_match_key
from bot.domain.models import (
    Announcement,
    Destination,
    DestinationKind,
    Paper,
    Subscription,
    SubscriptionKind,
)
from bot.domain.names import names_ambiguous
from bot.domain.query import PaperText, Query, parse_query
from bot.services import PaperService, utcnow
from storage.subscriptions import QuotaReachedError, SubscriptionQuota, Usage

log = logging.getLogger(__name__)

MAX_AUTHOR_LENGTH = 100
MAX_PAPER_ID_LENGTH = 200
MIN_KEYWORD_LENGTH = 3
ChannelCheck = Callable[[int], bool]
"""Answers a permission question about a channel id, resolved at run time by the cog."""

MAX_CHOICES = 25  # Discord's autocomplete limit
MAX_LABEL = 100  # Discord's limit for a choice name


@dataclass(frozen=True, slots=True)
class SubscribeResult:
    """What `subscribe` did. `matched_names` lists the stored spellings an author query hits."""

    subscription: Subscription
    created: bool
    backfilled: int = 0
    matched_names: tuple[str, ...] = ()
    note: str | None = None

    @property
    def ambiguous(self) -> bool:
        """True when the stored names it matches cannot all be one person (`Shane`/`Sarah Legg`)."""
        return names_ambiguous(self.matched_names)


@dataclass(frozen=True, slots=True)
class SubscriptionListing:
    """The subscriptions a user may see: this server's channels, and their own DMs."""

    channel: list[Subscription]
    dm: list[Subscription]


@dataclass(frozen=True, slots=True)
class _Cleaned:
    value: str
    match_key: str
    given_key: str
    index_keys: tuple[tuple[str, str], ...] = ()


PREVIEW_DAYS = 7
PREVIEW_SHOWN = 5


@dataclass(frozen=True, slots=True)
class QueryPreview:
    """How many first announcements of the last `PREVIEW_DAYS` days a query matches."""

    query: Query
    count: int
    examined: int
    first: tuple[Paper, ...]


def _preview_matches(query: Query, papers: Sequence[Paper]) -> list[Paper]:
    return [p for p in papers if query.matches(PaperText.of(p))]


def subscription_label(sub: Subscription, channel_name: str | None = None) -> str:
    """A one-line label (<= 100 chars): `#papers · author: Shane Legg` or `DM · keyword: ...`."""
    if sub.destination.kind is DestinationKind.DM:
        where = "DM"
    else:
        where = f"#{channel_name}" if channel_name else f"#{sub.destination.target_id}"
    label = f"{where} · {sub.describe()}"
    if sub.destination.paused:
        label += " (paused)"
    if len(label) > MAX_LABEL:
        label = label[: MAX_LABEL - 1] + "…"
    return label


class SubscriptionService:
    """Subscription rules over the store that `papers` wraps."""

    def __init__(
        self,
        papers: PaperService,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.papers = papers
        self.settings = settings
        self.clock = clock
        self.repo = papers.subscriptions
        self.backfiller = Backfiller(papers.papers, papers.outbox)

    # ---- subscribe -------------------------------------------------------------------

    async def subscribe(
        self,
        *,
        actor_id: int,
        guild_id: int | None,
        channel_id: int | None,
        kind: SubscriptionKind,
        value: str,
        include_cross: bool = True,
        include_replacements: bool = False,
        backfill: int = 0,
    ) -> SubscribeResult:
        """Subscribe a channel of `guild_id` (or, with `channel_id` None, the actor's DMs).

        An identical existing subscription is returned with `created=False`
        and its flags unchanged; quotas only count against new ones.
        """
        if not 0 <= backfill <= MAX_BACKFILL:
            raise InvalidInputError(f"Backfill must be between 0 and {MAX_BACKFILL} papers.")
        if channel_id is not None and guild_id is None:
            raise InvalidInputError("Channel subscriptions can only be made inside a server.")
        cleaned = self._clean(kind, value)
        if kind is SubscriptionKind.PAPER:
            # Known to arXiv (and now to the catalogue, which gives its category to poll);
            # a publication known today is not news for this follower later.
            followed = await self.papers.get_paper(cleaned.value)
            await self.papers.note_known_publication(followed)
        if channel_id is None:
            dest_kind, target_id, dest_guild = DestinationKind.DM, actor_id, None
        else:
            dest_kind, target_id, dest_guild = DestinationKind.CHANNEL, channel_id, guild_id

        destination = await self.repo.destination_for(dest_kind, target_id)
        if destination is None or destination.guild_id != dest_guild:
            destination = await self.repo.ensure_destination(dest_kind, target_id, dest_guild)
        try:
            subscription, created = await self.repo.add(
                destination,
                kind,
                cleaned.value,
                cleaned.match_key,
                cleaned.given_key,
                include_cross=include_cross,
                include_replacements=include_replacements,
                created_by=actor_id,
                now=self.clock(),
                quota=self._quota(),
                index_keys=cleaned.index_keys,
            )
        except QuotaReachedError as exc:
            raise _quota_message(exc) from None
        resumed = False
        if destination.paused:
            # The caller has just checked (channel) or fixed (DM settings) what paused it;
            # if it is still broken, the next delivery pauses it again.
            resumed = await self.resume(destination.id) is not None
        if created:
            log.info(
                "subscribed subscription=%d destination=%d kind=%s by=%d",
                subscription.id, destination.id, kind.value, actor_id,
            )  # fmt: skip

        matched_names: tuple[str, ...] = ()
        if kind is SubscriptionKind.AUTHOR:
            matched_names = await self.papers.author_spellings(cleaned.value)
        backfilled = (
            await self.backfiller.queue(subscription, backfill, now=self.clock()) if backfill else 0
        )
        return SubscribeResult(
            subscription=subscription,
            created=created,
            backfilled=backfilled,
            matched_names=matched_names,
            note=self._note(subscription, created, kind, matched_names, resumed=resumed),
        )

    def _clean(self, kind: SubscriptionKind, value: str) -> _Cleaned:
        text = " ".join(value.split())
        if kind is SubscriptionKind.PAPER:
            if len(text) > MAX_PAPER_ID_LENGTH:
                raise InvalidInputError("That is not an arXiv id or link.")
            try:
                paper_id = parse_arxiv_id(text).id
            except InvalidArxivIdError as exc:
                raise InvalidInputError(str(exc)) from None
            return _Cleaned(paper_id, paper_id, "")
        if kind is SubscriptionKind.CATEGORY:
            category = normalize_category(text)
            return _Cleaned(category, category, "")
        if kind is SubscriptionKind.QUERY:
            query = parse_query(text)  # length and term caps; safe error messages
            keys = tuple(sorted((k.value, v) for k, v in query.required_keys))
            return _Cleaned(query.source, query.source, "", keys)
        if kind is SubscriptionKind.AUTHOR:
            if not text:
                raise InvalidInputError("Give an author name, like `Shane Legg`.")
            if len(text) > MAX_AUTHOR_LENGTH:
                raise InvalidInputError(
                    f"That name is {len(text):,} characters long; the limit is {MAX_AUTHOR_LENGTH}."
                )
            if not any(ch.isalpha() for ch in text):
                raise InvalidInputError("An author name needs at least one letter.")
            surname, given = author_match_key(text)
            return _Cleaned(text, surname, given)
        limit = self.settings.max_keyword_length
        if not text:
            raise InvalidInputError("Give a keyword or phrase to watch for.")
        if len(text) > limit:
            raise InvalidInputError(
                f"That keyword is {len(text):,} characters long; the limit is {limit}."
            )
        token, phrase = keyword_match_key(text)
        if len(phrase) < MIN_KEYWORD_LENGTH:
            raise InvalidInputError(
                f"A keyword needs at least {MIN_KEYWORD_LENGTH} letters or digits to be useful."
            )
        if len(phrase) > limit:
            raise InvalidInputError(f"That keyword is too long; the limit is {limit} characters.")
        return _Cleaned(text, token, phrase)

    def _quota(self) -> SubscriptionQuota:
        settings = self.settings
        return SubscriptionQuota(
            per_guild=settings.max_subscriptions_per_guild,
            per_user=settings.max_subscriptions_per_user,
            keywords_per_destination=settings.max_keywords_per_destination,
        )

    @staticmethod
    def _note(
        sub: Subscription,
        created: bool,
        kind: SubscriptionKind,
        matched: tuple[str, ...],
        *,
        resumed: bool,
    ) -> str | None:
        notes: list[str] = []
        if not created:
            notes.append("This subscription already existed; its options were left unchanged.")
        if resumed:
            notes.append("Alerts here had been paused (the bot could not post); they resume now.")
        if kind is SubscriptionKind.AUTHOR and not matched:
            notes.append("No stored paper has this author yet; matching starts with new papers.")
        return " ".join(notes) or None

    async def preview_query(self, expression: str) -> QueryPreview:
        """What a query would have matched among the last week's first announcements."""
        query = parse_query(expression)
        since = listing_day(None, fallback=self.clock()) - timedelta(days=PREVIEW_DAYS - 1)
        announced = await self.papers.announcements.since(since)
        latest: dict[str, Announcement] = {}
        for a in announced:  # newest listing first: keep a paper's latest announcement
            latest.setdefault(a.paper_id, a)
        stored = {p.id: p for p in await self.papers.papers.get_many(list(latest))}
        papers = [as_announced(stored[pid], a) for pid, a in latest.items() if pid in stored]
        hits = await asyncio.to_thread(_preview_matches, query, papers)
        return QueryPreview(query, len(hits), len(papers), tuple(hits[:PREVIEW_SHOWN]))

    # ---- unsubscribe, list, autocomplete ------------------------------------------------

    async def unsubscribe(
        self,
        *,
        actor_id: int,
        guild_id: int | None,
        subscription_id: int,
        can_manage: ChannelCheck,
        can_view: ChannelCheck | None = None,
    ) -> Subscription:
        """Remove a subscription the actor may manage; others look like they don't exist.

        `can_manage(channel_id)` says whether the actor has Manage Channels in that
        channel, the subscription's own (resolved at run time by the caller);
        `can_view` whether they can see it: a channel they can't see is not
        even confirmed to have that subscription.
        """
        sub = await self.repo.get(subscription_id)
        hidden = (
            sub is not None
            and can_view is not None
            and sub.destination.kind is DestinationKind.CHANNEL
            and not can_view(sub.destination.target_id)
        )
        if sub is None or hidden or not self._visible(sub, actor_id, guild_id):
            raise NotFoundError(f"You have no subscription #{subscription_id} here.")
        if sub.destination.kind is DestinationKind.CHANNEL and not can_manage(
            sub.destination.target_id
        ):
            raise PermissionDeniedError(
                "Removing a channel's subscription needs the Manage Channels permission "
                "in that channel."
            )
        removed = await self.repo.remove(subscription_id)
        if removed is None:  # deleted concurrently
            raise NotFoundError(f"You have no subscription #{subscription_id} here.")
        log.info("unsubscribed subscription=%d by=%d", subscription_id, actor_id)
        return removed

    @staticmethod
    def _visible(sub: Subscription, user_id: int, guild_id: int | None) -> bool:
        dest = sub.destination
        if dest.kind is DestinationKind.DM:
            return dest.target_id == user_id
        return guild_id is not None and dest.guild_id == guild_id

    async def listing(
        self, *, guild_id: int | None, user_id: int, can_view: ChannelCheck | None = None
    ) -> SubscriptionListing:
        """This guild's channel subscriptions and the user's DM ones.

        `can_view(channel_id)` keeps only channels the caller can see; the cogs
        always pass it (None lists every channel: the operator's view).
        """
        channel = await self.repo.list_for_guild(guild_id) if guild_id is not None else []
        if can_view is not None:
            channel = [s for s in channel if can_view(s.destination.target_id)]
        dm = await self.repo.list_dm(user_id)
        return SubscriptionListing(channel=channel, dm=dm)

    async def choices(
        self,
        *,
        guild_id: int | None,
        user_id: int,
        can_manage: ChannelCheck,
        current: str,
        channel_name: Callable[[int], str | None] | None = None,
    ) -> list[tuple[str, int]]:
        """(label, subscription id) pairs the caller may remove, filtered by `current`.

        Channel subscriptions appear only where `can_manage(channel_id)`, so a
        private channel's subscriptions never show to someone who can't manage it.
        """
        listing = await self.listing(guild_id=guild_id, user_id=user_id, can_view=can_manage)
        removable = listing.dm + listing.channel
        needle = current.strip().casefold().lstrip("#")
        result: list[tuple[str, int]] = []
        for sub in removable:
            name = None
            if channel_name is not None and sub.destination.kind is DestinationKind.CHANNEL:
                name = channel_name(sub.destination.target_id)
            label = subscription_label(sub, name)
            if needle and needle not in label.casefold() and needle != str(sub.id):
                continue
            result.append((label, sub.id))
            if len(result) == MAX_CHOICES:
                break
        return result

    async def usage(self, *, guild_id: int | None = None, user_id: int | None = None) -> Usage:
        """Subscriptions, paused destinations and waiting alerts of a guild, or of a user's DMs."""
        return await self.repo.usage(guild_id=guild_id, user_id=user_id)

    async def dm_destination(self, user_id: int) -> Destination | None:
        return await self.repo.destination_for(DestinationKind.DM, user_id)

    async def author_suggestions(self, prefix: str, limit: int = MAX_CHOICES) -> list[str]:
        """Stored author spellings starting like `prefix`, for autocomplete."""
        cleaned = " ".join(prefix.split())
        if not cleaned or len(cleaned) > MAX_AUTHOR_LENGTH:
            return []
        names = await self.papers.author_names(cleaned, limit=limit)
        return [n for n in names if len(n) <= MAX_LABEL][:limit]

    # ---- destination life cycle --------------------------------------------------------

    async def channel_deleted(self, channel_id: int) -> int:
        """Forget a deleted channel and its subscriptions; returns how many were removed."""
        dest = await self.repo.destination_for(DestinationKind.CHANNEL, channel_id)
        return 0 if dest is None else await self.destination_gone(dest.id)

    async def destination_gone(self, destination_id: int) -> int:
        """Forget a destination Discord says no longer exists; returns its subscription count."""
        count = len(await self.repo.list_destination(destination_id))
        removed = await self.repo.remove_destination(destination_id)
        return count if removed else 0

    async def creators(self, destination_id: int) -> list[int]:
        """The users who created the destination's subscriptions (to tell them it is paused)."""
        subs = await self.repo.list_destination(destination_id)
        return sorted({s.created_by for s in subs})

    async def resume_channel(self, *, guild_id: int, channel_id: int) -> Destination:
        """Resume a paused channel of this guild (the cog checked the bot can post there)."""
        dest = await self.repo.destination_for(DestinationKind.CHANNEL, channel_id)
        if dest is None or dest.guild_id != guild_id:
            raise NotFoundError("That channel has no paperbell subscriptions.")
        if not dest.paused:
            return dest
        resumed = await self.resume(dest.id)
        if resumed is None:  # removed concurrently
            raise NotFoundError("That channel has no paperbell subscriptions.")
        log.info("resumed destination=%d channel=%d", dest.id, channel_id)
        return resumed

    async def set_digest(self, *, guild_id: int, channel_id: int, enabled: bool) -> Destination:
        """Digest mode for a channel of this guild: a busy day's alerts as compact lists."""
        dest = await self.repo.destination_for(DestinationKind.CHANNEL, channel_id)
        if dest is None or dest.guild_id != guild_id:
            raise NotFoundError("That channel has no paperbell subscriptions.")
        updated = await self.repo.set_digest(dest.id, enabled)
        if updated is None:  # removed concurrently
            raise NotFoundError("That channel has no paperbell subscriptions.")
        log.info("digest destination=%d enabled=%s", dest.id, enabled)
        return updated

    async def pause(self, destination_id: int, reason: str) -> Destination | None:
        """Stop alerts to a destination (the bot lost access); matching skips it."""
        return await self.repo.pause_destination(destination_id, reason, self.clock())

    async def resume(self, destination_id: int) -> Destination | None:
        return await self.repo.resume_destination(destination_id)


def _quota_message(exc: QuotaReachedError) -> QuotaExceededError:
    """What a user is told about the limit the store refused a subscription over."""
    if exc.scope == "queries":
        return QuotaExceededError(
            f"This destination already has {exc.count} queries; the limit is "
            f"{exc.limit}. Remove one with /unsubscribe first."
        )
    if exc.scope == "keywords":
        return QuotaExceededError(
            f"This destination already watches {exc.count} keywords; the limit is "
            f"{exc.limit}. Remove one with /unsubscribe first."
        )
    if exc.scope == "guild":
        return QuotaExceededError(
            f"This server already has {exc.count} channel subscriptions; the limit is {exc.limit}."
        )
    return QuotaExceededError(
        f"You have already created {exc.count} subscriptions; the limit is {exc.limit}."
    )
