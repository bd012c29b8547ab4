"""The domain events that become public events (registered by create_app): each is written to
the log in the transaction of its change."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from shop.bus import Subscriber
from shop.events.log import record
from shop.orders.events import (
    OrderCancelled,
    OrderCreated,
    OrderStatusChanged,
    PaymentRecorded,
    RefundCreated,
    ReturnUpdated,
    ShipmentCreated,
    ShipmentUpdated,
)
from shop.products.events import ItemCreated, StockChanged, WentOnSale


def _order(event: OrderCreated | OrderStatusChanged) -> dict[str, Any]:
    return {
        "order_id": event.order_id,
        "number": event.number,
        "status": event.status,
        "previous_status": getattr(event, "previous_status", None),
        "total": str(event.total),
    }


def _order_created(event: OrderCreated) -> None:
    record("order.created", _order(event), user_id=event.user_id)


def _order_status_changed(event: OrderStatusChanged) -> None:
    record("order.status_changed", _order(event), user_id=event.user_id)


def _order_cancelled(event: OrderCancelled) -> None:
    record("order.cancelled", _order(event), user_id=event.user_id)


def _payment(event: PaymentRecorded) -> None:
    record(
        "payment.succeeded" if event.succeeded else "payment.failed",
        {
            "order_id": event.order_id,
            "number": event.number,
            "payment_id": event.payment_id,
            "amount": str(event.amount),
            "amount_paid": str(event.amount_paid),
            "payment_status": event.payment_status,
            "status": event.status,
        },
        user_id=event.user_id,
    )


def _refund(event: RefundCreated) -> None:
    record(
        "refund.created",
        {
            "order_id": event.order_id,
            "number": event.number,
            "refund_id": event.refund_id,
            "amount": str(event.amount),
            "amount_refunded": str(event.amount_refunded),
            "restocked": event.restocked,
            "status": event.status,
        },
        user_id=event.user_id,
    )


def _return(event: ReturnUpdated) -> None:
    record(
        "return.updated",
        {
            "return_id": event.return_id,
            "order_id": event.order_id,
            "number": event.number,
            "status": event.status,
            "previous_status": event.previous_status,
        },
        user_id=event.user_id,
    )


def _shipment_created(event: ShipmentCreated) -> None:
    record(
        "shipment.created",
        {
            "order_id": event.order_id,
            "number": event.number,
            "shipment_id": event.shipment_id,
            "carrier": event.carrier,
            "tracking_number": event.tracking_number,
            "status": event.status,
            "units": event.units,
        },
        user_id=event.user_id,
    )


def _shipment_updated(event: ShipmentUpdated) -> None:
    record(
        "shipment.updated",
        {
            "order_id": event.order_id,
            "number": event.number,
            "shipment_id": event.shipment_id,
            "carrier": event.carrier,
            "tracking_number": event.tracking_number,
            "status": event.status,
            "previous_status": event.previous_status,
            "event_status": event.event_status,
            "location": event.location,
            "at": event.at.astimezone(UTC).isoformat(timespec="milliseconds"),
        },
        user_id=event.user_id,
    )


def _stock(event: StockChanged | ItemCreated, stock: int) -> dict[str, Any]:
    return {
        "product_id": event.product_id,
        "variant_id": event.variant_id,
        "stock": stock,
        "low_stock_threshold": event.low_stock_threshold,
    }


def _fell_low(event: StockChanged) -> None:
    record("inventory.low_stock", _stock(event, event.stock_after), user_id=None)


def _created_low(event: ItemCreated) -> None:
    record("inventory.low_stock", _stock(event, event.stock), user_id=None)


def _back_in_stock(event: StockChanged) -> None:
    record("product.back_in_stock", _stock(event, event.stock_after), user_id=None)


def _on_sale(event: WentOnSale) -> None:
    data = {"product_id": event.product_id, "flash_sale_id": event.flash_sale_id}
    record("product.on_sale", data, user_id=None)


SUBSCRIBERS: tuple[Subscriber[Any], ...] = (
    Subscriber(OrderCreated, _order_created),
    Subscriber(OrderStatusChanged, _order_status_changed),
    Subscriber(OrderCancelled, _order_cancelled),
    Subscriber(PaymentRecorded, _payment),
    Subscriber(RefundCreated, _refund),
    Subscriber(ReturnUpdated, _return),
    Subscriber(ShipmentCreated, _shipment_created),
    Subscriber(ShipmentUpdated, _shipment_updated),
    # Once when the stock crosses into low (not on every sale below the line), and once
    # when a sold-out row has stock again.
    Subscriber(StockChanged, _fell_low, when=lambda e: e.delta < 0 and e.crossed_threshold),
    Subscriber(ItemCreated, _created_low, when=lambda e: e.low),
    Subscriber(StockChanged, _back_in_stock, when=lambda e: e.back_in_stock),
    Subscriber(WentOnSale, _on_sale),
)
