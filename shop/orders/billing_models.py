"""Refunds of an order (with the lines and units they cover) and the invoice number counters."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, String, false, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shop.db import MONEY, Base
from shop.orders.models import ProviderRefund, ProviderRefundStatus


class Refund(Base):
    """Money given back for an order (POST /orders/{id}/refunds): sent through the provider
    when Stripe holds the order's money (its provider_refunds), else recorded as paid out."""

    __tablename__ = "refunds"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    reason: Mapped[str] = mapped_column(String(500))
    restocked: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    items: Mapped[list[RefundItem]] = relationship(
        order_by="RefundItem.id", lazy="selectin", cascade="all, delete-orphan"
    )
    provider_refunds: Mapped[list[ProviderRefund]] = relationship(
        order_by=ProviderRefund.id, lazy="selectin", viewonly=True
    )

    @property
    def provider_status(self) -> str | None:
        """How its provider refunds stand, the least advanced first: failed, pending, sent,
        succeeded; None when no provider holds the money (a refund recorded by hand)."""
        statuses = {ProviderRefundStatus(r.status) for r in self.provider_refunds}
        for status in (
            ProviderRefundStatus.FAILED,
            ProviderRefundStatus.PENDING,
            ProviderRefundStatus.SENT,
            ProviderRefundStatus.SUCCEEDED,
        ):
            if status in statuses:
                return status.value
        return None


class RefundItem(Base):
    """Units of one order line a refund covers (returned to stock if it restocked)."""

    __tablename__ = "refund_items"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    refund_id: Mapped[int] = mapped_column(ForeignKey("refunds.id", ondelete="CASCADE"), index=True)
    order_item_id: Mapped[int] = mapped_column(
        ForeignKey("order_items.id", ondelete="CASCADE"), index=True
    )
    quantity: Mapped[int]


class InvoiceCounter(Base):
    """The last invoice number given in a year: taken with UPDATE ... RETURNING in the paying
    transaction, so numbers have no gap (a rolled-back payment gives its number back)."""

    __tablename__ = "invoice_counters"

    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    last: Mapped[int] = mapped_column(default=0, server_default="0")
