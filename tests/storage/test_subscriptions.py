"""Tests for storage.subscriptions: destinations, subscriptions, quotas and candidate lookup."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from bot.domain.models import Destination, DestinationKind, Subscription, SubscriptionKind
from storage.candidates import CANDIDATES_SQL
from storage.store import Store
from storage.subscriptions import (
    QuotaReachedError,
    SubscriptionQuota,
    SubscriptionRepository,
)

NOW = datetime(2024, 11, 28, 5, 0, tzinfo=UTC)
CHANNEL = DestinationKind.CHANNEL
DM = DestinationKind.DM
CATEGORY = SubscriptionKind.CATEGORY
AUTHOR = SubscriptionKind.AUTHOR
KEYWORD = SubscriptionKind.KEYWORD


@pytest.fixture
def db(any_db: Store) -> Store:
    """Each test runs on SQLite and on PostgreSQL (tests/backends.py)."""
    return any_db


@pytest.fixture
def repo(db: Store) -> SubscriptionRepository:
    return SubscriptionRepository(db)


async def subscribe(
    repo: SubscriptionRepository,
    dest: Destination,
    kind: SubscriptionKind,
    key: str,
    given: str = "",
    *,
    user: int = 7,
    include_cross: bool = True,
) -> int:
    sub, _ = await repo.add(
        dest,
        kind,
        f"{key} {given}".strip(),
        key,
        given,
        include_cross=include_cross,
        include_replacements=False,
        created_by=user,
        now=NOW,
    )
    return sub.id


async def candidates(
    repo: SubscriptionRepository,
    *,
    categories: Collection[str],
    surnames: Collection[str],
    keyword_tokens: Collection[str],
) -> list[Subscription]:
    """`repo.candidates` in a transaction of its own, as the matcher calls it (TEMP table write)."""
    async with repo.db.transaction() as conn:
        return await repo.candidates(
            conn, categories=categories, surnames=surnames, keyword_tokens=keyword_tokens
        )


async def test_ensure_destination_is_an_upsert(repo: SubscriptionRepository) -> None:
    """The same channel always maps to one destination row; its guild is refreshed."""
    first = await repo.ensure_destination(CHANNEL, 100, 1)
    again = await repo.ensure_destination(CHANNEL, 100, 2)
    dm = await repo.ensure_destination(DM, 100, None)
    assert again.id == first.id
    assert again.guild_id == 2
    assert dm.id != first.id and dm.guild_id is None
    assert await repo.destination_for(CHANNEL, 100) == again
    assert await repo.get_destination(dm.id) == dm
    assert await repo.destination_for(CHANNEL, 999) is None


async def test_ensure_destination_rejects_inconsistent_guild(repo: SubscriptionRepository) -> None:
    """A DM has no guild and a channel must have one."""
    with pytest.raises(ValueError):
        await repo.ensure_destination(DM, 5, 1)
    with pytest.raises(ValueError):
        await repo.ensure_destination(CHANNEL, 5, None)


async def test_add_returns_existing_identical_subscription(repo: SubscriptionRepository) -> None:
    """Adding the same subscription twice returns the first one with created=False."""
    dest = await repo.ensure_destination(CHANNEL, 100, 1)
    first, created = await repo.add(
        dest,
        AUTHOR,
        "Shane Legg",
        "legg",
        "shane",
        include_cross=True,
        include_replacements=False,
        created_by=7,
        now=NOW,
    )
    second, created_again = await repo.add(
        dest,
        AUTHOR,
        "S. Legg?",
        "legg",
        "shane",
        include_cross=False,
        include_replacements=True,
        created_by=8,
        now=NOW + timedelta(hours=1),
    )
    assert created and not created_again
    assert second == first
    assert second.value == "Shane Legg" and second.include_cross and second.created_by == 7
    assert len(await repo.list_destination(dest.id)) == 1


async def test_add_round_trips_fields_and_utc_time(repo: SubscriptionRepository) -> None:
    """A subscription reads back with its flags, destination and creation time in UTC."""
    dest = await repo.ensure_destination(DM, 42, None)
    eastern = timezone(timedelta(hours=-5))
    sub, _ = await repo.add(
        dest,
        KEYWORD,
        "Length Generalization",
        "generalization",
        "length generalization",
        include_cross=False,
        include_replacements=True,
        created_by=42,
        now=datetime(2024, 11, 28, 0, 0, tzinfo=eastern),
    )
    stored = await repo.get(sub.id)
    assert stored is not None
    assert stored.destination == dest
    assert (stored.kind, stored.value, stored.match_key, stored.given_key) == (
        KEYWORD,
        "Length Generalization",
        "generalization",
        "length generalization",
    )
    assert not stored.include_cross and stored.include_replacements
    assert stored.created_at == NOW and stored.created_at.utcoffset() == timedelta(0)


async def test_add_rejects_naive_time(repo: SubscriptionRepository) -> None:
    """A naive datetime is refused at the storage boundary."""
    dest = await repo.ensure_destination(DM, 42, None)
    with pytest.raises(ValueError):
        await repo.add(
            dest,
            CATEGORY,
            "cs.LG",
            "cs.LG",
            "",
            include_cross=True,
            include_replacements=False,
            created_by=42,
            now=datetime(2024, 1, 1),  # noqa: DTZ001
        )
    assert await repo.list_destination(dest.id) == []


async def test_list_for_guild_sees_only_that_guilds_channels(repo: SubscriptionRepository) -> None:
    """Guild A's listing holds A's channel subscriptions, not guild B's nor DMs."""
    a1 = await repo.ensure_destination(CHANNEL, 100, 1)
    a2 = await repo.ensure_destination(CHANNEL, 101, 1)
    b = await repo.ensure_destination(CHANNEL, 200, 2)
    dm = await repo.ensure_destination(DM, 7, None)
    ids_a = {
        await subscribe(repo, a1, CATEGORY, "cs.LG"),
        await subscribe(repo, a2, AUTHOR, "legg", "s"),
    }
    await subscribe(repo, b, CATEGORY, "cs.LG")
    dm_sub = await subscribe(repo, dm, CATEGORY, "cs.AI")
    assert {s.id for s in await repo.list_for_guild(1)} == ids_a
    assert {s.destination.guild_id for s in await repo.list_for_guild(2)} == {2}
    assert [s.id for s in await repo.list_dm(7)] == [dm_sub]
    assert await repo.list_dm(8) == []


