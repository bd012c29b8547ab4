"""Events the merchandising domain publishes (see shop.bus)."""

from __future__ import annotations

from dataclasses import dataclass

from shop.bus import Event


@dataclass(frozen=True)
class WishlistItemAdded(Event, name="wishlist.item_added"):
    """A product put on a customer's wishlist (it was not on it), in this unit of work."""

    user_id: int
    product_id: int
