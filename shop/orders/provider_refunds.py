"""Refunds sent back through the payment provider (Stripe): a row written in the unit of work of
its cause (an order cancelled, a payment for a cancelled order, a refund asked for), sent by an
outbox job after commit, confirmed by the provider's `charge.refunded`.

A refund reaches Stripe once: its job locks the row and sends only a pending one, with an
idempotency key of the row's own, so a job retried after a timeout or a 5xx (the outbox's
retries, with RQ's backoff) gets the refund the first attempt made, never a second one. Its
amount counts in the order's refund_due from when it is written until the provider confirms
it; one the provider refuses stays there, and the admins are told."""

from __future__ import annotations

import logging
from decimal import Decimal

import stripe
from flask import current_app
from sqlalchemy import and_, func, select

from shop import mail, outbox
from shop.audit.models import Action, Target
from shop.audit.services import record
from shop.auth.models import User
from shop.db import db, unit_of_work
from shop.errors import Conflict
from shop.orders import stripe_api
from shop.orders.models import (
    Order,
    Payment,
    PaymentMethod,
    PaymentOutcome,
    ProviderRefund,
    ProviderRefundReason,
    ProviderRefundStatus,
)

log = logging.getLogger(__name__)
# Provider payments that hold money: paid, or taken without matching what was owed.
HOLDING_MONEY = (PaymentOutcome.SUCCEEDED, PaymentOutcome.MISMATCHED)


def refund_provider_payments(
    actor: User | None,
    order: Order,
    amount: Decimal | None = None,
    *,
    reason: ProviderRefundReason,
) -> list[ProviderRefund]:
    """Send `amount` (None: everything not refunded yet) of the order's provider payments back
    through the provider, oldest payment first, and count it in refund_due until confirmed.
    The caller's unit of work holds the order's lock; more than is left is a 409.

    Cancelling an order calls it; so will a refund of a provider-paid order."""
    left = _refundable(order)
    total = sum(left.values(), Decimal("0.00"))
    wanted = total if amount is None else amount
    if wanted > total:
        raise Conflict(f"At most {total} of the order's provider payments can be refunded.")
    refunds = []
    for payment, available in left.items():
        part = min(available, wanted)
        if part <= 0:
            continue
        order.refund_due = (order.refund_due or Decimal("0.00")) + part
        refunds.append(queue_refund(actor, order, payment, part, reason=reason))
        wanted -= part
    return refunds


def _refundable(order: Order) -> dict[Payment, Decimal]:
    """Each provider payment of the order holding money, and what of it is not refunded yet
    (refunds the provider refused do not count): one query."""
    refunded = func.coalesce(func.sum(ProviderRefund.amount), 0)
    rows = db.session.execute(
        select(Payment, refunded)
        .outerjoin(
            ProviderRefund,
            and_(
                ProviderRefund.payment_id == Payment.id,
                ProviderRefund.status != ProviderRefundStatus.FAILED,
            ),
        )
        .where(
            Payment.order_id == order.id,
            Payment.method == PaymentMethod.STRIPE,
            Payment.status.in_(HOLDING_MONEY),
        )
        .group_by(Payment.id)
        .order_by(Payment.id)
    ).all()
    return {payment: payment.amount - done for payment, done in rows if payment.amount > done}


def queue_refund(
    actor: User | None,
    order: Order,
    payment: Payment,
    amount: Decimal,
    *,
    reason: ProviderRefundReason,
) -> ProviderRefund:
    """Write a refund of `amount` of `payment` (counted in refund_due already) and its job."""
    refund = _written(actor, order, payment, amount, reason, ProviderRefundStatus.PENDING)
    outbox.add(send_refund, refund_id=refund.id)
    return refund


