"""What inventory does when other domains' events arrive (registered by create_app)."""

from __future__ import annotations

from typing import Any

from shop.bus import Subscriber
from shop.inventory.low_stock import on_stock_fell
from shop.products.events import StockChanged

SUBSCRIBERS: tuple[Subscriber[Any], ...] = (
    # After commit: the worker opens the notification and emails the admins.
    Subscriber(StockChanged, on_stock_fell, durable=True, when=lambda event: event.fell_low),
)
