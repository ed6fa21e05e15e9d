"""Tests for SubscriptionService on a real SQLite file: validation, quotas, isolation, backfill."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.config import Settings
from bot.domain.errors import (
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
)
from bot.domain.models import AnnounceType, DestinationKind, Paper, SubscriptionKind
from bot.services import PaperService
from bot.subscribing import SubscriptionService, subscription_label
from storage.sqlite import open_sqlite
from storage.store import Store

NOW = datetime(2024, 11, 28, 6, 0, tzinfo=UTC)
GUILD, OTHER_GUILD = 1001, 2002
CHANNEL, CHANNEL_2, CHANNEL_3, FOREIGN_CHANNEL = 11, 12, 13, 21
ALICE, BOB = 501, 502

CATEGORY = SubscriptionKind.CATEGORY


def ANY_CHANNEL(channel_id: int) -> bool:
    return True


def NO_CHANNEL(channel_id: int) -> bool:
    return False


AUTHOR = SubscriptionKind.AUTHOR
KEYWORD = SubscriptionKind.KEYWORD


@dataclass
class World:
    db: Store
    papers: PaperService
    service: SubscriptionService


def paper(
    number: int,
    *,
    title: str = "A study",
    authors: tuple[str, ...] = ("Ada Lovelace",),
    primary: str = "cs.LG",
    categories: tuple[str, ...] = (),
    abstract: str = "We study things.",
    announce: AnnounceType = AnnounceType.NEW,
) -> Paper:
    """A paper whose publication day grows with `number` (larger is newer)."""
    return Paper(
        id=f"2411.{number:05d}",
        version=1,
        title=title,
        abstract=abstract,
        authors=authors,
        primary_category=primary,
        categories=(primary, *categories),
        published=NOW - timedelta(days=100 - number),
        announce_type=announce,
    )


async def make_world(tmp_path: Path, **limits: int) -> World:
    db = await open_sqlite(tmp_path / "paperbell.db")
    papers = PaperService(db, None, clock=lambda: NOW)
    settings = Settings(database=str(tmp_path / "paperbell.db"), **limits)
    return World(db, papers, SubscriptionService(papers, settings, clock=lambda: NOW))


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    w = await make_world(tmp_path)
    yield w
    await w.db.close()


async def queued_ids(w: World) -> list[str]:
    """Paper ids waiting in the outbox, in the order they would be posted."""
    due = await w.papers.outbox.claim_due(now=NOW + timedelta(seconds=1), limit=100)
    return [d.paper.id for d in due]


# ---- subscribe ---------------------------------------------------------------------------


async def test_channel_category_subscription_is_normalized(world: World) -> None:
    """A channel subscription stores arXiv's spelling and a channel destination of that guild."""
    result = await world.service.subscribe(
        actor_id=ALICE, guild_id=GUILD, channel_id=CHANNEL, kind=CATEGORY, value=" CS.lg "
    )
    sub = result.subscription
    assert result.created and sub.value == "cs.LG" and sub.match_key == "cs.LG"
    assert sub.destination.kind is DestinationKind.CHANNEL
    assert (sub.destination.target_id, sub.destination.guild_id) == (CHANNEL, GUILD)
    assert sub.include_cross and not sub.include_replacements
    assert result.backfilled == 0 and result.note is None
    stored = await world.papers.subscriptions.get(sub.id)
    assert stored is not None and stored.created_by == ALICE


async def test_no_channel_means_a_dm_subscription(world: World) -> None:
    """Without a channel the actor's DMs are subscribed, even when invoked in a guild."""
    result = await world.service.subscribe(
        actor_id=BOB, guild_id=GUILD, channel_id=None, kind=KEYWORD, value="Diffusion  Models"
    )
    dest = result.subscription.destination
    assert (dest.kind, dest.target_id, dest.guild_id) == (DestinationKind.DM, BOB, None)
    assert result.subscription.value == "Diffusion Models"


async def test_unknown_category_is_refused_with_suggestion(world: World) -> None:
    """A category that does not exist is a user error suggesting the nearest one."""
    with pytest.raises(InvalidInputError, match=r"cs\.LG"):
        await world.service.subscribe(
            actor_id=ALICE, guild_id=GUILD, channel_id=CHANNEL, kind=CATEGORY, value="cs.LGX"
        )
    assert await world.papers.subscriptions.count_for_user(ALICE) == 0


