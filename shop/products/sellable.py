"""What may be sold: a product, or one variant of it, as a cart or an order line shows it,
read with Core in one statement for a cart line or a whole order."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, select

from shop.db import db, table_of
from shop.errors import NotFound, Unprocessable
from shop.products.models import Product, ProductVariant
from shop.products.pricing import current


def display_name(product_name: str, variant_name: str | None) -> str:
    """How a product, or one of its variants, is named on a line: "Tee (Large)"."""
    return f"{product_name} ({variant_name})" if variant_name else product_name


_products, _variants = table_of(Product), table_of(ProductVariant)
# What a line needs of a product and of one of its variants (None where it has none): read
# with Core, since nothing here is changed (the ORM's loading costs more than the query).
SELLABLE_COLUMNS = (
    _products.c.id.label("product_id"),
    _products.c.sku,
    _products.c.name,
    _products.c.price,
    _products.c.compare_at_price,
    _products.c.stock,
    _products.c.category_id,
    _variants.c.id.label("variant_id"),
    _variants.c.sku.label("variant_sku"),
    _variants.c.name.label("variant_name"),
    _variants.c.price.label("variant_price"),
    _variants.c.compare_at_price.label("variant_compare_at_price"),
    _variants.c.stock.label("variant_stock"),
    _variants.c.is_active.label("variant_active"),
)


@dataclass(frozen=True)
class Sellable:
    """A product, or one variant of it, as a cart or an order line shows it."""

    product_id: int
    variant_id: int | None
    sku: str
    name: str
    price: Decimal
    stock: int
    list_price: Decimal  # off sale: its compare-at price if above its own, else its own
    category_id: int | None

    @classmethod
    def of(cls, row: Row[Any]) -> Sellable:
        """From a row of SELLABLE_COLUMNS: the variant's, where the row has one, at the price
        of the best flash sale running on it, if any."""
        sale = current().best(row.product_id, row.category_id)
        if row.variant_id is None:
            sku, name, price, compare_at, stock = (
                row.sku, row.name, row.price, row.compare_at_price, row.stock
            )  # fmt: skip
        else:
            sku, name, price, compare_at, stock = (
                row.variant_sku, display_name(row.name, row.variant_name), row.variant_price,
                row.variant_compare_at_price, row.variant_stock,
            )  # fmt: skip
        charged = sale.price_of(price) if sale else price
        return cls(row.product_id, row.variant_id, sku, name, charged, stock,
                   max(price, compare_at or price), row.category_id)  # fmt: skip


def _offers(product_ids: set[int]) -> dict[int, list[Row[Any]]]:
    """The active products among `product_ids`, each with a row per variant (active or not;
    one row, variant None, for a product without variants), in one statement."""
    rows = db.session.execute(
        select(*SELLABLE_COLUMNS)
        .select_from(_products.outerjoin(_variants, _variants.c.product_id == _products.c.id))
        .where(_products.c.id.in_(product_ids), _products.c.is_active.is_(True))
    )
    offers: dict[int, list[Row[Any]]] = {}
    for row in rows:
        offers.setdefault(row.product_id, []).append(row)
    return offers


def _variant_row(rows: list[Row[Any]], variant_id: int) -> Row[Any] | None:
    return next((r for r in rows if r.variant_id == variant_id and r.variant_active), None)


def sellable(product_id: int, variant_id: int | None) -> Sellable:
    """The active product (and variant) a cart line may hold; 404 or 422 otherwise."""
    rows = _offers({product_id}).get(product_id)
    if rows is None:
        raise NotFound(f"Product {product_id} does not exist.")
    if variant_id is None:
        if rows[0].variant_id is not None:
            raise Unprocessable("Choose a variant.", errors={"variant_id": ["Required."]})
        return Sellable.of(rows[0])
    row = _variant_row(rows, variant_id)
    if row is None:
        raise NotFound(f"Product {product_id} has no variant {variant_id}.")
    return Sellable.of(row)


def for_sale(lines: list[tuple[int, int | None, int]]) -> list[tuple[Sellable, int]]:
    """What each (product_id, variant_id, quantity) line of an order sells, read in one
    statement; a 422 names (by its index) every line that is not for sale."""
    offers = _offers({p for p, _, _ in lines})
    resolved, errors = [], {}
    for index, (product_id, variant_id, quantity) in enumerate(lines):
        rows = offers.get(product_id)
        row = None
        if rows is None:
            errors[str(index)] = {"product_id": [f"No product {product_id} for sale."]}
        elif variant_id is None:
            if rows[0].variant_id is not None:
                errors[str(index)] = {"variant_id": ["Required: the product sells by variant."]}
            else:
                row = rows[0]
        else:
            row = _variant_row(rows, variant_id)
            if row is None:
                errors[str(index)] = {"variant_id": [f"No variant {variant_id} for sale."]}
        if row is not None:
            resolved.append((Sellable.of(row), quantity))
    if errors:
        raise Unprocessable("Some lines cannot be ordered.", errors={"items": errors})
    return resolved