async def test_quota_counts(repo: SubscriptionRepository) -> None:
    """Guild counts span the guild's channels; user counts span every destination."""
    a1 = await repo.ensure_destination(CHANNEL, 100, 1)
    a2 = await repo.ensure_destination(CHANNEL, 101, 1)
    b = await repo.ensure_destination(CHANNEL, 200, 2)
    dm = await repo.ensure_destination(DM, 7, None)
    await subscribe(repo, a1, CATEGORY, "cs.LG", user=7)
    await subscribe(repo, a2, CATEGORY, "cs.LG", user=8)
    await subscribe(repo, b, CATEGORY, "cs.AI", user=7)
    await subscribe(repo, dm, KEYWORD, "transformers", "transformers", user=7)
    assert await repo.count_for_guild(1) == 2
    assert await repo.count_for_guild(2) == 1
    assert await repo.count_for_guild(3) == 0
    assert await repo.count_for_user(7) == 3
    assert await repo.count_for_user(8) == 1


async def test_remove_returns_deleted_subscription(repo: SubscriptionRepository) -> None:
    """remove() hands back what it deleted once, then None."""
    dest = await repo.ensure_destination(CHANNEL, 100, 1)
    keep = await subscribe(repo, dest, CATEGORY, "cs.AI")
    gone = await subscribe(repo, dest, CATEGORY, "cs.LG")
    removed = await repo.remove(gone)
    assert removed is not None and removed.match_key == "cs.LG"
    assert await repo.remove(gone) is None
    assert await repo.get(gone) is None
    assert [s.id for s in await repo.list_destination(dest.id)] == [keep]


