"""A shipping method and the countries it ships to (one row each: "methods for US" is one
indexed lookup, on PostgreSQL and SQLite alike)."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shop.db import MONEY, Base, TimestampMixin

EVERYWHERE = "*"  # a destination meaning every country


class ShippingMethod(TimestampMixin, Base):
    __tablename__ = "shipping_methods"
    __table_args__ = (
        CheckConstraint("price >= 0", name="price_not_negative"),
        CheckConstraint("free_over IS NULL OR free_over >= 0", name="free_over_not_negative"),
        CheckConstraint("min_days >= 0 AND min_days <= max_days", name="days"),
        # The list: active methods, cheapest first.
        Index("ix_shipping_methods_active_price", "is_active", "price", "id"),
    )

    # `quoted`: the price for the subtotal a list was asked about (not a column).
    __allow_unmapped__ = True
    quoted: Decimal | None = None

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    carrier: Mapped[str] = mapped_column(String(100))
    price: Mapped[Decimal] = mapped_column(MONEY)
    # Free when the goods (after discount) come to this much or more; null: never free.
    free_over: Mapped[Decimal | None] = mapped_column(MONEY)
    min_days: Mapped[int]
    max_days: Mapped[int]
    is_active: Mapped[bool] = mapped_column(default=True, server_default=true())

    destinations: Mapped[list[ShippingDestination]] = relationship(
        order_by="ShippingDestination.country",
        lazy="selectin",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )

    @property
    def countries(self) -> list[str]:
        """ISO 3166-1 alpha-2 codes, or ["*"]."""
        return [d.country for d in self.destinations]

    def price_for(self, subtotal: Decimal) -> Decimal:
        return cost(self.price, self.free_over, subtotal)


class ShippingDestination(Base):
    """A country a method ships to ("*": every one)."""

    __tablename__ = "shipping_method_countries"
    __table_args__ = (
        # Which methods ship to a country: the country's rows and "*"'s.
        Index("ix_shipping_method_countries_country", "country", "method_id"),
    )

    method_id: Mapped[int] = mapped_column(
        ForeignKey("shipping_methods.id", ondelete="CASCADE"), primary_key=True
    )
    country: Mapped[str] = mapped_column(String(2), primary_key=True)


def cost(price: Decimal, free_over: Decimal | None, subtotal: Decimal) -> Decimal:
    """A method's price for goods coming to `subtotal`: nothing from `free_over` on."""
    return Decimal("0.00") if free_over is not None and subtotal >= free_over else price
