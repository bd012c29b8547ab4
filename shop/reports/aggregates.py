"""The daily aggregates: which days are clean, a day marked dirty by an order change (or a late
interaction), a day recomputed (with each product's totals over every day, and its views and
cart adds), and the UTC-day arithmetic the reports share."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Select,
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
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from shop.db import (
    UTCDateTime,
    db,
    insert_ignoring_conflicts,
    is_postgres,
    unit_of_work,
    utcnow,
)
from shop.orders.models import SALE_STATUSES, Order, OrderItem
from shop.reports.models import (
    DailyProductInteractions,
    DailyProductSales,
    DailySales,
    DailyStatusCounts,
    DirtyDay,
    Interaction,
    InteractionKind,
    ProductSalesTotals,
)

SALES = [s.value for s in SALE_STATUSES]


def today() -> date:
    return utcnow().date()


def bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """[first 00:00 UTC, the day after last 00:00 UTC)."""
    return (
        datetime.combine(first, time(), UTC),
        datetime.combine(last + timedelta(days=1), time(), UTC),
    )


def utc_day(column: Any) -> ColumnElement[Any]:
    if is_postgres():
        return func.date(func.timezone("UTC", column))
    return func.date(column)


def as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def each_day(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def ranges(days: Iterable[date]) -> list[tuple[date, date]]:
    """Consecutive days merged into (first, last) ranges."""
    ranges: list[tuple[date, date]] = []
    for day in sorted(days):
        if ranges and ranges[-1][1] + timedelta(days=1) == day:
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


def on_days(column: Any, days: Iterable[date]) -> ColumnElement[bool]:
    """`column` (a date) on one of `days`, as ranges: a year is one range scan, not 365 probes."""
    return or_(*[column.between(a, b) for a, b in ranges(days)])


def in_days(column: Any, days: Iterable[date]) -> ColumnElement[bool]:
    spans = [bounds(a, b) for a, b in ranges(days)]
    return (
        or_(*[and_(column >= lo, column < hi) for lo, hi in spans]) if spans else (column != column)
    )


def clean_days(first: date, last: date) -> set[date]:
    """Days in the range whose aggregates are present and not stale."""
    rows = db.session.scalars(
        select(DailySales.day).where(
            DailySales.day.between(first, last),
            ~select(DirtyDay.day).where(DirtyDay.day == DailySales.day).exists(),
        )
    )
    return {as_date(d) for d in rows}


# --- recomputing ----------------------------------------------------------------------------


def mark_dirty(created_at: datetime) -> None:
    """In an order change's transaction: the aggregates of the (past) day the order was
    created on must be recomputed."""
    day = created_at.astimezone(UTC).date()
    if day >= today():
        return  # today is never aggregated; it is always read live
    if is_postgres():
        # Shared with other markers, exclusive against the job recomputing this day.
        db.session.execute(select(func.pg_advisory_xact_lock_shared(_day_lock(day))))
    db.session.execute(insert_ignoring_conflicts(DirtyDay).values(day=day))


def _day_lock(day: date) -> int:
    return 7_000_000_000 + day.toordinal()


# Days recomputed at once (two backfills) would otherwise lock the same totals rows in
# different orders and deadlock; taken after the day's lock, always.
TOTALS_LOCK = 7_100_000_000


def _move_totals(day: date, sold: Select[Any]) -> None:
    """Add to each product's totals the change of its figures on `day`: what `sold` finds
    now less its daily row, about to be replaced. Written only where they differ (a day
    recomputed as it was writes nothing); a product's first sale creates its row."""
    new = sold.subquery()
    change = union_all(
        select(new.c.product_id, new.c.units_sold, new.c.revenue),
        select(
            DailyProductSales.product_id, -DailyProductSales.units_sold, -DailyProductSales.revenue
        ).where(DailyProductSales.day == day),
    ).subquery()
    units, revenue = func.sum(change.c.units_sold), func.sum(change.c.revenue)
    upsert = (pg_insert if is_postgres() else sqlite_insert)(ProductSalesTotals)
    db.session.execute(
        upsert.from_select(
            ["product_id", "units_sold", "revenue"],
            select(change.c.product_id, units, revenue)
            .group_by(change.c.product_id)
            .having(or_(units != 0, revenue != 0)),
        ).on_conflict_do_update(
            index_elements=[ProductSalesTotals.product_id],
            set_={
                "units_sold": ProductSalesTotals.units_sold + upsert.excluded.units_sold,
                "revenue": ProductSalesTotals.revenue + upsert.excluded.revenue,
            },
        )
    )


