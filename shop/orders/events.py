"""Events the orders domain publishes (see shop.bus)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Self

from shop.bus import Event
from shop.orders.models import Order, Payment, PaymentOutcome
from shop.orders.shipment_models import Shipment, ShipmentEvent


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
class ReturnUpdated(Event, name="return.updated"):
    """A return of an order was requested, approved, rejected or received, in this unit of
    work; `previous_status` is None when it was just requested."""

    return_id: int
    order_id: int
    number: str
    user_id: int | None  # None: a guest's order
    status: str
    previous_status: str | None

    @classmethod
    def of(cls, order: Order, return_id: int, status: str, previous_status: str | None) -> Self:
        return cls(
            return_id=return_id,
            order_id=order.id,
            number=order.number,
            user_id=order.user_id,
            status=status,
            previous_status=previous_status,
        )


@dataclass(frozen=True)
class ShipmentCreated(Event, name="shipment.created"):
    """A parcel of an order was sent (POST /orders/{id}/shipments), in this unit of work."""

    shipment_id: int
    order_id: int
    number: str
    user_id: int | None  # None: a guest's order
    carrier: str
    tracking_number: str
    status: str
    units: int  # how many units of the order's lines it carries

    @classmethod
    def of(cls, order: Order, shipment: Shipment) -> Self:
        return cls(
            shipment_id=shipment.id,
            order_id=order.id,
            number=order.number,
            user_id=order.user_id,
            carrier=shipment.carrier,
            tracking_number=shipment.tracking_number,
            status=shipment.status,
            units=sum(item.quantity for item in shipment.items),
        )


@dataclass(frozen=True)
class ShipmentUpdated(Event, name="shipment.updated"):
    """A tracking event of a shipment was recorded (staff or the carrier's webhook); `status`
    is the shipment's after it (an event older than the newest one is history only)."""

    shipment_id: int
    order_id: int
    number: str
    user_id: int | None  # None: a guest's order
    carrier: str
    tracking_number: str
    status: str
    previous_status: str
    event_status: str
    location: str | None
    at: datetime

    @classmethod
    def of(cls, order: Order, shipment: Shipment, previous: str, event: ShipmentEvent) -> Self:
        return cls(
            shipment_id=shipment.id,
            order_id=order.id,
            number=order.number,
            user_id=order.user_id,
            carrier=shipment.carrier,
            tracking_number=shipment.tracking_number,
            status=shipment.status,
            previous_status=previous,
            event_status=event.status,
            location=event.location,
            at=event.at,
        )


@dataclass(frozen=True)
class CartItemAdded(Event, name="cart.item_added"):
    """Units of a product (or variant) added to a cart, in this unit of work."""

    cart_id: int
    user_id: int | None  # None: a guest's cart
    product_id: int
    variant_id: int | None
    quantity: int
