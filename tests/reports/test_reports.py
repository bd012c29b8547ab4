"""Reports equal a direct aggregation over orders: before the job, after it, and after a late
change to an old order; plus CSV, roles and validation."""

import csv
import io
import random
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, text, update

from shop.db import db
from shop.orders.models import Order
from shop.reports.aggregates import today
from shop.reports.jobs import daily_sales_job
from shop.reports.models import DailyProductSales, DailySales, DirtyDay
from tests.factories import headers_for, make_product, make_user

API = "/api/v1"
SHIP_TO = {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}
PATHS = [
    [],
    ["paid"],
    ["paid", "processing"],
    ["paid", "processing", "shipped"],
    ["paid", "processing", "shipped", "delivered"],
    ["cancelled"],
    ["paid", "refunded"],
    ["paid", "cancelled"],
]
SALE = "('paid', 'processing', 'shipped', 'delivered')"


@pytest.fixture
def shop_history(app, as_staff):
    """Thirty orders over the last week, in random states."""
    rng = random.Random(7)
    products = [
        make_product(app, name=f"P{i}", price=Decimal(p), stock=10_000)
        for i, p in enumerate(["3.50", "12.00", "49.99"])
    ]
    buyers = [headers_for(app, make_user(app)) for _ in range(3)]
    client = app.test_client()
    now = datetime.now(UTC)
    for _ in range(30):
        lines = rng.sample(products, rng.randint(1, 3))
        created = client.post(
            f"{API}/orders",
            headers=rng.choice(buyers),
            json={
                "items": [{"product_id": p.id, "quantity": rng.randint(1, 4)} for p in lines],
                "shipping_address": SHIP_TO,
            },
        ).json
        when = now - timedelta(days=rng.randint(0, 6), hours=rng.randint(0, 23))
        with app.app_context():
            db.session.execute(
                update(Order).where(Order.id == created["id"]).values(created_at=min(when, now))
            )
            db.session.commit()
        for step in rng.choice(PATHS):
            extra = {"tracking_number": "T-1"} if step == "shipped" else {}
            response = client.patch(
                f"{API}/orders/{created['id']}/status",
                headers=as_staff,
                json={"status": step, **extra},
            )
            assert response.status_code == 200, response.json
    return products


def direct_by_day(app, first, last):
    sql = text(f"""
        SELECT date(timezone('UTC', o.created_at)) AS day, count(*) AS orders,
               sum((SELECT sum(quantity) FROM order_items i WHERE i.order_id = o.id)) AS items,
               sum(o.total) AS revenue
        FROM orders o WHERE o.status IN {SALE}
          AND date(timezone('UTC', o.created_at)) BETWEEN :first AND :last
        GROUP BY 1""")
    with app.app_context():
        rows = db.session.execute(sql, {"first": first, "last": last}).all()
    return {str(r.day): (r.orders, int(r.items), f"{r.revenue:.2f}") for r in rows}


def direct_top(app, first, last):
    sql = text(f"""
        SELECT i.product_id, sum(i.quantity) AS quantity, sum(i.line_total) AS revenue
        FROM order_items i JOIN orders o ON o.id = i.order_id
        WHERE o.status IN {SALE}
          AND date(timezone('UTC', o.created_at)) BETWEEN :first AND :last
        GROUP BY 1""")
    with app.app_context():
        rows = db.session.execute(sql, {"first": first, "last": last}).all()
    return {r.product_id: (int(r.quantity), f"{r.revenue:.2f}") for r in rows}


