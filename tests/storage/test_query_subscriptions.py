"""Query subscriptions in the store: indexed under their required keys, found by key."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from bot.domain.models import Destination, DestinationKind, SubscriptionKind
from bot.domain.query import parse_query
from storage.candidates import QUERY_CANDIDATES_SQL
from storage.store import Store
from storage.subscriptions import (
    QuotaReachedError,
    SubscriptionQuota,
    SubscriptionRepository,
)

NOW = datetime(2024, 11, 28, 5, 0, tzinfo=UTC)
QUERY = SubscriptionKind.QUERY


@pytest.fixture
def repo(any_db: Store) -> SubscriptionRepository:
    """Each test runs on SQLite and on PostgreSQL (tests/backends.py)."""
    return SubscriptionRepository(any_db)


async def add_query(
    repo: SubscriptionRepository,
    dest: Destination,
    expression: str,
    *,
    quota: SubscriptionQuota | None = None,
) -> int:
    query = parse_query(expression)
    keys = [(kind.value, value) for kind, value in query.required_keys]
    sub, _ = await repo.add(
        dest,
        QUERY,
        query.source,
        query.source,
        "",
        include_cross=True,
        include_replacements=False,
        created_by=7,
        now=NOW,
        quota=quota,
        index_keys=keys,
    )
    return sub.id


async def query_candidates(repo: SubscriptionRepository, keys: set[tuple[str, str]]) -> list[int]:
    async with repo.db.transaction() as conn:
        found = await repo.candidates(
            conn, categories=(), surnames=(), keyword_tokens=(), query_keys=keys
        )
    return [s.id for s in found]


async def test_query_found_by_any_of_its_required_keys(repo: SubscriptionRepository) -> None:
    """A query is a candidate when a paper key meets one of its keys, once, and not otherwise."""
    dest = await repo.ensure_destination(DestinationKind.CHANNEL, 100, 1)
    either = await add_query(repo, dest, "ti:transformer OR au:Legg")
    lg = await add_query(repo, dest, "cat:cs.LG ANDNOT ti:survey")
    assert await repo.query_keys(either) == {("token", "transformer"), ("surname", "legg")}
    assert await query_candidates(repo, {("surname", "legg")}) == [either]
    assert await query_candidates(repo, {("category", "cs.lg"), ("token", "transformer")}) == [
        either,
        lg,
    ]
    # A category key must not find a token key of the same text, nor the keyword index.
    assert await query_candidates(repo, {("token", "cs.lg"), ("category", "legg")}) == []
    await repo.pause_destination(dest.id, "403", NOW)
    assert await query_candidates(repo, {("surname", "legg")}) == []


async def test_keyword_subscriptions_share_the_token_index(
    any_db: Store, repo: SubscriptionRepository
) -> None:
    """A keyword subscription is indexed under its match key as a `token`: the listing's
    words find it through the same probes as the queries, whether they come as keyword
    tokens or as query keys, and only through that index row."""
    dest = await repo.ensure_destination(DestinationKind.CHANNEL, 100, 1)
    keyword, _ = await repo.add(
        dest, SubscriptionKind.KEYWORD, "grokking", "grokking", "",
        include_cross=True, include_replacements=False, created_by=7, now=NOW,
    )  # fmt: skip
    query = await add_query(repo, dest, "ti:grokking")
    assert await repo.query_keys(keyword.id) == {("token", "grokking")}
    assert await query_candidates(repo, {("token", "grokking")}) == [keyword.id, query]
    async with repo.db.transaction() as conn:
        found = await repo.candidates(
            conn, categories=(), surnames=(), keyword_tokens=["grokking", "other"]
        )
    assert [s.id for s in found] == [keyword.id, query]
    assert await query_candidates(repo, {("surname", "grokking")}) == []
    await any_db.execute(
        text("DELETE FROM subscription_query_keys WHERE subscription_id = :id"),
        {"id": keyword.id},
    )
    assert await query_candidates(repo, {("token", "grokking")}) == [query]


async def test_removing_a_query_removes_its_keys(repo: SubscriptionRepository) -> None:
    """The index rows go with the subscription (ON DELETE CASCADE)."""
    dest = await repo.ensure_destination(DestinationKind.DM, 5, None)
    sub = await add_query(repo, dest, 'abs:"positional encoding"')
    await repo.remove(sub)
    assert await repo.query_keys(sub) == set()
    assert await query_candidates(repo, {("token", "positional")}) == []


async def test_query_quota_per_destination(repo: SubscriptionRepository) -> None:
    """Queries have their own per-destination cap; an identical query is not a new one."""
    quota = SubscriptionQuota(per_guild=100, per_user=100, keywords_per_destination=2)
    dest = await repo.ensure_destination(DestinationKind.CHANNEL, 100, 1)
    await add_query(repo, dest, "ti:alpha", quota=quota)
    await add_query(repo, dest, "ti:beta", quota=quota)
    await add_query(repo, dest, "ti:beta", quota=quota)
    with pytest.raises(QuotaReachedError) as caught:
        await add_query(repo, dest, "ti:gamma", quota=quota)
    assert caught.value.scope == "queries"


@pytest.mark.parametrize("any_db", ["sqlite"], indirect=True)  # EXPLAIN QUERY PLAN is SQLite's
async def test_query_candidates_probe_the_key_index(
    any_db: Store, repo: SubscriptionRepository
) -> None:
    """The query candidate lookup probes subscription_query_keys(kind, key), never scans."""
    dest = await repo.ensure_destination(DestinationKind.CHANNEL, 100, 1)
    for i in range(30):
        await add_query(repo, dest, f"ti:word{i} AND cat:cs.LG")
    await query_candidates(repo, {("token", "word1")})
    async with any_db.transaction() as conn:
        statement = text("EXPLAIN QUERY PLAN " + QUERY_CANDIDATES_SQL)
        keys = {"kind": "token", "keys": '["word1", "word2"]'}
        rows = (await conn.execute(statement, keys)).all()
    plan = " | ".join(str(row[3]) for row in rows)
    assert "SEARCH q USING" in plan and "(kind=? AND key=?)" in plan, plan
    assert "SCAN q" not in plan and "SCAN s" not in plan, plan
