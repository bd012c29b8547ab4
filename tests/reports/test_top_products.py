"""Top products ranked among candidates (the best totals, and what sold on live days) equal a
direct aggregation over orders, ties included: before the job, after it, on dirty days and
today; the totals are the sum of the daily rows; and which way was ranked, each time."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event, func, insert, select, text

from shop.db import db, unit_of_work, utcnow
from shop.orders.models import Order, OrderItem
from shop.products.models import Product
from shop.reports import services
from shop.reports.aggregates import SALES, aggregate_day, today
from shop.reports.jobs import daily_sales_job
from shop.reports.models import DailyProductSales, ProductSalesTotals
from tests.conftest import statements_of
from tests.factories import make_product, make_user

API = "/api/v1"
PRICES = [Decimal(p) for p in ("1.00", "2.50", "5.00", "10.00")]  # few prices: revenue ties
STATUSES = ["paid", "processing", "shipped", "delivered"] * 4 + ["pending", "cancelled", "refunded"]
TOTALS = ProductSalesTotals.__tablename__
CAP = services.MAX_CANDIDATES

Line = tuple[Product, int]


def record_orders(app: Flask, orders: Iterable[tuple[datetime, str, list[Line]]]) -> list[int]:
    """Orders written as they are stored (no checkout, no stock taken): created when given."""
    user = make_user(app)
    ids = []
    with app.app_context(), unit_of_work() as session:
        for created, status, lines in orders:
            total = sum((p.price * q for p, q in lines), Decimal("0.00"))
            paid = status not in ("pending", "cancelled")
            order_id = session.scalar(
                insert(Order)
                .values(user_id=user.id, status=status,
                        payment_status="paid" if paid else "unpaid", subtotal=total,
                        shipping_cost=0, tax=0, total=total, amount_paid=total if paid else 0,
                        currency="USD", shipping_address={}, created_at=created)
                .returning(Order.id)
            )  # fmt: skip
            session.execute(
                insert(OrderItem),
                [{"order_id": order_id, "product_id": p.id, "sku": p.sku, "name": p.name,
                  "unit_price": p.price, "list_price": p.price, "quantity": q,
                  "line_total": p.price * q}
                 for p, q in lines],
            )  # fmt: skip
            ids.append(order_id)
    return ids


def at(day: date, seconds: int = 43_200) -> datetime:
    """A moment of `day` (UTC), never in the future."""
    return min(datetime.combine(day, time(), UTC) + timedelta(seconds=seconds), utcnow())


def history(
    app: Flask, rng: random.Random, products: list[Product], days: int, per_day: int, skew: float
) -> list[int]:
    """`per_day` orders on each of the last `days` days and today, statuses mixed; products
    drawn with weights 1 / rank ** skew (0: uniform)."""
    weights = [1 / (rank + 1) ** skew for rank in range(len(products))]
    orders = []
    for back in range(days, -1, -1):
        for _ in range(per_day):
            picked = set(rng.choices(products, weights, k=rng.randint(1, 3)))
            lines = [(p, rng.randint(1, 3)) for p in sorted(picked, key=lambda p: p.id)]
            created = at(today() - timedelta(days=back), rng.randint(0, 86_399))
            orders.append((created, rng.choice(STATUSES), lines))
    return record_orders(app, orders)


def sale_lines(app: Flask) -> list[Any]:
    """Every line of a sale: (created_at, product_id, quantity, line_total)."""
    with app.app_context():
        return db.session.execute(
            select(Order.created_at, OrderItem.product_id, OrderItem.quantity,
                   OrderItem.line_total)
            .join(Order, Order.id == OrderItem.order_id)
            .where(Order.status.in_(SALES))
        ).all()  # fmt: skip


def expected(app: Flask, first: date, last: date, by: str, limit: int) -> list[tuple[Any, ...]]:
    return expected_of(sale_lines(app), first, last, by, limit)


def expected_of(
    lines: list[Any], first: date, last: date, by: str, limit: int
) -> list[tuple[Any, ...]]:
    """The answer computed here from the lines: (product_id, quantity, revenue)."""
    sums: dict[int, list[Any]] = defaultdict(lambda: [0, Decimal("0.00")])
    for created, product_id, quantity, line_total in lines:
        if first <= created.astimezone(UTC).date() <= last:
            sums[product_id][0] += quantity
            sums[product_id][1] += line_total
    metric = 1 if by == "revenue" else 0
    ranked = sorted(sums.items(), key=lambda kv: (-kv[1][metric], kv[0]))
    return [(pid, q, f"{revenue:.2f}") for pid, (q, revenue) in ranked[:limit]]


def ranked_way(statements: list[str]) -> str:
    """Which way the last ranking went: its statement reads the totals only among candidates."""
    return "candidates" if TOTALS in statements[-1] else "every product"


def top(
    app: Flask, first: date, last: date, by: str, limit: int
) -> tuple[list[tuple[Any, ...]], list[str]]:
    """top_products' answer as (product_id, quantity, revenue), and the statements it sent."""
    with statements_of(app) as counter, app.app_context():
        rows = services.top_products(first, last, by=by, limit=limit)["rows"]
    answer = [(r["product_id"], r["quantity"], f"{r['revenue']:.2f}") for r in rows]
    return answer, counter.statements


