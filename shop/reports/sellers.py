"""A seller's sales: the figures of /reports/sales over the order lines of their products."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import distinct, func, select

from shop.auth.models import User
from shop.auth.policy import SELLER_LINES
from shop.db import db
from shop.orders.models import Order, OrderItem
from shop.products.models import Product
from shop.reports.aggregates import SALES, as_date, bounds, each_day, utc_day
from shop.schemas import CENT


def sales_by_day(seller: User, first: date, last: date) -> dict[date, dict[str, Any]]:
    """{day: {orders, items, revenue}} of the seller's lines, every day of the range: orders
    holding one of them, their units, and what those lines came to (after discounts, before
    tax and shipping). Read live in one statement: the daily aggregates are the store's."""
    result = {
        d: {"orders": 0, "items": 0, "revenue": Decimal("0.00")} for d in each_day(first, last)
    }
    start, end = bounds(first, last)
    day_of = utc_day(Order.created_at).label("day")
    stmt = (
        select(
            day_of,
            func.count(distinct(Order.id)),
            func.sum(OrderItem.quantity),
            func.sum(OrderItem.line_total),
        )
        .select_from(OrderItem)
        .join(Order, Order.id == OrderItem.order_id)
        .join(Product, Product.id == OrderItem.product_id)
        .where(
            SELLER_LINES.scope(seller, Product.seller_id),
            Order.status.in_(SALES),
            Order.created_at >= start,
            Order.created_at < end,
        )
        .group_by(day_of)
    )
    for day, orders, items, revenue in db.session.execute(stmt):
        result[as_date(day)] = {
            "orders": int(orders),
            "items": int(items or 0),
            "revenue": Decimal(revenue or 0).quantize(CENT),
        }
    return result
