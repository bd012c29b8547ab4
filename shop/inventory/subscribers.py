"""What inventory does when other domains' events arrive (registered by create_app)."""

from __future__ import annotations

from typing import Any

from shop.bus import Subscriber
from shop.inventory.low_stock import on_low, resolve_recovered
from shop.products.events import ItemCreated, StockChanged

SUBSCRIBERS: tuple[Subscriber[Any], ...] = (
    # After commit: the worker opens the notification and emails the admins.
    Subscriber(StockChanged, on_low, durable=True, when=lambda event: event.fell_low),
    Subscriber(ItemCreated, on_low, durable=True, when=lambda event: event.low),
    # In the restock's transaction: its open notification is resolved.
    Subscriber(StockChanged, resolve_recovered, when=lambda event: event.recovered),
)
