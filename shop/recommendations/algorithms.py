"""The recommenders, on arrays (no database here): item-item co-occurrence (collaborative),
TF-IDF text and attribute similarity within a category (content-based), a weighted blend of
the two (hybrid), and a customer's best-scored products by any of them.

Collaborative filtering is item-item co-occurrence with cosine normalisation, computed as one
sparse product (numpy and scipy) rather than a factorisation (`implicit`'s ALS, say): it is one
matrix product with nothing to tune or converge, explains itself ("customers who bought this
also bought"), gives "bought together" directly, and costs seconds at this store's size.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

NEIGHBOURS = 50  # kept per product, for "bought together", "similar" and scoring customers
# Hybrid: a customer's collaborative and content scores, each scaled to its best, blended so
# (chosen on the generated data: README, "Recommendations").
COLLABORATIVE_WEIGHT = 0.8
WORD = re.compile(r"[^\W\d_]{2,}")  # words of letters: a product's number says nothing
# A product's similar are sought among its category's this many best sellers: the job's
# content part costs products x CANDIDATES, not the square of the largest category.
CANDIDATES = 1000
CHUNK = 2000  # products compared at a time (a CHUNK x CANDIDATES block of scores)
UNCOMPARED = -2  # a category value: nobody's similar, and has none (inactive products)


def top_k_rows(matrix: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Each row's k largest entries (the rest dropped)."""
    matrix = matrix.tocsr()
    matrix.eliminate_zeros()
    indptr, indices, data = matrix.indptr, matrix.indices, matrix.data
    rows, cols, vals = [], [], []
    for row in range(matrix.shape[0]):
        start, end = indptr[row], indptr[row + 1]
        if start == end:
            continue
        chunk = data[start:end]
        keep = np.argpartition(-chunk, k - 1)[:k] if end - start > k else np.arange(end - start)
        rows.append(np.full(len(keep), row, dtype=np.int32))
        cols.append(indices[start:end][keep])
        vals.append(chunk[keep])
    if not rows:
        return sp.csr_matrix(matrix.shape, dtype=np.float32)
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=matrix.shape,
        dtype=np.float32,
    )


def cooccurrence(history: sp.csr_matrix, k: int = NEIGHBOURS) -> sp.csr_matrix:
    """Item-item cosine over customers (`history`: customers x products, weights): products
    that the same customers bought (or carted, or wished for) score high together."""
    items = history.T.tocsr().astype(np.float32)
    norms = np.sqrt(np.asarray(items.multiply(items).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    scaled = sp.diags(1.0 / norms).dot(items).tocsr()
    similarity = scaled.dot(scaled.T).tocsr()
    similarity.setdiag(0)
    return top_k_rows(similarity, k)


def tokens(name: str, description: str, attributes: Sequence[str]) -> list[str]:
    """The words of a product's name (counted twice: it says most) and description, and its
    attributes as `name=value` terms."""
    name_words = WORD.findall(name.lower())
    return [*name_words, *name_words, *WORD.findall(description.lower()), *attributes]


def tfidf(documents: Sequence[Sequence[str]]) -> sp.csr_matrix:
    """Rows of L2-normalised TF-IDF weights (sublinear term frequency, smoothed idf)."""
    vocabulary: dict[str, int] = {}
    rows, cols, vals = [], [], []
    for row, terms in enumerate(documents):
        for term, count in Counter(terms).items():
            rows.append(row)
            cols.append(vocabulary.setdefault(term, len(vocabulary)))
            vals.append(1.0 + math.log(count))
    shape = (len(documents), max(len(vocabulary), 1))
    matrix = sp.csr_matrix((vals, (rows, cols)), shape=shape, dtype=np.float32)
    frequency = np.bincount(matrix.indices, minlength=shape[1])
    idf = np.log((1 + shape[0]) / (1 + frequency)) + 1.0
    matrix = matrix.dot(sp.diags(idf.astype(np.float32))).tocsr()
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.diags(1.0 / norms).dot(matrix).tocsr().astype(np.float32)


def similar(
    features: sp.csr_matrix,
    categories: np.ndarray,
    popularity: np.ndarray,
    candidates: int,
    k: int = NEIGHBOURS,
) -> sp.csr_matrix:
    """Each product's k most similar (cosine of TF-IDF rows) among the `candidates` most
    popular of its own category (ties to the smaller index): n x candidates comparisons in all,
    whatever a category's size. A product without a category is compared with the others
    without one; one of category UNCOMPARED (inactive) with none."""
    n = features.shape[0]
    rows, cols, vals = [], [], []
    for category in np.unique(categories):
        if category == UNCOMPARED:
            continue
        members = np.flatnonzero(categories == category)
        if len(members) < 2:
            continue
        order = np.lexsort((members, -popularity[members]))
        pool = members[order[:candidates]]
        block = features[pool].T.tocsc()
        keep = min(k, len(pool))
        for start in range(0, len(members), CHUNK):
            part = members[start : start + CHUNK]
            scores = features[part].dot(block).toarray()
            scores[part[:, None] == pool[None, :]] = -np.inf  # itself
            best = np.argpartition(-scores, keep - 1, axis=1)[:, :keep]
            picked = np.take_along_axis(scores, best, axis=1)
            found = np.isfinite(picked)  # a pool of `keep` holding the product itself
            # Ties broken towards the smaller product index, and never below zero.
            picked = np.maximum(picked, 0.0) + 1e-6
            rows.append(np.repeat(part, keep)[found.ravel()])
            cols.append(pool[best].ravel()[found.ravel()])
            vals.append(picked.ravel()[found.ravel()])
    if not rows:
        return sp.csr_matrix((n, n), dtype=np.float32)
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n, n),
        dtype=np.float32,
    )


def _scaled(scores: sp.csr_matrix) -> sp.csr_matrix:
    """Each row divided by its largest entry (a customer's best scores 1)."""
    scores = scores.tocsr()
    best = np.zeros(scores.shape[0], dtype=np.float32)
    has = np.diff(scores.indptr) > 0
    best[has] = np.maximum.reduceat(scores.data, scores.indptr[:-1][has])
    best[best <= 0] = 1.0
    return sp.diags(1.0 / best).dot(scores).tocsr()


def scores(history: sp.csr_matrix, neighbours: sp.csr_matrix) -> sp.csr_matrix:
    """Customers x products: the sum, over what each customer did, of its neighbours'
    similarities weighted by what they did; scaled to each customer's best."""
    return _scaled(history.dot(neighbours))


def blend(collaborative: sp.csr_matrix, content: sp.csr_matrix, weight: float) -> sp.csr_matrix:
    return (collaborative * weight + content * (1 - weight)).tocsr()


def ranked(
    row_scores: sp.csr_matrix, row: int, exclude: np.ndarray, n: int, popularity: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Row `row`'s best `n` products, less `exclude` (product indices); ties go to the more
    popular product."""
    start, end = row_scores.indptr[row], row_scores.indptr[row + 1]
    items, values = row_scores.indices[start:end], row_scores.data[start:end]
    if len(exclude):
        keep = ~np.isin(items, exclude)
        items, values = items[keep], values[keep]
    if not len(items):
        return items, values
    order = np.lexsort((-popularity[items], -values))[:n]
    return items[order], values[order]
