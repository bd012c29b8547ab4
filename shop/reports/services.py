"""Sales figures: daily aggregates for closed days, live queries for the rest, the same
numbers either way (a direct aggregation over orders)."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    and_,
    delete,
    distinct,
    func,
    insert,
    literal,
    or_,
    select,
    union_all,
)

from shop.auth.models import User
from shop.db import insert_ignoring_conflicts, is_postgres, unit_of_work, utcnow
from shop.errors import NotFound
from shop.extensions import db
from shop.inventory.services import count_low_stock
from shop.orders.models import SALE_STATUSES, Order, OrderItem, OrderStatus
from shop.products.models import Product
from shop.reports.models import DailyProductSales, DailySales, DailyStatusCounts, DirtyDay
from shop.schemas import CENT
from shop.security import Role

ZERO = Decimal("0.00")
SALES = [s.value for s in SALE_STATUSES]


def today() -> date:
    return utcnow().date()


def _bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """[first 00:00 UTC, the day after last 00:00 UTC)."""
    return (
        datetime.combine(first, time(), UTC),
        datetime.combine(last + timedelta(days=1), time(), UTC),
    )


def _utc_day(column: Any) -> ColumnElement[Any]:
    if is_postgres():
        return func.date(func.timezone("UTC", column))
    return func.date(column)


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _days(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def _ranges(days: Iterable[date]) -> list[tuple[date, date]]:
    """Consecutive days merged into (first, last) ranges."""
    ranges: list[tuple[date, date]] = []
    for day in sorted(days):
        if ranges and ranges[-1][1] + timedelta(days=1) == day:
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


def _on_days(column: Any, days: Iterable[date]) -> ColumnElement[bool]:
    """`column` (a date) on one of `days`, as ranges: a year is one range scan, not 365 probes."""
    return or_(*[column.between(a, b) for a, b in _ranges(days)])


def _in_days(column: Any, days: Iterable[date]) -> ColumnElement[bool]:
    spans = [_bounds(a, b) for a, b in _ranges(days)]
    return (
        or_(*[and_(column >= lo, column < hi) for lo, hi in spans]) if spans else (column != column)
    )


def _clean_days(first: date, last: date) -> set[date]:
    """Days in the range whose aggregates are present and not stale."""
    rows = db.session.scalars(
        select(DailySales.day).where(
            DailySales.day.between(first, last),
            ~select(DirtyDay.day).where(DirtyDay.day == DailySales.day).exists(),
        )
    )
    return {_as_date(d) for d in rows}


# --- figures per day ------------------------------------------------------------------------


def sales_by_day(first: date, last: date) -> dict[date, dict[str, Any]]:
    """{day: {orders, items, revenue}} for every day of the range (zeros included)."""
    result = {d: {"orders": 0, "items": 0, "revenue": ZERO} for d in _days(first, last)}
    clean = _clean_days(first, last)
    for row in db.session.execute(
        select(DailySales).where(DailySales.day.between(first, last))
    ).scalars():
        day = _as_date(row.day)
        if day in clean:
            result[day] = {"orders": row.orders, "items": row.items, "revenue": row.revenue}
    live = [d for d in result if d not in clean]
    if live:
        items = (
            select(func.coalesce(func.sum(OrderItem.quantity), 0))
            .where(OrderItem.order_id == Order.id)
            .scalar_subquery()
        )
        day_of = _utc_day(Order.created_at).label("day")
        stmt = (
            select(day_of, func.count(Order.id), func.sum(items), func.sum(Order.total))
            .where(Order.status.in_(SALES), _in_days(Order.created_at, live))
            .group_by(day_of)
        )
        for row_day, orders, item_count, revenue in db.session.execute(stmt):
            result[_as_date(row_day)] = {
                "orders": int(orders),
                "items": int(item_count or 0),
                "revenue": Decimal(revenue or 0).quantize(CENT),
            }
    return result


def product_sales_by_day(product_id: int, first: date, last: date) -> dict[date, dict[str, Any]]:
    """{day: {units_sold, revenue, orders}} of one product, for days with sales."""
    clean = _clean_days(first, last)
    result: dict[date, dict[str, Any]] = {}
    if clean:
        for row in db.session.scalars(
            select(DailyProductSales).where(
                DailyProductSales.product_id == product_id, DailyProductSales.day.in_(clean)
            )
        ):
            result[_as_date(row.day)] = {
                "units_sold": row.units_sold, "revenue": row.revenue, "orders": row.orders,
            }  # fmt: skip
    live = [d for d in _days(first, last) if d not in clean]
    if live:
        day_of = _utc_day(Order.created_at).label("day")
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
                _in_days(Order.created_at, live),
            )
            .group_by(day_of)
        )
        for row_day, units, revenue, orders in db.session.execute(stmt):
            result[_as_date(row_day)] = {
                "units_sold": int(units),
                "revenue": Decimal(revenue).quantize(CENT),
                "orders": int(orders),
            }
    return result


# --- the daily-sales job --------------------------------------------------------------------


def mark_dirty(order: Order) -> None:
    """In an order change's transaction: its (past) day's aggregates must be recomputed."""
    day = order.created_at.astimezone(UTC).date()
    if day >= today():
        return  # today is never aggregated; it is always read live
    if is_postgres():
        # Shared with other markers, exclusive against the job recomputing this day.
        db.session.execute(select(func.pg_advisory_xact_lock_shared(_day_lock(day))))
    db.session.execute(insert_ignoring_conflicts(DirtyDay).values(day=day))


def _day_lock(day: date) -> int:
    return 7_000_000_000 + day.toordinal()


def aggregate_day(day: date) -> dict[str, Any]:
    """Recompute one closed day's aggregates; the same rows however often, or however many
    at once, it runs."""
    if day >= today():
        raise ValueError("only closed (past) days are aggregated")
    first, last = _bounds(day, day)
    with unit_of_work() as session:
        if is_postgres():
            session.execute(select(func.pg_advisory_xact_lock(_day_lock(day))))
        started = session.scalar(select(func.now()))
        in_day = and_(Order.status.in_(SALES), Order.created_at >= first, Order.created_at < last)
        orders, revenue = session.execute(
            select(func.count(Order.id), func.coalesce(func.sum(Order.total), 0)).where(in_day)
        ).one()
        items = session.scalar(
            select(func.coalesce(func.sum(OrderItem.quantity), 0))
            .join(Order, Order.id == OrderItem.order_id)
            .where(in_day)
        )
        session.execute(delete(DailySales).where(DailySales.day == day))
        session.execute(delete(DailyProductSales).where(DailyProductSales.day == day))
        session.execute(delete(DailyStatusCounts).where(DailyStatusCounts.day == day))
        session.execute(
            insert(DailyStatusCounts).from_select(
                ["day", "status", "orders"],
                select(literal(day, Date()), Order.status, func.count(Order.id))
                .where(Order.created_at >= first, Order.created_at < last)
                .group_by(Order.status),
            )
        )
        session.add(DailySales(day=day, orders=orders, items=int(items or 0),
                               revenue=Decimal(revenue)))  # fmt: skip
        session.execute(
            insert(DailyProductSales).from_select(
                ["day", "product_id", "units_sold", "revenue", "orders"],
                select(
                    literal(day, Date()),
                    OrderItem.product_id,
                    func.sum(OrderItem.quantity),
                    func.sum(OrderItem.line_total),
                    func.count(distinct(OrderItem.order_id)),
                )
                .join(Order, Order.id == OrderItem.order_id)
                .where(in_day)
                .group_by(OrderItem.product_id),
            )
        )
        session.execute(delete(DirtyDay).where(DirtyDay.day == day, DirtyDay.marked_at <= started))
    return {"day": day.isoformat(), "orders": orders, "revenue": str(revenue)}


def days_to_aggregate() -> list[date]:
    """Dirty past days, and every closed day since the last aggregated one (or the first
    order), up to yesterday."""
    yesterday = today() - timedelta(days=1)
    last_done = db.session.scalar(select(func.max(DailySales.day)))
    if last_done is not None:
        start = _as_date(last_done) + timedelta(days=1)
    else:
        first_order = db.session.scalar(select(func.min(Order.created_at)))
        start = first_order.astimezone(UTC).date() if first_order else yesterday + timedelta(1)
    dirty = {_as_date(d) for d in db.session.scalars(select(DirtyDay.day))}
    return sorted({*dirty, *_days(start, yesterday)} - {d for d in dirty if d > yesterday})


def daily_sales_job() -> dict[str, Any]:
    """The `daily-sales` job."""
    days = days_to_aggregate()
    db.session.rollback()
    for day in days:
        aggregate_day(day)
    return {"days": len(days), "first": str(days[0]) if days else None,
            "last": str(days[-1]) if days else None}  # fmt: skip


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
    clean = _clean_days(first, last)
    live = [d for d in _days(first, last) if d not in clean]
    parts = []
    if clean:
        parts.append(
            select(
                DailyProductSales.product_id.label("product_id"),
                DailyProductSales.units_sold.label("quantity"),
                DailyProductSales.revenue.label("revenue"),
            ).where(_on_days(DailyProductSales.day, clean))
        )
    if live:
        parts.append(
            select(
                OrderItem.product_id.label("product_id"),
                OrderItem.quantity.label("quantity"),
                OrderItem.line_total.label("revenue"),
            )
            .join(Order, Order.id == OrderItem.order_id)
            .where(Order.status.in_(SALES), _in_days(Order.created_at, live))
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
    clean = _clean_days(first, last)
    if clean:
        for status, orders in db.session.execute(
            select(DailyStatusCounts.status, func.sum(DailyStatusCounts.orders))
            .where(_on_days(DailyStatusCounts.day, clean))
            .group_by(DailyStatusCounts.status)
        ):
            counts[status] += int(orders)
    live = [d for d in _days(first, last) if d not in clean]
    if live:
        for status, orders in db.session.execute(
            select(Order.status, func.count(Order.id))
            .where(_in_days(Order.created_at, live))
            .group_by(Order.status)
        ):
            counts[status] += orders
    return {"start": first, "end": last, "counts": counts}


def product_report(product_id: int, first: date, last: date) -> dict[str, Any]:
    if db.session.get(Product, product_id) is None:
        raise NotFound(f"Product {product_id} does not exist.")
    sales = product_sales_by_day(product_id, first, last)
    rows = []
    for day in _days(first, last):
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


def to_csv(columns: list[str], rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore",
                            lineterminator="\n")  # fmt: skip
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
