"""Demo data for an empty database, and generated customers, products and orders in bulk for
volume.

Long because the generated orders carry the structure recommendations are evaluated on
(customers' favourite categories, products bought together), beside the other generators."""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import click
from sqlalchemy import func, insert, select

from shop.auth.models import User
from shop.caching import invalidate
from shop.db import db, unit_of_work, utcnow
from shop.orders.models import Order, OrderItem
from shop.products import catalog, categories
from shop.products.cache import CATALOG, CATALOG_MATCHES
from shop.products.models import Category, MovementType, Product, ProductVariant, StockMovement
from shop.products.slugs import slugify
from shop.reports.jobs import refresh_popularity
from shop.reports.models import Interaction
from shop.security import Role, hash_password

DEMO_ACCOUNTS = (
    ("admin@example.com", "admin-pass-123", Role.ADMIN, "Ada", "Admin"),
    ("staff@example.com", "staff-pass-123", Role.STAFF, "Sam", "Staff"),
    ("customer@example.com", "customer-pass-123", Role.CUSTOMER, "Cleo", "Customer"),
    ("seller@example.com", "seller-pass-123", Role.SELLER, "Selma", "Seller"),
)
SELLERS_CATEGORY = "T-Shirts"  # the demo seller's products; the rest are the store's
# (category, parent, [(sku, name, price, stock, description, variants)])
DEMO_CATALOG: tuple[tuple[str, str | None, list[tuple[Any, ...]]], ...] = (
    ("Electronics", None, []),
    ("Laptops", "Electronics", [
        ("LAP-AIR13", "Featherlight 13 Laptop", "999.00", 12,
         "A 1.1 kg aluminium laptop with a 13-inch display and all-day battery.", None),
        ("LAP-PRO16", "Workhorse 16 Pro Laptop", "2199.00", 4,
         "Sixteen inches, 32 GB of memory and a keyboard made for long days.", None),
    ]),
    ("Phones", "Electronics", [
        ("PHN-PIX8", "Pixelate 8 Phone", "649.00", 25,
         "A bright OLED screen and a camera that shines at night.", None),
        ("PHN-MINI", "Pocket Mini Phone", "399.00", 3,
         "Small enough for any pocket, with a battery that lasts two days.", None),
    ]),
    ("Audio", "Electronics", [
        ("AUD-NC700", "Quiet Comfort Headphones", "279.00", 40,
         "Over-ear wireless headphones with active noise cancelling.", None),
        ("AUD-BUDS", "Everyday Wireless Earbuds", "89.00", 80,
         "Light earbuds with a charging case and sweat resistance.", None),
        ("AUD-SPK", "Garden Bluetooth Speaker", "59.00", 0,
         "A waterproof speaker for the patio.", None),
    ]),
    ("Clothing", None, []),
    ("T-Shirts", "Clothing", [
        ("TEE-ORG", "Organic Cotton T-Shirt", "24.00", 0,
         "Soft organic cotton, cut for everyday wear.",
         [("TEE-ORG-S", "Small", {"size": "S"}, 10), ("TEE-ORG-M", "Medium", {"size": "M"}, 14),
          ("TEE-ORG-L", "Large", {"size": "L"}, 6)]),
        ("TEE-LIN", "Linen Summer Shirt", "39.00", 0, "Breathable linen for hot days.",
         [("TEE-LIN-M", "Medium", {"size": "M"}, 5), ("TEE-LIN-L", "Large", {"size": "L"}, 2)]),
    ]),
    ("Shoes", "Clothing", [
        ("SHO-RUN", "Trail Running Shoes", "119.00", 0, "Grippy soles for muddy trails.",
         [("SHO-RUN-42", "EU 42", {"size": "42"}, 7), ("SHO-RUN-44", "EU 44", {"size": "44"}, 3)]),
    ]),
    ("Home & Kitchen", None, [
        ("KIT-ESP", "Espresso Machine", "349.00", 9,
         "A 15-bar pump espresso machine with a steam wand for milk.", None),
        ("KIT-GRN", "Burr Coffee Grinder", "129.00", 15,
         "Conical burrs and 40 grind settings, from espresso to French press.", None),
        ("KIT-KET", "Gooseneck Kettle", "69.00", 22, "Pour-over precision, 1 litre.", None),
    ]),
    ("Books", None, [
        ("BK-COFFEE", "The Coffee Book", "29.00", 30,
         "Everything about beans, roasting and brewing at home.", None),
        ("BK-PYTHON", "Practical Python Services", "45.00", 11,
         "Building web services that stay fast and correct under load.", None),
    ]),
)  # fmt: skip
BATCH = 5000


