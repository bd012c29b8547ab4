"""Events the orders domain publishes (see shop.bus)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Self

from shop.bus import Event
from shop.orders.models import Order, Payment, PaymentOutcome


@dataclass(frozen=True)
class OrderCreated(Event, name="order.created"):
    order_id: int
    number: str
    user_id: int | None  # None: a guest's order
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
    user_id: int | None  # None: a guest's order
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


@dataclass(frozen=True)
class PaymentRecorded(Event, name="payment.recorded"):
    """A payment of an order was recorded (by staff or the provider's webhook), in this unit
    of work; `succeeded` tells how it went, the order's figures are after it."""

    payment_id: int
    order_id: int
    number: str
    user_id: int | None  # None: a guest's order
    amount: Decimal
    succeeded: bool
    amount_paid: Decimal
    payment_status: str
    status: str

    @classmethod
    def of(cls, order: Order, payment: Payment) -> Self:
        return cls(
            payment_id=payment.id,
            order_id=order.id,
            number=order.number,
            user_id=order.user_id,
            amount=payment.amount,
            succeeded=payment.status == PaymentOutcome.SUCCEEDED,
            amount_paid=order.amount_paid or Decimal("0.00"),
            payment_status=order.payment_status,
            status=order.status,
        )


@dataclass(frozen=True)
class RefundCreated(Event, name="refund.created"):
    """Money of an order given back (POST /orders/{id}/refunds), in this unit of work; the
    order's figures are after it."""

    refund_id: int
    order_id: int
    number: str
    user_id: int | None  # None: a guest's order
    amount: Decimal
    amount_refunded: Decimal
    restocked: bool
    status: str

    @classmethod
    def of(cls, order: Order, refund_id: int, amount: Decimal, restocked: bool) -> Self:
        return cls(
            refund_id=refund_id,
            order_id=order.id,
            number=order.number,
            user_id=order.user_id,
            amount=amount,
            amount_refunded=order.amount_refunded,
            restocked=restocked,
            status=order.status,
        )


@dataclass(frozen=True)
class CartItemAdded(Event, name="cart.item_added"):
    """Units of a product (or variant) added to a cart, in this unit of work."""

    cart_id: int
    user_id: int | None  # None: a guest's cart
    product_id: int
    variant_id: int | None
    quantity: int
