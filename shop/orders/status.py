"""The order status machine: legal transitions, history, stock returned and provider payments
refunded on cancellation (never once a parcel has left), the invoice number given on payment,
the customer emailed, OrderStatusChanged (or OrderCancelled) published."""

from __future__ import annotations

from sqlalchemy import exists, select

from shop import bus, mail
from shop.audit.models import Action, Target
from shop.audit.services import record
from shop.auth.models import User
from shop.db import db, unit_of_work
from shop.errors import Conflict, Unprocessable
from shop.merchandising import coupons
from shop.orders.events import OrderCancelled, OrderStatusChanged
from shop.orders.invoices import assign_invoice_number
from shop.orders.models import (
    TRANSITIONS,
    Order,
    OrderStatus,
    OrderStatusChange,
    PaymentStatus,
    ProviderRefundReason,
)
from shop.orders.provider_refunds import refund_provider_payments
from shop.orders.queries import get_order
from shop.orders.schemas import StatusUpdate
from shop.orders.shipment_models import Shipment
from shop.products.models import MovementType
from shop.products.stock import change_stock
from shop.security import Role


def transition(
    actor: User | None,
    order: Order,
    to_status: OrderStatus,
    *,
    note: str | None = None,
    tracking_number: str | None = None,
    notify: bool = True,
) -> None:
    """Move a locked order to `to_status` inside the caller's unit of work (409 if illegal).
    `notify=False`: the caller emails the customer itself (a shipment's email says it)."""
    from_status = OrderStatus(order.status)
    if to_status not in TRANSITIONS[from_status]:
        raise Conflict(f"An order cannot go from {from_status} to {to_status}.")
    if to_status is OrderStatus.SHIPPED and not (tracking_number or order.tracking_number):
        raise Unprocessable(
            "Shipping needs a tracking number.", errors={"tracking_number": ["Required to ship."]}
        )
    cancelled = to_status is OrderStatus.CANCELLED
    if cancelled and db.session.scalar(select(exists().where(Shipment.order_id == order.id))):
        raise Conflict(f"Order {order.number} has shipments: refund what must go back instead.")
    if cancelled:
        # The coupon's row before the products': the lock order checkout takes them in.
        if order.coupon_id is not None:
            coupons.give_back(order.id)
        _restore_stock(actor, order)
        # What Stripe took for it goes back (by a job, after commit); none: nothing.
        refund_provider_payments(actor, order, reason=ProviderRefundReason.CANCELLED)
    if to_status is OrderStatus.PAID:
        # Every path that pays an order (staff, either webhook, the status machine) is here.
        assign_invoice_number(order)
    if to_status is OrderStatus.REFUNDED:
        order.payment_status = PaymentStatus.REFUNDED
    if tracking_number:
        order.tracking_number = tracking_number
    order.status = to_status
    order.status_history.append(
        OrderStatusChange(
            from_status=from_status,
            to_status=to_status,
            changed_by=actor.id if actor else None,
            note=note,
        )
    )
    record(
        Action.ORDER_CANCELLED if cancelled else Action.ORDER_STATUS_CHANGED,
        actor=actor,
        target_type=Target.ORDER,
        target_id=order.id,
        changes={"status": {"before": from_status.value, "after": to_status.value}, "note": note},
    )
    customer = db.session.get(User, order.user_id) if order.user_id is not None else None
    to = customer.email if customer is not None else order.guest_email
    if to and notify:
        mail.queue_email(to, "order_status", user=customer, order=order, note=note)
    bus.publish((OrderCancelled if cancelled else OrderStatusChanged).of(order, from_status))


def _restore_stock(actor: User | None, order: Order) -> None:
    for item in sorted(order.items, key=lambda i: (i.product_id, i.variant_id or 0)):
        change_stock(
            product_id=item.product_id,
            variant_id=item.variant_id,
            delta=item.quantity,
            type=MovementType.CANCEL,
            actor=actor,
            reference=order.number,
        )


def change_status(actor: User, order_id: int, data: StatusUpdate) -> Order:
    with unit_of_work():
        order = get_order(actor, order_id, for_update=True)
        transition(
            actor,
            order,
            OrderStatus(data["status"]),
            note=data.get("note"),
            tracking_number=data.get("tracking_number"),
        )
    return order


def cancel_order(actor: User, order_id: int, note: str | None = None) -> Order:
    """Owners cancel while pending; staff and admins until the order ships."""
    with unit_of_work():
        order = get_order(actor, order_id, for_update=True)
        if not actor.has_role(Role.STAFF) and order.status != OrderStatus.PENDING:
            raise Conflict("Only a pending order can be cancelled by its owner.")
        transition(actor, order, OrderStatus.CANCELLED, note=note or "cancelled")
    return order