def seed_demo(*, customers: int = 0, products: int = 0, orders: int = 0) -> dict[str, Any]:
    """Demo accounts and catalog when the database has no users; then generated volume."""
    with unit_of_work() as session:  # all of the demo data, or none of it
        empty = not session.scalar(select(func.count()).select_from(User))
        if empty:
            for email, password, role, first, last in DEMO_ACCOUNTS:
                session.add(
                    User(
                        email=email,
                        password_hash=hash_password(password),
                        role=role,
                        first_name=first,
                        last_name=last,
                        email_verified_at=utcnow(),
                    )
                )
            session.flush()
            _demo_catalog()
    return {
        "demo_data": "created" if empty else "skipped (not empty)",
        "demo_categories": len(DEMO_CATALOG) if empty else 0,
        "demo_products": sum(len(items) for _, _, items in DEMO_CATALOG) if empty else 0,
        "customers": _generate_customers(customers) if customers else 0,
        "products": _generate_products(products) if products else 0,
        "orders": _generate_orders(orders) if orders else 0,
    }


def _demo_catalog() -> None:
    admin = db.session.scalar(select(User).where(User.role == Role.ADMIN).limit(1))
    seller = db.session.scalar(select(User).where(User.role == Role.SELLER).limit(1))
    assert admin is not None and seller is not None
    ids: dict[str, int] = {}
    for name, parent, items in DEMO_CATALOG:
        category = categories.create_category(
            admin, {"name": name, "parent_id": ids.get(parent or "")}
        )
        ids[name] = category.id
        maker = seller if name == SELLERS_CATEGORY else admin
        for sku, title, price, stock, description, variants in items:
            product = catalog.create_product(
                maker,
                {"sku": sku, "name": title, "price": Decimal(price), "stock": stock,
                 "description": description, "category_id": category.id,
                 "is_featured": stock > 20},
            )  # fmt: skip
            for v_sku, v_name, attributes, v_stock in variants or ():
                catalog.create_variant(
                    maker,
                    product.id,
                    {"sku": v_sku, "name": v_name, "attributes": attributes,
                     "price": Decimal(price), "stock": v_stock},
                )  # fmt: skip


def _progress(count: int, label: str) -> Any:
    return click.progressbar(length=count, label=label, file=sys.stderr)


def _batches(count: int) -> Iterator[range]:
    for start in range(0, count, BATCH):
        yield range(start, min(start + BATCH, count))


def _generate_customers(count: int) -> int:
    # One hash for every generated account: Argon2 per row would take minutes.
    password_hash = hash_password("customer-pass-123")
    start = (db.session.scalar(select(func.max(User.id))) or 0) + 1
    now = utcnow()
    with _progress(count, "customers") as bar:
        for batch in _batches(count):
            rows = [
                {
                    "email": f"customer{start + i}@example.com",
                    "password_hash": password_hash,
                    "first_name": "Customer",
                    "last_name": str(start + i),
                    "role": Role.CUSTOMER.value,
                    "email_verified_at": now,
                }
                for i in batch
            ]
            with unit_of_work() as session:
                session.execute(insert(User), rows)
            bar.update(len(rows))
    return count


ADJECTIVES = (
    "Classic", "Compact", "Deluxe", "Eco", "Ultra", "Smart", "Vintage", "Rugged", "Silent",
    "Portable", "Premium", "Everyday", "Nordic", "Urban", "Solar", "Wireless",
)  # fmt: skip
MATERIALS = (
    "Bamboo", "Steel", "Cotton", "Leather", "Ceramic", "Oak", "Carbon", "Wool", "Glass",
    "Copper", "Linen", "Walnut",
)  # fmt: skip
NOUNS = (
    "Backpack", "Lamp", "Kettle", "Jacket", "Speaker", "Chair", "Mug", "Watch", "Blender",
    "Notebook", "Headphones", "Sneakers", "Desk", "Camera", "Tent", "Bottle", "Scarf",
    "Keyboard", "Teapot", "Umbrella",
)  # fmt: skip
SIZES = ("S", "M", "L")


