"""Order jobs: remind about, then expire, unpaid pending orders."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app
from sqlalchemy import select

from shop import mail
from shop.auth.models import User
from shop.db import db, unit_of_work, utcnow
from shop.orders.models import Order, OrderStatus, PaymentStatus
from shop.orders.status import transition


def process_pending_orders() -> dict[str, int]:
    """The `pending-orders` job: one reminder per order after PENDING_ORDER_REMINDER_HOURS,
    cancellation (stock returned) of unpaid ones after PENDING_ORDER_EXPIRY_HOURS.
    Each order is its own unit of work, locked, and re-checked: safe to run twice at once."""
    config = current_app.config
    now = utcnow()
    expire_before = now - timedelta(hours=config["PENDING_ORDER_EXPIRY_HOURS"])
    remind_before = now - timedelta(hours=config["PENDING_ORDER_REMINDER_HOURS"])
    expired = reminded = 0
    stale = list(
        db.session.scalars(
            select(Order.id).where(
                Order.status == OrderStatus.PENDING, Order.created_at < remind_before
            )
        )
    )
    db.session.rollback()
    for order_id in stale:
        with unit_of_work():
            order = db.session.get(Order, order_id, with_for_update=True, populate_existing=True)
            if order is None or order.status != OrderStatus.PENDING:
                continue
            if order.created_at < expire_before and order.payment_status == PaymentStatus.UNPAID:
                transition(None, order, OrderStatus.CANCELLED, note="expired unpaid")
                expired += 1
            elif order.reminder_sent_at is None:
                order.reminder_sent_at = now
                customer = db.session.get(User, order.user_id) if order.user_id else None
                to = customer.email if customer is not None else order.guest_email
                if to:
                    mail.queue_email(to, "order_reminder", user=customer, order=order)
                reminded += 1
    return {"reminded": reminded, "expired": expired}
