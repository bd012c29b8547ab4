"""A coupon on a cart or an order: what it takes off, the customer's own limit (counted in
their orders), and the redemption taken at checkout and given back on cancellation."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select

from shop.auth.models import User
from shop.db import db
from shop.errors import Conflict
from shop.merchandising import coupons
from shop.merchandising.coupons import Applied
from shop.merchandising.models import Coupon
from shop.orders.models import Order, OrderStatus
from shop.products.catalog import Sellable


def applied(user: User, coupon: Coupon, lines: Sequence[tuple[Sellable, int]]) -> Applied:
    """What `coupon` takes off these lines for `user`: 422 why it does not apply, 409 when
    it is used up or the customer has had their share."""
    result = coupons.apply(coupon, lines)
    _within_customer_limit(user, coupon, placed=0)
    return result


def _within_customer_limit(user: User, coupon: Coupon, *, placed: int) -> None:
    """`placed`: orders with the coupon this unit of work wrote already (counted too)."""
    if coupon.max_per_customer is None:
        return
    used = db.session.scalar(
        select(func.count())
        .select_from(Order)
        .where(
            Order.coupon_id == coupon.id,
            Order.user_id == user.id,
            Order.status != OrderStatus.CANCELLED,
        )
    )
    if (used or 0) - placed >= coupon.max_per_customer:
        times = "once" if coupon.max_per_customer == 1 else f"{coupon.max_per_customer} times"
        raise Conflict(
            f"The coupon {coupon.code} is for {times} per customer, and you have used it.",
            errors={"coupon_code": ["Used up for this customer."]},
        )


def redeem(user: User, order: Order) -> None:
    """Take the order's redemption. The coupon's row stays locked from here to the commit,
    so the customer's count read next sees every order that took one before."""
    coupon = db.session.get(Coupon, order.coupon_id)
    assert coupon is not None
    coupons.redeem(coupon)
    _within_customer_limit(user, coupon, placed=1)


def give_back(order: Order) -> None:
    if order.coupon_id is not None:
        coupons.give_back(order.coupon_id)
