"""Refunds of an order (POST and GET /orders/{id}/refunds): never more than paid minus
refunded, never more units of a line than ordered minus refunded, both checked under the
order's row lock, so two refunds at once cannot both take the last amount.

Where the money goes back: an order Stripe holds money of refunds through Stripe
(provider_refunds.refund_provider_payments: queued for a worker, counted in refund_due until
Stripe confirms it); any other order's refund records money staff paid back by hand, and it
settles the order's refund_due (money received for a cancelled order) as far as that is not
a provider refund in flight. Refunding everything paid makes the order `refunded` (the
status machine), unless it is cancelled, where the refund only settles what was owed."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import exists, func, select
from sqlalchemy.orm.attributes import set_committed_value

from shop import bus, mail
from shop.audit.models import Action, Target
from shop.audit.services import record
from shop.auth.models import User
from shop.db import Page, db, paginate, unit_of_work
from shop.errors import Conflict
from shop.orders.billing_models import Refund, RefundItem
from shop.orders.events import RefundCreated
from shop.orders.models import (
    TRANSITIONS,
    Order,
    OrderItem,
    OrderStatus,
    Payment,
    PaymentMethod,
    ProviderRefund,
    ProviderRefundReason,
    ProviderRefundStatus,
)
from shop.orders.provider_refunds import HOLDING_MONEY, refund_provider_payments
from shop.orders.queries import get_order, lines_named, readable_order
from shop.orders.refund_schemas import RefundCreate, RefundLine
from shop.orders.status import transition
from shop.products.models import MovementType
from shop.products.stock import change_stock


def list_refunds(
    reader: User | None, order_id: int, key: str | None, *, page: int, page_size: int
) -> Page:
    """The refunds of an order its reader may see (queries.readable_order), oldest first."""
    order = readable_order(reader, order_id, key)
    stmt = select(Refund).where(Refund.order_id == order.id).order_by(Refund.id)
    return paginate(stmt, page, page_size)


def create_refund(actor: User, order_id: int, data: RefundCreate) -> Refund:
    with unit_of_work():
        order = get_order(actor, order_id, for_update=True)
        left = (order.amount_paid or Decimal("0.00")) - order.amount_refunded
        if data["amount"] > left:
            raise Conflict(
                f"At most {left} of order {order.number} can be refunded (paid minus refunded).",
                errors={"amount": [f"At most {left}."]},
            )
        lines = _refundable_lines(order, data["items"])
        refund = Refund(
            order_id=order.id,
            amount=data["amount"],
            reason=data["reason"],
            restocked=data["restock"],
            created_by=actor.id,
            items=[RefundItem(order_item_id=i.id, quantity=q) for i, q in lines],
        )
        db.session.add(refund)
        db.session.flush()
        order.amount_refunded += refund.amount
        if refund.restocked:  # the lock order: the order's row, then products and variants
            _restock(actor, order, refund, lines)
        sent: list[ProviderRefund] = []
        if _held_by_provider(order):
            sent = refund_provider_payments(
                actor, order, refund.amount, reason=ProviderRefundReason.REQUESTED
            )
            for provider_refund in sent:
                provider_refund.refund_id = refund.id
        else:
            _settle_refund_due(order, refund.amount)
        set_committed_value(refund, "provider_refunds", sent)
        record(
            Action.REFUND_CREATED,
            actor=actor,
            target_type=Target.ORDER,
            target_id=order.id,
            changes={
                "refund_id": refund.id,
                "amount": str(refund.amount),
                "reason": refund.reason,
                "items": [{"order_item_id": i.id, "quantity": q} for i, q in lines],
                "restocked": refund.restocked,
                "through_provider": bool(sent),
                "amount_refunded": str(order.amount_refunded),
            },
        )
        bus.publish(RefundCreated.of(order, refund.id, refund.amount, refund.restocked))
        _tell_customer(order, refund)
        if order.amount_refunded == order.amount_paid and (
            OrderStatus.REFUNDED in TRANSITIONS[OrderStatus(order.status)]
        ):
            transition(actor, order, OrderStatus.REFUNDED, note="refunded in full")
    return refund


def _refundable_lines(order: Order, wanted: list[RefundLine]) -> list[tuple[OrderItem, int]]:
    """The order's lines the refund names, with their units: a line of another order is a
    422, more units than ordered minus refunded already a 409 (one query)."""
    items = lines_named(order, [w["order_item_id"] for w in wanted])
    done: dict[int, int] = {
        item_id: int(units)
        for item_id, units in db.session.execute(
            select(RefundItem.order_item_id, func.sum(RefundItem.quantity))
            .join(Refund, Refund.id == RefundItem.refund_id)
            .where(Refund.order_id == order.id)
            .group_by(RefundItem.order_item_id)
        )
    }
    lines, over = [], []
    for w in wanted:
        item = items[w["order_item_id"]]
        left = item.quantity - int(done.get(item.id, 0))
        if w["quantity"] > left:
            over.append(f"line {item.id} ({item.sku}): at most {left}")
        lines.append((item, w["quantity"]))
    if over:
        raise Conflict(
            "More units than ordered minus refunded: " + "; ".join(over) + ".",
            errors={"items": over},
        )
    return lines


def _restock(
    actor: User, order: Order, refund: Refund, lines: Sequence[tuple[OrderItem, int]]
) -> None:
    for item, quantity in sorted(lines, key=lambda line: (line[0].product_id,
                                                          line[0].variant_id or 0)):  # fmt: skip
        change_stock(
            product_id=item.product_id,
            variant_id=item.variant_id,
            delta=quantity,
            type=MovementType.RETURN,
            actor=actor,
            reference=order.number,
            note=f"refund {refund.id}",
        )


def _held_by_provider(order: Order) -> bool:
    """Whether Stripe holds money of the order (its refunds then go back through Stripe)."""
    return bool(
        db.session.scalar(
            select(
                exists().where(
                    Payment.order_id == order.id,
                    Payment.method == PaymentMethod.STRIPE,
                    Payment.status.in_(HOLDING_MONEY),
                )
            )
        )
    )


def _settle_refund_due(order: Order, amount: Decimal) -> None:
    """Money paid back by hand settles what the order owes back (refund_due), except the
    part that is a provider refund not confirmed yet, which only the provider settles."""
    if not order.refund_due:
        return
    in_flight = db.session.scalar(
        select(func.coalesce(func.sum(ProviderRefund.amount), 0)).where(
            ProviderRefund.order_id == order.id,
            ProviderRefund.status != ProviderRefundStatus.SUCCEEDED,
        )
    )
    owed_by_hand = order.refund_due - Decimal(in_flight or 0)
    order.refund_due -= max(Decimal("0.00"), min(amount, owed_by_hand))


def _tell_customer(order: Order, refund: Refund) -> None:
    customer = db.session.get(User, order.user_id) if order.user_id is not None else None
    to = customer.email if customer is not None else order.guest_email
    if to:
        mail.queue_email(to, "refund_created", user=customer, order=order, refund=refund)