def _written(
    actor: User | None,
    order: Order,
    payment: Payment,
    amount: Decimal,
    reason: ProviderRefundReason,
    status: ProviderRefundStatus,
) -> ProviderRefund:
    """A refund row and its audit entry: queued (pending, to send) or made at the provider."""
    refund = ProviderRefund(
        order_id=order.id, payment_id=payment.id, amount=amount, reason=reason, status=status
    )
    db.session.add(refund)
    db.session.flush()
    queued = status == ProviderRefundStatus.PENDING
    record(
        Action.PROVIDER_REFUND_QUEUED if queued else Action.PROVIDER_REFUND_SUCCEEDED,
        actor=actor,
        target_type=Target.ORDER,
        target_id=order.id,
        changes={
            "refund_id": refund.id,
            "payment_id": payment.id,
            "amount": str(amount),
            "reason": reason.value,
        },
    )
    return refund


def send_refund(refund_id: int) -> None:
    """The outbox's job: send one pending refund to Stripe. A transient failure raises (the
    outbox counts the attempt and RQ tries again after its backoff); a refusal marks the
    refund failed and tells the admins."""
    with unit_of_work() as session:
        refund = session.get(
            ProviderRefund, refund_id, with_for_update=True, populate_existing=True
        )
        if refund is None or refund.status != ProviderRefundStatus.PENDING:
            return  # sent already, or confirmed by the provider before it was sent
        payment = session.get(Payment, refund.payment_id)
        order = session.get(Order, refund.order_id)
        assert payment is not None and order is not None and payment.reference
        try:
            answer = stripe_api.client().v1.refunds.create(
                params={
                    "payment_intent": payment.reference,
                    "amount": stripe_api.minor_units(refund.amount, order.currency),
                    "metadata": {
                        "order_id": str(order.id),
                        "order_number": order.number,
                        "refund_id": str(refund.id),
                    },
                },
                options={"idempotency_key": f"{order.number}-refund-{refund.id}"},
            )
        except stripe.StripeError as error:
            if stripe_api.is_transient(error):
                log.warning("refund %s: Stripe failed (%s); it is tried again", refund.id, error)
                raise
            _failed(order, refund, error.user_message or str(error))
            return
        refund.provider_refund_id = answer.id
        if answer.status in ("failed", "canceled"):
            _failed(order, refund, f"Stripe answered the refund {answer.status}.")
        else:
            refund.status = ProviderRefundStatus.SENT


def _failed(order: Order, refund: ProviderRefund, why: str) -> None:
    refund.status = ProviderRefundStatus.FAILED
    refund.last_error = why[:2000]
    record(
        Action.PROVIDER_REFUND_FAILED,
        actor=None,
        target_type=Target.ORDER,
        target_id=order.id,
        changes={"refund_id": refund.id, "amount": str(refund.amount), "error": refund.last_error},
    )
    mail.queue_email(
        current_app.config["ADMIN_EMAILS"], "refund_failed", order=order, refund=refund
    )


def record_provider_refunds(order: Order, payment: Payment, refunded: Decimal) -> None:
    """The provider says `refunded` of `payment` has gone back (its running total): the
    refunds it covers, in the order they were made, are confirmed and leave refund_due; more
    than shop sent was refunded at the provider, and is recorded as such. Saying the same
    total again changes nothing."""
    refunds = db.session.scalars(
        select(ProviderRefund)
        .where(
            ProviderRefund.payment_id == payment.id,
            ProviderRefund.status != ProviderRefundStatus.FAILED,
        )
        .order_by(ProviderRefund.id)
        .with_for_update()
    ).all()
    covered = Decimal("0.00")
    for refund in refunds:
        covered += refund.amount
        if covered > refunded or refund.status == ProviderRefundStatus.SUCCEEDED:
            continue
        refund.status = ProviderRefundStatus.SUCCEEDED
        order.refund_due -= refund.amount
        record(
            Action.PROVIDER_REFUND_SUCCEEDED,
            actor=None,
            target_type=Target.ORDER,
            target_id=order.id,
            changes={"refund_id": refund.id, "amount": str(refund.amount)},
        )
    if refunded > covered:
        # Refunded in Stripe's dashboard beyond what shop sent: recorded as made there.
        _written(None, order, payment, refunded - covered, ProviderRefundReason.AT_PROVIDER,
                 ProviderRefundStatus.SUCCEEDED)  # fmt: skip
