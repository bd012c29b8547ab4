"""Sales figures: daily aggregates for clean days, live queries for the rest, the same
numbers either way (a direct aggregation over orders)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import distinct, func, select, union_all

from shop.auth.models import User
from shop.db import db, get_or_404
from shop.inventory.low_stock import count_low_stock
from shop.orders.models import Order, OrderItem, OrderStatus
from shop.products.models import Product
from shop.reports.aggregates import (
    SALES,
    as_date,
    clean_days,
    each_day,
    in_days,
    on_days,
    today,
    utc_day,
)
from shop.reports.models import DailyProductSales, DailySales, DailyStatusCounts
from shop.schemas import CENT
from shop.security import Role

ZERO = Decimal("0.00")


# --- figures per day ------------------------------------------------------------------------


def sales_by_day(first: date, last: date) -> dict[date, dict[str, Any]]:
    """{day: {orders, items, revenue}} for every day of the range (zeros included)."""
    result = {d: {"orders": 0, "items": 0, "revenue": ZERO} for d in each_day(first, last)}
    clean = clean_days(first, last)
    for row in db.session.execute(
        select(DailySales).where(DailySales.day.between(first, last))
    ).scalars():
        day = as_date(row.day)
        if day in clean:
            result[day] = {"orders": row.orders, "items": row.items, "revenue": row.revenue}
    live = [d for d in result if d not in clean]
    if live:
        items = (
            select(func.coalesce(func.sum(OrderItem.quantity), 0))
            .where(OrderItem.order_id == Order.id)
            .scalar_subquery()
        )
        day_of = utc_day(Order.created_at).label("day")
        stmt = (
            select(day_of, func.count(Order.id), func.sum(items), func.sum(Order.total))
            .where(Order.status.in_(SALES), in_days(Order.created_at, live))
            .group_by(day_of)
        )
        for row_day, orders, item_count, revenue in db.session.execute(stmt):
            result[as_date(row_day)] = {
                "orders": int(orders),
                "items": int(item_count or 0),
                "revenue": Decimal(revenue or 0).quantize(CENT),
            }
    return result


def product_sales_by_day(product_id: int, first: date, last: date) -> dict[date, dict[str, Any]]:
    """{day: {units_sold, revenue, orders}} of one product, for days with sales."""
    clean = clean_days(first, last)
    result: dict[date, dict[str, Any]] = {}
    if clean:
        for row in db.session.scalars(
            select(DailyProductSales).where(
                DailyProductSales.product_id == product_id, DailyProductSales.day.in_(clean)
            )
        ):
            result[as_date(row.day)] = {
                "units_sold": row.units_sold, "revenue": row.revenue, "orders": row.orders,
            }  # fmt: skip
    live = [d for d in each_day(first, last) if d not in clean]
    if live:
        day_of = utc_day(Order.created_at).label("day")
        stmt = (
            select(
                day_of,
                func.sum(OrderItem.quantity),
                func.sum(OrderItem.line_total),
                func.count(distinct(OrderItem.order_id)),
            )
            .join(Order, Order.id == OrderItem.order_id)
            .where(
                OrderItem.product_id == product_id,
                Order.status.in_(SALES),
                in_days(Order.created_at, live),
            )
            .group_by(day_of)
        )
        for row_day, units, revenue, orders in db.session.execute(stmt):
            result[as_date(row_day)] = {
                "units_sold": int(units),
                "revenue": Decimal(revenue).quantize(CENT),
                "orders": int(orders),
            }
    return result


# --- reports --------------------------------------------------------------------------------


def _sum(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    totals = {"orders": 0, "items": 0, "revenue": ZERO}
    for row in rows:
        for key in totals:
            totals[key] += row[key]
    return totals


def _period_start(day: date, period: str) -> date:
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day


def sales_report(period: str, first: date, last: date) -> dict[str, Any]:
    span = (last - first).days + 1
    by_day = sales_by_day(first - timedelta(days=span), last)
    current = {d: v for d, v in by_day.items() if d >= first}
    previous = _sum(v for d, v in by_day.items() if d < first)
    grouped: dict[date, list[dict[str, Any]]] = defaultdict(list)
    for day, figures in sorted(current.items()):
        grouped[_period_start(day, period)].append(figures)
    totals = _sum(current.values())
    growth = None
    if previous["revenue"]:
        growth = float(
            ((totals["revenue"] - previous["revenue"]) * 100 / previous["revenue"]).quantize(
                CENT, rounding=ROUND_HALF_UP
            )
        )
    return {
        "period": period,
        "start": first,
        "end": last,
        "rows": [{"period_start": start, **_sum(rows)} for start, rows in grouped.items()],
        "totals": totals,
        "previous_totals": previous,
        "growth_pct": growth,
    }


def top_products(first: date, last: date, *, by: str, limit: int) -> dict[str, Any]:
    """Ranked in the database: aggregates of clean days plus live lines of the others."""
    clean = clean_days(first, last)
    live = [d for d in each_day(first, last) if d not in clean]
    parts = []
    if clean:
        parts.append(
            select(
                DailyProductSales.product_id.label("product_id"),
                DailyProductSales.units_sold.label("quantity"),
                DailyProductSales.revenue.label("revenue"),
            ).where(on_days(DailyProductSales.day, clean))
        )
    if live:
        parts.append(
            select(
                OrderItem.product_id.label("product_id"),
                OrderItem.quantity.label("quantity"),
                OrderItem.line_total.label("revenue"),
            )
            .join(Order, Order.id == OrderItem.order_id)
            .where(Order.status.in_(SALES), in_days(Order.created_at, live))
        )
    rows: list[dict[str, Any]] = []
    if parts:
        lines = union_all(*parts).subquery() if len(parts) > 1 else parts[0].subquery()
        quantity = func.sum(lines.c.quantity).label("quantity")
        revenue = func.sum(lines.c.revenue).label("revenue")
        ranked = (
            select(lines.c.product_id, quantity, revenue)
            .group_by(lines.c.product_id)
            .order_by((revenue if by == "revenue" else quantity).desc(), lines.c.product_id)
            .limit(limit)
            .subquery()
        )
        stmt = (
            select(ranked, Product.sku, Product.name)
            .outerjoin(Product, Product.id == ranked.c.product_id)
            .order_by(
                (ranked.c.revenue if by == "revenue" else ranked.c.quantity).desc(),
                ranked.c.product_id,
            )
        )
        rows = [
            {"product_id": r.product_id, "sku": r.sku, "name": r.name,
             "quantity": int(r.quantity), "revenue": Decimal(r.revenue).quantize(CENT)}
            for r in db.session.execute(stmt)
        ]  # fmt: skip
    return {"start": first, "end": last, "by": by, "rows": rows}


def order_status_counts(first: date, last: date) -> dict[str, Any]:
    counts = dict.fromkeys((s.value for s in OrderStatus), 0)
    clean = clean_days(first, last)
    if clean:
        for status, orders in db.session.execute(
            select(DailyStatusCounts.status, func.sum(DailyStatusCounts.orders))
            .where(on_days(DailyStatusCounts.day, clean))
            .group_by(DailyStatusCounts.status)
        ):
            counts[status] += int(orders)
    live = [d for d in each_day(first, last) if d not in clean]
    if live:
        for status, orders in db.session.execute(
            select(Order.status, func.count(Order.id))
            .where(in_days(Order.created_at, live))
            .group_by(Order.status)
        ):
            counts[status] += orders
    return {"start": first, "end": last, "counts": counts}


def product_report(product_id: int, first: date, last: date) -> dict[str, Any]:
    get_or_404(Product, product_id)
    sales = product_sales_by_day(product_id, first, last)
    rows = []
    for day in each_day(first, last):
        figures = sales.get(day, {"units_sold": 0, "revenue": ZERO, "orders": 0})
        rows.append({"date": day, **figures})
    return {
        "product_id": product_id,
        "start": first,
        "end": last,
        "units_sold": sum(r["units_sold"] for r in rows),
        "revenue": sum((r["revenue"] for r in rows), ZERO),
        "orders": sum(r["orders"] for r in rows),
        "rows": rows,
    }


def dashboard() -> dict[str, Any]:
    now = today()
    by_day = sales_by_day(now - timedelta(days=29), now)

    def window(days: int) -> dict[str, Any]:
        return _sum(v for d, v in by_day.items() if d > now - timedelta(days=days))

    day, week, month = window(1), window(7), window(30)
    since = datetime.combine(now - timedelta(days=29), time(), UTC)
    customers = select(func.count(User.id)).where(User.role == Role.CUSTOMER)
    return {
        "revenue": {"today": day["revenue"], "last_7_days": week["revenue"],
                    "last_30_days": month["revenue"]},
        "orders": {
            "today": day["orders"], "last_7_days": week["orders"],
            "last_30_days": month["orders"],
            "pending": db.session.scalar(
                # count(*): an index-only scan of (status, created_at)
                select(func.count()).select_from(Order).where(Order.status == OrderStatus.PENDING)),
        },
        "average_order_value": (month["revenue"] / month["orders"]).quantize(
            CENT, rounding=ROUND_HALF_UP) if month["orders"] else ZERO,
        "customers": {
            "total": db.session.scalar(customers),
            "new_last_30_days": db.session.scalar(customers.where(User.created_at >= since)),
        },
        "low_stock_count": count_low_stock(),
    }  # fmt: skip
