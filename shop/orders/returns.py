"""Returns (RMA): asked for by the order's customer within RETURN_WINDOW_DAYS of delivery,
approved or rejected by staff, received line by line, optionally refunded on receipt.

Never more units of a line are asked back than were delivered minus those already asked
back by returns not rejected, counted under the order's row lock (two requests at once
cannot both take the last units). A receipt takes the order's row, then the return's, then
the products' (the lock order of checkout and refunds, whose service it calls), so two
receipts of the same line at once are one after the other and the second finds nothing left
(409). Resellable units go back to stock (RETURN), damaged ones are written off right after
(RETURN, then DAMAGE). A refund on receipt is a refund of the order (orders.refunds): what
was paid for those units (their line after its discount, with its tax; not shipping), at
most paid minus refunded."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import lazyload, selectinload

from shop import bus, mail
from shop.audit.models import Action, Target
from shop.audit.services import record
from shop.auth.models import User
from shop.auth.policy import ORDERS
from shop.db import Page, db, get_or_404, paginate, unit_of_work, utcnow
from shop.errors import Conflict, NotFound, Unprocessable
from shop.orders import refunds
from shop.orders.billing_models import Refund
from shop.orders.events import ReturnUpdated
from shop.orders.models import Order, OrderItem, OrderStatus, OrderStatusChange
from shop.orders.queries import get_order, lines_named
from shop.orders.return_models import (
    OPEN_STATUSES,
    Condition,
    Return,
    ReturnItem,
    ReturnStatus,
)
from shop.orders.return_schemas import (
    Receipt,
    ReceiptLine,
    ReturnCreate,
    ReturnDecision,
    ReturnLine,
)
from shop.products.models import MovementType
from shop.products.stock import change_stock

CENT = Decimal("0.01")


# What an answer shows of a return's refunds (ReturnRefundSchema) needs none of theirs.
_ANSWERED = selectinload(Return.refunds).options(
    lazyload(Refund.items), lazyload(Refund.provider_refunds)
)


def list_returns(
    actor: User,
    *,
    page: int,
    page_size: int,
    status: str | None = None,
    order_id: int | None = None,
) -> Page:
    """The returns `actor` may see (their orders'; staff and admins every one), newest first."""
    stmt = (
        select(Return)
        .options(_ANSWERED)
        .join(Order, Order.id == Return.order_id)
        .where(ORDERS.scope(actor, Order.user_id))
        .order_by(Return.created_at.desc(), Return.id.desc())
    )
    if status is not None:
        stmt = stmt.where(Return.status == status)
    if order_id is not None:
        stmt = stmt.where(Return.order_id == order_id)
    return paginate(stmt, page, page_size)


def get_return(actor: User, return_id: int) -> Return:
    """A return of an order `actor` may see; anyone else's is a 404."""
    found = db.session.execute(
        select(Return, Order.user_id)
        .options(_ANSWERED)
        .join(Order, Order.id == Return.order_id)
        .where(Return.id == return_id)
    ).first()
    if found is None or not ORDERS.allows(actor, found[1]):
        raise NotFound(f"Return {return_id} does not exist.")
    ret: Return = found[0]
    return ret


def request_return(actor: User, order_id: int, data: ReturnCreate) -> Return:
    """Its customer asks to send units of a delivered order back (staff may, for them)."""
    with unit_of_work():
        order = get_order(actor, order_id, for_update=True)
        if order.status != OrderStatus.DELIVERED:
            raise Conflict(
                f"Order {order.number} is {order.status}: only a delivered order can be returned."
            )
        delivered_at = _delivered_at(order)
        days = int(current_app.config["RETURN_WINDOW_DAYS"])
        if utcnow() - delivered_at > timedelta(days=days):
            raise Unprocessable(
                f"Order {order.number} was delivered on {delivered_at:%Y-%m-%d}: returns are "
                f"taken within {days} days of delivery.",
                errors={"items": [f"The return window of {days} days has passed."]},
            )
        _check_returnable(order, data["items"])
        ret = Return(
            order_id=order.id,
            status=ReturnStatus.REQUESTED,
            requested_by=actor.id,
            items=[
                ReturnItem(
                    order_item_id=line["order_item_id"],
                    quantity=line["quantity"],
                    reason=line["reason"],
                )
                for line in data["items"]
            ],
        )
        db.session.add(ret)
        db.session.flush()
        record(
            Action.RETURN_REQUESTED,
            actor=actor,
            target_type=Target.RETURN,
            target_id=ret.id,
            changes={"order_id": order.id, "items": [dict(line) for line in data["items"]]},
        )
        bus.publish(ReturnUpdated.of(order, ret.id, ret.status, None))
    return ret


def _delivered_at(order: Order) -> datetime:
    """When the order last became delivered (its status history)."""
    at = db.session.scalar(
        select(func.max(OrderStatusChange.at)).where(
            OrderStatusChange.order_id == order.id,
            OrderStatusChange.to_status == OrderStatus.DELIVERED,
        )
    )
    if at is None:  # delivered without a history entry: nothing to count the window from
        raise Conflict(f"Order {order.number} has no delivery on record.")
    return at


def _check_returnable(order: Order, wanted: list[ReturnLine]) -> None:
    """A line of another order is a 422; more units than delivered minus already asked back
    by returns not rejected a 409 (one query)."""
    items = lines_named(order, [w["order_item_id"] for w in wanted])
    asked: dict[int, int] = {
        item_id: int(units)
        for item_id, units in db.session.execute(
            select(ReturnItem.order_item_id, func.sum(ReturnItem.quantity))
            .join(Return, Return.id == ReturnItem.return_id)
            .where(Return.order_id == order.id, Return.status.in_(OPEN_STATUSES))
            .group_by(ReturnItem.order_item_id)
        )
    }
    over = []
    for w in wanted:
        item = items[w["order_item_id"]]
        left = item.quantity - asked.get(item.id, 0)
        if w["quantity"] > left:
            over.append(f"line {item.id} ({item.sku}): at most {left}")
    if over:
        raise Conflict(
            "More units than delivered minus already returned: " + "; ".join(over) + ".",
            errors={"items": over},
        )


def approve_return(actor: User, return_id: int, data: ReturnDecision) -> Return:
    return _decide(actor, return_id, data, ReturnStatus.APPROVED)


def reject_return(actor: User, return_id: int, data: ReturnDecision) -> Return:
    return _decide(actor, return_id, data, ReturnStatus.REJECTED)


def _decide(actor: User, return_id: int, data: ReturnDecision, to: ReturnStatus) -> Return:
    with unit_of_work():
        ret = get_or_404(Return, return_id, for_update=True)
        if ret.status != ReturnStatus.REQUESTED:
            raise Conflict(f"Return {ret.id} is {ret.status}: only a requested one can be {to}.")
        order = get_order(actor, ret.order_id)
        ret.status = to
        ret.decided_by, ret.decided_at, ret.note = actor.id, utcnow(), data.get("note")
        record(
            Action.RETURN_APPROVED if to is ReturnStatus.APPROVED else Action.RETURN_REJECTED,
            actor=actor,
            target_type=Target.RETURN,
            target_id=ret.id,
            changes={"status": {"before": ReturnStatus.REQUESTED, "after": to}, "note": ret.note},
        )
        bus.publish(ReturnUpdated.of(order, ret.id, to, ReturnStatus.REQUESTED))
        _tell_customer(order, ret)
    return ret


def receive_return(actor: User, return_id: int, data: Receipt) -> Return:
    """Units of an approved return came back: to stock or written off, refunded if asked."""
    with unit_of_work():
        order_id = db.session.scalar(select(Return.order_id).where(Return.id == return_id))
        if order_id is None:
            raise NotFound(f"Return {return_id} does not exist.")
        # The lock order: the order's row, the return's, then the products' (change_stock).
        order = get_order(actor, order_id, for_update=True)
        ret = get_or_404(Return, return_id, for_update=True)
        if ret.status != ReturnStatus.APPROVED:
            raise Conflict(
                f"Return {ret.id} is {ret.status}: only an approved one is received"
                + (" (nothing is left to receive)." if ret.status in _DONE else ".")
            )
        previous = ret.status
        lines = _receivable(ret, data["items"])
        _restock(actor, order, ret, lines)
        refund = _refund(actor, order, ret, lines) if data["refund"] else None
        if all(item.received_quantity == item.quantity for item in ret.items):
            every_unit_refunded = all(i.refunded_quantity == i.quantity for i in ret.items)
            ret.status = ReturnStatus.REFUNDED if every_unit_refunded else ReturnStatus.RECEIVED
        record(
            Action.RETURN_RECEIVED,
            actor=actor,
            target_type=Target.RETURN,
            target_id=ret.id,
            changes={
                "items": [dict(line) for _, line in lines],
                "refund_id": refund.id if refund is not None else None,
                "status": {"before": previous, "after": ret.status},
            },
        )
        bus.publish(ReturnUpdated.of(order, ret.id, ret.status, previous))
        if ret.status == ReturnStatus.RECEIVED and previous != ret.status:
            _tell_customer(order, ret)  # a refund tells the customer itself (refunds)
    return ret


_DONE = (ReturnStatus.RECEIVED, ReturnStatus.REFUNDED)


def _receivable(ret: Return, got: list[ReceiptLine]) -> list[tuple[ReturnItem, ReceiptLine]]:
    """The return's lines the receipt names, counted as received: a line not in the return
    is a 422, more units than asked minus received already a 409."""
    items = {item.order_item_id: item for item in ret.items}
    foreign = [g["order_item_id"] for g in got if g["order_item_id"] not in items]
    if foreign:
        raise Unprocessable(
            f"Return {ret.id} has no line {', '.join(map(str, foreign))}.",
            errors={"items": [f"Not a line of this return: {foreign}."]},
        )
    over = []
    for g in got:
        item = items[g["order_item_id"]]
        left = item.quantity - item.received_quantity
        if g["quantity"] > left:
            over.append(f"line {item.order_item_id}: at most {left}")
    if over:
        raise Conflict(
            "More units than asked back minus received already: " + "; ".join(over) + ".",
            errors={"items": over},
        )
    lines = []
    for g in got:
        item = items[g["order_item_id"]]
        item.received_quantity += g["quantity"]
        if g["condition"] == Condition.DAMAGED:
            item.damaged_quantity += g["quantity"]
        lines.append((item, g))
    return lines


def _restock(
    actor: User, order: Order, ret: Return, lines: list[tuple[ReturnItem, ReceiptLine]]
) -> None:
    """Every unit comes back into the ledger (RETURN); a damaged one leaves it at once (DAMAGE)."""
    order_items = {item.id: item for item in order.items}
    got = [(order_items[item.order_item_id], line) for item, line in lines]
    for order_item, line in sorted(got, key=lambda g: (g[0].product_id, g[0].variant_id or 0)):
        moves = [(line["quantity"], MovementType.RETURN)]
        if line["condition"] == Condition.DAMAGED:
            moves.append((-line["quantity"], MovementType.DAMAGE))
        for delta, kind in moves:
            change_stock(
                product_id=order_item.product_id,
                variant_id=order_item.variant_id,
                delta=delta,
                type=kind,
                actor=actor,
                reference=order.number,
                note=f"return {ret.id} ({line['condition']})",
            )


def _refund(
    actor: User, order: Order, ret: Return, lines: list[tuple[ReturnItem, ReceiptLine]]
) -> Refund:
    """A refund of the order for the units received now, through orders.refunds (its limits,
    the provider, the email, the order's `refunded` status); already in stock, so no restock."""
    order_items = {item.id: item for item in order.items}
    before = _units_refunded_by_returns(order)
    amount = Decimal("0.00")
    for item, line in lines:
        order_item = order_items[item.order_item_id]
        done = before.get(order_item.id, 0)
        amount += _paid_for(order, order_item, done + line["quantity"]) - _paid_for(
            order, order_item, done
        )
    left = (order.amount_paid or Decimal("0.00")) - order.amount_refunded
    amount = min(amount, left)
    if amount <= 0:
        raise Conflict(
            f"Nothing is left to refund of order {order.number} (paid minus refunded is {left}); "
            "receive without refund.",
            errors={"refund": [f"At most {left} can be refunded."]},
        )
    refund = refunds.create_refund(
        actor,
        order.id,
        {
            "amount": amount,
            "reason": f"Return {ret.id} received",
            "items": [
                {"order_item_id": item.order_item_id, "quantity": line["quantity"]}
                for item, line in lines
            ],
            "restock": False,
        },
    )
    for item, line in lines:
        item.refunded_quantity += line["quantity"]
    ret.refunds.append(refund)
    return refund


def _units_refunded_by_returns(order: Order) -> dict[int, int]:
    return {
        item_id: int(units)
        for item_id, units in db.session.execute(
            select(ReturnItem.order_item_id, func.sum(ReturnItem.refunded_quantity))
            .join(Return, Return.id == ReturnItem.return_id)
            .where(Return.order_id == order.id)
            .group_by(ReturnItem.order_item_id)
        )
    }


def _paid_for(order: Order, item: OrderItem, units: int) -> Decimal:
    """What the customer paid for the first `units` units of a line: its total after the
    discount, with its tax when the tax was added to the prices, shared by unit and rounded
    so that every unit of the line adds up to the whole line."""
    tax_added = order.total == order.subtotal - order.discount + order.shipping_cost + order.tax
    paid = item.line_total + (item.tax if tax_added else Decimal("0.00"))
    return (paid * units / item.quantity).quantize(CENT, rounding=ROUND_HALF_UP)


def _tell_customer(order: Order, ret: Return) -> None:
    customer = db.session.get(User, order.user_id) if order.user_id is not None else None
    to = customer.email if customer is not None else order.guest_email
    if to:
        lines = {item.id: item for item in order.items}
        mail.queue_email(to, "return_status", user=customer, order=order, ret=ret, lines=lines)
