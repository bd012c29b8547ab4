"""Payments through Stripe (PAYMENT_PROVIDER=stripe): a PaymentIntent per order, and Stripe's
signed webhook, each event handled once.

No transaction or row lock is held while Stripe answers: the order is read and checked, then
Stripe is called (STRIPE_TIMEOUT; no answer or a 5xx is a 503 with Retry-After), then what it
made is recorded. The intent is made with an idempotency key of the order's and kept, so asking
again (or twice at once) answers the same intent, never a second one.

An event's id is written first (`stripe_events`): a replay, or the same event delivered twice at
once (the second waits for the first's commit), changes nothing. Events are handled in any
order: a failed attempt records a failed payment and leaves the order pending, so a success
arriving after it still pays it; a refund's event before its payment's is refused (409) and
Stripe sends it again later. Money that is not what the order owes (another amount or
currency, an order paid already) is recorded as `mismatched`, not as paid, and the admins are
told; money for a cancelled order is kept with refund_due, as the generic webhook's is, and sent
back through Stripe by a job."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import stripe
from flask import current_app
from sqlalchemy import select

from shop import bus, mail
from shop.audit.models import Action, Target
from shop.audit.services import record
from shop.auth.models import User
from shop.db import db, insert_ignoring_conflicts, unit_of_work
from shop.errors import BadRequest, Conflict, Unauthorized, Unavailable
from shop.orders import stripe_api
from shop.orders.events import PaymentRecorded
from shop.orders.models import (
    Order,
    OrderStatus,
    Payment,
    PaymentIntent,
    PaymentMethod,
    PaymentOutcome,
    PaymentStatus,
    ProviderRefundReason,
    StripeEvent,
    WebhookOutcome,
)
from shop.orders.payment_schemas import PaymentIntentAnswer, WebhookResult
from shop.orders.payments import amount_due, apply_payment, keep_for_refund
from shop.orders.provider_refunds import HOLDING_MONEY, queue_refund, record_provider_refunds
from shop.orders.queries import readable_order
from shop.schemas import MAX_ID

log = logging.getLogger(__name__)
SUCCEEDED = "payment_intent.succeeded"
FAILED = "payment_intent.payment_failed"
REFUNDED = "charge.refunded"
HANDLED = (SUCCEEDED, FAILED, REFUNDED)
CLOSED = (OrderStatus.CANCELLED, OrderStatus.REFUNDED)


def create_payment_intent(
    reader: User | None, order_id: int, key: str | None = None
) -> PaymentIntentAnswer:
    """The order's PaymentIntent for its total: made at the first call, read back after.
    `reader` and `key`: who may pay it (queries.readable_order: a guest with its key)."""
    with unit_of_work() as session:
        order = readable_order(reader, order_id, key)
        if current_app.config["PAYMENT_PROVIDER"] != "stripe":
            raise Conflict(
                "Payments through a provider are off (PAYMENT_PROVIDER=manual): "
                "pay as the shop tells you."
            )
        if order.status != OrderStatus.PENDING or order.payment_status != PaymentStatus.UNPAID:
            raise Conflict(
                f"The order is {order.status} and {order.payment_status}: "
                "only a pending, unpaid order is paid online."
            )
        try:
            amount = stripe_api.minor_units(order.total, order.currency)
        except ValueError as error:
            raise Conflict(str(error)) from None
        if amount <= 0:
            raise Conflict("The order has nothing to pay.")
        known = session.scalar(
            select(PaymentIntent.intent_id)
            .where(PaymentIntent.order_id == order.id)
            .order_by(PaymentIntent.created_at.desc(), PaymentIntent.intent_id)
            .limit(1)
        )
    intents = stripe_api.client().v1.payment_intents
    with _calling_stripe():
        if known is not None:  # its client_secret is not stored (Stripe: never keep it)
            intent = intents.retrieve(known)
        else:
            intent = intents.create(
                params={
                    "amount": amount,
                    "currency": order.currency.lower(),
                    "metadata": {"order_id": str(order.id), "order_number": order.number},
                },
                options={"idempotency_key": f"{order.number}-payment-intent"},
            )
    if known is None:
        with unit_of_work() as session:
            session.execute(
                insert_ignoring_conflicts(PaymentIntent).values(
                    intent_id=intent.id, order_id=order.id
                )
            )
    assert intent.client_secret is not None
    return {
        "provider": "stripe",
        "client_secret": intent.client_secret,
        "amount": stripe_api.from_minor_units(intent.amount, intent.currency),
        "currency": intent.currency.upper(),
    }


@contextmanager
def _calling_stripe() -> Iterator[None]:
    try:
        yield
    except stripe.StripeError as error:
        if stripe_api.is_transient(error):
            log.warning("Stripe unavailable: %r", error)
            raise Unavailable("Stripe did not answer in time; retry shortly.") from None
        log.info("Stripe refused: %r", error)
        raise Conflict(f"Stripe refused: {error.user_message or 'see the log'}") from None


def verify_event(raw_body: bytes, header: str | None) -> dict[str, Any]:
    """The event `raw_body` is, as data, its Stripe-Signature checked by the library (the
    STRIPE_WEBHOOK_SECRET, and a timestamp within the library's tolerance, 5 minutes)."""
    try:
        event = stripe.Webhook.construct_event(
            raw_body, header, current_app.config["STRIPE_WEBHOOK_SECRET"]
        )
    except (stripe.SignatureVerificationError, UnicodeDecodeError):
        raise Unauthorized("The Stripe-Signature is missing, wrong or too old.") from None
    except ValueError:  # signed, but not a Stripe event
        raise BadRequest("The body is not a Stripe event.") from None
    data: dict[str, Any] = event.to_dict()
    return data


def handle_event(event: dict[str, Any]) -> WebhookResult:
    """A verified event: handled once; other event types and other orders' are ignored."""
    kind = event.get("type")
    if kind not in HANDLED:
        return {"result": WebhookOutcome.IGNORED, "payment_id": None}
    event_id = _text(event, "id")
    wrapper = event.get("data")
    data = wrapper.get("object") if isinstance(wrapper, dict) else None
    if not isinstance(data, dict):
        raise BadRequest("The event has no data.object.")
    with unit_of_work() as session:
        first = session.scalar(
            insert_ignoring_conflicts(StripeEvent)
            .values(id=event_id, type=kind)
            .returning(StripeEvent.id)
        )
        if first is None:
            return {"result": WebhookOutcome.DUPLICATE, "payment_id": None}
        if kind == REFUNDED:
            return _charge_refunded(data)
        return _intent_event(event_id, kind, data)


def _text(data: Any, name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not 0 < len(value) <= 255:
        raise BadRequest(f"The event has no {name}.")
    return value


def _units(data: dict[str, Any], name: str) -> int:
    value = data.get(name)
    if type(value) is not int or value < 0:
        raise BadRequest(f"The event's {name} is not an amount.")
    return value


def _intent_event(event_id: str, kind: str, intent: dict[str, Any]) -> WebhookResult:
    order = _order_of(intent)
    if order is None:
        return {"result": WebhookOutcome.IGNORED, "payment_id": None}
    intent_id = _text(intent, "id")
    # Kept for its charges' events, whoever made the intent.
    db.session.execute(
        insert_ignoring_conflicts(PaymentIntent).values(intent_id=intent_id, order_id=order.id)
    )
    currency = _text(intent, "currency").upper()
    paid = kind == SUCCEEDED
    amount = stripe_api.from_minor_units(
        _units(intent, "amount_received" if paid else "amount"), currency
    )
    due = amount_due(order)
    status = PaymentOutcome.SUCCEEDED if paid else PaymentOutcome.FAILED
    if paid and (currency != order.currency or (order.status not in CLOSED and amount != due)):
        status = PaymentOutcome.MISMATCHED
    payment = Payment(
        order_id=order.id,
        amount=amount,
        method=PaymentMethod.STRIPE,
        status=status,
        reference=intent_id,
        provider_event_id=event_id,
    )
    db.session.add(payment)
    db.session.flush()
    if status == PaymentOutcome.SUCCEEDED and order.status in CLOSED:
        keep_for_refund(order, payment)
        queue_refund(
            None, order, payment, amount, reason=ProviderRefundReason.PAID_AFTER_CANCELLATION
        )
    elif status == PaymentOutcome.SUCCEEDED:
        apply_payment(None, order, payment)
    elif status == PaymentOutcome.MISMATCHED:
        _flag_mismatch(order, payment, currency, due)
    else:
        bus.publish(PaymentRecorded.of(order, payment))
    return {"result": WebhookOutcome.RECORDED, "payment_id": payment.id}


def _order_of(intent: dict[str, Any]) -> Order | None:
    """The order an intent's metadata names (its id and number both), locked; None when it
    names none of shop's."""
    metadata = intent.get("metadata") or {}
    order_id, number = metadata.get("order_id"), metadata.get("order_number")
    if not isinstance(order_id, str) or not order_id.isdigit() or not 0 < int(order_id) <= MAX_ID:
        return None
    order = db.session.get(Order, int(order_id), with_for_update=True, populate_existing=True)
    return order if order is not None and order.number == number else None


def _flag_mismatch(order: Order, payment: Payment, currency: str, due: Decimal) -> None:
    record(
        Action.PAYMENT_MISMATCHED,
        actor=None,
        target_type=Target.ORDER,
        target_id=order.id,
        changes={
            "payment_id": payment.id,
            "amount": str(payment.amount),
            "currency": currency,
            "due": str(due),
            "reference": payment.reference,
        },
    )
    mail.queue_email(
        current_app.config["ADMIN_EMAILS"],
        "payment_mismatch",
        order=order,
        payment=payment,
        currency=currency,
        due=due,
    )
    bus.publish(PaymentRecorded.of(order, payment))


def _charge_refunded(charge: dict[str, Any]) -> WebhookResult:
    intent_id = _text(charge, "payment_intent")
    order_id = db.session.scalar(
        select(PaymentIntent.order_id).where(PaymentIntent.intent_id == intent_id)
    )
    if order_id is None:
        return {"result": WebhookOutcome.IGNORED, "payment_id": None}
    order = db.session.get(Order, order_id, with_for_update=True, populate_existing=True)
    assert order is not None  # the intent's row goes with its order
    payment = db.session.scalar(
        select(Payment).where(
            Payment.order_id == order.id,
            Payment.reference == intent_id,
            Payment.method == PaymentMethod.STRIPE,
            Payment.status.in_(HOLDING_MONEY),
        )
    )
    if payment is None:  # its payment's event has not arrived yet: Stripe sends this again
        raise Conflict(f"No payment of {intent_id} is recorded yet.")
    refunded = stripe_api.from_minor_units(
        _units(charge, "amount_refunded"), _text(charge, "currency")
    )
    record_provider_refunds(order, payment, refunded)
    return {"result": WebhookOutcome.RECORDED, "payment_id": payment.id}
