"""Synthetic records shaped like arXiv's metadata snapshot, for the bulk benchmarks.

Shapes follow the real file: abstracts of 20-250 words (mean ~88, about
800 characters; arXiv caps them at 1,920), titles of 4-15 words, author
counts with a long tail (a few collaborations list hundreds), 1-4
categories drawn with a skew towards the busy ones, 1-5 versions, and
comments, journal references and DOIs on part of the records. Authors recur
across papers (a Zipf-weighted pool), some names carry TeX accents, and text
comes from a Zipf-distributed vocabulary so some words are common and most rare.
A record serialises to ~1.6 KB, like the real snapshot (~4.5 GB for 2.7 M).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

SEED = 20261129
CATEGORIES = [
    "cs.LG", "cs.CV", "cs.AI", "cs.CL", "stat.ML", "math.OC", "hep-th", "hep-ph", "quant-ph",
    "astro-ph.GA", "astro-ph.CO", "astro-ph.SR", "cond-mat.mes-hall", "cond-mat.stat-mech",
    "cond-mat.str-el", "math.PR", "math.AP", "math.CO", "math.NT", "physics.optics", "gr-qc",
    "cs.RO", "cs.CR", "eess.SP", "eess.IV", "econ.EM", "q-bio.NC", "q-fin.ST", "nucl-th",
    "math-ph", "nlin.CD", "cs.DS", "cs.IT", "math.IT", "physics.flu-dyn", "cs.SE",
]  # fmt: skip
SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "ta", "vo", "si", "pe", "da", "go", "hu", "ri", "zen",
             "bar", "tor", "lin", "mor", "quan", "tum", "net", "gra", "dient", "flow"]  # fmt: skip
TEX_SURNAMES = ["Del\\'etang", "M\\\"uller", "Schr\\\"odinger", "Przemys{\\l}awski",
                "Garc\\'ia", "Ko\\v{c}i", "Erd\\H{o}s", "{\\O}stergaard"]  # fmt: skip
COMMENTS = ["12 pages, 5 figures", "Accepted at NeurIPS", "v2: typos fixed", "30 pages",
            "Published version", "8 pages, 3 figures, 2 tables"]  # fmt: skip
LICENSE = "http://arxiv.org/licenses/nonexclusive-distrib/1.0/"


def _words(rng: random.Random, count: int) -> list[str]:
    found: set[str] = set()
    while len(found) < count:
        found.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(found)


class Generator:
    """Deterministic stream of snapshot records (dicts) for a seed."""

    def __init__(self, seed: int = SEED, authors: int = 400_000) -> None:
        rng = self.rng = random.Random(seed)
        self.words = _words(rng, 20_000)
        weights = [1.0 / (rank + 1) ** 1.05 for rank in range(len(self.words))]
        self.cum_words = list(itertools.accumulate(weights))
        forenames = [w.capitalize() for w in _words(rng, 3_000)]
        keynames = [w.capitalize() for w in _words(rng, 60_000)] + TEX_SURNAMES * 20
        self.people: list[tuple[str, str]] = []
        for _ in range(authors):
            given = rng.choice(forenames)
            if rng.random() < 0.3:
                given = f"{given[0]}."
            if rng.random() < 0.2:
                given += f" {rng.choice(forenames)[0]}."
            self.people.append((rng.choice(keynames), given))
        self.cum_people = list(itertools.accumulate(1.0 / (r + 1) ** 0.8 for r in range(authors)))
        self.cum_cats = list(itertools.accumulate(1.0 / (r + 1) for r in range(len(CATEGORIES))))

    def text(self, n: int) -> str:
        return " ".join(self.rng.choices(self.words, cum_weights=self.cum_words, k=n))

    def author_count(self) -> int:
        roll = self.rng.random()
        if roll < 0.002:
            return self.rng.randint(100, 600)  # collaborations
        if roll < 0.05:
            return self.rng.randint(11, 40)
        return min(10, max(1, int(self.rng.expovariate(1 / 3.5)) + 1))

    def record(self, index: int, base: datetime) -> dict[str, object]:
        rng = self.rng
        paper_id = paper_id_for(index)
        people = rng.choices(self.people, cum_weights=self.cum_people, k=self.author_count())
        cats = list(
            dict.fromkeys(rng.choices(CATEGORIES, cum_weights=self.cum_cats, k=rng.randint(1, 4)))
        )
        created = base + timedelta(minutes=index * 2, seconds=rng.randint(0, 59))
        versions = []
        for n in range(1, 1 + min(5, int(rng.expovariate(1.2)) + 1)):
            versions.append({"version": f"v{n}", "created": format_datetime(created, usegmt=True)})
            created += timedelta(days=rng.randint(1, 200))
        words = max(20, min(250, int(rng.gauss(88, 38))))
        title = self.text(rng.randint(4, 15)).capitalize()
        if rng.random() < 0.05:
            title += " with $O(n \\log n)$ cost"
        abstract = (
            "  " + "\n".join(self.text(min(14, words - i)) for i in range(0, words, 14)) + ".\n"
        )
        has_doi = rng.random() < 0.35
        return {
            "id": paper_id,
            "submitter": f"{people[0][1]} {people[0][0]}",
            "authors": ", ".join(f"{g} {k}" for k, g in people),
            "title": title,
            "comments": rng.choice(COMMENTS) if rng.random() < 0.6 else None,
            "journal-ref": f"Phys. Rev. D {rng.randint(1, 110)}, {rng.randint(1, 99999)} (2019)"
            if rng.random() < 0.3
            else None,
            "doi": f"10.{rng.randint(1000, 9999)}/{paper_id}" if has_doi else None,
            "report-no": None,
            "categories": " ".join(cats),
            "license": LICENSE if rng.random() < 0.7 else None,
            "abstract": abstract,
            "versions": versions,
            "update_date": created.date().isoformat(),
            "authors_parsed": [[k, g, ""] for k, g in people],
        }


def paper_id_for(index: int) -> str:
    """Valid new-style ids: 99,999 a month from 2015-01."""
    month, number = divmod(index, 99_999)
    year, mon = divmod(month, 12)
    return f"{15 + year:02d}{mon + 1:02d}.{number + 1:05d}"


def lines(count: int, seed: int = SEED) -> Iterator[bytes]:
    """`count` snapshot lines (bytes, newline-terminated)."""
    gen = Generator(seed)
    base = datetime(2015, 1, 1, tzinfo=UTC)
    for index in range(count):
        yield json.dumps(gen.record(index, base)).encode() + b"\n"


def generator_key() -> str:
    """A digest of this file: cached snapshots and stores made from them name it, so
    none made by an older generator is reused."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:10]


def part_path(directory: Path, start: int, end: int) -> Path:
    """Where the snapshot lines [start, end) are cached."""
    return directory / f"snapshot-{generator_key()}-{start}-{end}.jsonl"


def write_parts(directory: Path, bounds: Sequence[int]) -> list[Path]:
    """Snapshot files of lines [b0, b1), [b1, b2), ... for increasing `bounds`, in one
    pass of the generator (lines before b0 are generated and dropped). Each file is
    written under a temporary name and renamed once complete; those already there stay."""
    paths = [part_path(directory, a, b) for a, b in itertools.pairwise(bounds)]
    if all(p.exists() for p in paths):
        return paths
    stream = lines(bounds[-1])
    for _ in range(bounds[0]):
        next(stream)
    for path, (start, end) in zip(paths, itertools.pairwise(bounds), strict=True):
        if path.exists():
            for _ in range(end - start):
                next(stream)
            continue
        print(f"writing {path.name} ...", flush=True)
        partial = path.with_suffix(".tmp")
        with partial.open("wb") as out:
            for _ in range(end - start):
                out.write(next(stream))
        partial.replace(path)
    return paths
