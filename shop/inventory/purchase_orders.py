"""Purchase orders: stock received from suppliers (PURCHASE entries), at once or later."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from shop.audit.models import Action, Target
from shop.audit.services import record
from shop.auth.models import User
from shop.db import Page, db, get_or_404, paginate, unit_of_work, utcnow
from shop.errors import Conflict, Unprocessable
from shop.inventory.models import PurchaseOrder, PurchaseOrderItem, PurchaseOrderStatus
from shop.inventory.schemas import PurchaseOrderCreate
from shop.products.models import MovementType, Product, ProductVariant
from shop.products.stock import change_stock


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


def create_purchase_order(actor: User, data: PurchaseOrderCreate) -> PurchaseOrder:
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
            Action.PURCHASE_ORDER_CREATED,
            actor=actor,
            target_type=Target.PURCHASE_ORDER,
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
    return get_or_404(PurchaseOrder, order_id, for_update=for_update)


def list_purchase_orders(
    *, page: int, page_size: int, status: str | None = None, supplier: str | None = None
) -> Page:
    stmt = select(PurchaseOrder).order_by(PurchaseOrder.id.desc())
    if status is not None:
        stmt = stmt.where(PurchaseOrder.status == status)
    if supplier is not None:
        stmt = stmt.where(PurchaseOrder.supplier == supplier)
    return paginate(stmt, page, page_size)


_CLOSED = {
    PurchaseOrderStatus.RECEIVED: Action.PURCHASE_ORDER_RECEIVED,
    PurchaseOrderStatus.CANCELLED: Action.PURCHASE_ORDER_CANCELLED,
}


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
            _CLOSED[to],
            actor=actor,
            target_type=Target.PURCHASE_ORDER,
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
            Action.PURCHASE_ORDER_DELETED,
            actor=actor,
            target_type=Target.PURCHASE_ORDER,
            target_id=order_id,
            changes=summary,
        )
