"""What merchandising does when the catalog's events arrive (registered by create_app)."""

from __future__ import annotations

from typing import Any

from shop.bus import Subscriber
from shop.merchandising.wishlist import email_wishers
from shop.products.events import StockChanged

SUBSCRIBERS: tuple[Subscriber[Any], ...] = (
    # After commit, in a worker: the customers waiting for it are emailed, once per return.
    Subscriber(StockChanged, email_wishers, durable=True, when=lambda e: e.back_in_stock),
)
