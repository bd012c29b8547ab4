"""Daily sales aggregates, written by the `daily-sales` job, each product's sum of them, and
the days to recompute."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, ForeignKey, Index, Numeric, String, func
from sqlalchemy.orm import Mapped, mapped_column

from shop.db import Base

REVENUE = Numeric(14, 2)


class DailySales(Base):
    """Sales (orders paid, processing, shipped or delivered) of one UTC day, by creation day."""

    __tablename__ = "report_daily_sales"

    day: Mapped[date] = mapped_column(primary_key=True)
    orders: Mapped[int]
    items: Mapped[int]
    revenue: Mapped[Decimal] = mapped_column(REVENUE)
    computed_at: Mapped[datetime] = mapped_column(server_default=func.now())


class DailyProductSales(Base):
    __tablename__ = "report_daily_product_sales"

    day: Mapped[date] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    units_sold: Mapped[int]
    revenue: Mapped[Decimal] = mapped_column(REVENUE)
    orders: Mapped[int]


class ProductSalesTotals(Base):
    """A product's daily rows summed over every day ever aggregated (kept in step by
    `aggregate_day`): no range's figures over aggregated days can exceed them, which lets top
    products skip every product whose totals (and live sales) fall short of the range's best."""

    __tablename__ = "report_product_sales_totals"

    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), primary_key=True
    )
    # Wider than a day's columns: these add up every day there ever was.
    units_sold: Mapped[int] = mapped_column(BigInteger)
    revenue: Mapped[Decimal] = mapped_column(Numeric(16, 2))


# Top products reads the best totals first and then those at or above a threshold.
Index(
    "ix_report_product_sales_totals_units_sold",
    ProductSalesTotals.units_sold.desc(),
    ProductSalesTotals.product_id,
)
Index(
    "ix_report_product_sales_totals_revenue",
    ProductSalesTotals.revenue.desc(),
    ProductSalesTotals.product_id,
)


class DirtyDay(Base):
    """A day whose aggregates an order change made stale (marked in that change's
    transaction); reports read it live until the job recomputes it."""

    __tablename__ = "report_dirty_days"

    day: Mapped[date] = mapped_column(primary_key=True)
    marked_at: Mapped[datetime] = mapped_column(server_default=func.now())


class DailyStatusCounts(Base):
    """Orders created on a day, by their current status (recomputed with the day)."""

    __tablename__ = "report_daily_status_counts"

    day: Mapped[date] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    orders: Mapped[int]
