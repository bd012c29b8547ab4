"""Merchandising's part of a user's personal data (shop.privacy): the wishlist, exported and
emptied by the erasure."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select

from shop import privacy
from shop.db import db
from shop.merchandising.models import WishlistItem
from shop.products.models import Product
from shop.schemas import Timestamp

_added_at = Timestamp()


def _export(user_id: int) -> dict[str, Any]:
    rows = db.session.execute(
        select(WishlistItem.product_id, Product.sku, Product.name, WishlistItem.added_at)
        .join(Product, Product.id == WishlistItem.product_id)
        .where(WishlistItem.user_id == user_id)
        .order_by(WishlistItem.added_at, WishlistItem.product_id)
    )
    return {
        "wishlist": [
            {
                "product_id": row.product_id,
                "sku": row.sku,
                "name": row.name,
                "added_at": _added_at.serialize("added_at", row._mapping),
            }
            for row in rows
        ]
    }


def _erase(erasure: privacy.Erasure) -> None:
    db.session.execute(delete(WishlistItem).where(WishlistItem.user_id == erasure.user_id))


PERSONAL_DATA = privacy.Contributor(
    exports=("wishlist_items.user_id",),
    export=_export,
    erase=_erase,
    not_exported={
        # Kept by the erasure: the per-customer limit of a coupon counts them.
        "coupon_redemptions.user_id": "which of the user's orders hold a coupon: "
        "orders[].coupon_code says it",
    },
)
