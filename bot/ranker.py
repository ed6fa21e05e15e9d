"""Per-destination ranking in the running bot: ratings in, scores and kept-back alerts out.

`Ranker` keeps each rated destination's `RankingModel` (bot.ranking) in a
bounded LRU cache. A new rating marks the destination's model stale and
schedules a retrain after a short quiet period (a burst of clicks trains once);
the delivery pass also retrains a stale model before it scores. Training and
scoring run in a worker thread. scikit-learn, SciPy and NumPy are imported only
once some destination has `MIN_RATINGS` ratings, so an idle bot stays small.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING

from bot.domain.models import Paper
from storage.papers import PaperRepository
from storage.ratings import Filtered, RatingRepository, Tuning

if TYPE_CHECKING:
    from bot.ranking import Featurizer, RankingModel

log = logging.getLogger(__name__)

MIN_RATINGS = 10  # as bot.ranking.MIN_RATINGS (not imported here: it loads scikit-learn)
TRAINING_RATINGS = 500  # as bot.ranking.MAX_TRAINING_RATINGS
MAX_CACHED_MODELS = 2_048  # ~8 KB each at 1,000 terms: ~16 MB at most
RETRAIN_DELAY = 5.0  # seconds of quiet after a rating before its destination retrains
IDF_SAMPLE = 2_000  # recent papers the IDF table is computed from
IDF_MAX_AGE = timedelta(days=1)
REASON_TERMS = 3


@dataclass(frozen=True, slots=True)
class Ranked:
    """A destination's pending papers in model order, what tuning kept back, and why each ranks."""

    order: list[int]  # indices into the papers given, best first (kept ones only)
    kept_back: list[tuple[int, float, str]]  # (index, score, 'top_k' | 'min_score')
    reasons: dict[int, tuple[str, ...]]  # index -> the model's top terms in that paper


