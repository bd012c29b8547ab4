"""What reports do when other domains' events arrive (registered by create_app): in the
transaction of the change, mark the order's day dirty and invalidate the cached reports; and
record the interactions (cart adds, wishlist adds, purchases when paid) once it commits,
through shop.tracking's buffer (the `interactions` job writes them)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from shop import tracking
from shop.auth.events import UserRegistered, UserRoleChanged
from shop.bus import Event, Subscriber
from shop.caching import invalidate
from shop.db import db
from shop.merchandising.events import WishlistItemAdded
from shop.orders.events import CartItemAdded, OrderCancelled, OrderCreated, OrderStatusChanged
from shop.orders.models import OrderItem, OrderStatus
from shop.products.events import StockChanged
from shop.reports.aggregates import mark_dirty
from shop.reports.cache import REPORTS


def _order_changed(event: OrderStatusChanged) -> None:
    mark_dirty(event.created_at)  # a sale's status moves it in or out of its day's figures
    invalidate(REPORTS)


def _invalidate(_: Event) -> None:
    invalidate(REPORTS)


def _cart_add(event: CartItemAdded) -> None:
    session = tracking.session_id()
    if event.user_id is not None or session is not None:
        tracking.record_after_commit(
            tracking.Fact.CART_ADD, user_id=event.user_id, session_id=session,
            product_id=event.product_id, value=event.quantity,
        )  # fmt: skip


def _wishlist_add(event: WishlistItemAdded) -> None:
    tracking.record_after_commit(
        tracking.Fact.WISHLIST_ADD, user_id=event.user_id, product_id=event.product_id
    )


def _paid(event: OrderStatusChanged) -> None:
    """Each line of a customer's order that became paid (a guest's has no one to learn for)."""
    lines = db.session.execute(
        select(OrderItem.product_id, OrderItem.quantity).where(OrderItem.order_id == event.order_id)
    )
    for product_id, quantity in lines:
        tracking.record_after_commit(
            tracking.Fact.PURCHASE, user_id=event.user_id, product_id=product_id, value=quantity
        )


SUBSCRIBERS: tuple[Subscriber[Any], ...] = (
    Subscriber(OrderCreated, _invalidate),
    Subscriber(OrderStatusChanged, _order_changed),
    Subscriber(OrderCancelled, _order_changed),
    # The dashboard's low-stock count (a new product can enter it without crossing its
    # threshold), and its customer counts.
    Subscriber(StockChanged, _invalidate),
    Subscriber(UserRegistered, _invalidate),
    Subscriber(UserRoleChanged, _invalidate),
    Subscriber(CartItemAdded, _cart_add),
    Subscriber(WishlistItemAdded, _wishlist_add),
    Subscriber(
        OrderStatusChanged,
        _paid,
        when=lambda e: e.status == OrderStatus.PAID and e.user_id is not None,
    ),
)
