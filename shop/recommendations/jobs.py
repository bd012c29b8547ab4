"""The `recommendations` job: the model fitted on every customer's history, and every list
stored (each product's bought together and similar, each customer's per algorithm) in one
transaction, so a read sees the last run's lists or this one's, never half of each."""

from __future__ import annotations

import io
import time
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

import numpy as np
import scipy.sparse as sp
from sqlalchemy import delete, func, insert, select, text

from shop.db import db, is_postgres, table_of, unit_of_work
from shop.recommendations import training
from shop.recommendations.models import (
    Algorithm,
    ProductList,
    ProductRecommendation,
    UserRecommendation,
)

STORED = 50  # per list: the most an answer shows (limit's maximum)
WRITE_BATCH = 100_000
LOCK = 7_300_000_000  # one run stores at a time (a second waits, then stores its own)


def refresh_recommendations() -> dict[str, Any]:
    """The `recommendations` job."""
    started = time.perf_counter()
    catalog = training.load_catalog()
    customers = training.histories(training.load_rows(), catalog)
    db.session.rollback()  # no transaction held while the model is fitted
    model = training.fit(catalog, customers)
    fitted = time.perf_counter()
    with unit_of_work() as session:
        if is_postgres():
            session.execute(select(func.pg_advisory_xact_lock(LOCK)))
        session.execute(delete(ProductRecommendation))
        session.execute(delete(UserRecommendation))
        product_rows = _write(ProductRecommendation, _product_rows(catalog, model))
        user_rows = _write(UserRecommendation, _user_rows(catalog, customers, model))
        if is_postgres():  # millions of rows replaced: a plan from old statistics can scan all
            session.execute(text("ANALYZE product_recommendations, user_recommendations"))
    return {
        "products": len(catalog.product_ids),
        "customers": len(customers.user_ids),
        "product_rows": product_rows,
        "customer_rows": user_rows,
        "fit_seconds": round(fitted - started, 2),
        "seconds": round(time.perf_counter() - started, 2),
    }


def _neighbours(matrix: sp.csr_matrix, row: int) -> tuple[np.ndarray, np.ndarray]:
    start, end = matrix.indptr[row], matrix.indptr[row + 1]
    items, scores = matrix.indices[start:end], matrix.data[start:end]
    order = np.lexsort((items, -scores))[:STORED]
    return items[order], scores[order]


def _product_rows(catalog: training.Catalog, model: training.Model) -> Iterator[tuple[Any, ...]]:
    ids = catalog.product_ids
    for kind, matrix in (
        (ProductList.BOUGHT_TOGETHER, model.bought_together),
        (ProductList.SIMILAR, model.similar),
    ):
        matrix = matrix.tocsr()
        for row in np.flatnonzero(np.diff(matrix.indptr)):
            items, scores = _neighbours(matrix, int(row))
            top = float(scores[0]) or 1.0
            for position, (item, score) in enumerate(zip(items, scores, strict=True), 1):
                yield (int(ids[row]), kind.value, position, int(ids[item]), round(score / top, 4))


def _user_rows(
    catalog: training.Catalog, customers: training.Histories, model: training.Model
) -> Iterator[tuple[Any, ...]]:
    ids = catalog.product_ids
    for algorithm in Algorithm:
        for lists in training.customer_lists(model, customers, algorithm, STORED):
            user_id = int(customers.user_ids[lists.row])
            for position, (item, score, reason) in enumerate(
                zip(lists.items, lists.scores, lists.reasons, strict=True), 1
            ):
                yield (
                    user_id, algorithm.value, position, int(ids[item]),
                    round(float(score), 4), reason.value,
                )  # fmt: skip


def _write(
    model: type[ProductRecommendation | UserRecommendation], rows: Iterable[tuple[Any, ...]]
) -> int:
    """Rows in bulk, WRITE_BATCH at a time (a million products' fifty million never all in
    memory): COPY on PostgreSQL, executemany elsewhere. Answers how many."""
    table = table_of(model)
    columns = [c.name for c in table.columns]
    written = 0
    rows = iter(rows)
    while batch := list(islice(rows, WRITE_BATCH)):
        written += len(batch)
        if not is_postgres():
            db.session.execute(insert(table), [dict(zip(columns, r, strict=True)) for r in batch])
            continue
        buffer = io.StringIO()
        for row in batch:
            buffer.write("\t".join(str(value) for value in row))
            buffer.write("\n")
        buffer.seek(0)
        cursor = db.session.connection().connection.cursor()
        cursor.copy_expert(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN", buffer)
    return written