async def test_duplicate_returns_existing_with_note(world: World) -> None:
    """Subscribing twice returns the first subscription, its flags unchanged, created False."""
    first = await world.service.subscribe(
        actor_id=ALICE, guild_id=GUILD, channel_id=CHANNEL, kind=CATEGORY, value="math.PR",
        include_cross=False,
    )  # fmt: skip
    again = await world.service.subscribe(
        actor_id=BOB, guild_id=GUILD, channel_id=CHANNEL, kind=CATEGORY, value="MATH.pr",
        include_cross=True,
    )  # fmt: skip
    assert not again.created
    assert again.subscription.id == first.subscription.id
    assert again.subscription.include_cross is False
    assert again.note is not None and "already" in again.note


async def test_channel_without_guild_is_refused(world: World) -> None:
    """A channel id without a guild (a DM context) cannot make a channel subscription."""
    with pytest.raises(InvalidInputError):
        await world.service.subscribe(
            actor_id=ALICE, guild_id=None, channel_id=CHANNEL, kind=CATEGORY, value="cs.AI"
        )


@pytest.mark.parametrize("name", ["", "   ", "x" * 101, "12345", "!!! ???"])
async def test_bad_author_names_are_refused(world: World, name: str) -> None:
    """Author names must be non-empty, at most 100 characters, and contain a letter."""
    with pytest.raises(InvalidInputError):
        await world.service.subscribe(
            actor_id=ALICE, guild_id=None, channel_id=None, kind=AUTHOR, value=name
        )
    assert await world.papers.subscriptions.count_for_user(ALICE) == 0


@pytest.mark.parametrize("keyword", ["", "ab", "!!", "a-", "w" * 101])
async def test_bad_keywords_are_refused(world: World, keyword: str) -> None:
    """Keywords need 3..max_keyword_length characters after folding."""
    with pytest.raises(InvalidInputError):
        await world.service.subscribe(
            actor_id=ALICE, guild_id=None, channel_id=None, kind=KEYWORD, value=keyword
        )


async def test_keyword_limit_per_destination(tmp_path: Path) -> None:
    """A destination watches at most max_keywords_per_destination keywords; others are apart."""
    w = await make_world(tmp_path, max_keywords_per_destination=2)
    try:
        for word in ("transformer", "diffusion"):
            await w.service.subscribe(
                actor_id=ALICE, guild_id=GUILD, channel_id=CHANNEL, kind=KEYWORD, value=word
            )
        with pytest.raises(QuotaExceededError, match=r"2 keywords; the limit is 2"):
            await w.service.subscribe(
                actor_id=BOB, guild_id=GUILD, channel_id=CHANNEL, kind=KEYWORD, value="graphs"
            )
        # Re-subscribing an existing keyword is not a new one; categories don't count.
        again = await w.service.subscribe(
            actor_id=BOB, guild_id=GUILD, channel_id=CHANNEL, kind=KEYWORD, value="Diffusion"
        )
        assert not again.created
        await w.service.subscribe(
            actor_id=BOB, guild_id=GUILD, channel_id=CHANNEL, kind=CATEGORY, value="cs.AI"
        )
        await w.service.subscribe(
            actor_id=BOB, guild_id=GUILD, channel_id=CHANNEL_2, kind=KEYWORD, value="graphs"
        )
    finally:
        await w.db.close()


async def test_guild_quota_counts_channel_subscriptions_only(tmp_path: Path) -> None:
    """The per-guild quota spans the guild's channels and leaves DMs and other guilds alone."""
    w = await make_world(tmp_path, max_subscriptions_per_guild=2)
    try:
        for channel, category in ((CHANNEL, "cs.AI"), (CHANNEL_2, "cs.LG")):
            await w.service.subscribe(
                actor_id=ALICE, guild_id=GUILD, channel_id=channel, kind=CATEGORY, value=category
            )
        with pytest.raises(QuotaExceededError, match=r"already has 2 .* limit is 2"):
            await w.service.subscribe(
                actor_id=BOB, guild_id=GUILD, channel_id=CHANNEL_3, kind=CATEGORY, value="cs.CL"
            )
        await w.service.subscribe(
            actor_id=ALICE, guild_id=GUILD, channel_id=None, kind=CATEGORY, value="cs.CL"
        )
        await w.service.subscribe(
            actor_id=BOB, guild_id=OTHER_GUILD, channel_id=FOREIGN_CHANNEL, kind=CATEGORY,
            value="cs.CL",
        )  # fmt: skip
    finally:
        await w.db.close()