def check_against_orders(client, app, headers):
    first, last = today() - timedelta(days=7), today()
    query = f"start={first}&end={last}"
    sales = client.get(f"{API}/reports/sales?period=day&{query}", headers=headers).json
    reported = {
        r["period_start"]: (r["orders"], r["items"], r["revenue"])
        for r in sales["rows"]
        if r["orders"]
    }
    expected = direct_by_day(app, first, last)
    assert len(expected) >= 3  # several days with sales: the comparison is not vacuous
    assert reported == expected
    assert sales["totals"]["orders"] == sum(v[0] for v in expected.values())
    for period in ("week", "month"):
        grouped = client.get(f"{API}/reports/sales?period={period}&{query}", headers=headers).json
        assert grouped["totals"] == sales["totals"]
        assert sum(r["orders"] for r in grouped["rows"]) == sales["totals"]["orders"]
    top = client.get(f"{API}/reports/top-products?{query}&by=quantity", headers=headers).json
    assert {r["product_id"]: (r["quantity"], r["revenue"]) for r in top["rows"]} == direct_top(
        app, first, last
    )
    quantities = [r["quantity"] for r in top["rows"]]
    assert quantities == sorted(quantities, reverse=True)
    statuses = client.get(f"{API}/reports/order-status?{query}", headers=headers).json["counts"]
    with app.app_context():
        direct = dict(
            db.session.execute(
                text(
                    "SELECT status, count(*) FROM orders WHERE date(timezone('UTC', created_at)) "
                    "BETWEEN :first AND :last GROUP BY 1"
                ),
                {"first": first, "last": last},
            ).all()
        )
    assert {k: v for k, v in statuses.items() if v} == direct
    product_id, (units, revenue) = next(iter(direct_top(app, first, last).items()))
    one = client.get(f"{API}/reports/products/{product_id}?{query}", headers=headers).json
    assert (one["units_sold"], one["revenue"]) == (units, revenue)
    assert len(one["rows"]) == 8


def test_reports_equal_orders_before_and_after_the_job_and_a_late_refund(
    client, app, shop_history, as_staff
):
    check_against_orders(client, app, as_staff)  # all live
    with app.app_context():
        result = daily_sales_job()
        assert result["days"] >= 6
        assert db.session.scalar(select(DailySales).limit(1)) is not None
    check_against_orders(client, app, as_staff)  # closed days from the aggregates
    with app.app_context():
        old = db.session.scalar(
            select(Order)
            .where(
                Order.status == "paid",
                Order.created_at < datetime.combine(today(), datetime.min.time(), UTC),
            )
            .order_by(Order.created_at)
            .limit(1)
        )
    refund = client.patch(
        f"{API}/orders/{old.id}/status", headers=as_staff, json={"status": "refunded"}
    )
    assert refund.status_code == 200
    with app.app_context():
        assert db.session.get(DirtyDay, old.created_at.date()) is not None
    check_against_orders(client, app, as_staff)  # the refunded day is read live
    with app.app_context():
        daily_sales_job()
        assert db.session.scalar(select(DirtyDay).limit(1)) is None
    check_against_orders(client, app, as_staff)


def test_the_job_is_idempotent_and_safe_in_parallel(app, shop_history):
    def snapshot():
        with app.app_context():
            days = db.session.execute(
                select(DailySales.day, DailySales.orders, DailySales.items, DailySales.revenue)
            ).all()
            products = db.session.execute(
                select(
                    DailyProductSales.day,
                    DailyProductSales.product_id,
                    DailyProductSales.units_sold,
                    DailyProductSales.revenue,
                )
            ).all()
        return sorted(days), sorted(products)

    runner = app.test_cli_runner()
    since = (today() - timedelta(days=8)).isoformat()
    assert runner.invoke(args=["reports", "backfill", "--since", since]).exit_code == 0
    first = snapshot()
    assert runner.invoke(args=["reports", "backfill", "--since", since]).exit_code == 0
    assert snapshot() == first

    def backfill(_):
        return (
            app.test_cli_runner().invoke(args=["reports", "backfill", "--since", since]).exit_code
        )

    with ThreadPoolExecutor(max_workers=3) as pool:
        assert list(pool.map(backfill, range(3))) == [0, 0, 0]
    assert snapshot() == first


def test_dashboard(client, app, shop_history, as_staff):
    body = client.get(f"{API}/reports/dashboard", headers=as_staff).json
    expected = direct_by_day(app, today() - timedelta(days=29), today())
    revenue_30 = sum(Decimal(v[2]) for v in expected.values())
    orders_30 = sum(v[0] for v in expected.values())
    assert Decimal(body["revenue"]["last_30_days"]) == revenue_30
    assert body["orders"]["last_30_days"] == orders_30
    assert Decimal(body["revenue"]["today"]) == Decimal(expected.get(str(today()), (0, 0, "0"))[2])
    assert Decimal(body["average_order_value"]) == (revenue_30 / orders_30).quantize(
        Decimal("0.01")
    )
    with app.app_context():
        pending = db.session.scalar(text("SELECT count(*) FROM orders WHERE status='pending'"))
    assert body["orders"]["pending"] == pending
    assert body["customers"]["total"] >= 3 and body["low_stock_count"] == 0


