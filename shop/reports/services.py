"""Sales figures: daily aggregates for clean days, live queries for the rest, the same
numbers either way (a direct aggregation over orders)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import CTE, Select, distinct, func, select, union_all

from shop.auth.models import User
from shop.db import Page, db, get_or_404
from shop.inventory.low_stock import count_low_stock
from shop.orders.models import Order, OrderItem, OrderStatus
from shop.products.models import Product, category_and_descendants
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
from shop.reports.behaviour import product_interactions_by_day
from shop.reports.models import (
    DailyProductSales,
    DailySales,
    DailyStatusCounts,
    ProductSalesTotals,
)
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


def sales_report(
    period: str,
    first: date,
    last: date,
    sales_of: Callable[[date, date], dict[date, dict[str, Any]]] = sales_by_day,
) -> dict[str, Any]:
    """The range's sales (`sales_of`: the store's sales_by_day, or a seller's) by period, with
    totals and the previous period's of the same length."""
    span = (last - first).days + 1
    by_day = sales_of(first - timedelta(days=span), last)
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


# Top products over long ranges ranks only candidates: the seeds (the best totals) say how good
# the range's last row is at least, and only products whose bound reaches that can beat it.
SEEDS_PER_ROW = 4
# A month's or a week's bar is low (half of a million products reach a month's): so many
# candidates gain nothing, and those ranges are ranked directly. At 5,000 the candidates'
# ranking still cost a sixth of the direct one over a month, a tenth over a year (measured).
MAX_CANDIDATES = 5_000


def _ranked(
    clean: set[date],
    live: list[date],
    by: str,
    limit: int,
    among: CTE | None = None,
) -> list[dict[str, Any]]:
    """The range's best `limit` products (of those `among` when given: a CTE, so that both
    kinds of day read one evaluation of it), ranked in the database: aggregates of clean days
    plus live lines of the others, ties by product id."""
    ids = None if among is None else select(among.c.product_id)
    parts = []
    if clean:
        part = select(
            DailyProductSales.product_id.label("product_id"),
            DailyProductSales.units_sold.label("quantity"),
            DailyProductSales.revenue.label("revenue"),
        ).where(on_days(DailyProductSales.day, clean))
        parts.append(part if ids is None else part.where(DailyProductSales.product_id.in_(ids)))
    if live:
        part = _live_lines(live, OrderItem.quantity.label("quantity"),
                           OrderItem.line_total.label("revenue"))  # fmt: skip
        parts.append(part if ids is None else part.where(OrderItem.product_id.in_(ids)))
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
    return [
        {"product_id": r.product_id, "sku": r.sku, "name": r.name,
         "quantity": int(r.quantity), "revenue": Decimal(r.revenue).quantize(CENT)}
        for r in db.session.execute(stmt)
    ]  # fmt: skip


def _live_lines(live: list[date], *columns: Any) -> Select[Any]:
    """Order lines of sales created on the `live` days."""
    return (
        select(OrderItem.product_id.label("product_id"), *columns)
        .join(Order, Order.id == OrderItem.order_id)
        .where(Order.status.in_(SALES), in_days(Order.created_at, live))
    )