async def test_user_quota_counts_everything_a_user_created(tmp_path: Path) -> None:
    """The per-user quota counts a user's channel and DM subscriptions together."""
    w = await make_world(tmp_path, max_subscriptions_per_user=2)
    try:
        await w.service.subscribe(
            actor_id=ALICE, guild_id=GUILD, channel_id=CHANNEL, kind=CATEGORY, value="cs.AI"
        )
        await w.service.subscribe(
            actor_id=ALICE, guild_id=None, channel_id=None, kind=AUTHOR, value="Shane Legg"
        )
        with pytest.raises(QuotaExceededError, match=r"created 2 subscriptions; the limit is 2"):
            await w.service.subscribe(
                actor_id=ALICE, guild_id=None, channel_id=None, kind=KEYWORD, value="bandits"
            )
        await w.service.subscribe(
            actor_id=BOB, guild_id=None, channel_id=None, kind=KEYWORD, value="bandits"
        )
    finally:
        await w.db.close()


# ---- backfill ----------------------------------------------------------------------------


@pytest.mark.parametrize("count", [-1, 11, 1000])
async def test_backfill_range(world: World, count: int) -> None:
    """Backfill is limited to 0..10 papers."""
    with pytest.raises(InvalidInputError, match="between 0 and 10"):
        await world.service.subscribe(
            actor_id=ALICE, guild_id=None, channel_id=None, kind=CATEGORY, value="cs.LG",
            backfill=count,
        )  # fmt: skip


async def test_new_subscription_does_not_post_the_past(world: World) -> None:
    """Without backfill nothing already stored is queued for the new subscription."""
    await world.papers.announce([paper(n) for n in range(1, 6)])
    await world.service.subscribe(
        actor_id=ALICE, guild_id=GUILD, channel_id=CHANNEL, kind=CATEGORY, value="cs.LG"
    )
    assert await queued_ids(world) == []


async def test_category_backfill_queues_newest_matching_oldest_first(world: World) -> None:
    """Backfill queues the N newest stored papers the subscription matches, oldest posted first."""
    batch = [paper(n) for n in range(1, 9)]
    # Newer than all of those, but cross-listed into cs.LG (primary cs.AI) or another field.
    batch += [paper(20, primary="cs.AI", categories=("cs.LG",)), paper(21, primary="math.PR")]
    await world.papers.announce(batch)
    result = await world.service.subscribe(
        actor_id=ALICE, guild_id=GUILD, channel_id=CHANNEL, kind=CATEGORY, value="cs.LG",
        include_cross=False, backfill=3,
    )  # fmt: skip
    assert result.backfilled == 3
    assert await queued_ids(world) == ["2411.00006", "2411.00007", "2411.00008"]
    due = await world.papers.outbox.claim_due(now=NOW, limit=10)
    assert {d.matched for d in due} == {("category: cs.LG",)}
    assert {d.destination.target_id for d in due} == {CHANNEL}


async def test_backfill_looks_past_many_non_matching_papers(world: World) -> None:
    """Backfill still finds matches behind many newer papers the rules exclude (replacements)."""
    batch = [paper(n) for n in (1, 2)]
    batch += [paper(n, announce=AnnounceType.REPLACE) for n in range(3, 90)]
    await world.papers.announce(batch)
    result = await world.service.subscribe(
        actor_id=ALICE, guild_id=None, channel_id=None, kind=CATEGORY, value="cs.LG", backfill=2
    )
    assert result.backfilled == 2
    assert await queued_ids(world) == ["2411.00001", "2411.00002"]


async def test_backfill_with_cross_lists_and_no_duplicates(world: World) -> None:
    """include_cross lets cross-lists into the backfill; repeating it queues nothing twice."""
    await world.papers.announce(
        [paper(1), paper(2), paper(20, primary="cs.AI", categories=("cs.LG",))]
    )
    first = await world.service.subscribe(
        actor_id=ALICE, guild_id=None, channel_id=None, kind=CATEGORY, value="cs.LG", backfill=2
    )
    assert first.backfilled == 2
    assert await queued_ids(world) == ["2411.00002", "2411.00020"]
    again = await world.service.subscribe(
        actor_id=ALICE, guild_id=None, channel_id=None, kind=CATEGORY, value="cs.LG", backfill=2
    )
    assert not again.created and again.backfilled == 0
    assert len(await queued_ids(world)) == 2