def totals_and_sums(app: Flask) -> tuple[list[Any], list[Any]]:
    """The totals table (rows left at zero by sales gone are no sales), and the daily rows
    summed per product."""
    with app.app_context():
        totals = db.session.execute(
            select(ProductSalesTotals.product_id, ProductSalesTotals.units_sold,
                   ProductSalesTotals.revenue)
            .where((ProductSalesTotals.units_sold != 0) | (ProductSalesTotals.revenue != 0))
            .order_by(ProductSalesTotals.product_id)
        ).all()  # fmt: skip
        sums = db.session.execute(
            select(DailyProductSales.product_id, func.sum(DailyProductSales.units_sold),
                   func.sum(DailyProductSales.revenue))
            .group_by(DailyProductSales.product_id)
            .order_by(DailyProductSales.product_id)
        ).all()  # fmt: skip
    return [tuple(r) for r in totals], [tuple(r) for r in sums]


def assert_totals_are_sums(app: Flask) -> None:
    totals, sums = totals_and_sums(app)
    assert sums and totals == sums


def ranges() -> list[tuple[date, date]]:
    now = today()
    return [
        (now - timedelta(days=90), now),
        (now - timedelta(days=90), now - timedelta(days=1)),
        (now - timedelta(days=60), now - timedelta(days=31)),
        (now - timedelta(days=29), now),
        (now - timedelta(days=6), now),
        (now - timedelta(days=1), now - timedelta(days=1)),
        (now, now),
        (now - timedelta(days=200), now - timedelta(days=150)),  # nothing sold
    ]


def check_every_range(app: Flask, monkeypatch: Any, ways: Counter[str]) -> None:
    """Every range, metric and limit, with the cap as it is (60 products are never too many
    candidates) and at 20 (short ranges, dirty days and today have more)."""
    lines = sale_lines(app)
    for cap in (CAP, 20):
        monkeypatch.setattr(services, "MAX_CANDIDATES", cap)
        for first, last in ranges():
            for by in ("revenue", "quantity"):
                for limit in (1, 3, 10):
                    answer, sent = top(app, first, last, by, limit)
                    assert answer == expected_of(lines, first, last, by, limit), (first, last)
                    ways[ranked_way(sent)] += 1


