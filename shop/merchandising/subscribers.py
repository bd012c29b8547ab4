"""What merchandising does when the catalog's events arrive (registered by create_app)."""

from __future__ import annotations

from typing import Any

from shop.bus import Subscriber
from shop.merchandising.wishlist import email_sale_wishers, email_wishers
from shop.products.events import StockChanged, WentOnSale

SUBSCRIBERS: tuple[Subscriber[Any], ...] = (
    # After commit, in a worker: the customers waiting for it are emailed, once per return.
    Subscriber(StockChanged, email_wishers, durable=True, when=lambda e: e.back_in_stock),
    # Once per markdown and per flash sale's start (announced once by its job).
    Subscriber(WentOnSale, email_sale_wishers, durable=True),
)
