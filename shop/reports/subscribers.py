"""What reports do when other domains' events arrive (registered by create_app): in the
transaction of the change, mark the order's day dirty and invalidate the cached reports."""

from __future__ import annotations

from typing import Any

from shop.auth.events import UserRegistered, UserRoleChanged
from shop.bus import Event, Subscriber
from shop.caching import invalidate
from shop.orders.events import OrderCancelled, OrderCreated, OrderStatusChanged
from shop.products.events import StockChanged
from shop.reports.aggregates import mark_dirty
from shop.reports.cache import REPORTS


def _order_changed(event: OrderStatusChanged) -> None:
    mark_dirty(event.created_at)  # a sale's status moves it in or out of its day's figures
    invalidate(REPORTS)


def _invalidate(_: Event) -> None:
    invalidate(REPORTS)


SUBSCRIBERS: tuple[Subscriber[Any], ...] = (
    Subscriber(OrderCreated, _invalidate),
    Subscriber(OrderStatusChanged, _order_changed),
    Subscriber(OrderCancelled, _order_changed),
    # The dashboard's low-stock count (a new product can enter it without crossing its
    # threshold), and its customer counts.
    Subscriber(StockChanged, _invalidate),
    Subscriber(UserRegistered, _invalidate),
    Subscriber(UserRoleChanged, _invalidate),
)