@pytest.mark.parametrize("skew", [0.0, 1.2], ids=["uniform", "skewed"])
def test_top_products_equal_a_direct_aggregation_through_the_job_and_late_changes(
    app, client, as_staff, monkeypatch, skew
):
    rng = random.Random(11)
    products = [make_product(app, price=rng.choice(PRICES), stock=100_000) for _ in range(60)]
    ids = history(app, rng, products, days=90, per_day=8, skew=skew)
    ways: Counter[str] = Counter()
    check_every_range(app, monkeypatch, ways)  # nothing aggregated: every day live

    with app.app_context():
        daily_sales_job()
    assert_totals_are_sums(app)
    check_every_range(app, monkeypatch, ways)

    # Late changes to old orders: refunds and cancellations lower a day, late payments raise it.
    with app.app_context():
        old = db.session.execute(
            select(Order.id, Order.status).where(
                Order.id.in_(ids), Order.created_at < at(today() - timedelta(days=2), 0)
            )
        ).all()
    paid = [i for i, status in old if status == "paid"]
    pending = [i for i, status in old if status == "pending"]
    changes = [(i, "refunded") for i in paid[:4]] + [(i, "cancelled") for i in paid[4:7]]
    changes += [(i, "paid") for i in pending[:4]]
    assert len(changes) == 11
    for order_id, status in changes:
        response = client.patch(
            f"{API}/orders/{order_id}/status", headers=as_staff, json={"status": status}
        )
        assert response.status_code == 200, response.json
    check_every_range(app, monkeypatch, ways)  # the changed days read live

    with app.app_context():
        assert daily_sales_job()["days"] >= 1  # the dirty days recomputed
    assert_totals_are_sums(app)
    check_every_range(app, monkeypatch, ways)

    # A day recomputed as it was leaves the totals as they were, not even rewritten (a row
    # rewritten in PostgreSQL gets a new xmin).
    versions = text(f"SELECT product_id, xmin::text FROM {TOTALS} ORDER BY product_id")
    with app.app_context():
        before = totals_and_sums(app), db.session.execute(versions).all()
        for _ in range(2):
            aggregate_day(today() - timedelta(days=5))
        assert (totals_and_sums(app), db.session.execute(versions).all()) == before
    # Both ways ran, often: the comparisons above are not all of one of them.
    assert ways["candidates"] >= 100 and ways["every product"] >= 100, ways


def test_a_product_tying_the_threshold_is_a_candidate(app, monkeypatch):
    """Seeds are the best totals (here one per row); A ties the threshold the seeds set
    without being one, and wins the tie by its id."""
    monkeypatch.setattr(services, "SEEDS_PER_ROW", 1)
    a, b, c = (make_product(app, price=Decimal("1.00"), stock=1000) for _ in range(3))
    now = today()
    record_orders(app, [
        (at(now - timedelta(days=3)), "paid", [(a, 5)]),
        (at(now - timedelta(days=3)), "paid", [(b, 10)]),
        (at(now - timedelta(days=3)), "paid", [(c, 5)]),
        (at(now - timedelta(days=40)), "paid", [(c, 15)]),  # before the range: in c's totals
    ])  # fmt: skip
    with app.app_context():
        daily_sales_job()
    first, last = now - timedelta(days=9), now - timedelta(days=1)
    for by in ("quantity", "revenue"):
        answer, sent = top(app, first, last, by, 2)
        assert (
            answer == expected(app, first, last, by, 2) == [(b.id, 10, "10.00"), (a.id, 5, "5.00")]
        )
        assert ranked_way(sent) == "candidates"


def test_products_sold_on_live_days_are_candidates_when_they_can_reach_the_top(
    app, client, as_staff, monkeypatch
):
    """Today's sales and a dirty day's are in no totals yet: a product whose totals plus those
    sales reach the threshold is a candidate, the others sold on those days are not."""
    products = [make_product(app, price=Decimal("2.00"), stock=1000) for _ in range(12)]
    fresh, late = make_product(app, price=Decimal("2.00")), make_product(app, price=Decimal("2.00"))
    now = today()
    # Each day 1, 2 or 3 units of each: totals 8, 16 or 24 (four products); the third is 24.
    record_orders(app, [(at(now - timedelta(days=d)), "delivered", [(p, 1 + i % 3)])
                        for d in range(1, 9) for i, p in enumerate(products)])  # fmt: skip
    [waiting] = record_orders(app, [(at(now - timedelta(days=4)), "pending", [(late, 80)])])
    with app.app_context():
        daily_sales_job()
    first = now - timedelta(days=9)
    assert ranked_way(top(app, first, now, "quantity", 3)[1]) == "candidates"
    record_orders(app, [(at(now, 0), "paid", [(fresh, 50)])])
    assert client.patch(f"{API}/orders/{waiting}/status", headers=as_staff,
                        json={"status": "paid"}).status_code == 200  # fmt: skip
    # Day 4 (dirty) and today sold 14 products; the candidates are the four at 24, and late
    # and fresh.
    for cap, way in ((6, "candidates"), (5, "every product")):
        monkeypatch.setattr(services, "MAX_CANDIDATES", cap)
        for by in ("quantity", "revenue"):
            answer, sent = top(app, first, now, by, 3)
            assert answer == expected(app, first, now, by, 3)
            assert [row[0] for row in answer[:2]] == [late.id, fresh.id]
            assert ranked_way(sent) == way


