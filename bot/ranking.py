"""Per-destination ranking from 👍/👎 ratings: TF-IDF features and a linear SVM. Pure, no I/O.

As arxiv-sanity does with a user's tags, each channel (or each user's DMs)
that has rated enough alerts gets its own linear model over TF-IDF features of
title, abstract, authors and categories; the model scores that destination's
new alerts, which orders digests and multi-paper messages and feeds the
optional `top:K` / `min-score` filter.

Memory stays bounded however many destinations rate: features are hashed
(no vocabulary to grow), the IDF table is one float32 array shared by all,
and a trained model keeps only its `MAX_MODEL_TERMS` largest weights as a
sparse vector.
Scoring a day for every destination is one sparse matrix product per chunk
of destinations.
"""

from __future__ import annotations

import logging
import math
import zlib
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import sparse
from sklearn.svm import LinearSVC

from bot.domain.models import Paper
from bot.domain.names import author_key, keyword_tokens

log = logging.getLogger(__name__)

N_FEATURES = 1 << 18  # ~262k columns: collisions are rare for a field's vocabulary
MIN_RATINGS = 10  # below this a destination keeps arrival order
MAX_TRAINING_RATINGS = 500  # the most recent ratings a model is trained on
MAX_MODEL_TERMS = 1_000
MAX_TOKENS_PER_PAPER = 600  # a runaway abstract costs no more than a long one
_DESTINATION_CHUNK = 128

_STOPWORDS = frozenset({
    "a", "an", "the", "of", "in", "on", "for", "to", "and", "or", "with", "from", "by", "at",
    "as", "is", "are", "be", "we", "our", "this", "that", "these", "it", "its", "can", "which",
    "s", "using", "based", "via", "paper", "show", "results", "propose", "approach", "method",
})  # fmt: skip

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int32]


def paper_terms(paper: Paper) -> list[str]:
    """The words a paper is ranked by: title words twice (they say more), abstract words,
    one term per author (`au:legg_s`) and per category (`cat:cs.LG`)."""
    title = [t for t in keyword_tokens(paper.title) if t not in _STOPWORDS and len(t) > 1]
    abstract = [t for t in keyword_tokens(paper.abstract) if t not in _STOPWORDS and len(t) > 1]
    terms = [*title, *title, *abstract][:MAX_TOKENS_PER_PAPER]
    for name in paper.authors[:50]:
        key = author_key(name)
        if key.surname:
            initial = key.given[0][:1] if key.given else ""
            terms.append(f"au:{key.surname}_{initial}")
    terms.extend(
        f"cat:{c}" for c in dict.fromkeys((paper.primary_category, *paper.categories)) if c
    )
    return terms


def term_index(term: str) -> int:
    """A term's feature column: a stable hash (crc32), the same in every process."""
    return zlib.crc32(term.encode("utf-8")) % N_FEATURES


class Featurizer:
    """Hashed TF-IDF rows for papers; the IDF table comes from a reference sample."""

    def __init__(self, idf: FloatArray | None = None) -> None:
        self.idf = idf

    @classmethod
    def fitted(cls, reference: Iterable[Paper]) -> Featurizer:
        """IDF from a sample of recent papers (smoothed, as scikit-learn's TfidfTransformer)."""
        counts = np.zeros(N_FEATURES, dtype=np.float32)
        n = 0
        for paper in reference:
            n += 1
            columns = np.fromiter({term_index(t) for t in paper_terms(paper)}, dtype=np.int64)
            counts[columns] += 1
        idf = (np.log((1 + n) / (1 + counts)) + 1).astype(np.float32)
        return cls(idf)

    def transform(self, papers: Sequence[Paper]) -> sparse.csr_matrix:
        """One L2-normalized TF-IDF row per paper (log-scaled term frequencies)."""
        # array(): 4 bytes an entry, where lists of Python numbers would take ~36.
        indptr = array("q", [0])
        indices = array("i")
        data = array("f")
        for paper in papers:
            counts: dict[int, int] = {}
            for term in paper_terms(paper):
                column = term_index(term)
                counts[column] = counts.get(column, 0) + 1
            columns = sorted(counts)
            values = [1.0 + math.log(counts[c]) for c in columns]
            if self.idf is not None:
                values = [v * float(self.idf[c]) for v, c in zip(values, columns, strict=True)]
            norm = math.sqrt(sum(v * v for v in values)) or 1.0
            indices.extend(columns)
            data.extend(v / norm for v in values)
            indptr.append(len(indices))
        return sparse.csr_matrix(
            (
                np.frombuffer(data, dtype=np.float32),
                np.frombuffer(indices, dtype=np.int32),
                np.frombuffer(indptr, dtype=np.int64),
            ),
            shape=(len(papers), N_FEATURES),
        )


