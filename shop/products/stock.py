"""The one stock path: every change of a product's or a variant's stock in the whole system
goes through `change_stock`, which writes the ledger row in the same transaction."""

from __future__ import annotations

from typing import NoReturn

from sqlalchemy import select, update

from shop import bus
from shop.auth.models import User
from shop.caching import invalidate
from shop.db import db, get_or_404
from shop.errors import Conflict, NotFound, Unprocessable
from shop.products.cache import CATALOG, CATALOG_MATCHES
from shop.products.events import StockChanged
from shop.products.models import MovementType, Product, ProductVariant, StockMovement


def change_stock(
    *,
    product_id: int,
    variant_id: int | None = None,
    delta: int,
    type: MovementType,
    actor: User | None,
    reference: str | None = None,
    note: str | None = None,
) -> StockMovement:
    """Move stock by `delta` and write the ledger row, inside the caller's unit of work.

    Conditional UPDATEs (never below zero, backed by CHECK constraints) lock the product row
    first and then the variant's, so callers that sort their lines by (product, variant)
    cannot deadlock one another. Raises Conflict when stock would go below zero. Publishes
    StockChanged.
    """
    session = db.session
    product_rule = Product.stock + delta >= 0
    if variant_id is None:
        # A product with variants sells, and counts its stock, by variant.
        product_rule &= ~Product.variants.any()
    updated = session.execute(
        update(Product)
        .where(Product.id == product_id, product_rule)
        .values(stock=Product.stock + delta)
        .returning(Product.stock, Product.low_stock_threshold)
    ).first()
    if updated is None:
        _explain_refusal(product_id, variant_id, delta)
    stock_after, threshold = updated
    in_stock_changed = (stock_after > 0) != (stock_after - delta > 0)
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
    entry = StockMovement(
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
    event = StockChanged(
        product_id=product_id,
        variant_id=variant_id,
        movement=type.value,
        delta=delta,
        stock_after=stock_after,
        low_stock_threshold=threshold,
    )
    # Matches change when a product enters or leaves `in_stock` lists, or a row its low-stock
    # count (a sale that leaves both alone changes only what the answers show).
    invalidate(CATALOG)
    if in_stock_changed or event.crossed_threshold:
        invalidate(CATALOG_MATCHES)
    bus.publish(event)
    return entry


def _explain_refusal(product_id: int, variant_id: int | None, delta: int) -> NoReturn:
    product = get_or_404(Product, product_id)
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
