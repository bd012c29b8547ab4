"""The one path through which every stock change in the system passes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select, update

from shop.caching import CATALOG, invalidate
from shop.errors import Conflict, NotFound, Unprocessable
from shop.extensions import db
from shop.inventory.models import InventoryTransaction, MovementType
from shop.products.models import Product, ProductVariant

if TYPE_CHECKING:
    from shop.auth.models import User


def change_stock(
    *,
    product_id: int,
    variant_id: int | None = None,
    delta: int,
    type: MovementType,
    actor: User | None,
    reference: str | None = None,
    note: str | None = None,
) -> InventoryTransaction:
    """Move stock by `delta` and write the ledger row, inside the caller's unit of work.

    Conditional UPDATEs (never below zero, backed by CHECK constraints) lock the product row
    first and then the variant's, so callers that sort their lines by (product, variant)
    cannot deadlock one another. Raises Conflict when stock would go below zero.
    """
    session = db.session
    product_rule = Product.stock + delta >= 0
    if variant_id is None:
        # A product with variants sells, and counts its stock, by variant.
        product_rule &= ~Product.variants.any()
    product_stock = session.execute(
        update(Product)
        .where(Product.id == product_id, product_rule)
        .values(stock=Product.stock + delta)
        .returning(Product.stock)
    ).scalar_one_or_none()
    if product_stock is None:
        _explain_refusal(product_id, variant_id, delta)
    stock_after = product_stock
    if variant_id is not None:
        stock_after = session.execute(
            update(ProductVariant)
            .where(
                ProductVariant.id == variant_id,
                ProductVariant.product_id == product_id,
                ProductVariant.stock + delta >= 0,
            )
            .values(stock=ProductVariant.stock + delta)
            .returning(ProductVariant.stock)
        ).scalar_one_or_none()
        if stock_after is None:
            _explain_refusal(product_id, variant_id, delta)
    entry = InventoryTransaction(
        product_id=product_id,
        variant_id=variant_id,
        type=type,
        quantity=delta,
        stock_after=stock_after,
        reference=reference,
        note=note,
        created_by=actor.id if actor else None,
    )
    session.add(entry)
    invalidate(CATALOG)
    return entry


def _explain_refusal(product_id: int, variant_id: int | None, delta: int) -> None:
    product = db.session.get(Product, product_id)
    if product is None:
        raise NotFound(f"Product {product_id} does not exist.")
    if variant_id is None:
        if product.variants:
            raise Unprocessable(
                "This product has variants: move the stock of a variant.",
                errors={"variant_id": ["Required for a product with variants."]},
            )
        available = product.stock
    else:
        variant = db.session.scalar(
            select(ProductVariant).where(
                ProductVariant.id == variant_id, ProductVariant.product_id == product_id
            )
        )
        if variant is None:
            raise NotFound(f"Product {product_id} has no variant {variant_id}.")
        available = variant.stock
    raise Conflict(
        f"Not enough stock: {available} available, {-delta} requested.",
        errors={"stock": [f"{available} available"]},
    )
