"""What the recommenders learn from, read from the database into arrays: the catalog (each
product's category and its words and attributes) and the customers' histories (purchases,
cart and wishlist adds, ratings); the model fitted on them; a customer's lists from it. The
job and the offline evaluation share all of it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import scipy.sparse as sp
from sqlalchemy import func, select

from shop.db import db, utcnow
from shop.products.models import Product, ProductVariant
from shop.recommendations import algorithms
from shop.recommendations.models import Algorithm, Reason
from shop.reports.models import Interaction, InteractionKind

HISTORY_DAYS = 365  # what a customer did longer ago than this is forgotten
# How much each interaction says about a customer's taste (the strongest of a product counts).
WEIGHTS = {
    InteractionKind.PURCHASE.value: 1.0,
    InteractionKind.CART_ADD.value: 0.5,
    InteractionKind.WISHLIST_ADD.value: 0.5,
}
NO_CATEGORY, INACTIVE = -1, algorithms.UNCOMPARED


@dataclass(frozen=True)
class Catalog:
    product_ids: np.ndarray  # index -> product id
    categories: np.ndarray  # index -> category id, NO_CATEGORY, or INACTIVE (never similar)
    features: sp.csr_matrix  # TF-IDF of name, description and attributes

    def index(self) -> dict[int, int]:
        return {int(pid): i for i, pid in enumerate(self.product_ids)}


@dataclass(frozen=True)
class Histories:
    user_ids: np.ndarray  # row -> user id
    weights: sp.csr_matrix  # customers x products: how much each says about their taste
    purchases: sp.csr_matrix  # customers x products: 1 where bought


@dataclass(frozen=True)
class Model:
    collaborative: sp.csr_matrix  # products x products: co-occurrence over weights
    bought_together: sp.csr_matrix  # products x products: co-occurrence over purchases
    similar: sp.csr_matrix  # products x products: content similarity within a category
    popularity: np.ndarray  # purchases per product


def load_catalog() -> Catalog:
    rows = db.session.execute(
        select(
            Product.id, Product.name, Product.description, Product.category_id, Product.is_active
        ).order_by(Product.id)
    ).all()
    attributes: dict[int, list[str]] = {}
    for product_id, values in db.session.execute(
        select(ProductVariant.product_id, ProductVariant.attributes).where(
            ProductVariant.is_active.is_(True)
        )
    ):
        attributes.setdefault(product_id, []).extend(
            f"{k.lower()}={str(v).lower()}" for k, v in (values or {}).items()
        )
    ids = np.array([r.id for r in rows], dtype=np.int64)
    categories = np.array(
        [
            (r.category_id if r.category_id is not None else NO_CATEGORY)
            if r.is_active
            else INACTIVE
            for r in rows
        ],
        dtype=np.int64,
    )
    documents = [
        algorithms.tokens(r.name, r.description or "", sorted(set(attributes.get(r.id, []))))
        for r in rows
    ]
    return Catalog(ids, categories, algorithms.tfidf(documents))


def load_rows() -> list[tuple[int, int, str, int | None, Any]]:
    """(user_id, product_id, kind, value, last time) of every customer's interactions that
    speak of taste, per product and kind, over the last HISTORY_DAYS."""
    since = utcnow() - timedelta(days=HISTORY_DAYS)
    return [
        (int(u), int(p), k, v, at)
        for u, p, k, v, at in db.session.execute(
            select(
                Interaction.user_id,
                Interaction.product_id,
                Interaction.kind,
                func.max(Interaction.value),
                func.max(Interaction.created_at),
            )
            .where(
                Interaction.user_id.is_not(None),
                Interaction.kind.in_([*WEIGHTS, InteractionKind.RATING.value]),
                Interaction.created_at >= since,
            )
            .group_by(Interaction.user_id, Interaction.product_id, Interaction.kind)
        )
    ]


def histories(rows: Iterable[tuple[int, int, str, int | None, Any]], catalog: Catalog) -> Histories:
    """The customers' matrices from interaction rows (user, product, kind, value, ...): a
    product's weight is its strongest interaction's, scaled by the customer's rating of it
    (one star 0.25, five stars 1)."""
    index = catalog.index()
    weight: dict[tuple[int, int], float] = {}
    rating: dict[tuple[int, int], int] = {}
    bought: set[tuple[int, int]] = set()
    for user_id, product_id, kind, value, *_ in rows:
        if product_id not in index:
            continue
        key = (user_id, index[product_id])
        if kind == InteractionKind.RATING.value:
            if value is not None:
                rating[key] = int(value)
            continue
        weight[key] = max(weight.get(key, 0.0), WEIGHTS[kind])
        if kind == InteractionKind.PURCHASE.value:
            bought.add(key)
    users = sorted({user for user, _ in weight})
    row_of = {user: row for row, user in enumerate(users)}
    shape = (len(users), len(catalog.product_ids))

    def matrix(values: dict[tuple[int, int], float]) -> sp.csr_matrix:
        keys = list(values)
        return sp.csr_matrix(
            (
                np.array([values[k] for k in keys], dtype=np.float32),
                (
                    np.array([row_of[u] for u, _ in keys], dtype=np.int64),
                    np.array([i for _, i in keys], dtype=np.int64),
                ),
            ),
            shape=shape,
        )

    for key, stars in rating.items():
        if key in weight:
            weight[key] *= 0.25 + 0.75 * (min(max(stars, 1), 5) - 1) / 4
    return Histories(
        np.array(users, dtype=np.int64), matrix(weight), matrix(dict.fromkeys(bought, 1.0))
    )


def fit(catalog: Catalog, customers: Histories) -> Model:
    popularity = np.asarray(customers.purchases.sum(axis=0)).ravel()
    return Model(
        collaborative=algorithms.cooccurrence(customers.weights),
        bought_together=algorithms.cooccurrence(customers.purchases),
        similar=algorithms.similar(
            catalog.features, catalog.categories, popularity, algorithms.CANDIDATES
        ),
        popularity=popularity,
    )


@dataclass(frozen=True)
class Lists:
    """One customer's recommendations by one algorithm: product indices, scores, reasons."""

    row: int
    items: np.ndarray
    scores: np.ndarray
    reasons: list[Reason]