def test_order_status_counts(client, app, shop_history, as_staff):
    body = client.get(
        f"{API}/reports/order-status?start={today() - timedelta(days=7)}", headers=as_staff
    ).json
    with app.app_context():
        rows = db.session.execute(text("SELECT status, count(*) FROM orders GROUP BY 1")).all()
    assert {k: v for k, v in body["counts"].items() if v} == {s: n for s, n in rows}
    assert set(body["counts"]) == {
        "pending",
        "paid",
        "processing",
        "shipped",
        "delivered",
        "cancelled",
        "refunded",
    }


def test_csv_exports(client, app, shop_history, as_staff):
    sales = client.get(f"{API}/reports/sales?format=csv", headers=as_staff)
    assert sales.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(sales.get_data(as_text=True))))
    assert list(rows[0]) == ["period_start", "orders", "items", "revenue"] and len(rows) == 30
    top = client.get(f"{API}/reports/top-products?format=csv&limit=2", headers=as_staff)
    header, *lines = top.get_data(as_text=True).strip().split("\n")
    assert header == "product_id,sku,name,quantity,revenue" and len(lines) <= 2


def test_new_orders_show_at_once(client, app, as_customer, as_staff):
    product = make_product(app, price=Decimal("10.00"))
    before = client.get(f"{API}/reports/dashboard", headers=as_staff).json
    created = client.post(
        f"{API}/orders",
        headers=as_customer,
        json={"items": [{"product_id": product.id, "quantity": 1}], "shipping_address": SHIP_TO},
    ).json
    client.patch(f"{API}/orders/{created['id']}/status", headers=as_staff, json={"status": "paid"})
    after = client.get(f"{API}/reports/dashboard", headers=as_staff).json
    assert after["orders"]["today"] == before["orders"]["today"] + 1


def test_roles(client, app, as_customer, as_admin):
    product = make_product(app)
    for path in ("dashboard", "sales", "top-products", "order-status", f"products/{product.id}"):
        url = f"{API}/reports/{path}"
        assert client.get(url).status_code == 401
        assert client.get(url, headers=as_customer).status_code == 403
        assert client.get(url, headers=as_admin).status_code == 200
    assert client.get(f"{API}/reports/products/999999", headers=as_admin).status_code == 404


@pytest.mark.parametrize(
    "query",
    [
        "sales?period=year",
        "sales?start=2026-02-30",
        "sales?start=2026-05-02&end=2026-05-01",
        "sales?start=2020-01-01&end=2026-01-01",
        "top-products?limit=0",
        "top-products?limit=101",
        "top-products?by=profit",
        "order-status?end=tomorrow",
        "sales?format=xml",
    ],
)
def test_validation(client, as_staff, query):
    assert client.get(f"{API}/reports/{query}", headers=as_staff).status_code == 422


def test_a_missing_end_means_today(client, as_staff):
    start = today() - timedelta(days=10)
    sales = client.get(f"{API}/reports/sales?start={start}", headers=as_staff).json
    assert (sales["start"], sales["end"]) == (str(start), str(today()))
    status = client.get(f"{API}/reports/order-status?start={start}", headers=as_staff).json
    assert status["end"] == str(today())
    too_long = client.get(f"{API}/reports/sales?start=2020-01-01", headers=as_staff)
    assert too_long.status_code == 422 and "end" in too_long.json["errors"]
    future = client.get(
        f"{API}/reports/sales?start={today() + timedelta(days=1)}", headers=as_staff
    )
    assert future.status_code == 422 and "start" in future.json["errors"]


def test_csv_answers_are_in_the_openapi_document(client):
    spec = client.get("/openapi.json").json
    for path in ("/api/v1/reports/sales", "/api/v1/reports/top-products"):
        content = spec["paths"][path]["get"]["responses"]["200"]["content"]
        assert set(content) == {"application/json", "text/csv"}
        assert content["text/csv"]["schema"] == {"type": "string"}
