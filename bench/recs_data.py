"""The recommendations bench's store at the issue's size (a million products, a hundred
thousand customers), built in PostgreSQL by INSERT ... SELECT generate_series: no row goes
through Python. Products fall in CATEGORIES categories (product n in category 1 + (n - 1) %
CATEGORIES) and sell Zipf-like (a category's first products most); 5 % are inactive and 8 %
out of stock, except the first PRODUCT_LISTS (the bench's hot ids, all active and in stock: the
detail A/B must measure 200s). Each customer shops in one favourite category:
ORDERS_PER_CUSTOMER orders of 1-3 lines over 180 days, each line with its view, cart add and
(for the 85 % that are sales) purchase, and VIEWS_PER_CUSTOMER more views there; 50 stored
products per algorithm (the job's shape: mostly of that category, some bought, inactive or out
of stock, which the read drops).
Product lists are stored for the first PRODUCT_LISTS products only (the bench reads those).

Like bench/data.py, it skips the stock ledger: the reads measured never look at it.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from sqlalchemy import text

from shop.db import db
from shop.security import hash_password
from shop.seed import ADJECTIVES, MATERIALS, NOUNS

CATEGORIES = 200
ORDERS_PER_CUSTOMER = 3
VIEWS_PER_CUSTOMER = 10
PRODUCT_LISTS = 1000  # bench/recommendations.py's HOT_IDS


def _array(words: tuple[str, ...]) -> str:
    return "ARRAY[" + ", ".join(f"'{w}'" for w in words) + "]"


# :per is each category's product count; a Zipf-like position in it is per * random()^3.
STEPS = {
    "categories": """
        INSERT INTO categories (id, name, slug)
        SELECT c, 'Department ' || c, 'bulk-department-' || c FROM generate_series(1, :cats) c
    """,
    "products": f"""
        INSERT INTO products (id, sku, name, slug, description, price, stock, category_id,
                              is_active, rating_avg, rating_count, sales_count, created_at)
        SELECT n, 'BULK-' || lpad(n::text, 7, '0'), w.name,
               lower(replace(w.name, ' ', '-')) || '-' || n,
               'The ' || lower(w.name) || ': built to last, number ' || n || '.',
               (100 + floor(random() * 99900)) / 100.0,
               CASE WHEN n > :lists AND random() < 0.08 THEN 0 ELSE 1 + floor(random() * 300) END,
               1 + (n - 1) % :cats, n <= :lists OR random() >= 0.05, floor(random() * 501) / 100.0,
               floor(random() * 200), floor(5000.0 / (1 + (n - 1) / :cats)),
               now() - random() * interval '365 days'
        FROM generate_series(1, :products) n,
             LATERAL (SELECT ({_array(ADJECTIVES)})[1 + floor(random() * {len(ADJECTIVES)})::int]
                             || ' ' || ({_array(MATERIALS)})[1 + floor(random() * {len(MATERIALS)})::int]
                             || ' ' || ({_array(NOUNS)})[1 + floor(random() * {len(NOUNS)})::int]
                             || left(n::text, 0) AS name) w
    """,  # noqa: E501
    "customers": """
        INSERT INTO users (email, password_hash, first_name, last_name, role, email_verified_at)
        SELECT 'bulk' || n || '@example.com', :hash, 'Customer', n::text, 'customer', now()
        FROM generate_series(1, :customers) n
    """,
    # Each customer's favourite category, and one line's product: a Zipf-like one of it.
    "orders": """
        INSERT INTO orders (user_id, status, payment_status, subtotal, shipping_cost, tax, total,
                            amount_paid, currency, shipping_address, created_at, updated_at)
        SELECT u.id, s.status, CASE WHEN s.status = 'pending' THEN 'unpaid' ELSE 'paid' END,
               0, 0, 0, 0, 0, 'USD', '{"line1": "1 Bench St", "city": "X",
               "postal_code": "1", "country": "US"}', s.at, s.at
        FROM users u, generate_series(1, :orders_each) o,
             LATERAL (SELECT CASE WHEN random() < 0.85 THEN 'delivered' ELSE 'pending' END
                             || left(o::text, 0) AS status,
                             now() - random() * interval '180 days' AS at) s
        WHERE u.email LIKE 'bulk%'
    """,
    "order_items": """
        INSERT INTO order_items (order_id, product_id, sku, name, unit_price, list_price,
                                 quantity, line_total)
        SELECT o.id, p.id, p.sku, p.name, p.price, p.price, 1, p.price
        FROM orders o, generate_series(1, 3) line,
             LATERAL (SELECT 1 + (o.user_id * 7919) % :cats
                             + :cats * floor(:per * power(random(), 3))::int
                             + 0 * line AS id) pick
             JOIN products p ON p.id = pick.id
        WHERE line = 1 OR random() < 0.5
    """,
    "interactions": """
        INSERT INTO interactions (user_id, product_id, kind, value, created_at)
        SELECT o.user_id, i.product_id, k.kind, k.value, o.created_at + k.shift
        FROM orders o JOIN order_items i ON i.order_id = o.id,
             (VALUES ('view', NULL, interval '-10 minutes'), ('cart_add', 1, interval '-5 minutes'),
                     ('purchase', 1, interval '0 minutes')) k (kind, value, shift)
        WHERE k.kind <> 'purchase' OR o.status <> 'pending'
        UNION ALL
        SELECT u.id, 1 + (u.id * 7919) % :cats + :cats * floor(:per * power(random(), 3))::int
                     + 0 * v, 'view', NULL, now() - random() * interval '180 days'
        FROM users u, generate_series(1, :views_each) v
        WHERE u.email LIKE 'bulk%'
    """,
    # Mostly the favourite category's best sellers (some of them bought), the rest anywhere.
    "user_recommendations": """
        INSERT INTO user_recommendations (user_id, algorithm, position, recommended_id, score,
                                          reason)
        SELECT u.id, a.algorithm, pos,
               CASE WHEN random() < 0.8
                    THEN 1 + (u.id * 7919) % :cats + :cats * floor(:per * power(random(), 3))::int
                    ELSE 1 + floor(random() * :products)::int END,
               round((1.0 - pos / 60.0)::numeric, 4), 'customers_also_bought'
        FROM users u, (VALUES ('collaborative'), ('content_based'), ('hybrid')) a (algorithm),
             generate_series(1, 50) pos
        WHERE u.email LIKE 'bulk%'
    """,
    "product_recommendations": """
        INSERT INTO product_recommendations (product_id, list, position, recommended_id, score)
        SELECT n, l.list, pos, 1 + (n - 1 + pos * :cats) % :products,
               round((1.0 - pos / 60.0)::numeric, 4)
        FROM generate_series(1, least(:lists, :products)) n,
             (VALUES ('bought_together'), ('similar')) l (list), generate_series(1, 50) pos
    """,
}


# Rows valid by construction, written without their foreign keys' per-row triggers (a third of
# the time): their tables have no other trigger.
UNCHECKED = {"interactions", "user_recommendations", "product_recommendations"}


def _dropped_indexes(table: str) -> list[str]:
    """Drop `table`'s indexes that no constraint owns; answer their definitions."""
    definitions = list(db.session.scalars(text(
        "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i"
        " WHERE i.indrelid = CAST(:table AS regclass)"
        " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)"
    ), {"table": table}))  # fmt: skip
    for definition in definitions:
        name = definition.split(" INDEX ", 1)[1].split(" ON ", 1)[0]
        db.session.execute(text(f"DROP INDEX {name}"))
    return definitions