async def test_author_backfill_and_spellings(world: World) -> None:
    """An author subscription reports the stored spellings and backfills only compatible names."""
    await world.papers.announce(
        [
            paper(1, authors=("Shane Legg", "Marcus Hutter")),
            paper(2, authors=("S. Legg",)),
            paper(3, authors=("Peter Legg",)),
            paper(4, authors=("Ada Lovelace",)),
        ]
    )
    result = await world.service.subscribe(
        actor_id=ALICE, guild_id=None, channel_id=None, kind=AUTHOR, value="Shane  Legg",
        backfill=10,
    )  # fmt: skip
    assert result.subscription.value == "Shane Legg"
    assert set(result.matched_names) == {"Shane Legg", "S. Legg"}
    assert not result.ambiguous
    assert result.backfilled == 2
    assert await queued_ids(world) == ["2411.00001", "2411.00002"]


async def test_surname_only_author_is_ambiguous(world: World) -> None:
    """A name that matches stored names of different people is flagged ambiguous."""
    await world.papers.announce(
        [paper(1, authors=("Shane Legg",)), paper(2, authors=("Peter Legg",))]
    )
    result = await world.service.subscribe(
        actor_id=ALICE, guild_id=None, channel_id=None, kind=AUTHOR, value="Legg"
    )
    assert set(result.matched_names) == {"Shane Legg", "Peter Legg"}
    assert result.ambiguous


async def test_unknown_author_gets_a_note(world: World) -> None:
    """Following an author nobody has stored yet works and says so."""
    result = await world.service.subscribe(
        actor_id=ALICE, guild_id=None, channel_id=None, kind=AUTHOR, value="Nobody Atall"
    )
    assert result.created and result.matched_names == ()
    assert result.note is not None and "No stored paper" in result.note


async def test_keyword_backfill_needs_the_exact_phrase(world: World) -> None:
    """A keyword backfill queues papers with the phrase, not ones merely sharing its words."""
    await world.papers.announce(
        [
            paper(1, title="Score-based diffusion models for images"),
            paper(2, title="Models of heat diffusion in metals"),
            paper(3, title="Planning", abstract="We train a diffusion model to plan."),
            paper(4, title="Unrelated work on graphs"),
            paper(5, title="The model of diffusion we use", abstract="A model. Diffusion."),
        ]
    )
    result = await world.service.subscribe(
        actor_id=ALICE, guild_id=None, channel_id=None, kind=KEYWORD, value="diffusion model",
        backfill=5,
    )  # fmt: skip
    assert result.backfilled == 1
    assert await queued_ids(world) == ["2411.00003"]


# ---- unsubscribe, listing, choices -------------------------------------------------------


async def _three(world: World) -> tuple[int, int, int]:
    """Alice's DM sub, a channel sub in GUILD, and a channel sub in OTHER_GUILD."""
    s = world.service
    dm = await s.subscribe(
        actor_id=ALICE, guild_id=None, channel_id=None, kind=CATEGORY, value="cs.AI"
    )
    here = await s.subscribe(
        actor_id=ALICE, guild_id=GUILD, channel_id=CHANNEL, kind=CATEGORY, value="cs.LG"
    )
    there = await s.subscribe(
        actor_id=BOB, guild_id=OTHER_GUILD, channel_id=FOREIGN_CHANNEL, kind=CATEGORY,
        value="cs.CL",
    )  # fmt: skip
    return dm.subscription.id, here.subscription.id, there.subscription.id


async def test_unsubscribe_rules(world: World) -> None:
    """Own DMs: yes; this guild's channels: only with Manage Channels; anything else: not found."""
    dm, here, there = await _three(world)
    s = world.service
    with pytest.raises(NotFoundError) as foreign_dm:
        await s.unsubscribe(
            actor_id=BOB, guild_id=GUILD, subscription_id=dm, can_manage=ANY_CHANNEL
        )
    with pytest.raises(NotFoundError) as foreign_guild:
        await s.unsubscribe(
            actor_id=ALICE, guild_id=GUILD, subscription_id=there, can_manage=ANY_CHANNEL
        )
    with pytest.raises(NotFoundError) as missing:
        await s.unsubscribe(
            actor_id=ALICE, guild_id=GUILD, subscription_id=99999, can_manage=ANY_CHANNEL
        )
    # The answers must not tell "exists elsewhere" from "does not exist".
    texts = {str(e.value).replace(str(n), "N") for e, n in
             ((foreign_dm, dm), (foreign_guild, there), (missing, 99999))}  # fmt: skip
    assert len(texts) == 1
    with pytest.raises(PermissionDeniedError, match="Manage Channels"):
        await s.unsubscribe(
            actor_id=ALICE, guild_id=GUILD, subscription_id=here, can_manage=NO_CHANNEL
        )
    with pytest.raises(NotFoundError):  # a channel subscription from a DM context
        await s.unsubscribe(
            actor_id=ALICE, guild_id=None, subscription_id=here, can_manage=ANY_CHANNEL
        )
    removed = await s.unsubscribe(
        actor_id=BOB, guild_id=GUILD, subscription_id=here, can_manage=ANY_CHANNEL
    )
    assert removed.id == here
    removed_dm = await s.unsubscribe(
        actor_id=ALICE, guild_id=OTHER_GUILD, subscription_id=dm, can_manage=NO_CHANNEL
    )
    assert removed_dm.id == dm
    assert await world.papers.subscriptions.get(there) is not None
    assert await world.papers.subscriptions.get(here) is None


