"""Offline evaluation (`flask recommendations evaluate`): each customer with two products
bought or more has their last purchase held out; the model is fitted on everything else (every
interaction with the held-out product too is left out, so a cart add before it tells nothing),
and each algorithm, and a best-seller baseline, is scored on whether that product is in the
customer's top k (hit rate) and how high (NDCG)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import numpy as np

from shop.recommendations import training
from shop.recommendations.models import Algorithm
from shop.reports.models import InteractionKind

BEST_SELLER = "best_seller"


def held_out(rows: list[tuple[int, int, str, int | None, Any]]) -> dict[int, int]:
    """Each customer's last product bought (by the time of its purchase), for the customers
    who bought two products or more."""
    purchases: dict[int, list[tuple[datetime, int]]] = {}
    for user_id, product_id, kind, _, at in rows:
        if kind == InteractionKind.PURCHASE.value:
            purchases.setdefault(user_id, []).append((at, product_id))
    return {user: max(bought)[1] for user, bought in purchases.items() if len(bought) >= 2}


def _scores(rank: int | None, k: int) -> tuple[float, float]:
    """(hit, NDCG) of a held-out product found at `rank` (0 is first), None: not in the top k."""
    if rank is None or rank >= k:
        return 0.0, 0.0
    return 1.0, 1.0 / math.log2(rank + 2)


def evaluate(k: int = 10) -> dict[str, Any]:
    """{users, products, k, results: {name: {hit_rate, ndcg}}} over the database's data."""
    catalog = training.load_catalog()
    rows = training.load_rows()
    index = catalog.index()
    test = {u: index[p] for u, p in held_out(rows).items() if p in index}
    train = [row for row in rows if test.get(row[0]) != index.get(row[1], -1)]
    customers = training.histories(train, catalog)
    model = training.fit(catalog, customers)
    results: dict[str, dict[str, float]] = {}
    evaluated = [row for row, user in enumerate(customers.user_ids) if int(user) in test]
    wanted = set(evaluated)
    for algorithm in Algorithm:
        totals = np.zeros(2)
        for lists in training.customer_lists(model, customers, algorithm, k):
            if lists.row not in wanted:
                continue
            target = test[int(customers.user_ids[lists.row])]
            found = np.flatnonzero(lists.items == target)
            totals += _scores(int(found[0]) if len(found) else None, k)
        results[algorithm.value] = _means(totals, len(evaluated))
    best = np.lexsort((np.arange(len(model.popularity)), -model.popularity))
    purchases = customers.purchases.tocsr()
    totals = np.zeros(2)
    for row in evaluated:
        bought = set(purchases.indices[purchases.indptr[row] : purchases.indptr[row + 1]])
        top = [item for item in best[: k + len(bought)] if item not in bought][:k]
        target = test[int(customers.user_ids[row])]
        totals += _scores(top.index(target) if target in top else None, k)
    results[BEST_SELLER] = _means(totals, len(evaluated))
    return {"users": len(evaluated), "products": len(catalog.product_ids), "k": k,
            "results": results}  # fmt: skip


def _means(totals: np.ndarray, users: int) -> dict[str, float]:
    hits, gains = (totals / users) if users else (0.0, 0.0)
    return {"hit_rate": round(float(hits), 4), "ndcg": round(float(gains), 4)}
