"""Report jobs: the daily aggregates, and each product's popularity."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, func, select, update

from shop.caching import invalidate
from shop.db import db, unit_of_work, utcnow
from shop.orders.models import Order, OrderItem, OrderStatus
from shop.products.cache import CATALOG
from shop.products.models import Product
from shop.reports.aggregates import aggregate_day, days_to_aggregate

POPULARITY_DAYS = 30


def daily_sales_job() -> dict[str, Any]:
    """The `daily-sales` job."""
    days = days_to_aggregate()
    db.session.rollback()
    for day in days:
        aggregate_day(day)
    return {"days": len(days), "first": str(days[0]) if days else None,
            "last": str(days[-1]) if days else None}  # fmt: skip


def refresh_popularity() -> dict[str, int]:
    """The `popularity` job: every product's sales_count (sort=popularity) becomes its units
    ordered (not cancelled or refunded) in the last 30 days. Computed here, hourly, rather
    than in checkout, so that a sale adds no write to the hot product row it has locked."""
    since = utcnow() - timedelta(days=POPULARITY_DAYS)
    units = (
        select(func.coalesce(func.sum(OrderItem.quantity), 0))
        .join(Order, Order.id == OrderItem.order_id)
        .where(
            OrderItem.product_id == Product.id,
            Order.created_at >= since,
            Order.status.not_in([OrderStatus.CANCELLED, OrderStatus.REFUNDED]),
        )
        .scalar_subquery()
    )
    with unit_of_work() as session:
        result = session.execute(
            update(Product)
            .where(Product.sales_count != units)
            .values(sales_count=units)
            .execution_options(synchronize_session=False)
        )
        invalidate(CATALOG)
    return {"updated": cast(CursorResult[Any], result).rowcount}