def customer_lists(
    model: Model, customers: Histories, algorithm: Algorithm, n: int
) -> Iterator[Lists]:
    """Each customer's best `n` products by `algorithm`, none that they bought."""
    collaborative = algorithms.scores(customers.weights, model.collaborative)
    content = algorithms.scores(customers.weights, model.similar)
    if algorithm == Algorithm.COLLABORATIVE:
        combined = collaborative
    elif algorithm == Algorithm.CONTENT_BASED:
        combined = content
    else:
        combined = algorithms.blend(collaborative, content, algorithms.COLLABORATIVE_WEIGHT)
    purchases = customers.purchases.tocsr()
    for row in range(combined.shape[0]):
        bought = purchases.indices[purchases.indptr[row] : purchases.indptr[row + 1]]
        items, scores = algorithms.ranked(combined, row, bought, n, model.popularity)
        if algorithm == Algorithm.COLLABORATIVE:
            reasons = [Reason.CUSTOMERS_ALSO_BOUGHT] * len(items)
        elif algorithm == Algorithm.CONTENT_BASED:
            reasons = [Reason.LIKE_YOUR_PRODUCTS] * len(items)
        else:
            weight = algorithms.COLLABORATIVE_WEIGHT
            by_others = np.asarray(collaborative[row, items].todense()).ravel() * weight
            by_content = np.asarray(content[row, items].todense()).ravel() * (1 - weight)
            reasons = [
                Reason.CUSTOMERS_ALSO_BOUGHT if a >= b else Reason.LIKE_YOUR_PRODUCTS
                for a, b in zip(by_others, by_content, strict=True)
            ]
        yield Lists(row, items, scores, reasons)
