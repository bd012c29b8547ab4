"""Payments: recorded by staff, or reported by the provider's signed webhook (once per event),
and listed; how a payment counts towards its order (stripe_payments uses the same)."""

from __future__ import annotations

import re
from decimal import Decimal

from flask import current_app
from sqlalchemy import select

from shop import bus, mail
from shop.audit.models import Action, Target
from shop.audit.services import record
from shop.auth.models import User
from shop.db import Page, db, insert_ignoring_conflicts, paginate, unit_of_work
from shop.errors import Conflict, NotFound, Unauthorized
from shop.orders.events import PaymentRecorded
from shop.orders.models import (
    Order,
    OrderStatus,
    Payment,
    PaymentMethod,
    PaymentOutcome,
    PaymentStatus,
    WebhookOutcome,
)
from shop.orders.payment_schemas import PaymentCreate, PaymentEvent, WebhookResult
from shop.orders.queries import get_order, readable_order
from shop.orders.status import transition
from shop.security import signed_by


def list_payments(
    reader: User | None, order_id: int, key: str | None, *, page: int, page_size: int
) -> Page:
    """The payments of an order its reader may see (queries.readable_order), oldest first."""
    order = readable_order(reader, order_id, key)
    stmt = select(Payment).where(Payment.order_id == order.id).order_by(Payment.id)
    return paginate(stmt, page, page_size)


def amount_due(order: Order) -> Decimal:
    return order.total - (order.amount_paid or Decimal("0.00"))


def apply_payment(actor: User | None, order: Order, payment: Payment) -> None:
    order.amount_paid = (order.amount_paid or Decimal("0.00")) + payment.amount
    order.payment_status = (
        PaymentStatus.PAID if order.amount_paid >= order.total else PaymentStatus.PARTIALLY_PAID
    )
    record(
        Action.PAYMENT_RECORDED,
        actor=actor,
        target_type=Target.ORDER,
        target_id=order.id,
        changes={
            "amount": str(payment.amount),
            "method": payment.method,
            "reference": payment.reference,
            "amount_paid": str(order.amount_paid),
        },
    )
    bus.publish(PaymentRecorded.of(order, payment))
    if order.payment_status == PaymentStatus.PAID and order.status == OrderStatus.PENDING:
        transition(actor, order, OrderStatus.PAID, note="paid in full")


def keep_for_refund(order: Order, payment: Payment) -> None:
    """Money for an order that is already cancelled: kept, owed back, and the admins told."""
    order.amount_paid = (order.amount_paid or Decimal("0.00")) + payment.amount
    order.refund_due = (order.refund_due or Decimal("0.00")) + payment.amount
    record(
        Action.PAYMENT_RECORDED,
        actor=None,
        target_type=Target.ORDER,
        target_id=order.id,
        changes={
            "amount": str(payment.amount),
            "reference": payment.reference,
            "refund_due": str(order.refund_due),
        },
    )
    mail.queue_email(current_app.config["ADMIN_EMAILS"], "refund_due", order=order, payment=payment)
    bus.publish(PaymentRecorded.of(order, payment))


def record_payment(actor: User, order_id: int, data: PaymentCreate) -> Payment:
    with unit_of_work():
        order = get_order(actor, order_id, for_update=True)
        if order.status in (OrderStatus.CANCELLED, OrderStatus.REFUNDED):
            raise Conflict(f"The order is {order.status}.")
        due = amount_due(order)
        if data["amount"] > due:
            raise Conflict(
                f"The payment exceeds the {due} due.", errors={"amount": [f"At most {due}."]}
            )
        payment = Payment(
            order_id=order.id,
            amount=data["amount"],
            method=data["method"],
            status=PaymentOutcome.SUCCEEDED,
            reference=data.get("reference"),
            recorded_by=actor.id,
        )
        db.session.add(payment)
        db.session.flush()
        apply_payment(actor, order, payment)
    return payment


def verify_webhook_signature(raw_body: bytes, header: str | None) -> None:
    if not signed_by(current_app.config["PAYMENT_WEBHOOK_SECRET"], raw_body, header):
        raise Unauthorized("The webhook signature is missing or wrong.")


def _order_by_number(number: str) -> Order | None:
    match = re.fullmatch(r"ORD-(\d{8})-(\d+)", number)
    if not match:
        return None
    order = db.session.get(Order, int(match.group(2)), with_for_update=True)
    return order if order is not None and order.number == number else None


def handle_payment_event(data: PaymentEvent) -> WebhookResult:
    """A provider's signed event; the same event_id twice (or at once) counts once."""
    with unit_of_work():
        order = _order_by_number(data["order_number"])
        if order is None:
            raise NotFound(f"No order {data['order_number']}.")
        if data.get("currency") and data["currency"] != order.currency:
            raise Conflict(f"The order is in {order.currency}.")
        payment_id = db.session.scalar(
            insert_ignoring_conflicts(Payment)
            .values(
                order_id=order.id,
                amount=data["amount"],
                method=PaymentMethod.PROVIDER,
                status=data["status"],
                reference=data.get("reference"),
                provider_event_id=data["event_id"],
            )
            .returning(Payment.id)
        )
        if payment_id is None:
            return {"result": WebhookOutcome.DUPLICATE, "payment_id": None}
        payment = db.session.get(Payment, payment_id)
        assert payment is not None
        if data["status"] == PaymentOutcome.SUCCEEDED:
            if order.status in (OrderStatus.CANCELLED, OrderStatus.REFUNDED):
                keep_for_refund(order, payment)
            else:
                due = amount_due(order)
                if data["amount"] != due:
                    raise Conflict(f"The amount does not match the {due} due.")
                apply_payment(None, order, payment)
        else:
            bus.publish(PaymentRecorded.of(order, payment))
    return {"result": WebhookOutcome.RECORDED, "payment_id": payment_id}
