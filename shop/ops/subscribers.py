"""What operations count on other domains' events: orders placed, once committed."""

from __future__ import annotations

from shop import metrics
from shop.bus import Subscriber
from shop.db import after_commit
from shop.orders.events import OrderCreated


def count_order(event: OrderCreated) -> None:
    after_commit(metrics.ORDERS_CREATED.inc)


SUBSCRIBERS = (Subscriber(OrderCreated, count_order),)