async def test_unsubscribe_checks_the_subscriptions_own_channel(world: World) -> None:
    """Manage Channels is asked about the subscription's channel; an unseen channel is not found."""
    _dm, here, _there = await _three(world)
    s = world.service
    asked: list[int] = []

    def manages_other(channel_id: int) -> bool:
        asked.append(channel_id)
        return channel_id != CHANNEL

    with pytest.raises(PermissionDeniedError, match="Manage Channels"):
        await s.unsubscribe(
            actor_id=ALICE, guild_id=GUILD, subscription_id=here, can_manage=manages_other
        )
    assert asked == [CHANNEL]
    with pytest.raises(NotFoundError):
        await s.unsubscribe(
            actor_id=ALICE, guild_id=GUILD, subscription_id=here, can_manage=ANY_CHANNEL,
            can_view=NO_CHANNEL,
        )  # fmt: skip
    assert await world.papers.subscriptions.get(here) is not None


async def test_listing_keeps_only_channels_the_caller_can_view(world: World) -> None:
    """With `can_view`, channel subscriptions of channels the caller can't see are left out."""
    dm, here, _there = await _three(world)
    hidden = await world.service.listing(guild_id=GUILD, user_id=ALICE, can_view=NO_CHANNEL)
    assert hidden.channel == [] and [s.id for s in hidden.dm] == [dm]
    shown = await world.service.listing(
        guild_id=GUILD, user_id=ALICE, can_view=lambda c: c == CHANNEL
    )
    assert [s.id for s in shown.channel] == [here]


async def test_listing_is_isolated_per_guild_and_user(world: World) -> None:
    """A listing shows this guild's channel subscriptions and only the caller's DMs."""
    dm, here, there = await _three(world)
    alice_here = await world.service.listing(guild_id=GUILD, user_id=ALICE)
    assert [s.id for s in alice_here.channel] == [here]
    assert [s.id for s in alice_here.dm] == [dm]
    bob_there = await world.service.listing(guild_id=OTHER_GUILD, user_id=BOB)
    assert [s.id for s in bob_there.channel] == [there]
    assert bob_there.dm == []
    alice_dm = await world.service.listing(guild_id=None, user_id=ALICE)
    assert alice_dm.channel == [] and [s.id for s in alice_dm.dm] == [dm]


async def test_choices_only_offer_what_may_be_removed(world: World) -> None:
    """Autocomplete offers own DMs, plus this guild's channels only with Manage Channels."""
    dm, here, _there = await _three(world)
    s = world.service
    plain = await s.choices(guild_id=GUILD, user_id=ALICE, can_manage=NO_CHANNEL, current="")
    assert plain == [("DM · category: cs.AI", dm)]
    names = {CHANNEL: "papers"}
    managed = await s.choices(
        guild_id=GUILD, user_id=ALICE, can_manage=ANY_CHANNEL, current="",
        channel_name=names.get,
    )  # fmt: skip
    assert managed == [("DM · category: cs.AI", dm), ("#papers · category: cs.LG", here)]
    filtered = await s.choices(
        guild_id=GUILD, user_id=ALICE, can_manage=ANY_CHANNEL, current="#PAP",
        channel_name=names.get,
    )  # fmt: skip
    assert filtered == [("#papers · category: cs.LG", here)]
    unnamed = await s.choices(guild_id=GUILD, user_id=BOB, can_manage=ANY_CHANNEL, current="lg")
    assert unnamed == [(f"#{CHANNEL} · category: cs.LG", here)]


