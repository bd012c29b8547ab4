"""Shipments of an order: the units of its lines each one carries, and its tracking events
(recorded by staff or reported by the carrier's webhook, each carrier event once)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import ClassVar

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shop.db import Base, TimestampMixin


class ShipmentStatus(enum.StrEnum):
    """Where a parcel is: `pending` from its creation (handed over, no carrier event yet),
    then what its events say; `delivered` is final."""

    PENDING = "pending"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    EXCEPTION = "exception"  # the carrier reports a problem (address, damage, held)


# What an event may report (a shipment is pending only until its first one).
EVENT_STATUSES = tuple(s for s in ShipmentStatus if s is not ShipmentStatus.PENDING)


class Shipment(TimestampMixin, Base):
    """A parcel sent for an order (POST /orders/{id}/shipments). Its tracking number is
    unique: the carrier's webhook names a shipment by it alone."""

    __tablename__ = "shipments"
    label: ClassVar[str] = "Shipment"
    __table_args__ = (
        CheckConstraint(f"status IN {tuple(s.value for s in ShipmentStatus)}", name="status"),
        # An order's shipments, oldest first (GET /orders/{id}/shipments).
        Index("ix_shipments_order_id_id", "order_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    carrier: Mapped[str] = mapped_column(String(100))
    tracking_number: Mapped[str] = mapped_column(String(100), unique=True)
    status: Mapped[str] = mapped_column(String(20), default=ShipmentStatus.PENDING.value)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    items: Mapped[list[ShipmentItem]] = relationship(
        order_by="ShipmentItem.id", lazy="selectin", cascade="all, delete-orphan"
    )
    events: Mapped[list[ShipmentEvent]] = relationship(
        order_by="[ShipmentEvent.at, ShipmentEvent.id]",
        lazy="selectin",
        cascade="all, delete-orphan",
    )


class ShipmentItem(Base):
    """Units of one order line a shipment carries."""

    __tablename__ = "shipment_items"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shipment_id: Mapped[int] = mapped_column(
        ForeignKey("shipments.id", ondelete="CASCADE"), index=True
    )
    order_item_id: Mapped[int] = mapped_column(
        ForeignKey("order_items.id", ondelete="CASCADE"), index=True
    )
    quantity: Mapped[int]


class ShipmentEvent(Base):
    """A step of a shipment's journey. `carrier_event_id` is the carrier's event id (NULL for
    staff's): unique, so a webhook delivered twice, or twice at once, is applied once."""

    __tablename__ = "shipment_events"
    __table_args__ = (
        CheckConstraint(f"status IN {tuple(s.value for s in EVENT_STATUSES)}", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    shipment_id: Mapped[int] = mapped_column(
        ForeignKey("shipments.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(20))
    location: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime]  # when it happened (the carrier's time), not when it was told
    carrier_event_id: Mapped[str | None] = mapped_column(String(200), unique=True)
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
