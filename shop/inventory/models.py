"""Inventory: purchase orders and staff notifications (the stock ledger is the catalog's)."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    ColumnElement,
    ForeignKey,
    Index,
    String,
    Text,
    and_,
    case,
    func,
    select,
)
from sqlalchemy.orm import Mapped, column_property, mapped_column, relationship

from shop.db import MONEY, Base, TimestampMixin
from shop.products.models import Product, ProductVariant


class PurchaseOrderStatus(enum.StrEnum):
    ORDERED = "ordered"
    RECEIVED = "received"
    CANCELLED = "cancelled"


class PurchaseOrder(TimestampMixin, Base):
    __tablename__ = "purchase_orders"
    __table_args__ = (
        CheckConstraint(f"status IN {tuple(s.value for s in PurchaseOrderStatus)}", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    supplier: Mapped[str] = mapped_column(String(200))
    reference: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), index=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    received_at: Mapped[datetime | None]

    items: Mapped[list[PurchaseOrderItem]] = relationship(
        order_by="PurchaseOrderItem.id",
        lazy="selectin",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )

    @property
    def total_cost(self) -> Decimal:
        return sum((item.line_cost for item in self.items), Decimal("0.00"))


class PurchaseOrderItem(Base):
    __tablename__ = "purchase_order_items"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_cost >= 0", name="unit_cost_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    purchase_order_id: Mapped[int] = mapped_column(
        ForeignKey("purchase_orders.id", ondelete="CASCADE"), index=True
    )
    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="RESTRICT"), index=True
    )
    variant_id: Mapped[int | None] = mapped_column(
        ForeignKey("product_variants.id", ondelete="RESTRICT")
    )
    quantity: Mapped[int]
    unit_cost: Mapped[Decimal] = mapped_column(MONEY)

    @property
    def line_cost(self) -> Decimal:
        return self.unit_cost * self.quantity


class NotificationKind(enum.StrEnum):
    LOW_STOCK = "low_stock"


class Notification(Base):
    """An alert for staff; at most one open low-stock notification per product or variant."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), index=True
    )
    variant_id: Mapped[int | None] = mapped_column(
        ForeignKey("product_variants.id", ondelete="CASCADE")
    )
    message: Mapped[str] = mapped_column(Text)
    stock: Mapped[int]
    suggested_reorder_qty: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Closed by itself once the stock is back above the threshold.
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(32))  # SYSTEM_ACTOR
    # What the stock is now (`stock` is what it was when the alert opened).
    live_stock: Mapped[int] = column_property(
        case(
            (
                variant_id.is_not(None),
                select(ProductVariant.stock)
                .where(ProductVariant.id == variant_id)
                .correlate_except(ProductVariant)
                .scalar_subquery(),
            ),
            else_=select(Product.stock)
            .where(Product.id == product_id)
            .correlate_except(Product)
            .scalar_subquery(),
        ),
        deferred=False,
    )

    @classmethod
    def is_open(cls) -> ColumnElement[bool]:
        return and_(cls.acknowledged_at.is_(None), cls.resolved_at.is_(None))


# The database, not only the code, keeps one open notification per product (or variant).
Index(
    "uq_notifications_open",
    Notification.kind,
    Notification.product_id,
    func.coalesce(Notification.variant_id, 0),
    unique=True,
    postgresql_where=Notification.is_open(),
    sqlite_where=Notification.is_open(),
)