async def test_remove_destination_cascades(repo: SubscriptionRepository) -> None:
    """Deleting a channel's destination deletes its subscriptions and nothing else."""
    gone = await repo.ensure_destination(CHANNEL, 100, 1)
    other = await repo.ensure_destination(CHANNEL, 101, 1)
    sub_gone = await subscribe(repo, gone, CATEGORY, "cs.LG")
    sub_other = await subscribe(repo, other, CATEGORY, "cs.LG")
    assert await repo.remove_destination(gone.id)
    assert not await repo.remove_destination(gone.id)
    assert await repo.get(sub_gone) is None
    assert await repo.get_destination(gone.id) is None
    assert [s.id for s in await repo.list_for_guild(1)] == [sub_other]


async def test_pause_resume_and_digest(repo: SubscriptionRepository) -> None:
    """Pausing records reason and time; resuming clears both; digest is a stored flag."""
    dest = await repo.ensure_destination(CHANNEL, 100, 1)
    paused = await repo.pause_destination(dest.id, "403 Missing Access", NOW)
    assert paused is not None and paused.paused
    assert (paused.paused_reason, paused.paused_at) == ("403 Missing Access", NOW)
    resumed = await repo.resume_destination(dest.id)
    assert resumed is not None and not resumed.paused and resumed.paused_at is None
    digest = await repo.set_digest(dest.id, True)
    assert digest is not None and digest.digest
    assert (await repo.get_destination(dest.id)) == digest
    assert await repo.pause_destination(999, "x", NOW) is None


async def test_all_categories_skips_paused_destinations(repo: SubscriptionRepository) -> None:
    """The poller fetches the distinct categories of unpaused destinations only."""
    a = await repo.ensure_destination(CHANNEL, 100, 1)
    b = await repo.ensure_destination(CHANNEL, 200, 2)
    await subscribe(repo, a, CATEGORY, "cs.LG")
    await subscribe(repo, b, CATEGORY, "cs.LG")
    await subscribe(repo, b, CATEGORY, "math.CA")
    await subscribe(repo, a, AUTHOR, "legg", "s")
    assert await repo.all_categories() == ["cs.LG", "math.CA"]
    await repo.pause_destination(b.id, "403", NOW)
    assert await repo.all_categories() == ["cs.LG"]


async def test_needs_all_papers_only_for_live_author_or_keyword(
    repo: SubscriptionRepository,
) -> None:
    """Author and keyword subscriptions of unpaused destinations need every archive polled."""
    a = await repo.ensure_destination(CHANNEL, 100, 1)
    b = await repo.ensure_destination(DM, 7, None)
    await subscribe(repo, a, CATEGORY, "cs.LG")
    assert not await repo.needs_all_papers()
    await subscribe(repo, b, KEYWORD, "transformers", "transformers")
    assert await repo.needs_all_papers()
    await repo.pause_destination(b.id, "DMs closed", NOW)
    assert not await repo.needs_all_papers()


async def test_creators_lists_distinct_users(repo: SubscriptionRepository) -> None:
    """creators() names each user who subscribed the destination once."""
    a = await repo.ensure_destination(CHANNEL, 100, 1)
    other = await repo.ensure_destination(CHANNEL, 101, 1)
    await subscribe(repo, a, CATEGORY, "cs.LG", user=9)
    await subscribe(repo, a, CATEGORY, "cs.AI", user=3)
    await subscribe(repo, a, AUTHOR, "legg", "s", user=9)
    await subscribe(repo, other, AUTHOR, "legg", "s", user=5)
    assert await repo.creators(a.id) == [3, 9]
    assert await repo.creators(999) == []


