"""Reading orders: one (its owner, staff or an admin), lists, and whether someone bought a
product."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from sqlalchemy import select

from shop.auth.models import User
from shop.auth.policy import ORDERS
from shop.db import Page, db, get_or_404, paginate
from shop.errors import NotFound, Unprocessable
from shop.orders.models import Order, OrderItem, OrderStatus


def get_order(user: User, order_id: int, *, for_update: bool = False) -> Order:
    """An order its owner, staff or an admin may see; anyone else's is a 404."""
    return get_or_404(
        Order,
        order_id,
        visible=lambda order: ORDERS.allows(user, order.user_id),
        for_update=for_update,
    )


def get_guest_order(order_id: int, key: str, user: User | None = None) -> Order:
    """An order read with its access key (a guest's link); or, with a token too, one that
    user may see. A wrong key, or another order's, is a 404."""
    order = db.session.get(Order, order_id)
    if order is None or not (
        (
            order.access_key_hash is not None
            and hmac.compare_digest(order.access_key_hash, access_key_hash(key))
        )
        or ORDERS.allows(user, order.user_id)
    ):
        raise NotFound(f"Order {order_id} does not exist.")
    return order


def readable_order(reader: User | None, order_id: int, key: str | None) -> Order:
    """The order its reader may see: with an access key, a guest's (get_guest_order); else
    by the reader's token (get_order)."""
    if key is not None:
        return get_guest_order(order_id, key, reader)
    assert reader is not None
    return get_order(reader, order_id)


def access_key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def list_orders(
    user: User,
    *,
    page: int,
    page_size: int,
    status: str | None = None,
    user_id: int | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    needs_refund: bool | None = None,
) -> Page:
    stmt = (
        select(Order)
        .where(ORDERS.scope(user, Order.user_id))
        .order_by(Order.created_at.desc(), Order.id.desc())
    )
    if user_id is not None and ORDERS.covers_all(user):
        stmt = stmt.where(Order.user_id == user_id)
    if status is not None:
        stmt = stmt.where(Order.status == status)
    if created_after is not None:
        stmt = stmt.where(Order.created_at >= created_after)
    if created_before is not None:
        stmt = stmt.where(Order.created_at <= created_before)
    if needs_refund is not None:
        stmt = stmt.where(Order.refund_due > 0 if needs_refund else Order.refund_due == 0)
    return paginate(stmt, page, page_size)


def has_bought(user: User, product_id: int) -> bool:
    """Whether `user` has a non-cancelled order containing the product."""
    return bool(
        db.session.scalar(
            select(OrderItem.id)
            .join(Order, Order.id == OrderItem.order_id)
            .where(
                Order.user_id == user.id,
                OrderItem.product_id == product_id,
                Order.status != OrderStatus.CANCELLED,
            )
            .limit(1)
        )
    )


def lines_named(order: Order, named: list[int]) -> dict[int, OrderItem]:
    """The order's lines by id, once every id `named` (by a refund, a return, a receipt or a
    parcel) is one of them: a line of another order is a 422."""
    items = {item.id: item for item in order.items}
    foreign = [line_id for line_id in named if line_id not in items]
    if foreign:
        raise Unprocessable(
            f"Order {order.number} has no line {', '.join(map(str, foreign))}.",
            errors={"items": [f"Not a line of this order: {foreign}."]},
        )
    return items