def test_every_product_is_ranked_when_candidates_are_too_many_or_seeds_too_few(app, monkeypatch):
    rng = random.Random(5)
    products = [make_product(app, price=rng.choice(PRICES), stock=1000) for _ in range(30)]
    history(app, rng, products, days=30, per_day=6, skew=0.0)
    with app.app_context():
        daily_sales_job()
    first, last = today() - timedelta(days=30), today() - timedelta(days=1)
    answer, sent = top(app, first, last, "revenue", 5)
    assert answer == expected(app, first, last, "revenue", 5)
    assert len(sent) == 3 and ranked_way(sent) == "candidates"  # days, seeds, candidates
    monkeypatch.setattr(services, "MAX_CANDIDATES", 4)  # fewer than the rows asked for
    answer, sent = top(app, first, last, "revenue", 5)
    assert answer == expected(app, first, last, "revenue", 5)
    # ... the candidates' statement ranked none of them, and every product was ranked.
    assert len(sent) == 4 and TOTALS in sent[2] and ranked_way(sent) == "every product"
    # More rows asked than the seeds have sold: ranked directly after the seeds.
    answer, sent = top(app, today(), today(), "quantity", 30)
    assert answer == expected(app, today(), today(), "quantity", 30)
    assert len(sent) == 3 and ranked_way(sent) == "every product"


def test_a_day_recomputed_between_the_seeds_and_the_ranking_sends_it_to_every_product(
    app, count_queries
):
    """The seeds' figures and the candidates' ranking are two statements: an order cancelled
    and its day recomputed in between lower the best figure below the threshold while its
    totals still reach it, and the answer still equals the orders (ranked over every
    product)."""
    high, other = (make_product(app, price=Decimal("1.00"), stock=1000) for _ in range(2))
    day = today() - timedelta(days=2)
    [order_id, *_] = record_orders(app, [
        (at(day), "paid", [(high, 7)]),
        (at(day), "paid", [(high, 3)]),
        (at(day), "paid", [(other, 8)]),
        (at(day - timedelta(days=5)), "paid", [(high, 20)]),  # outside the range
    ])  # fmt: skip
    with app.app_context():
        daily_sales_job()
        engine = db.engine
    raced = []

    def recompute_in_between(conn, cursor, statement, *_):
        if not raced and TOTALS in statement:  # the seeds' ranking
            raced.append(statement)
            with app.app_context():  # another session, another connection
                with unit_of_work() as session:
                    session.execute(
                        Order.__table__.update()
                        .where(Order.id == order_id)
                        .values(status="cancelled")
                    )
                aggregate_day(day)

    event.listen(engine, "after_cursor_execute", recompute_in_between)
    try:
        with count_queries() as counter, app.app_context():
            rows = services.top_products(day, day, by="quantity", limit=1)["rows"]
    finally:
        event.remove(engine, "after_cursor_execute", recompute_in_between)
    assert raced
    assert [(r["product_id"], r["quantity"]) for r in rows] == [(other.id, 8)]
    # The candidates' ranking ran (high, now 3 units: refused), then every product's.
    assert TOTALS in counter.statements[-2] and ranked_way(counter.statements) == "every product"


def test_the_http_answer_is_the_ranked_one(app, client, as_staff):
    rng = random.Random(3)
    products = [make_product(app, price=rng.choice(PRICES), stock=1000) for _ in range(20)]
    history(app, rng, products, days=20, per_day=5, skew=1.0)
    with app.app_context():
        daily_sales_job()
    start = today() - timedelta(days=20)
    body = client.get(f"{API}/reports/top-products?start={start}&by=quantity&limit=3",
                      headers=as_staff).json  # fmt: skip
    assert [(r["product_id"], r["quantity"], r["revenue"]) for r in body["rows"]] == expected(
        app, start, today(), "quantity", 3
    )
    assert all(r["sku"] and r["name"] for r in body["rows"])
