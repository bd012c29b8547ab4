"""Top products on the embedded default (SQLite): the job keeps each product's totals in step
(UPDATE ... FROM and INSERT ... ON CONFLICT there too), and the ranking among candidates equals
the orders, before and after a late change."""

import random
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select

from shop.db import db
from shop.orders.models import Order
from shop.reports.aggregates import aggregate_day, today
from shop.reports.jobs import daily_sales_job
from shop.security import Role
from tests.factories import headers_for, make_product, make_user
from tests.reports.test_top_products import (
    PRICES,
    assert_totals_are_sums,
    at,
    expected,
    history,
    ranked_way,
    top,
    totals_and_sums,
)

pytestmark = pytest.mark.embedded


def test_top_products_and_their_totals_on_sqlite(embedded_app):
    app = embedded_app

    rng = random.Random(2)
    products = [make_product(app, price=rng.choice(PRICES), stock=1000) for _ in range(30)]
    history(app, rng, products, days=20, per_day=6, skew=1.0)
    with app.app_context():
        daily_sales_job()
        late = db.session.scalars(
            select(Order.id).where(Order.status == "paid", Order.created_at < at(today(), 0))
        ).all()[:3]
    assert_totals_are_sums(app)
    staff = headers_for(app, make_user(app, role=Role.STAFF))
    for order_id in late:
        response = app.test_client().patch(
            f"/api/v1/orders/{order_id}/status", headers=staff, json={"status": "refunded"}
        )
        assert response.status_code == 200, response.json
    ways: Counter[str] = Counter()
    for _ in ("dirty days", "recomputed"):
        for first, last in (
            (today() - timedelta(days=20), today()),
            (today() - timedelta(days=3), today()),
            (today() - timedelta(days=20), today() - timedelta(days=1)),  # no live day
        ):
            for by in ("revenue", "quantity"):
                answer, sent = top(app, first, last, by, 3)
                assert answer == expected(app, first, last, by, 3)
                ways[ranked_way(sent)] += 1
        with app.app_context():
            daily_sales_job()
        assert_totals_are_sums(app)
    assert ways["candidates"] >= 6, ways
    before = totals_and_sums(app)
    with app.app_context():
        aggregate_day(today() - timedelta(days=2))
    assert totals_and_sums(app) == before
