"""The content-based part's bound: a product's similar are sought only among its category's
CANDIDATES best sellers (ties to the smaller index), never itself, never an inactive product."""

import numpy as np

from shop.recommendations import algorithms

WORDS = ["red steel mug", "red steel cup", "blue oak desk", "red steel mug", "green wool hat"]


def features(texts):
    return algorithms.tfidf([algorithms.tokens(t, "", []) for t in texts])


def similar_of(matrix, row):
    start, end = matrix.indptr[row], matrix.indptr[row + 1]
    return dict(zip(matrix.indices[start:end].tolist(), matrix.data[start:end], strict=True))


def test_without_a_bound_each_product_finds_the_most_alike_of_its_category():
    categories = np.array([1, 1, 1, 1, 2])
    matrix = algorithms.similar(features(WORDS), categories, np.zeros(5), candidates=100)
    found = similar_of(matrix, 0)
    assert set(found) == {1, 2, 3}  # its category, not itself, not product 4
    assert max(found, key=found.get) == 3  # the same words
    assert not similar_of(matrix, 4)  # alone in its category


def test_a_bounded_pool_holds_only_the_categorys_best_sellers():
    categories = np.array([1, 1, 1, 1, 2])
    popularity = np.array([0.0, 5.0, 9.0, 0.0, 1.0])  # 2, then 1, sell most
    matrix = algorithms.similar(features(WORDS), categories, popularity, candidates=2)
    for row in (0, 3):
        assert set(similar_of(matrix, row)) == {1, 2}  # product 3's twin is not in the pool
    assert set(similar_of(matrix, 1)) == {2}  # the pool less itself
    assert set(similar_of(matrix, 2)) == {1}
    ties = algorithms.similar(features(WORDS), categories, np.zeros(5), candidates=2)
    assert set(similar_of(ties, 3)) == {0, 1}  # equal sales: the smaller indices


def test_an_inactive_product_is_nobodys_similar_and_has_none():
    categories = np.array([1, 1, algorithms.UNCOMPARED, algorithms.UNCOMPARED, 1])
    matrix = algorithms.similar(features(WORDS), categories, np.ones(5), candidates=100)
    assert not similar_of(matrix, 2) and not similar_of(matrix, 3)
    assert set(similar_of(matrix, 0)) == {1, 4}
