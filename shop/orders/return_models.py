"""Returns (RMA) of a delivered order: the lines and units asked back, what came back of them
(resellable or damaged) and what was refunded, and the refunds made on receipt."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, Column, ForeignKey, Index, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shop.db import Base, TimestampMixin
from shop.orders.billing_models import Refund


class ReturnStatus(enum.StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"  # and, until every unit is in, partly received
    REJECTED = "rejected"
    RECEIVED = "received"  # every unit back
    REFUNDED = "refunded"  # every unit back and refunded


class Condition(enum.StrEnum):
    """How a unit came back: to stock, or written off (ledger RETURN, then DAMAGE)."""

    RESELLABLE = "resellable"
    DAMAGED = "damaged"


# Returns whose units count against what may still be returned (a rejected one gives them back).
OPEN_STATUSES = (
    ReturnStatus.REQUESTED,
    ReturnStatus.APPROVED,
    ReturnStatus.RECEIVED,
    ReturnStatus.REFUNDED,
)

return_refunds = Table(
    "return_refunds",
    Base.metadata,
    Column("return_id", ForeignKey("returns.id", ondelete="CASCADE"), primary_key=True),
    Column("refund_id", ForeignKey("refunds.id", ondelete="CASCADE"), primary_key=True),
)


class Return(TimestampMixin, Base):
    """A customer's request to send units of a delivered order back (POST /orders/{id}/returns)."""

    __tablename__ = "returns"
    __table_args__ = (
        CheckConstraint(f"status IN {tuple(s.value for s in ReturnStatus)}", name="status"),
        Index("ix_returns_status_created", "status", "created_at"),
        Index("ix_returns_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=ReturnStatus.REQUESTED.value)
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # The staff decision (approve or reject) and its note, shown to the customer.
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None]
    note: Mapped[str | None] = mapped_column(String(1000))

    items: Mapped[list[ReturnItem]] = relationship(
        order_by="ReturnItem.id", lazy="selectin", cascade="all, delete-orphan"
    )
    refunds: Mapped[list[Refund]] = relationship(
        secondary=return_refunds, order_by=Refund.id, lazy="selectin"
    )


class ReturnItem(Base):
    """Units of one order line asked back, and how many of them came back and were refunded."""

    __tablename__ = "return_items"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint(
            "received_quantity >= 0 AND received_quantity <= quantity", name="received_range"
        ),
        CheckConstraint(
            "damaged_quantity >= 0 AND damaged_quantity <= received_quantity",
            name="damaged_range",
        ),
        CheckConstraint(
            "refunded_quantity >= 0 AND refunded_quantity <= received_quantity",
            name="refunded_range",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    return_id: Mapped[int] = mapped_column(ForeignKey("returns.id", ondelete="CASCADE"), index=True)
    order_item_id: Mapped[int] = mapped_column(
        ForeignKey("order_items.id", ondelete="CASCADE"), index=True
    )
    quantity: Mapped[int]
    reason: Mapped[str] = mapped_column(String(500))
    received_quantity: Mapped[int] = mapped_column(default=0, server_default="0")
    damaged_quantity: Mapped[int] = mapped_column(default=0, server_default="0")
    refunded_quantity: Mapped[int] = mapped_column(default=0, server_default="0")

    @property
    def resellable_quantity(self) -> int:
        return self.received_quantity - self.damaged_quantity
