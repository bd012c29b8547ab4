"""Events the orders domain publishes (see shop.bus)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Self

from shop.bus import Event
from shop.orders.models import Order


@dataclass(frozen=True)
class OrderCreated(Event, name="order.created"):
    order_id: int
    number: str
    user_id: int
    status: str
    total: Decimal
    created_at: datetime

    @classmethod
    def of(cls, order: Order) -> Self:
        return cls(
            order_id=order.id,
            number=order.number,
            user_id=order.user_id,
            status=order.status,
            total=order.total,
            created_at=order.created_at,
        )


@dataclass(frozen=True)
class OrderStatusChanged(Event, name="order.status_changed"):
    order_id: int
    number: str
    user_id: int
    status: str
    previous_status: str
    total: Decimal
    created_at: datetime

    @classmethod
    def of(cls, order: Order, previous_status: str) -> Self:
        return cls(
            order_id=order.id,
            number=order.number,
            user_id=order.user_id,
            status=order.status,
            previous_status=previous_status,
            total=order.total,
            created_at=order.created_at,
        )


@dataclass(frozen=True)
class OrderCancelled(OrderStatusChanged, name="order.cancelled"):
    """A status change to cancelled (its stock has returned)."""