async def test_candidates_match_keys_per_kind(repo: SubscriptionRepository) -> None:
    """Candidates are the subscriptions whose (kind, match_key) is among the batch's keys."""
    dest = await repo.ensure_destination(CHANNEL, 100, 1)
    cat = await subscribe(repo, dest, CATEGORY, "cs.LG")
    author = await subscribe(repo, dest, AUTHOR, "legg", "s")
    keyword = await subscribe(repo, dest, KEYWORD, "generalization", "length generalization")
    await subscribe(repo, dest, CATEGORY, "math.CA")
    await subscribe(repo, dest, AUTHOR, "hutter", "m")
    found = await candidates(
        repo,
        categories=["cs.LG", "cs.AI"],
        surnames={"legg", "generalization"},  # a surname key must not find a keyword key
        keyword_tokens=("length", "generalization", "cs.LG"),
    )
    assert [s.id for s in found] == [cat, author, keyword]
    assert found[1].destination == dest
    assert await candidates(repo, categories=(), surnames=(), keyword_tokens=()) == []


async def test_candidates_skip_paused_destinations(repo: SubscriptionRepository) -> None:
    """A paused destination's subscriptions are not candidates until it resumes."""
    dest = await repo.ensure_destination(CHANNEL, 100, 1)
    await subscribe(repo, dest, CATEGORY, "cs.LG")
    await repo.pause_destination(dest.id, "403", NOW)
    assert await candidates(repo, categories=["cs.LG"], surnames=(), keyword_tokens=()) == []
    await repo.resume_destination(dest.id)
    assert len(await candidates(repo, categories=["cs.LG"], surnames=(), keyword_tokens=())) == 1


async def test_candidates_inside_open_transaction_with_many_keys(
    db: Store, repo: SubscriptionRepository
) -> None:
    """candidates() runs in the caller's transaction and takes far more keys than SQLite params."""
    dest = await repo.ensure_destination(CHANNEL, 100, 1)
    wanted = await subscribe(repo, dest, KEYWORD, "token4999", "token4999")
    tokens = [f"token{i}" for i in range(5000)]
    async with db.transaction() as conn:
        await conn.execute(
            text("UPDATE destinations SET digest = 1 WHERE id = :id"), {"id": dest.id}
        )
        found = await repo.candidates(conn, categories=[], surnames=[], keyword_tokens=tokens)
    assert [s.id for s in found] == [wanted]
    assert found[0].destination.digest  # saw the transaction's own uncommitted write


@pytest.mark.parametrize("any_db", ["sqlite"], indirect=True)  # EXPLAIN QUERY PLAN is SQLite's
async def test_candidate_query_probes_the_match_index(
    db: Store, repo: SubscriptionRepository
) -> None:
    """The candidate query drives from the JSON key list into subscriptions(kind, match_key)."""
    dest = await repo.ensure_destination(CHANNEL, 100, 1)
    for i in range(50):
        await subscribe(repo, dest, CATEGORY, f"cat.{i}")
    await candidates(repo, categories=["cat.1"], surnames=(), keyword_tokens=())
    keys = {"kind": "category", "keys": '["cat.1", "cat.2"]'}
    async with db.transaction() as conn:
        rows = (await conn.execute(text("EXPLAIN QUERY PLAN " + CANDIDATES_SQL), keys)).all()
    plan = " | ".join(str(row[3]) for row in rows)
    assert "SEARCH s USING INDEX subscriptions_match (kind=? AND match_key=?)" in plan, plan
    assert "SCAN s" not in plan, plan


