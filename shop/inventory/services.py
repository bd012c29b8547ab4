"""Inventory services: the one stock path, manual movements, purchase orders, notifications."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any, NoReturn

from sqlalchemy import Integer, literal, select, update

from shop import outbox
from shop.audit.services import record
from shop.auth.models import User
from shop.caching import CATALOG, CATALOG_MATCHES, REPORTS, cached_value, invalidate
from shop.db import Page, count_rows, paginate, unit_of_work, uow_state, utcnow
from shop.errors import Conflict, NotFound, Unprocessable
from shop.extensions import db
from shop.inventory.jobs import open_low_stock_notification
from shop.inventory.models import (
    InventoryTransaction,
    MovementType,
    Notification,
    PurchaseOrder,
    PurchaseOrderItem,
    PurchaseOrderStatus,
)
from shop.products.models import Product, ProductVariant


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
    # Matches change when a product enters or leaves `in_stock` lists, or a row its low-stock
    # count (a sale that leaves both alone changes only what the answers show).
    if in_stock_changed or (stock_after <= threshold) != (stock_after - delta <= threshold):
        invalidate(CATALOG_MATCHES)
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
    invalidate(CATALOG, REPORTS)
    if delta < 0 and stock_after <= threshold:
        _queue_low_stock_check(product_id, variant_id)
    return entry


def _queue_low_stock_check(product_id: int, variant_id: int | None) -> None:
    queued = uow_state().setdefault("low_stock_checks", set())
    if (product_id, variant_id) not in queued:
        queued.add((product_id, variant_id))
        outbox.add(open_low_stock_notification, product_id=product_id, variant_id=variant_id)


def _explain_refusal(product_id: int, variant_id: int | None, delta: int) -> NoReturn:
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


# --- manual movements -----------------------------------------------------------------------

_SIGN = {
    MovementType.IN: 1,
    MovementType.RETURN: 1,
    MovementType.OUT: -1,
    MovementType.DAMAGE: -1,
    MovementType.ADJUSTMENT: 1,  # signed by the caller
}


def record_movement(actor: User, data: dict[str, Any]) -> InventoryTransaction:
    """A manual movement: IN/RETURN add, OUT/DAMAGE remove, ADJUSTMENT is signed."""
    movement = MovementType(data["type"])
    with unit_of_work():
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
            "inventory.adjusted",
            actor=actor,
            target_type="product",
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
    stmt = select(InventoryTransaction).order_by(InventoryTransaction.id.desc())
    if product_id is not None:
        stmt = stmt.where(InventoryTransaction.product_id == product_id)
    if variant_id is not None:
        stmt = stmt.where(InventoryTransaction.variant_id == variant_id)
    if type is not None:
        stmt = stmt.where(InventoryTransaction.type == type)
    if since is not None:
        stmt = stmt.where(InventoryTransaction.created_at >= since)
    if until is not None:
        stmt = stmt.where(InventoryTransaction.created_at <= until)
    return paginate(stmt, page, page_size)


# --- purchase orders ------------------------------------------------------------------------


def _receive_lines(actor: User, order: PurchaseOrder, sign: int, note: str) -> None:
    # Sorted by (product, variant): the lock order every stock change follows.
    for item in sorted(order.items, key=lambda i: (i.product_id, i.variant_id or 0)):
        change_stock(
            product_id=item.product_id,
            variant_id=item.variant_id,
            delta=sign * item.quantity,
            type=MovementType.PURCHASE,
            actor=actor,
            reference=f"PO-{order.id}",
            note=note,
        )


def _po_summary(order: PurchaseOrder) -> dict[str, Any]:
    return {
        "supplier": order.supplier,
        "status": order.status,
        "total_cost": str(order.total_cost),
        "items": [
            {
                "product_id": i.product_id,
                "variant_id": i.variant_id,
                "quantity": i.quantity,
                "unit_cost": str(i.unit_cost),
            }
            for i in order.items
        ],
    }


def create_purchase_order(actor: User, data: dict[str, Any]) -> PurchaseOrder:
    status = PurchaseOrderStatus(data.get("status", PurchaseOrderStatus.RECEIVED))
    with unit_of_work():
        order = PurchaseOrder(
            supplier=data["supplier"],
            reference=data.get("reference"),
            status=status,
            created_by=actor.id,
            items=[PurchaseOrderItem(**item) for item in data["items"]],
        )
        _check_lines(order)
        db.session.add(order)
        db.session.flush()
        if status is PurchaseOrderStatus.RECEIVED:
            order.received_at = utcnow()
            _receive_lines(actor, order, +1, "received")
        record(
            "purchase_order.created",
            actor=actor,
            target_type="purchase_order",
            target_id=order.id,
            changes=_po_summary(order),
        )
    return order


def _check_lines(order: PurchaseOrder) -> None:
    product_ids = {item.product_id for item in order.items}
    known = set(db.session.scalars(select(Product.id).where(Product.id.in_(product_ids))))
    errors = {}
    for index, item in enumerate(order.items):
        if item.product_id not in known:
            errors[str(index)] = {"product_id": ["No such product."]}
        elif item.variant_id is not None and not db.session.scalar(
            select(ProductVariant.id).where(
                ProductVariant.id == item.variant_id,
                ProductVariant.product_id == item.product_id,
            )
        ):
            errors[str(index)] = {"variant_id": ["Not a variant of this product."]}
    if errors:
        raise Unprocessable("Some lines name unknown products.", errors={"items": errors})


def get_purchase_order(order_id: int, *, for_update: bool = False) -> PurchaseOrder:
    order = db.session.get(
        PurchaseOrder, order_id, with_for_update=for_update, populate_existing=for_update
    )
    if order is None:
        raise NotFound(f"Purchase order {order_id} does not exist.")
    return order


def list_purchase_orders(
    *, page: int, page_size: int, status: str | None = None, supplier: str | None = None
) -> Page:
    stmt = select(PurchaseOrder).order_by(PurchaseOrder.id.desc())
    if status is not None:
        stmt = stmt.where(PurchaseOrder.status == status)
    if supplier is not None:
        stmt = stmt.where(PurchaseOrder.supplier == supplier)
    return paginate(stmt, page, page_size)


def _close_ordered(actor: User, order_id: int, to: PurchaseOrderStatus) -> PurchaseOrder:
    """Move an `ordered` purchase order to received (stock goes up) or cancelled."""
    with unit_of_work():
        order = get_purchase_order(order_id, for_update=True)
        if order.status != PurchaseOrderStatus.ORDERED:
            raise Conflict(f"Purchase order {order_id} is {order.status}, not ordered.")
        order.status = to
        if to is PurchaseOrderStatus.RECEIVED:
            order.received_at = utcnow()
            _receive_lines(actor, order, +1, "received")
        record(
            f"purchase_order.{to.value}",
            actor=actor,
            target_type="purchase_order",
            target_id=order.id,
            changes={"status": {"before": "ordered", "after": to.value}},
        )
    return order


def receive_purchase_order(actor: User, order_id: int) -> PurchaseOrder:
    return _close_ordered(actor, order_id, PurchaseOrderStatus.RECEIVED)


def cancel_purchase_order(actor: User, order_id: int) -> PurchaseOrder:
    return _close_ordered(actor, order_id, PurchaseOrderStatus.CANCELLED)


def delete_purchase_order(actor: User, order_id: int) -> None:
    """Delete; a received order's stock is taken back first (all of it, or a 409)."""
    with unit_of_work():
        order = get_purchase_order(order_id, for_update=True)
        summary = _po_summary(order)
        if order.status == PurchaseOrderStatus.RECEIVED:
            _receive_lines(actor, order, -1, "purchase order deleted")
        db.session.delete(order)
        record(
            "purchase_order.deleted",
            actor=actor,
            target_type="purchase_order",
            target_id=order_id,
            changes=summary,
        )


