"""Low stock: the one definition (an active product without variants, or an active variant, at
or below its product's threshold), the staff list and count, and the notifications opened
(once, with an email to ADMIN_EMAILS) when stock falls there."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Any

from flask import current_app
from sqlalchemy import ColumnElement, Integer, Subquery, exists, func, literal, select, update

from shop import mail
from shop.audit.models import SYSTEM_ACTOR
from shop.caching import cached_value
from shop.db import Page, count_rows, db, insert_ignoring_conflicts, paginate, unit_of_work, utcnow
from shop.inventory.models import Notification, NotificationKind
from shop.products.cache import CATALOG_MATCHES
from shop.products.events import ItemCreated, StockChanged
from shop.products.models import MovementType, Product, ProductVariant, StockMovement

VELOCITY_DAYS = 30


def low_stock_rows() -> Subquery:
    """(product_id, variant_id, sku, name, stock, low_stock_threshold) of every row low on
    stock. The product branch compares `stock - threshold` so that its index serves it."""
    plain = select(
        Product.id.label("product_id"),
        literal(None, Integer).label("variant_id"),
        Product.sku,
        Product.name,
        Product.stock,
        Product.low_stock_threshold,
    ).where(
        Product.is_active.is_(True),
        Product.stock - Product.low_stock_threshold <= 0,
        ~Product.variants.any(),
    )
    variants = (
        select(
            Product.id,
            ProductVariant.id,
            ProductVariant.sku,
            # as products.sellable.display_name names a variant's line
            (Product.name + " (" + ProductVariant.name + ")"),
            ProductVariant.stock,
            Product.low_stock_threshold,
        )
        .join(ProductVariant, ProductVariant.product_id == Product.id)
        .where(
            Product.is_active.is_(True),
            ProductVariant.is_active.is_(True),
            ProductVariant.stock <= Product.low_stock_threshold,
        )
    )
    return plain.union_all(variants).subquery("low_stock")


def list_low_stock(*, page: int, page_size: int) -> Page:
    """Rows at or below their threshold, lowest first."""
    rows = low_stock_rows()
    stmt = select(rows).order_by(rows.c.stock, rows.c.product_id, rows.c.variant_id)
    return paginate(stmt, page, page_size, scalars=False, total=count_low_stock)


def count_low_stock() -> int:
    """Cached until a stock crosses its threshold or a product changes: in a catalog of a
    million products the count reads tens of thousands of rows."""
    count = partial(count_rows, select(low_stock_rows()))
    return int(cached_value(CATALOG_MATCHES, "low-stock", count))


def _same_variant(column: Any, variant_id: Any) -> ColumnElement[bool]:
    return func.coalesce(column, 0) == func.coalesce(variant_id, 0)


def _suggested_reorder(product_id: int, variant_id: int | None, stock: int, threshold: int) -> int:
    """Enough for the next 30 days at the last 30 days' net sales rate, back above the
    threshold; 0 when nothing sold."""
    since = utcnow() - timedelta(days=VELOCITY_DAYS)
    sold = db.session.scalar(
        select(func.coalesce(-func.sum(StockMovement.quantity), 0)).where(
            StockMovement.product_id == product_id,
            _same_variant(StockMovement.variant_id, variant_id),
            StockMovement.type.in_([MovementType.SALE, MovementType.CANCEL]),
            StockMovement.created_at >= since,
        )
    )
    sold = int(sold or 0)
    return max(0, sold + threshold - stock) if sold > 0 else 0


def open_low_stock_notification(product_id: int, variant_id: int | None = None) -> int | None:
    """Open the notification and email ADMIN_EMAILS, unless one is open or stock recovered.

    The partial unique index makes this safe to run twice, or twice at once.
    """
    with unit_of_work():
        rows = low_stock_rows()
        row = db.session.execute(
            select(rows).where(
                rows.c.product_id == product_id, _same_variant(rows.c.variant_id, variant_id)
            )
        ).first()
        if row is None:
            return None
        suggested = _suggested_reorder(product_id, variant_id, row.stock, row.low_stock_threshold)
        message = (
            f"Low stock: {row.name} [{row.sku}] has {row.stock} left "
            f"(threshold {row.low_stock_threshold})."
        )
        notification_id = db.session.scalar(
            insert_ignoring_conflicts(Notification)
            .values(
                kind=NotificationKind.LOW_STOCK.value,
                product_id=product_id,
                variant_id=variant_id,
                message=message,
                stock=row.stock,
                suggested_reorder_qty=suggested,
            )
            .returning(Notification.id)
        )
        if notification_id is not None:
            mail.queue_email(
                current_app.config["ADMIN_EMAILS"],
                "low_stock",
                name=row.name,
                sku=row.sku,
                stock=row.stock,
                threshold=row.low_stock_threshold,
                suggested=suggested,
            )
    return notification_id


def on_low(event: StockChanged | ItemCreated) -> None:
    """The durable subscriber to stock falling to its threshold, or an item created there."""
    open_low_stock_notification(event.product_id, event.variant_id)


def resolve_recovered(event: StockChanged) -> None:
    """In the restock's transaction: the open notification of a row whose stock is back above
    its threshold is resolved (by the system), so the next drop opens a new one."""
    db.session.execute(
        update(Notification)
        .where(
            Notification.kind == NotificationKind.LOW_STOCK,
            Notification.product_id == event.product_id,
            _same_variant(Notification.variant_id, event.variant_id),
            Notification.is_open(),
        )
        .values(resolved_at=utcnow(), resolved_by=SYSTEM_ACTOR)
    )


def sweep_low_stock() -> dict[str, int]:
    """The `low-stock` job: open what the per-change subscriber missed. Idempotent."""
    rows = low_stock_rows()
    is_open = exists().where(
        Notification.kind == NotificationKind.LOW_STOCK,
        Notification.product_id == rows.c.product_id,
        _same_variant(Notification.variant_id, rows.c.variant_id),
        Notification.is_open(),
    )
    candidates = db.session.execute(
        select(rows.c.product_id, rows.c.variant_id).where(~is_open)
    ).all()
    db.session.rollback()
    opened = sum(
        1
        for product_id, variant_id in candidates
        if open_low_stock_notification(product_id, variant_id) is not None
    )
    return {"candidates": len(candidates), "opened": opened}
