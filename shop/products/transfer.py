"""The catalog as CSV: every product and variant streamed out, a batch of rows at a time, so a
million products cost the memory of one batch."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select

from shop.db import db, table_of
from shop.products.models import Category, Product, ProductVariant

COLUMNS = (
    "sku",
    "product_sku",  # a variant's product; empty on a product's own row
    "name",
    "category",  # its path from the root: "Garden > Tools"
    "price",
    "compare_at_price",  # empty when it has none
    "stock",
    "low_stock_threshold",
    "is_active",
    "is_featured",
)
BATCH = 1_000
# A cell a spreadsheet would run as a formula starts with one of these: a quote before it
# keeps it text (OWASP's advice for CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _safe(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _category_paths() -> dict[int, str]:
    """Every category's path (categories are few beside products: read once)."""
    rows = {
        r.id: (r.name, r.parent_id)
        for r in db.session.execute(select(Category.id, Category.name, Category.parent_id))
    }
    paths: dict[int, str] = {}

    def path(category_id: int) -> str:
        if category_id not in paths:
            name, parent = rows[category_id]
            paths[category_id] = f"{path(parent)} > {name}" if parent in rows else name
        return paths[category_id]

    for category_id in rows:
        path(category_id)
    return paths


def export_csv() -> Iterator[str]:
    """The header, then each product followed by its variants, in id order, as CSV text."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    categories = _category_paths()
    products, variants = table_of(Product), table_of(ProductVariant)
    stmt = (
        select(
            products.c.id,
            products.c.sku,
            products.c.name,
            products.c.category_id,
            products.c.price,
            products.c.compare_at_price,
            products.c.stock,
            products.c.low_stock_threshold,
            products.c.is_active,
            products.c.is_featured,
            variants.c.sku.label("variant_sku"),
            variants.c.name.label("variant_name"),
            variants.c.price.label("variant_price"),
            variants.c.compare_at_price.label("variant_compare_at_price"),
            variants.c.stock.label("variant_stock"),
            variants.c.is_active.label("variant_active"),
        )
        .select_from(products.outerjoin(variants, variants.c.product_id == products.c.id))
        .order_by(products.c.id, variants.c.id)
        .execution_options(yield_per=BATCH)
    )
    last_product = None
    for batch in db.session.execute(stmt).partitions():
        for row in batch:
            category = categories.get(row.category_id, "") if row.category_id else ""
            if row.id != last_product:
                last_product = row.id
                writer.writerow(
                    [_safe(v) for v in (row.sku, "", row.name, category, row.price,
                     row.compare_at_price, row.stock, row.low_stock_threshold, row.is_active,
                     row.is_featured)]
                )  # fmt: skip
            if row.variant_sku is not None:
                writer.writerow(
                    [_safe(v) for v in (row.variant_sku, row.sku, row.variant_name, category,
                     row.variant_price, row.variant_compare_at_price, row.variant_stock,
                     row.low_stock_threshold, row.variant_active, row.is_featured)]
                )  # fmt: skip
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()