def aggregate_day(day: date) -> dict[str, Any]:
    """Recompute one closed day's aggregates, and move the products' totals by the change;
    the same rows however often, or however many at once, it runs."""
    if day >= today():
        raise ValueError("only closed (past) days are aggregated")
    first, last = bounds(day, day)
    with unit_of_work() as session:
        if is_postgres():
            session.execute(select(func.pg_advisory_xact_lock(_day_lock(day))))
        # Typed: SQLite's now() comes back naive, and marked_at compares only with UTC times.
        started = session.scalar(select(func.now(type_=UTCDateTime())))
        in_day = and_(Order.status.in_(SALES), Order.created_at >= first, Order.created_at < last)
        orders, revenue = session.execute(
            select(func.count(Order.id), func.coalesce(func.sum(Order.total), 0)).where(in_day)
        ).one()
        items = session.scalar(
            select(func.coalesce(func.sum(OrderItem.quantity), 0))
            .join(Order, Order.id == OrderItem.order_id)
            .where(in_day)
        )
        sold = (
            select(
                OrderItem.product_id,
                func.sum(OrderItem.quantity).label("units_sold"),
                func.sum(OrderItem.line_total).label("revenue"),
            )
            .join(Order, Order.id == OrderItem.order_id)
            .where(in_day)
            .group_by(OrderItem.product_id)
        )
        if is_postgres():
            session.execute(select(func.pg_advisory_xact_lock(TOTALS_LOCK)))
        _move_totals(day, sold)
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
                ["product_id", "units_sold", "revenue", "orders", "day"],
                sold.add_columns(func.count(distinct(OrderItem.order_id)), literal(day, Date())),
            )
        )
        _aggregate_interactions(day)
        session.execute(delete(DirtyDay).where(DirtyDay.day == day, DirtyDay.marked_at <= started))
    return {"day": day.isoformat(), "orders": orders, "revenue": str(revenue)}


def interaction_counts() -> tuple[Any, Any]:
    """A product's views and cart adds, as sums over its interactions."""
    return (
        func.count().filter(Interaction.kind == InteractionKind.VIEW.value).label("views"),
        func.count().filter(Interaction.kind == InteractionKind.CART_ADD.value).label("cart_adds"),
    )


def _aggregate_interactions(day: date) -> None:
    """The day's views and cart adds of each product that had any."""
    first, last = bounds(day, day)
    views, cart_adds = interaction_counts()
    db.session.execute(delete(DailyProductInteractions).where(DailyProductInteractions.day == day))
    db.session.execute(
        insert(DailyProductInteractions).from_select(
            ["day", "product_id", "views", "cart_adds"],
            select(literal(day, Date()), Interaction.product_id, views, cart_adds)
            .where(
                Interaction.created_at >= first,
                Interaction.created_at < last,
                Interaction.kind.in_([InteractionKind.VIEW.value, InteractionKind.CART_ADD.value]),
            )
            .group_by(Interaction.product_id),
        )
    )


def days_to_aggregate() -> list[date]:
    """Dirty past days, and every closed day since the last aggregated one (or the first
    order), up to yesterday."""
    yesterday = today() - timedelta(days=1)
    last_done = db.session.scalar(select(func.max(DailySales.day)))
    if last_done is not None:
        start = as_date(last_done) + timedelta(days=1)
    else:
        first_order = db.session.scalar(select(func.min(Order.created_at)))
        start = first_order.astimezone(UTC).date() if first_order else yesterday + timedelta(1)
    dirty = {as_date(d) for d in db.session.scalars(select(DirtyDay.day))}
    return sorted({*dirty, *each_day(start, yesterday)} - {d for d in dirty if d > yesterday})
