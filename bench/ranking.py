"""Ranking benchmark: 1,000 destinations with trained models score a 3,000-paper day.

The day is the real 1,504-item all-archives listing plus as many perturbed
copies (words shuffled, fresh ids). Each destination's model is trained on 30
ratings drawn from the listing. Measured: the time to score every paper for
every destination (features + products, the worst case: in production a
destination scores only its own alerts), the time to train one model, and
the extra resident memory of the models and the scoring over the process
before them (peak RSS, reset through /proc/self/clear_refs on Linux).
Targets: scoring <= 2 s, extra RSS <= 50 MB.

    .venv/bin/python -m bench.ranking [--destinations 1000] [--papers 3000]
"""

from __future__ import annotations

import argparse
import contextlib
import random
import time
from dataclasses import replace
from pathlib import Path

from bot.arxiv.feeds import parse_rss
from bot.domain.models import Paper
from bot.ranking import Featurizer, score_day, train

ROOT = Path(__file__).resolve().parents[1]

LISTING = ROOT / "tests" / "fixtures" / "rss2024_new_all-archives_2024-11-28.xml"


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> None:
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS


def day_of(listing: list[Paper], size: int, rng: random.Random) -> list[Paper]:
    day = list(listing)
    while len(day) < size:
        base = rng.choice(listing)
        words = base.abstract.split()
        rng.shuffle(words)
        day.append(replace(base, id=f"2411.{90000 + len(day):05d}", abstract=" ".join(words)))
    return day[:size]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--destinations", type=int, default=1000)
    parser.add_argument("--papers", type=int, default=3000)
    args = parser.parse_args()
    rng = random.Random(2024)
    listing = list(parse_rss(LISTING.read_bytes()).papers)
    day = day_of(listing, args.papers, rng)
    featurizer = Featurizer.fitted(listing)
    featurizer.transform(day[:10])  # warm imports and caches

    base_kib = _status_kib("VmRSS")
    _reset_peak()
    started = time.perf_counter()
    models = []
    for _ in range(args.destinations):
        rated = [(p, rng.random() < 0.4) for p in rng.sample(listing, 30)]
        model = train(featurizer, rated)
        assert model is not None
        models.append(model)
    train_seconds = time.perf_counter() - started

    started = time.perf_counter()
    scores = score_day(featurizer, models, day)
    score_seconds = time.perf_counter() - started
    peak_kib = _status_kib("VmHWM")
    assert scores.shape == (args.destinations, args.papers)

    extra_mb = (peak_kib - base_kib) / 1024
    print(f"destinations {args.destinations}, papers {args.papers}")
    print(f"train one model (30 ratings): {1000 * train_seconds / args.destinations:.2f} ms")
    print(f"score the day for every destination: {score_seconds:.3f} s (target <= 2 s)")
    print(f"extra RSS (models + scoring, peak): {extra_mb:.1f} MB (target <= 50 MB)")


if __name__ == "__main__":
    main()