def _ranked_among_candidates(
    clean: set[date], live: list[date], by: str, limit: int
) -> list[dict[str, Any]] | None:
    """The range's best `limit` products, ranked among few candidates; None when there would
    be too many to gain anything (then the caller ranks every product).

    Sales are never negative, so a product's figure over the range is at most its totals over
    every aggregated day plus its sales on the range's live days (which the totals may lack).
    If T is the range's `limit`-th best figure among the seeds, the top `limit` all have
    figures >= T, so they are among the products whose bound reaches T: ranking those is
    exact, ties included. The bound, not every product sold on a live day: at a million orders
    a year, a dirty day (any status change of an older order marks its day) or today sells
    some 4,000 products, too many candidates."""
    total = ProductSalesTotals.revenue if by == "revenue" else ProductSalesTotals.units_sold
    key = "revenue" if by == "revenue" else "quantity"
    seeds = (
        select(ProductSalesTotals.product_id)
        .order_by(total.desc(), ProductSalesTotals.product_id)
        .limit(SEEDS_PER_ROW * limit)
        .cte("seeds")
    )
    best = _ranked(clean, live, by, limit, among=seeds)
    if len(best) < limit:
        return None
    threshold = best[-1][key]
    reaching = select(ProductSalesTotals.product_id).where(total >= threshold)
    reaching_live = []
    if live:
        # The totals are looked up per product sold (a join would read all of them), and only
        # products they do not bring in already: each candidate comes once.
        line = OrderItem.line_total if by == "revenue" else OrderItem.quantity
        of_product = ProductSalesTotals.product_id == OrderItem.product_id
        known = func.coalesce(select(total).where(of_product).scalar_subquery(), 0)
        sold = (
            _live_lines(live, func.sum(line).label("sold"), known.label("known"))
            .group_by(OrderItem.product_id)
            .subquery()
        )
        reaching_live.append(
            select(sold.c.product_id).where(
                sold.c.known < threshold, sold.c.known + sold.c.sold >= threshold
            )
        )
    # UNION ALL is read lazily: a count that passes the cap stops the scan of the totals'
    # index there (a month's threshold is reached by half the catalog); past the cap, nothing
    # is ranked.
    candidates = union_all(reaching, *reaching_live).cte("candidates")
    counted = select(candidates.c.product_id).limit(MAX_CANDIDATES + 1).subquery()
    few = select(func.count()).select_from(counted).scalar_subquery() <= MAX_CANDIDATES
    among = select(candidates.c.product_id).where(few).cte("few_candidates")
    rows = _ranked(clean, live, by, limit, among=among)
    # Too many candidates leave fewer rows than asked; and the seeds' figures were read a
    # statement earlier: a day recomputed since (an order cancelled) may have lowered the
    # figures below T, and then the bound proves nothing.
    if len(rows) < limit or rows[-1][key] < threshold:
        return None
    return rows


def top_products(first: date, last: date, *, by: str, limit: int) -> dict[str, Any]:
    """The best sellers of the range: among candidates when few can make it (a long range),
    else every product ranked; the same rows either way."""
    clean = clean_days(first, last)
    live = [d for d in each_day(first, last) if d not in clean]
    rows = _ranked_among_candidates(clean, live, by, limit)
    if rows is None:
        rows = _ranked(clean, live, by, limit)
    return {"start": first, "end": last, "by": by, "rows": rows}


def best_sellers(*, days: int, limit: int, category: int | None = None) -> Page:
    """The storefront's best sellers: active products (of `category` and its subcategories)
    ranked by units sold in the last `days` days, today included, ties by product id."""
    last = today()
    first = last - timedelta(days=days - 1)
    clean = clean_days(first, last)
    live = [d for d in each_day(first, last) if d not in clean]
    shown = select(Product.id.label("product_id")).where(Product.is_active.is_(True))
    if category is not None:
        shown = shown.where(Product.category_id.in_(category_and_descendants(category)))
    rows = _ranked(clean, live, "quantity", limit, among=shown.cte("shown"))
    products = {
        p.id: p
        for p in db.session.scalars(
            select(Product).where(Product.id.in_([r["product_id"] for r in rows]))
        )
    }
    items = [{"product": products[r["product_id"]], "units_sold": r["quantity"]} for r in rows]
    return Page(items=items, page=1, page_size=limit, total=len(items))


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
    interactions = product_interactions_by_day(product_id, first, last)
    rows = []
    for day in each_day(first, last):
        figures = sales.get(day, {"units_sold": 0, "revenue": ZERO, "orders": 0})
        rows.append({"date": day, **figures,
                     **interactions.get(day, {"views": 0, "cart_adds": 0})})  # fmt: skip
    orders, views = sum(r["orders"] for r in rows), sum(r["views"] for r in rows)
    return {
        "product_id": product_id,
        "start": first,
        "end": last,
        "units_sold": sum(r["units_sold"] for r in rows),
        "revenue": sum((r["revenue"] for r in rows), ZERO),
        "orders": orders,
        "views": views,
        "cart_adds": sum(r["cart_adds"] for r in rows),
        "conversion_rate": round(orders / views, 4) if views else None,
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
