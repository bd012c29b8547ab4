"""A customer's wishlist: one row per product they keep an eye on."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shop.db import Base
from shop.products.models import Product


class WishlistItem(Base):
    __tablename__ = "wishlist_items"
    __table_args__ = (
        Index("ix_wishlist_items_user_added", "user_id", "added_at"),
        Index("ix_wishlist_items_product", "product_id"),
    )

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), primary_key=True
    )
    added_at: Mapped[datetime] = mapped_column(server_default=func.now())
    product: Mapped[Product] = relationship(lazy="raise")
