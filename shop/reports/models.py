"""Daily sales aggregates, written by the `daily-sales` job, and the days to recompute."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Numeric, String, func
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