def build(products: int, customers: int) -> dict[str, Any]:
    """The store in the app's (migrated, empty) database; each step's seconds."""
    params = {
        "products": products, "customers": customers, "cats": CATEGORIES,
        "per": max(products // CATEGORIES, 1), "orders_each": ORDERS_PER_CUSTOMER,
        "views_each": VIEWS_PER_CUSTOMER, "lists": PRODUCT_LISTS,
        "hash": hash_password("customer-pass-123"),
    }  # fmt: skip
    seconds: dict[str, Any] = {}
    db.session.execute(text("SELECT setseed(0.42)"))
    for step, statement in STEPS.items():
        started = time.perf_counter()
        if step in UNCHECKED:
            db.session.execute(text("SET LOCAL session_replication_role = replica"))
        indexes = _dropped_indexes("products") if step == "products" else []
        done = db.session.execute(text(statement), params).rowcount
        for definition in indexes:  # built once over the rows: far faster than row by row
            db.session.execute(text(definition))
        db.session.commit()
        seconds[step] = {"rows": done, "seconds": round(time.perf_counter() - started, 1)}
        print(f"  {step}: {done:,} rows, {seconds[step]['seconds']} s", file=sys.stderr)
    for table in ("categories", "products", "users", "orders", "order_items", "interactions"):
        db.session.execute(text(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
        ))  # fmt: skip
    db.session.commit()
    return seconds