def _generate_products(count: int, seed: int = 42) -> int:
    """Bulk-insert `count` products (a tenth with three variants), each with its INITIAL
    ledger rows, so stock always equals the ledger sum."""
    rng = random.Random(seed)
    with unit_of_work() as session:
        categories = list(session.scalars(select(Category.id)))
        if len(categories) < 20:
            new = [{"name": f"Department {i}", "slug": f"department-{i}-{rng.randrange(10**9)}"}
                   for i in range(20)]  # fmt: skip
            categories += list(session.scalars(insert(Category).returning(Category.id), new))
    start = (db.session.scalar(select(func.max(Product.id))) or 0) + 1
    now = utcnow()
    with _progress(count, "products") as bar:
        for batch in _batches(count):
            rows, variant_plans = [], []
            for i in batch:
                n = start + i
                name = f"{rng.choice(ADJECTIVES)} {rng.choice(MATERIALS)} {rng.choice(NOUNS)}"
                has_variants = n % 10 == 0
                variant_stock = [rng.randrange(0, 60) for _ in SIZES] if has_variants else []
                rows.append(
                    {
                        "sku": f"GEN-{n:07d}",
                        "name": name,
                        "slug": f"{slugify(name)}-{n}",
                        "description": f"The {name.lower()}: built to last, number {n}.",
                        "price": Decimal(rng.randrange(100, 100_000)) / 100,
                        "stock": sum(variant_stock) if has_variants else rng.randrange(0, 300),
                        "low_stock_threshold": 5,
                        "category_id": rng.choice(categories),
                        "is_featured": rng.random() < 0.02,
                        "rating_avg": Decimal(rng.randrange(0, 501)) / 100,
                        "rating_count": rng.randrange(0, 200),
                        "sales_count": rng.randrange(0, 5000),
                        "created_at": now - timedelta(minutes=rng.randrange(0, 525_600)),
                    }
                )
                variant_plans.append(variant_stock)
            with unit_of_work() as session:
                created = session.execute(
                    insert(Product).returning(
                        Product.id, Product.sku, Product.price, Product.stock,
                        sort_by_parameter_order=True,
                    ),
                    rows,
                ).all()  # fmt: skip
                ledger: list[dict[str, Any]] = []
                variants: list[dict[str, Any]] = []
                for product, variant_stock in zip(created, variant_plans, strict=True):
                    if not variant_stock and product.stock:
                        ledger.append(_initial(product.id, None, product.stock))
                    for size, stock in zip(SIZES, variant_stock, strict=False):
                        variants.append(
                            {"product_id": product.id, "sku": f"{product.sku}-{size}",
                             "name": size, "attributes": {"size": size},
                             "price": product.price, "stock": stock}
                        )  # fmt: skip
                if variants:
                    made = session.execute(
                        insert(ProductVariant).returning(
                            ProductVariant.id, ProductVariant.product_id, ProductVariant.stock,
                            sort_by_parameter_order=True,
                        ),
                        variants,
                    ).all()  # fmt: skip
                    ledger += [_initial(v.product_id, v.id, v.stock) for v in made if v.stock]
                if ledger:
                    session.execute(insert(StockMovement), ledger)
                invalidate(CATALOG, CATALOG_MATCHES)
            bar.update(len(rows))
    return count


def _initial(product_id: int, variant_id: int | None, stock: int) -> dict[str, Any]:
    return {
        "product_id": product_id,
        "variant_id": variant_id,
        "type": MovementType.INITIAL.value,
        "quantity": stock,
        "stock_after": stock,
        "note": "generated",
    }


# --- generated orders, with the structure recommendations learn from -----------------------
ORDER_DAYS = 180
SHIP_TO = {"line1": "1 Demo Street", "city": "Sampleton", "postal_code": "10001", "country": "US"}
# Of generated orders: paid and on (sales), waiting for payment, cancelled.
ORDER_STATUSES = ("delivered",) * 12 + ("shipped", "paid", "pending", "cancelled")
BUNDLE = 3  # products of a category bought together


def _shop_structure(rng: random.Random) -> tuple[dict[int, list[Any]], dict[int, list[int]]]:
    """Each category's products in popularity order (the first sell most), and each product's
    bundle: the few of its category that are bought with it."""
    by_category: dict[int, list[Any]] = {}
    for row in db.session.execute(
        select(Product.id, Product.price, Product.category_id).where(
            Product.is_active.is_(True), Product.category_id.is_not(None)
        )
    ):
        by_category.setdefault(row.category_id, []).append(row)
    bundles: dict[int, list[int]] = {}
    for products in by_category.values():
        rng.shuffle(products)
        grouped = products[:]
        rng.shuffle(grouped)
        for start in range(0, len(grouped), BUNDLE):
            group = [p.id for p in grouped[start : start + BUNDLE]]
            for product_id in group:
                bundles[product_id] = [other for other in group if other != product_id]
    return by_category, bundles


