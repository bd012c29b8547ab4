"""What orders do on other domains' events: a verified address takes over its guest orders."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update

from shop.auth.events import UserEmailVerified
from shop.auth.models import User
from shop.bus import Subscriber
from shop.db import unit_of_work
from shop.merchandising.models import coupon_redemptions
from shop.orders.models import Order


def attach_guest_orders(event: UserEmailVerified) -> None:
    """After the verification commits: the guest orders placed with that email become the
    account's (and their coupon redemptions count against its limit per customer). Safe to
    run twice; nothing happens if the account's email changed or lost its proof since."""
    with unit_of_work() as session:
        user = session.get(User, event.user_id)
        if user is None or not user.email_verified or user.email.lower() != event.email.lower():
            return
        guest: Any = (Order.user_id.is_(None), func.lower(Order.guest_email) == event.email.lower())
        orders = list(session.scalars(select(Order.id).where(*guest).with_for_update()))
        if not orders:
            return
        session.execute(update(Order).where(Order.id.in_(orders)).values(user_id=user.id))
        session.execute(
            update(coupon_redemptions)
            .where(coupon_redemptions.c.order_id.in_(orders))
            .values(user_id=user.id)
        )


SUBSCRIBERS = (Subscriber(UserEmailVerified, attach_guest_orders, durable=True),)
