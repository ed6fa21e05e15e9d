"""Per-destination ranking: models learn from ratings, stay small, and score a day consistently."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from bot.arxiv.feeds import parse_rss
from bot.domain.models import Paper
from bot.ranking import (
    MIN_RATINGS,
    Featurizer,
    paper_terms,
    score_day,
    train,
)

LISTING = (
    Path(__file__).resolve().parents[1] / "fixtures" / "rss2024_new_all-archives_2024-11-28.xml"
)


@pytest.fixture(scope="module")
def listing() -> list[Paper]:
    """The real all-archives listing of 2024-11-28."""
    return list(parse_rss(LISTING.read_bytes()).papers)


def _by_primary(papers: list[Paper], prefix: str) -> list[Paper]:
    return [p for p in papers if p.primary_category.startswith(prefix)]


def test_a_channel_that_likes_one_field_ranks_it_first(listing: list[Paper]) -> None:
    """Liking astro-ph and disliking math puts unseen astro-ph papers above unseen math ones."""
    astro = _by_primary(listing, "astro-ph")
    math = _by_primary(listing, "math.")
    assert len(astro) > 60 and len(math) > 60
    rated = [(p, True) for p in astro[:20]] + [(p, False) for p in math[:20]]
    random.Random(1).shuffle(rated)
    featurizer = Featurizer.fitted(listing)
    model = train(featurizer, rated)
    assert model is not None
    unseen_astro = model.score(featurizer.transform(astro[40:80]))
    unseen_math = model.score(featurizer.transform(math[40:80]))
    # Most of the unseen liked field must come before most of the disliked one.
    assert np.median(unseen_astro) > np.median(unseen_math)
    pairs = [(a > m) for a in unseen_astro for m in unseen_math]
    assert sum(pairs) / len(pairs) > 0.8


def test_one_sided_ratings_still_rank(listing: list[Paper]) -> None:
    """Only 👍 ratings: papers like the liked ones score higher than others."""
    astro = _by_primary(listing, "astro-ph")
    math = _by_primary(listing, "math.")
    featurizer = Featurizer.fitted(listing)
    model = train(featurizer, [(p, True) for p in astro[:15]])
    assert model is not None
    assert np.median(model.score(featurizer.transform(astro[40:80]))) > np.median(
        model.score(featurizer.transform(math[40:80]))
    )


def test_too_few_ratings_give_no_model(listing: list[Paper]) -> None:
    """Below MIN_RATINGS a destination keeps arrival order (no model)."""
    featurizer = Featurizer()
    assert train(featurizer, [(p, True) for p in listing[: MIN_RATINGS - 1]]) is None
    assert train(featurizer, [(p, True) for p in listing[:MIN_RATINGS]]) is not None


def test_models_are_bounded_and_explain_themselves(listing: list[Paper]) -> None:
    """A model keeps at most max_terms weights; its reasons are words of the paper it ranks."""
    featurizer = Featurizer.fitted(listing)
    astro = _by_primary(listing, "astro-ph")
    rated = [(p, True) for p in astro[:30]] + [(p, False) for p in listing[-30:]]
    model = train(featurizer, rated, max_terms=200)
    assert model is not None
    assert len(model.columns) <= 200 and len(model.weights) == len(model.columns)
    best = max(astro[40:80], key=lambda p: float(model.score(featurizer.transform([p]))[0]))
    reasons = model.reasons(best)
    assert 0 < len(reasons) <= 3
    terms = paper_terms(best)
    shown = {t.removeprefix("cat:") for t in terms if not t.startswith("au:")}
    shown |= {
        f"{t[3:].partition('_')[2].upper()}. {t[3:].partition('_')[0].title()}"
        for t in terms
        if t.startswith("au:")
    }
    assert set(reasons) <= shown


def test_score_day_agrees_with_each_model(listing: list[Paper]) -> None:
    """The chunked all-destinations product equals scoring each destination alone."""
    featurizer = Featurizer.fitted(listing)
    rng = random.Random(7)
    models = []
    for _ in range(150):  # more than one chunk
        rated = [(p, rng.random() < 0.5) for p in rng.sample(listing, 12)]
        model = train(featurizer, rated)
        assert model is not None
        models.append(model)
    day = listing[:300]
    scores = score_day(featurizer, models, day)
    assert scores.shape == (150, 300)
    rows = featurizer.transform(day)
    for i in (0, 127, 128, 149):
        assert np.allclose(scores[i], models[i].score(rows), atol=1e-5)


def test_hostile_sizes_are_capped(listing: list[Paper]) -> None:
    """A megabyte abstract and a thousand authors cost no more terms than the caps allow."""
    p = listing[0]
    huge = Paper(
        id=p.id, version=1, title=p.title, abstract="word " * 200_000,
        authors=tuple(f"Author{i} Person{i}" for i in range(1_000)),
        primary_category="cs.LG", categories=("cs.LG",),
    )  # fmt: skip
    assert len(paper_terms(huge)) <= 600 + 50 + 1
    assert Featurizer().transform([huge]).nnz <= 651
