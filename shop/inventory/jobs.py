"""Inventory jobs: open low-stock notifications (once), sweep for missed ones, reconcile."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import CompoundSelect, Integer, exists, func, literal, select

from shop import mail
from shop.db import insert_ignoring_conflicts, unit_of_work, utcnow
from shop.extensions import db
from shop.inventory.models import (
    InventoryTransaction,
    MovementType,
    Notification,
    NotificationKind,
)
from shop.products.models import Product, ProductVariant

log = logging.getLogger(__name__)
VELOCITY_DAYS = 30


def _suggested_reorder(product_id: int, variant_id: int | None, stock: int, threshold: int) -> int:
    """Enough for the next 30 days at the last 30 days' net sales rate, back above the
    threshold; 0 when nothing sold."""
    since = utcnow() - timedelta(days=VELOCITY_DAYS)
    sold = db.session.scalar(
        select(func.coalesce(-func.sum(InventoryTransaction.quantity), 0)).where(
            InventoryTransaction.product_id == product_id,
            InventoryTransaction.variant_id.is_(None)
            if variant_id is None
            else InventoryTransaction.variant_id == variant_id,
            InventoryTransaction.type.in_([MovementType.SALE, MovementType.CANCEL]),
            InventoryTransaction.created_at >= since,
        )
    )
    sold = int(sold or 0)
    return max(0, sold + threshold - stock) if sold > 0 else 0


def open_low_stock_notification(product_id: int, variant_id: int | None = None) -> int | None:
    """Open the notification and email ADMIN_EMAILS, unless one is open or stock recovered.

    The partial unique index makes this safe to run twice, or twice at once.
    """
    with unit_of_work():
        row = db.session.execute(
            select(Product.name, Product.sku, Product.low_stock_threshold, Product.stock).where(
                Product.id == product_id, Product.is_active.is_(True)
            )
        ).first()
        if row is None:
            return None
        name, sku, threshold, stock = row
        if variant_id is not None:
            variant = db.session.execute(
                select(ProductVariant.name, ProductVariant.sku, ProductVariant.stock).where(
                    ProductVariant.id == variant_id, ProductVariant.product_id == product_id
                )
            ).first()
            if variant is None:
                return None
            name, sku, stock = f"{name} ({variant.name})", variant.sku, variant.stock
        if stock > threshold:
            return None
        suggested = _suggested_reorder(product_id, variant_id, stock, threshold)
        message = f"Low stock: {name} [{sku}] has {stock} left (threshold {threshold})."
        notification_id = db.session.scalar(
            insert_ignoring_conflicts(Notification)
            .values(
                kind=NotificationKind.LOW_STOCK.value,
                product_id=product_id,
                variant_id=variant_id,
                message=message,
                stock=stock,
                suggested_reorder_qty=suggested,
            )
            .returning(Notification.id)
        )
        if notification_id is not None:
            mail.queue_email(
                current_app.config["ADMIN_EMAILS"],
                "low_stock",
                name=name,
                sku=sku,
                stock=stock,
                threshold=threshold,
                suggested=suggested,
            )
    return notification_id


def _open_notification_for(product: Any, variant: Any) -> Any:
    return exists().where(
        Notification.kind == NotificationKind.LOW_STOCK,
        Notification.product_id == product,
        func.coalesce(Notification.variant_id, 0) == func.coalesce(variant, 0),
        Notification.acknowledged_at.is_(None),
    )


def low_stock_candidates() -> CompoundSelect[Any]:
    """(product_id, variant_id) at or below threshold with no open notification."""
    plain = select(
        Product.id.label("product_id"), literal(None, Integer).label("variant_id")
    ).where(
        Product.is_active.is_(True),
        Product.stock <= Product.low_stock_threshold,
        ~Product.variants.any(),
        ~_open_notification_for(Product.id, None),
    )
    variants = (
        select(ProductVariant.product_id, ProductVariant.id)
        .join(Product, Product.id == ProductVariant.product_id)
        .where(
            Product.is_active.is_(True),
            ProductVariant.is_active.is_(True),
            ProductVariant.stock <= Product.low_stock_threshold,
            ~_open_notification_for(ProductVariant.product_id, ProductVariant.id),
        )
    )
    return plain.union_all(variants)


def sweep_low_stock() -> dict[str, int]:
    """The `low-stock` job: open what the per-change jobs missed. Idempotent."""
    candidates = db.session.execute(low_stock_candidates()).all()
    db.session.rollback()
    opened = sum(
        1
        for product_id, variant_id in candidates
        if open_low_stock_notification(product_id, variant_id) is not None
    )
    return {"candidates": len(candidates), "opened": opened}


def find_ledger_drift() -> list[dict[str, Any]]:
    """Products and variants whose stock differs from the sum of their ledger rows."""
    product_sum = (
        select(func.coalesce(func.sum(InventoryTransaction.quantity), 0))
        .where(InventoryTransaction.product_id == Product.id)
        .scalar_subquery()
    )
    variant_sum = (
        select(func.coalesce(func.sum(InventoryTransaction.quantity), 0))
        .where(InventoryTransaction.variant_id == ProductVariant.id)
        .scalar_subquery()
    )
    products = db.session.execute(
        select(Product.id, Product.sku, Product.stock, product_sum).where(
            Product.stock != product_sum
        )
    ).all()
    variants = db.session.execute(
        select(ProductVariant.id, ProductVariant.sku, ProductVariant.stock, variant_sum).where(
            ProductVariant.stock != variant_sum
        )
    ).all()
    return [
        {"kind": kind, "id": row[0], "sku": row[1], "stock": row[2], "ledger": int(row[3])}
        for kind, rows in (("product", products), ("variant", variants))
        for row in rows
    ]


def check_stock_ledger() -> dict[str, Any]:
    """The `inventory-check` job: report (and email) any drift; there should never be any."""
    drift = find_ledger_drift()
    if drift:
        log.error("inventory ledger drift: %s", drift)
        with unit_of_work():
            mail.queue_email(current_app.config["ADMIN_EMAILS"], "ledger_drift", drift=drift)
    return {"drift": len(drift), "items": drift[:100]}
