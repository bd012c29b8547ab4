"""Catalog jobs: the popularity figure behind sort=popularity."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from shop.caching import CATALOG, invalidate
from shop.db import unit_of_work, utcnow
from shop.orders.models import Order, OrderItem, OrderStatus
from shop.products.models import Product

POPULARITY_DAYS = 30


def refresh_popularity() -> dict[str, int]:
    """Set every product's sales_count to its units ordered (not cancelled or refunded) in
    the last 30 days. Computed here, hourly, rather than in checkout, so that a sale adds no
    write to the hot product row it has locked."""
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
    return {"updated": result.rowcount}  # type: ignore[attr-defined]
