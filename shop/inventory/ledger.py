"""The stock ledger as staff see it: manual movements, the ledger's history, and drift."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from shop import mail
from shop.audit.models import Action, Target
from shop.audit.services import record
from shop.auth.models import User
from shop.auth.policy import STOCK
from shop.db import Page, db, paginate, unit_of_work
from shop.inventory.schemas import MovementCreate
from shop.products.models import MovementType, Product, ProductVariant, StockMovement
from shop.products.stock import change_stock

log = logging.getLogger(__name__)
_SIGN = {
    MovementType.IN: 1,
    MovementType.RETURN: 1,
    MovementType.OUT: -1,
    MovementType.DAMAGE: -1,
    MovementType.ADJUSTMENT: 1,  # signed by the caller
}


def record_movement(actor: User, data: MovementCreate) -> StockMovement:
    """A manual movement: IN/RETURN add, OUT/DAMAGE remove, ADJUSTMENT is signed."""
    movement = MovementType(data["type"])
    with unit_of_work():
        if not STOCK.covers_all(actor):
            seller = db.session.scalar(
                select(Product.seller_id).where(Product.id == data["product_id"])
            )
            STOCK.check(actor, seller, f"Product {data['product_id']}")
        entry = change_stock(
            product_id=data["product_id"],
            variant_id=data.get("variant_id"),
            delta=_SIGN[movement] * data["quantity"],
            type=movement,
            actor=actor,
            reference=data.get("reference"),
            note=data.get("note"),
        )
        db.session.flush()
        record(
            Action.INVENTORY_ADJUSTED,
            actor=actor,
            target_type=Target.PRODUCT,
            target_id=entry.product_id,
            changes={
                "type": movement.value,
                "quantity": entry.quantity,
                "variant_id": entry.variant_id,
                "stock_after": entry.stock_after,
            },
        )
    return entry


def list_movements(
    *,
    page: int,
    page_size: int,
    product_id: int | None = None,
    variant_id: int | None = None,
    type: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Page:
    stmt = select(StockMovement).order_by(StockMovement.id.desc())
    if product_id is not None:
        stmt = stmt.where(StockMovement.product_id == product_id)
    if variant_id is not None:
        stmt = stmt.where(StockMovement.variant_id == variant_id)
    if type is not None:
        stmt = stmt.where(StockMovement.type == type)
    if since is not None:
        stmt = stmt.where(StockMovement.created_at >= since)
    if until is not None:
        stmt = stmt.where(StockMovement.created_at <= until)
    return paginate(stmt, page, page_size)


def find_ledger_drift() -> list[dict[str, Any]]:
    """Products and variants whose stock differs from the sum of their ledger rows."""
    product_sum = (
        select(func.coalesce(func.sum(StockMovement.quantity), 0))
        .where(StockMovement.product_id == Product.id)
        .scalar_subquery()
    )
    variant_sum = (
        select(func.coalesce(func.sum(StockMovement.quantity), 0))
        .where(StockMovement.variant_id == ProductVariant.id)
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
