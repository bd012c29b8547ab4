"""The one stock path: every change of a product's or a variant's stock in the whole system
goes through `change_stock`, which writes the ledger row in the same transaction."""

from __future__ import annotations

from typing import Any, NoReturn

from sqlalchemy import exists, select, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from shop import bus
from shop.auth.models import User
from shop.caching import invalidate
from shop.db import db, get_or_404, insert_loaded, table_of
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
    # Core statements on the tables: the ORM's synchronisation of the session (it cannot
    # evaluate `variants.any()`, so it would fetch) costs more than the UPDATE; the one row
    # a session may hold is given its new stock below.
    products, variants = table_of(Product), table_of(ProductVariant)
    product_rule = products.c.stock + delta >= 0
    if variant_id is None:
        # A product with variants sells, and counts its stock, by variant.
        product_rule &= ~exists().where(variants.c.product_id == products.c.id)
    updated = session.execute(
        update(products)
        .where(products.c.id == product_id, product_rule)
        .values(stock=products.c.stock + delta)
        .returning(products.c.stock, products.c.updated_at, products.c.low_stock_threshold)
    ).first()
    if updated is None:
        _explain_refusal(product_id, variant_id, delta)
    stock_after, updated_at, threshold = updated
    _held(Product, product_id, stock=stock_after, updated_at=updated_at)
    in_stock_changed = (stock_after > 0) != (stock_after - delta > 0)
    if variant_id is not None:
        changed = session.execute(
            update(variants)
            .where(
                variants.c.id == variant_id,
                variants.c.product_id == product_id,
                variants.c.stock + delta >= 0,
            )
            .values(stock=variants.c.stock + delta)
            .returning(variants.c.stock, variants.c.updated_at)
        ).first()
        if changed is None:
            _explain_refusal(product_id, variant_id, delta)
        stock_after, updated_at = changed
        _held(ProductVariant, variant_id, stock=stock_after, updated_at=updated_at)
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
    insert_loaded([entry])
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


def _held(model: type[Product | ProductVariant], id: int, **values: Any) -> None:
    """Give the updated row's values to the object the session holds for it, if any."""
    held = db.session.identity_map.get(identity_key(model, id))
    if held is not None:
        for name, value in values.items():
            set_committed_value(held, name, value)


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
