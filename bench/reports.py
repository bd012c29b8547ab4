"""Reports at volume: COPY 1,000,000 orders over 365 days, aggregate them, time every report.

    .venv/bin/python bench/reports.py [--orders 1000000] [--skip-load]

Builds PostgreSQL database shop_bench_reports: 2,000 products, 20,000 customers, the orders
(1-3 lines each, statuses mixed, yesterday holding 5,000) loaded with COPY; then runs the
daily-sales backfill (timing the 5,000-order day) and measures each report endpoint, single
client, uncached, p50/p95 over 30 requests. Orders here skip the stock ledger: this measures
reports, not checkout.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("SECRET_KEY", "bench-secret-key-0123456789-abcdefghijkl")
os.environ.setdefault("JWT_SECRET_KEY", "bench-jwt-secret-0123456789-abcdefghijkl")

from shop import create_app  # noqa: E402
from shop.auth.services import issue_tokens  # noqa: E402
from shop.db import unit_of_work  # noqa: E402
from shop.extensions import db  # noqa: E402


def recreate(url: str) -> None:
    """Drop and create the bench database."""
    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()


STATUSES = (["delivered"] * 55 + ["shipped"] * 8 + ["processing"] * 5 + ["paid"] * 7
            + ["pending"] * 5 + ["cancelled"] * 15 + ["refunded"] * 5)  # fmt: skip
BATCH = 50_000
BIG_DAY_ORDERS = 5000


def load(app, orders: int, *, products: int = 2000, customers: int = 20_000, seed: int = 1) -> None:
    from flask_migrate import upgrade

    from shop.seed import _generate_customers, _generate_products

    rng = random.Random(seed)
    with app.app_context():
        upgrade()
        _generate_products(products)
        _generate_customers(customers)
        connection = db.engine.raw_connection()
        cursor = connection.cursor()
        cursor.execute("SELECT id, price FROM products")
        products = cursor.fetchall()
        cursor.execute("SELECT min(id), max(id) FROM users")
        low_user, high_user = cursor.fetchone()
        now = datetime.now(UTC)
        today = now.date()
        started = time.perf_counter()
        order_id = item_id = 0
        while order_id < orders:
            order_rows, item_rows = io.StringIO(), io.StringIO()
            for _ in range(min(BATCH, orders - order_id)):
                order_id += 1
                if order_id <= BIG_DAY_ORDERS:  # yesterday: the 5,000-order day
                    day = today - timedelta(days=1)
                else:
                    day = today - timedelta(days=rng.randint(1, 365))
                created = datetime.combine(day, datetime.min.time(), UTC) + timedelta(
                    seconds=rng.randint(0, 86_399)
                )
                subtotal = 0
                for _line in range(rng.randint(1, 3)):
                    item_id += 1
                    product_id, price = rng.choice(products)
                    quantity = rng.randint(1, 3)
                    line_total = price * quantity
                    subtotal += line_total
                    item_rows.write(
                        f"{item_id}\t{order_id}\t{product_id}\t\\N\tGEN-{product_id}"
                        f"\tGenerated {product_id}\t{price}\t{quantity}\t{line_total}\n"
                    )
                shipping = 0 if subtotal >= 50 else 5
                total = subtotal + shipping
                status = rng.choice(STATUSES)
                order_rows.write(
                    f"{order_id}\t{rng.randint(low_user, high_user)}\t{status}\t"
                    f"{'paid' if status not in ('pending', 'cancelled') else 'unpaid'}\t"
                    f"{subtotal}\t{shipping}\t0\t{total}\t0\tUSD\t"
                    '{"line1": "1 Bench St", "city": "X", "postal_code": "1", "country": "US"}'
                    f"\t\t{created.isoformat()}\t{created.isoformat()}\n"
                )
            order_rows.seek(0)
            item_rows.seek(0)
            cursor.copy_expert(
                "COPY orders (id, user_id, status, payment_status, subtotal, shipping_cost, tax,"
                " total, amount_paid, currency, shipping_address, notes, created_at, updated_at)"
                " FROM STDIN",
                order_rows,
            )
            cursor.copy_expert(
                "COPY order_items (id, order_id, product_id, variant_id, sku, name, unit_price,"
                " quantity, line_total) FROM STDIN",
                item_rows,
            )
            connection.commit()
            print(
                f"  {order_id:>9,} orders, {time.perf_counter() - started:6.1f} s", file=sys.stderr
            )
        cursor.execute(
            "SELECT setval('orders_id_seq', %s); SELECT setval('order_items_id_seq', %s)",
            (order_id, item_id),
        )
        connection.commit()
        connection.driver_connection.autocommit = True
        cursor.execute("VACUUM ANALYZE")  # steady state: autovacuum would have run
        connection.close()
        print(
            json.dumps(
                {
                    "loaded_orders": order_id,
                    "order_items": item_id,
                    "seconds": round(time.perf_counter() - started, 1),
                }
            )
        )


def aggregate(app) -> None:
    from shop.reports.services import aggregate_day, today

    with app.app_context():
        started = time.perf_counter()
        big = aggregate_day(today() - timedelta(days=1))
        big_seconds = time.perf_counter() - started
        started = time.perf_counter()
        days = [today() - timedelta(days=n) for n in range(2, 367)]
        for day in days:
            aggregate_day(day)
        print(
            json.dumps(
                {
                    "big_day": big,
                    "big_day_seconds": round(big_seconds, 3),
                    "backfill_days": len(days),
                    "backfill_seconds": round(time.perf_counter() - started, 1),
                }
            )
        )


def measure(app) -> None:
    from shop.auth.models import User

    with app.app_context(), unit_of_work():
        staff = db.session.query(User).first()
        staff.role = "admin"
        token = issue_tokens(staff)["access_token"]
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    year_ago = (date.today() - timedelta(days=364)).isoformat()
    urls = [
        "/api/v1/reports/dashboard",
        "/api/v1/reports/sales?period=day",
        f"/api/v1/reports/sales?period=month&start={year_ago}",
        f"/api/v1/reports/top-products?start={year_ago}&limit=10",
        "/api/v1/reports/top-products?by=quantity",
        "/api/v1/reports/order-status",
        f"/api/v1/reports/order-status?start={year_ago}",
        "/api/v1/reports/products/17",
        f"/api/v1/reports/products/17?start={year_ago}",
    ]
    results = {}
    for url in urls:
        client.get(url, headers=headers)
        times = []
        for _ in range(30):
            started = time.perf_counter()
            response = client.get(url, headers=headers)
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.get_data()
        times.sort()
        results[url] = {
            "p50_ms": round(statistics.median(times), 1),
            "p95_ms": round(times[int(len(times) * 0.95) - 1], 1),
        }
    print(json.dumps(results, indent=2))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument(
        "--database", default="postgresql://postgres@127.0.0.1:5432/shop_bench_reports"
    )
    parser.add_argument("--skip-load", action="store_true", help="reuse the loaded database")
    args = parser.parse_args()
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": args.database,
            "REDIS_URL": None,
            "CACHE_TYPE": "NullCache",
            "LOG_LEVEL": "WARNING",
        }
    )
    if not args.skip_load:
        recreate(args.database)
        load(app, args.orders)
        aggregate(app)
    measure(app)
    return 0


if __name__ == "__main__":
    sys.exit(main())