# --- low stock and notifications ------------------------------------------------------------


def _low_stock_rows() -> Any:
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
    return plain.union_all(variants).subquery()


def list_low_stock(*, page: int, page_size: int) -> Page:
    """Active products (or, for products with variants, variants) at or below threshold."""
    rows = _low_stock_rows()
    stmt = select(rows).order_by(rows.c.stock, rows.c.product_id, rows.c.variant_id)
    return paginate(stmt, page, page_size, scalars=False, total=count_low_stock)


def count_low_stock() -> int:
    """Cached until a stock crosses its threshold or a product changes: in a catalog of a
    million products the count reads tens of thousands of rows."""
    count = partial(count_rows, select(_low_stock_rows()))
    return int(cached_value(CATALOG_MATCHES, "low-stock", count))


def list_notifications(
    *,
    page: int,
    page_size: int,
    open: bool | None = None,
    product_id: int | None = None,
    kind: str | None = None,
) -> Page:
    stmt = select(Notification).order_by(Notification.id.desc())
    if open is not None:
        stmt = stmt.where(
            Notification.acknowledged_at.is_(None)
            if open
            else Notification.acknowledged_at.is_not(None)
        )
    if product_id is not None:
        stmt = stmt.where(Notification.product_id == product_id)
    if kind is not None:
        stmt = stmt.where(Notification.kind == kind)
    return paginate(stmt, page, page_size)


def get_notification(notification_id: int, *, for_update: bool = False) -> Notification:
    notification = db.session.get(Notification, notification_id, with_for_update=for_update)
    if notification is None:
        raise NotFound(f"Notification {notification_id} does not exist.")
    return notification


def acknowledge_notification(actor: User, notification_id: int) -> Notification:
    """Acknowledge (idempotent); a later drop below threshold may open a new one."""
    with unit_of_work():
        notification = get_notification(notification_id, for_update=True)
        if notification.acknowledged_at is None:
            notification.acknowledged_at = utcnow()
            notification.acknowledged_by = actor.id
            record(
                "notification.acknowledged",
                actor=actor,
                target_type="notification",
                target_id=notification.id,
            )
    return notification


def delete_notification(actor: User, notification_id: int) -> None:
    with unit_of_work():
        notification = get_notification(notification_id)
        record(
            "notification.deleted",
            actor=actor,
            target_type="notification",
            target_id=notification.id,
            changes={"message": notification.message, "product_id": notification.product_id},
        )
        db.session.delete(notification)
