"""The bot's ranking service on a real store: bursts of ratings train once, the model cache
is bounded, tuning keeps back the worst, and the constants agree with bot.ranking."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot import ranker as ranker_module
from bot.domain.models import DestinationKind, Paper
from bot.ranker import MIN_RATINGS, Ranker
from storage.outbox import DeliveryOutbox
from storage.papers import PaperRepository
from storage.ratings import RatingRepository, Tuning
from storage.sqlite import open_sqlite
from storage.store import Store
from storage.subscriptions import SubscriptionRepository
from tests.storage.test_outbox import make_paper

NOW = datetime(2025, 1, 7, 12, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


def topical(number: int, liked: bool) -> Paper:
    words = "graph neural message passing" if liked else "quantum surface code qubits"
    return make_paper(number, title=f"{words} {number}", abstract=f"{words} again.")


@pytest.fixture
async def store(tmp_path: Path) -> Store:
    db = await open_sqlite(tmp_path / "ranker.db")
    yield db  # type: ignore[misc]
    await db.close()


async def rated_destination(db: Store, target: int, count: int) -> tuple[int, list[Paper]]:
    """A channel destination with `count` posted papers (even ones liked when rated)."""
    papers = [topical(target * 100 + n, n % 2 == 0) for n in range(count)]
    await PaperRepository(db).upsert_many(papers)
    dest = await SubscriptionRepository(db).ensure_destination(DestinationKind.CHANNEL, target, 1)
    outbox = DeliveryOutbox(db)
    async with db.transaction() as conn:
        await outbox.enqueue(conn, [(dest.id, p.id, ("c",)) for p in papers], now=NOW)
    due = await outbox.claim_due(now=NOW, limit=1000)
    await outbox.mark_sent([d.id for d in due], message_id=1, at=NOW)
    return dest.id, papers


async def test_a_burst_of_ratings_trains_once(store: Store) -> None:
    """Twelve quick ratings schedule one retrain after the quiet period, not twelve."""
    ranker = Ranker(RatingRepository(store), PaperRepository(store), clock=lambda: NOW,
                    retrain_delay=0.05)  # fmt: skip
    dest, papers = await rated_destination(store, 7, 12)
    for n, item in enumerate(papers):
        await ranker.rate(dest, item.id, 42, liked=n % 2 == 0)
    for _ in range(500):  # the first training also imports scikit-learn
        if ranker.trainings:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)
    assert ranker.trainings == 1
    model = await ranker.model(dest)
    assert model is not None and ranker.trainings == 1  # cached, not retrained
    await ranker.rate(dest, papers[0].id, 43, liked=True)
    await ranker.model(dest)
    assert ranker.trainings == 2  # a new rating makes it stale
    await ranker.close()


async def test_model_cache_is_bounded(store: Store) -> None:
    """With room for two models, a third destination evicts the least recently used."""
    ranker = Ranker(RatingRepository(store), PaperRepository(store), clock=lambda: NOW,
                    retrain_delay=60, max_models=2)  # fmt: skip
    ids = []
    for target in (1, 2, 3):
        dest, papers = await rated_destination(store, target, MIN_RATINGS)
        for n, item in enumerate(papers):
            await ranker.ratings.rate(dest, item.id, 5, liked=n % 2 == 0, now=NOW)
        ids.append(dest)
        assert await ranker.model(dest) is not None
    assert len(ranker._models) == 2 and ids[0] not in ranker._models
    await ranker.close()


async def test_min_score_and_top_k_keep_back_the_worst(store: Store) -> None:
    """min-score drops low scorers, then top:K keeps the best K less what was posted today."""
    ranker = Ranker(RatingRepository(store), PaperRepository(store), clock=lambda: NOW,
                    retrain_delay=60)  # fmt: skip
    dest, papers = await rated_destination(store, 9, 12)
    for n, item in enumerate(papers):
        await ranker.ratings.rate(dest, item.id, 5, liked=n % 2 == 0, now=NOW)
    new = [topical(n, liked=n % 2 == 0) for n in range(900, 906)]
    assert await ranker.rank(dest, []) is None
    unfiltered = await ranker.rank(dest, new)
    assert unfiltered is not None and not unfiltered.kept_back
    liked = {p.id for n, p in enumerate(new) if n % 2 == 0}
    assert {new[i].id for i in unfiltered.order[:3]} == liked
    await ranker.tune(dest, Tuning(min_score=0.0), user_id=5)
    by_score = await ranker.rank(dest, new)
    assert by_score is not None
    assert {new[i].id for i, _s, why in by_score.kept_back if why == "min_score"} == {
        p.id for n, p in enumerate(new) if n % 2 == 1
    }
    await ranker.tune(dest, Tuning(top_k=14), user_id=5)  # 12 already posted today
    top = await ranker.rank(dest, new)
    assert top is not None and len(top.order) == 2
    assert all(new[i].id.endswith(("00", "02", "04")) for i in top.order)
    assert len(top.kept_back) == 4 and all(r for r in top.reasons.values())
    await ranker.close()


def test_constants_agree_and_scikit_learn_stays_unloaded() -> None:
    """The service's thresholds are bot.ranking's, and importing the bot loads no scikit-learn."""
    from bot import ranking

    assert ranker_module.MIN_RATINGS == ranking.MIN_RATINGS
    assert ranker_module.TRAINING_RATINGS == ranking.MAX_TRAINING_RATINGS
    code = (
        "import sys, bot.discord_bot, bot.delivery, bot.cogs.admin;"
        "print(sorted(m for m in ('sklearn', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
    )  # fmt: skip
    assert out.stdout.strip() == "[]"