async def test_creators_for_feed_cover_classes_archives_and_local_matching(
    repo: SubscriptionRepository,
) -> None:
    """A failing listing concerns its classes, the classes of its archives, and authors/keywords."""
    channel = await repo.ensure_destination(CHANNEL, 100, 1)
    dm = await repo.ensure_destination(DM, 7, None)
    now = datetime(2024, 11, 28, tzinfo=UTC)
    for kind, key, user in (
        (CATEGORY, "cs.LG", 11),
        (CATEGORY, "math.PR", 12),
        (CATEGORY, "hep-th", 13),
        (SubscriptionKind.AUTHOR, "legg", 14),
    ):
        await repo.add(
            dm if user == 14 else channel, kind, key, key, "",
            include_cross=True, include_replacements=False, created_by=user, now=now,
        )  # fmt: skip
    assert await repo.creators_for_feed(["cs.LG", "stat.ML"]) == [11]
    assert await repo.creators_for_feed(["cs", "hep-th"]) == [11, 13, 14]
    assert await repo.creators_for_feed(["math"]) == [12, 14]
    assert await repo.creators_for_feed([]) == []


async def test_add_with_quota_counts_and_inserts_in_one_transaction(
    repo: SubscriptionRepository,
) -> None:
    """Concurrent adds under a quota stop at the limit; a duplicate is returned, not refused."""
    dm = await repo.ensure_destination(DM, 7, None)
    quota = SubscriptionQuota(per_guild=100, per_user=5, keywords_per_destination=100)

    async def add(n: int) -> bool:
        try:
            _, created = await repo.add(
                dm, KEYWORD, f"word{n}", f"word{n}", f"word{n}", include_cross=True,
                include_replacements=False, created_by=7, now=NOW, quota=quota,
            )  # fmt: skip
        except QuotaReachedError as exc:
            assert (exc.scope, exc.count, exc.limit) == ("user", 5, 5)
            return False
        return created

    results = await asyncio.gather(*(add(n) for n in range(12)))
    assert results.count(True) == 5
    assert await repo.count_for_user(7) == 5
    kept = {s.value for s in await repo.list_dm(7)}
    again, created = await repo.add(
        dm, KEYWORD, "x", sorted(kept)[0], sorted(kept)[0], include_cross=True,
        include_replacements=False, created_by=7, now=NOW, quota=quota,
    )  # fmt: skip
    assert not created and again.value in kept


async def test_usage_is_scoped_to_one_guild_or_one_users_dms(repo: SubscriptionRepository) -> None:
    """Usage counts one guild's channels, or one user's DMs, and never anything else."""
    here = await repo.ensure_destination(CHANNEL, 100, 1)
    paused = await repo.ensure_destination(CHANNEL, 101, 1)
    elsewhere = await repo.ensure_destination(CHANNEL, 200, 2)
    dm = await repo.ensure_destination(DM, 7, None)
    await subscribe(repo, here, CATEGORY, "cs.AI")
    await subscribe(repo, here, CATEGORY, "cs.LG")
    await subscribe(repo, paused, CATEGORY, "cs.CL")
    await subscribe(repo, elsewhere, CATEGORY, "math.PR")
    await subscribe(repo, dm, KEYWORD, "bandits", "bandits")
    await repo.pause_destination(paused.id, "missing permission", NOW)
    guild = await repo.usage(guild_id=1)
    assert (guild.subscriptions, guild.paused, guild.pending) == (3, 1, 0)
    mine = await repo.usage(user_id=7)
    assert (mine.subscriptions, mine.paused, mine.pending) == (1, 0, 0)
    assert (await repo.usage(user_id=8)).subscriptions == 0
    with pytest.raises(ValueError):
        await repo.usage(guild_id=1, user_id=7)


async def test_candidates_take_hostile_keys_verbatim(repo: SubscriptionRepository) -> None:
    """Keys with quotes, backslashes, brackets and non-ASCII reach the lookup unchanged."""
    dest = await repo.ensure_destination(CHANNEL, 100, 1)
    odd = ['a"b', "c\\d", "[1, 2]", "ümlaut", "x'); DROP TABLE subscriptions; --"]
    ids = [await subscribe(repo, dest, KEYWORD, token, token) for token in odd]
    found = await candidates(repo, categories=(), surnames=(), keyword_tokens=[*odd, "plain"])
    assert [s.id for s in found] == ids
    assert [s.match_key for s in found] == odd
