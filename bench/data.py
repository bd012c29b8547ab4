"""The bench database, built in bulk: products and customers by `flask seed`'s generators,
orders over a year (1-3 lines each, statuses mixed, yesterday holding 5,000) by COPY.

Orders here skip the stock ledger: they feed the reports, and checkout is measured live.
"""

from __future__ import annotations

import io
import json
import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from unittest.mock import patch

from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from shop import create_app
from shop.db import db
from shop.seed import _generate_customers, _generate_products

SECRET = "bench-secret-0123456789-abcdefghijklmnopqrstuv"
# A benchmark's load comes from one address: the API-wide limits count every request but must
# not refuse it (429s are not measured answers).
UNLIMITED = {"RATE_LIMIT_ANON": "100000000 per minute", "RATE_LIMIT_USER": "100000000 per minute"}


def fresh_app(database: str, redis: str, **settings: str) -> tuple[Flask, dict[str, str]]:
    """A shop app on a new, migrated `database`, and the environment that starts a process
    beside it (realtime.py, worker.py) with the same settings (`settings` as env values)."""
    recreate(database)
    app, env = app_on(database, redis, **settings)
    with app.app_context():
        upgrade()
    return app, env


def app_on(database: str, redis: str, **settings: str) -> tuple[Flask, dict[str, str]]:
    """A shop app on `database` as it is (an earlier run's, to measure again)."""
    env = {
        "DATABASE_URL": database,
        "REDIS_URL": redis,
        "CACHE_REDIS_URL": redis,
        "SECRET_KEY": SECRET,
        "JWT_SECRET_KEY": SECRET,
        "LOG_LEVEL": "WARNING",
        **UNLIMITED,
        **settings,
    }
    with patch.dict(os.environ, env):
        app = create_app()
    return app, {**os.environ, **env}


def recreate(url: str) -> None:
    """Drop and create a PostgreSQL database (the bench's, the tests')."""
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
                        f"\tGenerated {product_id}\t{price}\t{price}\t{quantity}\t{line_total}\n"
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
                " list_price, quantity, line_total) FROM STDIN",
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