@dataclass(frozen=True, slots=True)
class RankingModel:
    """One destination's model: a sparse weight vector and its bias (~8 KB at 1,000 terms).

    No words are kept: the "ranked because" line reads the ranked paper's own
    terms and looks their columns up here.
    """

    columns: IntArray  # sorted feature columns with a weight
    weights: FloatArray
    bias: float
    ratings: int

    def score(self, rows: sparse.csr_matrix) -> FloatArray:
        """Scores of the given TF-IDF rows (higher: more like what this destination liked)."""
        vector = sparse.csc_matrix(
            (self.weights, (self.columns, np.zeros(len(self.columns), dtype=np.int32))),
            shape=(N_FEATURES, 1),
        )
        return np.asarray((rows @ vector).todense(), dtype=np.float32).ravel() + self.bias

    def reasons(self, paper: Paper, n: int = 3) -> tuple[str, ...]:
        """The paper's words with the largest positive weights: the "ranked because" line."""
        found: dict[str, float] = {}
        for term in dict.fromkeys(paper_terms(paper)):
            column = term_index(term)
            at = int(np.searchsorted(self.columns, column))
            if at < len(self.columns) and self.columns[at] == column and self.weights[at] > 0:
                found[term] = float(self.weights[at])
        ranked = sorted(found.items(), key=lambda item: (-item[1], item[0]))
        return tuple(_display(term) for term, _ in ranked[:n])


def _display(term: str) -> str:
    if term.startswith("au:"):
        surname, _, initial = term[3:].partition("_")
        return f"{initial.upper()}. {surname.title()}" if initial else surname.title()
    return term.removeprefix("cat:")


def train(
    featurizer: Featurizer, rated: Sequence[tuple[Paper, bool]], *, max_terms: int = MAX_MODEL_TERMS
) -> RankingModel | None:
    """A model from (paper, liked) pairs, newest last; None below `MIN_RATINGS`.

    Both kinds of rating: a linear SVM (LinearSVC). Only 👍 or only 👎: the
    centroid of the rated papers, signed, so one-sided feedback still ranks.
    """
    rated = rated[-MAX_TRAINING_RATINGS:]
    if len(rated) < MIN_RATINGS:
        return None
    papers = [p for p, _ in rated]
    labels = np.asarray([1 if liked else 0 for _, liked in rated])
    rows = featurizer.transform(papers)
    if labels.min() == labels.max():
        sign = 1.0 if labels[0] == 1 else -1.0
        centroid = np.asarray(rows.mean(axis=0)).ravel() * sign
        dense = centroid.astype(np.float32)
        bias = 0.0
    else:
        svm = LinearSVC(C=1.0, class_weight="balanced", dual="auto", max_iter=5_000)
        svm.fit(rows, labels)
        dense = np.asarray(svm.coef_, dtype=np.float32).ravel()
        bias = float(svm.intercept_[0])
    nonzero = np.flatnonzero(dense)
    if len(nonzero) > max_terms:
        keep = np.argpartition(np.abs(dense[nonzero]), -max_terms)[-max_terms:]
        nonzero = np.sort(nonzero[keep])
    columns = nonzero.astype(np.int32)
    return RankingModel(columns, dense[columns].astype(np.float32), bias, len(rated))


def score_day(
    featurizer: Featurizer,
    models: Sequence[RankingModel],
    papers: Sequence[Paper],
) -> FloatArray:
    """Scores of every paper for every model: an array of shape (len(models), len(papers)).

    One sparse product per chunk of destinations keeps the peak memory at
    `_DESTINATION_CHUNK` × papers floats, whatever the number of destinations.
    """
    rows = featurizer.transform(papers)
    out = np.empty((len(models), len(papers)), dtype=np.float32)
    for start in range(0, len(models), _DESTINATION_CHUNK):
        chunk = models[start : start + _DESTINATION_CHUNK]
        columns = np.concatenate([m.columns for m in chunk]) if chunk else np.empty(0, np.int32)
        owners = np.concatenate(
            [np.full(len(m.columns), i, dtype=np.int32) for i, m in enumerate(chunk)]
        )
        weights = np.concatenate([m.weights for m in chunk])
        matrix = sparse.csc_matrix((weights, (columns, owners)), shape=(N_FEATURES, len(chunk)))
        product = (rows @ matrix).toarray().T
        biases = np.asarray([m.bias for m in chunk], dtype=np.float32)[:, None]
        out[start : start + len(chunk)] = product + biases
    return out