async def test_choices_are_capped_and_short(tmp_path: Path) -> None:
    """At most 25 choices, each label at most 100 characters."""
    w = await make_world(tmp_path, max_keyword_length=200, max_keywords_per_destination=40)
    try:
        for n in range(30):
            await w.service.subscribe(
                actor_id=ALICE, guild_id=None, channel_id=None, kind=KEYWORD,
                value=f"phrase{n:02d} " + "word " * 30,
            )  # fmt: skip
        choices = await w.service.choices(
            guild_id=None, user_id=ALICE, can_manage=NO_CHANNEL, current=""
        )
        assert len(choices) == 25
        assert all(len(label) <= 100 for label, _ in choices)
    finally:
        await w.db.close()


async def test_channel_deleted_removes_destination(world: World) -> None:
    """Deleting a channel drops its subscriptions and queued alerts, and reports the count."""
    await world.papers.announce([paper(1)])
    for value in ("cs.LG", "cs.AI"):
        await world.service.subscribe(
            actor_id=ALICE, guild_id=GUILD, channel_id=CHANNEL, kind=CATEGORY, value=value,
            backfill=1,
        )  # fmt: skip
    assert await queued_ids(world) == ["2411.00001"]
    assert await world.service.channel_deleted(CHANNEL) == 2
    assert (await world.service.listing(guild_id=GUILD, user_id=ALICE)).channel == []
    assert await queued_ids(world) == []
    assert await world.service.channel_deleted(CHANNEL) == 0
    assert await world.service.channel_deleted(424242) == 0


async def test_pause_is_labelled_and_resubscribing_resumes(world: World) -> None:
    """A paused destination shows as paused; subscribing it again resumes it and says so."""
    first = await world.service.subscribe(
        actor_id=ALICE, guild_id=GUILD, channel_id=CHANNEL, kind=CATEGORY, value="cs.LG"
    )
    dest_id = first.subscription.destination.id
    paused = await world.service.pause(dest_id, "missing permission")
    assert paused is not None and paused.paused_reason == "missing permission"
    listed = (await world.service.listing(guild_id=GUILD, user_id=ALICE)).channel
    assert subscription_label(listed[0], "papers") == "#papers · category: cs.LG (paused)"
    again = await world.service.subscribe(
        actor_id=ALICE, guild_id=GUILD, channel_id=CHANNEL, kind=CATEGORY, value="cs.LG"
    )
    assert again.note is not None and "resume now" in again.note
    stored = await world.papers.subscriptions.get_destination(dest_id)
    assert stored is not None and not stored.paused
    plain = await world.service.subscribe(
        actor_id=ALICE, guild_id=GUILD, channel_id=CHANNEL, kind=CATEGORY, value="cs.AI"
    )
    assert plain.note is None


async def test_resume_channel_is_guild_scoped(world: World) -> None:
    """resume_channel resumes a paused channel of this guild and hides other guilds' channels."""
    first = await world.service.subscribe(
        actor_id=ALICE, guild_id=GUILD, channel_id=CHANNEL, kind=CATEGORY, value="cs.LG"
    )
    dest_id = first.subscription.destination.id
    await world.service.pause(dest_id, "missing permission")
    with pytest.raises(NotFoundError):
        await world.service.resume_channel(guild_id=OTHER_GUILD, channel_id=CHANNEL)
    with pytest.raises(NotFoundError):
        await world.service.resume_channel(guild_id=GUILD, channel_id=CHANNEL_2)
    resumed = await world.service.resume_channel(guild_id=GUILD, channel_id=CHANNEL)
    assert resumed.id == dest_id and not resumed.paused


async def test_creators_lists_who_subscribed_a_destination(world: World) -> None:
    """creators names each user who made a subscription of the destination, once."""
    for actor, value in ((BOB, "cs.LG"), (ALICE, "cs.AI"), (BOB, "cs.CL")):
        result = await world.service.subscribe(
            actor_id=actor, guild_id=GUILD, channel_id=CHANNEL, kind=CATEGORY, value=value
        )
    assert await world.service.creators(result.subscription.destination.id) == [ALICE, BOB]
    assert await world.service.creators(424242) == []


async def test_author_suggestions_come_from_the_store(world: World) -> None:
    """Author autocomplete offers stored spellings and ignores empty or huge input."""
    await world.papers.announce([paper(1, authors=("Shane Legg", "Marcus Hutter"))])
    assert await world.service.author_suggestions("Leg") == ["Shane Legg"]
    assert await world.service.author_suggestions("") == []
    assert await world.service.author_suggestions("x" * 500) == []