def _popular(products: list[Any], rng: random.Random) -> Any:
    """A product of the list, the first ones far more often (Zipf-like)."""
    return products[min(int(rng.paretovariate(1.2)) - 1, len(products) - 1)]


def _generate_orders(count: int, seed: int = 7) -> int:
    """`count` orders of the generated customers over the last ORDER_DAYS, with their
    interactions (views, cart adds, wishlist adds, purchases of the sales): each customer
    shops mostly in one or two favourite categories, and the products of a bundle are bought
    together (in one order, or a later one). Stock is not taken (as bench data)."""
    rng = random.Random(seed)
    customers = list(db.session.scalars(select(User.id).where(User.role == Role.CUSTOMER)))
    by_category, bundles = _shop_structure(rng)
    if not customers or not by_category:
        return 0
    categories = sorted(by_category)
    prices = {p.id: p.price for products in by_category.values() for p in products}
    tastes = {
        c: rng.sample(categories, min(len(categories), rng.choice((1, 1, 2)))) for c in customers
    }
    bought: dict[int, list[int]] = {c: [] for c in customers}
    now = utcnow()
    plans = []
    for _ in range(count):
        customer = rng.choice(customers)
        lines: list[int] = []
        for _line in range(rng.choice((1, 1, 2, 2, 3))):
            earlier = [p for p in lines + bought[customer] if bundles.get(p)]
            if earlier and rng.random() < 0.5:
                choice = rng.choice(bundles[rng.choice(earlier)])
            else:
                category = rng.choice(tastes[customer] if rng.random() < 0.85 else categories)
                choice = _popular(by_category[category], rng).id
            if choice not in lines:
                lines.append(choice)
        bought[customer] += lines
        plans.append((customer, lines, now - timedelta(seconds=rng.randrange(ORDER_DAYS * 86400))))
    plans.sort(key=lambda plan: plan[2])  # a customer's later orders follow their earlier ones
    with _progress(len(plans), "orders") as bar:
        for batch in _batches(len(plans)):
            _insert_orders([plans[i] for i in batch], prices, by_category, rng)
            bar.update(len(batch))
    refresh_popularity()
    return len(plans)


def _insert_orders(
    plans: list[tuple[int, list[int], Any]],
    prices: dict[int, Decimal],
    by_category: dict[int, list[Any]],
    rng: random.Random,
) -> None:
    category_of = {p.id: c for c, products in by_category.items() for p in products}
    orders, facts = [], []
    for customer, lines, at in plans:
        status = rng.choice(ORDER_STATUSES)
        sale = status not in ("pending", "cancelled")
        subtotal = sum((prices[p] for p in lines), Decimal("0.00"))
        shipping = Decimal("0.00") if subtotal >= 50 else Decimal("5.00")
        total = subtotal + shipping
        orders.append(
            {"user_id": customer, "status": status, "subtotal": subtotal,
             "payment_status": "paid" if sale else "unpaid",
             "amount_paid": total if sale else Decimal(0), "shipping_cost": shipping,
             "tax": Decimal("0.00"), "total": total, "currency": "USD",
             "shipping_address": SHIP_TO, "created_at": at, "updated_at": at}
        )  # fmt: skip
        for product_id in lines:
            browsed = _popular(by_category[category_of[product_id]], rng).id
            steps = [(-900, "view", browsed, None), (-600, "view", product_id, None),
                     (-300, "cart_add", product_id, 1)]  # fmt: skip
            if rng.random() < 0.05:
                steps.append((-200, "wishlist_add", product_id, None))
            if sale:
                steps.append((0, "purchase", product_id, 1))
            facts += [
                {"user_id": customer, "product_id": product, "kind": kind, "value": value,
                 "created_at": at + timedelta(seconds=seconds)}
                for seconds, kind, product, value in steps
            ]  # fmt: skip
    with unit_of_work() as session:
        ids = session.scalars(
            insert(Order).returning(Order.id, sort_by_parameter_order=True), orders
        ).all()
        items = [
            {"order_id": order_id, "product_id": p, "variant_id": None, "sku": f"GEN-{p}",
             "name": f"Generated {p}", "unit_price": prices[p], "list_price": prices[p],
             "quantity": 1, "line_total": prices[p]}
            for order_id, (_, lines, _) in zip(ids, plans, strict=True)
            for p in lines
        ]  # fmt: skip
        session.execute(insert(OrderItem), items)
        session.execute(insert(Interaction), facts)
