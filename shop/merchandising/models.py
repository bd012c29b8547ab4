"""A customer's wishlist; coupons (which orders redeemed one: `orders.coupon_id`)."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Numeric,
    String,
    Table,
    exists,
    func,
    or_,
    select,
    true,
)
from sqlalchemy.orm import Mapped, column_property, mapped_column, relationship

from shop.db import MONEY, Base, TimestampMixin
from shop.products.models import CatalogScope, Category, Product, scope_tables


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


class CouponKind(enum.StrEnum):
    PERCENT = "percent"  # `value` percent off the lines it applies to
    FIXED = "fixed"  # `value` off those lines together
    FREE_SHIPPING = "free_shipping"


coupon_products, coupon_categories = scope_tables("coupon", "coupons")

# The orders holding a coupon now, one row each (taken at checkout, given back at
# cancellation): what its limits per customer count, by inserts that never wait on each other.
coupon_redemptions = Table(
    "coupon_redemptions",
    Base.metadata,
    Column("order_id", ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True),
    Column("coupon_id", ForeignKey("coupons.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
    Index("ix_coupon_redemptions_coupon_user", "coupon_id", "user_id"),
)


class Coupon(CatalogScope, TimestampMixin, Base):
    __tablename__ = "coupons"
    __table_args__ = (
        CheckConstraint(f"kind IN {tuple(k.value for k in CouponKind)}", name="kind"),
        CheckConstraint("value >= 0", name="value_not_negative"),
        CheckConstraint(
            "ends_at IS NULL OR starts_at IS NULL OR ends_at > starts_at", name="window"
        ),
        # The limit the conditional UPDATE of a redemption keeps; this backs it.
        CheckConstraint(
            "max_redemptions IS NULL OR redemptions <= max_redemptions", name="within_limit"
        ),
        CheckConstraint("redemptions >= 0", name="redemptions_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[Decimal] = mapped_column(Numeric(12, 2))  # percent, or money for FIXED
    min_subtotal: Mapped[Decimal] = mapped_column(MONEY, default=0, server_default="0")
    starts_at: Mapped[datetime | None]
    ends_at: Mapped[datetime | None]
    max_redemptions: Mapped[int | None]
    max_per_customer: Mapped[int | None]  # null: no limit (the API defaults it to 1)
    is_active: Mapped[bool] = mapped_column(default=True, server_default=true())
    # While max_redemptions is set: the redemptions counted against it, by the conditional
    # UPDATE that keeps the limit (recounted when a limit is set). Without a limit nothing
    # counts here, and checkouts with the coupon do not queue on its row.
    redemptions: Mapped[int] = mapped_column(default=0, server_default="0")

    products: Mapped[list[Product]] = relationship(
        secondary=coupon_products, lazy="selectin", order_by=Product.id
    )
    categories: Mapped[list[Category]] = relationship(
        secondary=coupon_categories, lazy="selectin", order_by=Category.id
    )
    # Orders holding it now (a cancelled order gave its redemption back): the API's
    # `redemptions`.
    held: Mapped[int] = column_property(
        select(func.count())
        .where(coupon_redemptions.c.coupon_id == id)
        .correlate_except(coupon_redemptions)
        .scalar_subquery(),
        deferred=True,
    )
    # Whether it names products or categories, read with the row (two primary-key probes):
    # checkout loads what a coupon is scoped to only for a coupon that is.
    scoped: Mapped[bool] = column_property(
        or_(
            exists().where(coupon_products.c.coupon_id == id),
            exists().where(coupon_categories.c.coupon_id == id),
        )
    )


Index("uq_coupons_code", func.lower(Coupon.code), unique=True)