class Ranker:
    """Models of the destinations that rated alerts; see the module docstring."""

    def __init__(
        self,
        ratings: RatingRepository,
        papers: PaperRepository,
        *,
        clock: Callable[[], datetime],
        retrain_delay: float = RETRAIN_DELAY,
        max_models: int = MAX_CACHED_MODELS,
    ) -> None:
        self.ratings = ratings
        self.papers = papers
        self.clock = clock
        self.retrain_delay = retrain_delay
        self.max_models = max_models
        self.trainings = 0  # models trained, for tests and metrics
        # destination id -> its model, or None when it has too few ratings to rank.
        self._models: OrderedDict[int, RankingModel | None] = OrderedDict()
        self._stale: set[int] = set()
        self._pending: dict[int, asyncio.Task[None]] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self._featurizer: tuple[Featurizer, datetime] | None = None

    async def rate(self, destination_id: int, paper_id: str, user_id: int, *, liked: bool) -> int:
        """Store a rating, schedule the destination's retrain; returns its number of ratings."""
        await self.ratings.rate(destination_id, paper_id, user_id, liked=liked, now=self.clock())
        self._stale.add(destination_id)
        count = await self.ratings.count(destination_id)
        if count >= MIN_RATINGS and destination_id not in self._pending:
            task = asyncio.create_task(self._retrain_later(destination_id))
            self._pending[destination_id] = task
            task.add_done_callback(lambda _t: self._pending.pop(destination_id, None))
        return count

    async def tune(self, destination_id: int, tuning: Tuning, *, user_id: int) -> int:
        """Set the destination's `top:K` / `min-score` (none: off); returns its ratings."""
        await self.ratings.set_tuning(destination_id, tuning, user_id=user_id, now=self.clock())
        log.info("ranking tuning destination=%d top_k=%s min_score=%s",
                 destination_id, tuning.top_k, tuning.min_score)  # fmt: skip
        return await self.ratings.count(destination_id)

    async def close(self) -> None:
        """Cancel scheduled retrains (the next start trains on first use)."""
        tasks = list(self._pending.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _retrain_later(self, destination_id: int) -> None:
        await asyncio.sleep(self.retrain_delay)
        try:
            await self.model(destination_id)
        except Exception:
            log.exception("retraining destination=%d failed", destination_id)

    async def model(self, destination_id: int) -> RankingModel | None:
        """The destination's current model (trained if stale), None below `MIN_RATINGS`."""
        if destination_id in self._models and destination_id not in self._stale:
            self._models.move_to_end(destination_id)
            return self._models[destination_id]
        lock = self._locks.setdefault(destination_id, asyncio.Lock())
        async with lock:
            if destination_id in self._models and destination_id not in self._stale:
                return self._models[destination_id]
            self._stale.discard(destination_id)
            model = await self._train(destination_id)
            self._models[destination_id] = model
            self._models.move_to_end(destination_id)
            while len(self._models) > self.max_models:
                self._models.popitem(last=False)
        self._locks.pop(destination_id, None)
        return model

    async def _train(self, destination_id: int) -> RankingModel | None:
        rated = await self.ratings.rated(destination_id, TRAINING_RATINGS)
        if len(rated) < MIN_RATINGS:
            return None
        by_id = {p.id: p for p in await self.papers.get_many(pid for pid, _ in rated)}
        pairs = [(by_id[pid], liked) for pid, liked in rated if pid in by_id]
        featurizer = await self._current_featurizer()
        from bot.ranking import train

        model = await asyncio.to_thread(train, featurizer, pairs)
        self.trainings += 1
        log.info(
            "ranking model trained destination=%d ratings=%d terms=%d",
            destination_id, len(pairs), 0 if model is None else len(model.columns),
        )  # fmt: skip
        return model

    async def _current_featurizer(self) -> Featurizer:
        now = self.clock()
        if self._featurizer is None or now - self._featurizer[1] > IDF_MAX_AGE:
            from bot.ranking import Featurizer

            sample = await self.papers.latest(IDF_SAMPLE)
            self._featurizer = (await asyncio.to_thread(Featurizer.fitted, sample), now)
        return self._featurizer[0]

    async def rank(self, destination_id: int, papers: Sequence[Paper]) -> Ranked | None:
        """Order `papers` for the destination and apply its tuning; None when it has no model.

        `top_k` counts what was already posted today (UTC) toward the day's K.
        """
        model = await self.model(destination_id)
        if model is None or not papers:
            return None
        tuning = await self.ratings.tuning(destination_id)
        featurizer = await self._current_featurizer()
        scores, reasons = await asyncio.to_thread(_score, featurizer, model, papers)
        order = sorted(range(len(papers)), key=lambda i: (-scores[i], i))
        kept_back: list[tuple[int, float, str]] = []
        if tuning is not None and tuning.min_score is not None:
            low = [i for i in order if scores[i] < tuning.min_score]
            kept_back += [(i, scores[i], "min_score") for i in low]
            order = [i for i in order if scores[i] >= tuning.min_score]
        if tuning is not None and tuning.top_k is not None:
            today = datetime.combine(self.clock().date(), time(0), tzinfo=self.clock().tzinfo)
            room = max(0, tuning.top_k - await self.ratings.sent_since(destination_id, today))
            kept_back += [(i, scores[i], "top_k") for i in order[room:]]
            order = order[:room]
        return Ranked(order, kept_back, {i: reasons[i] for i in order if reasons[i]})

    @staticmethod
    def filtered(
        delivery_ids: Sequence[int], kept_back: Sequence[tuple[int, float, str]]
    ) -> list[Filtered]:
        return [Filtered(delivery_ids[i], score, why) for i, score, why in kept_back]


def _score(
    featurizer: Featurizer, model: RankingModel, papers: Sequence[Paper]
) -> tuple[list[float], list[tuple[str, ...]]]:
    scores = model.score(featurizer.transform(papers))
    return [float(s) for s in scores], [model.reasons(p, REASON_TERMS) for p in papers]
