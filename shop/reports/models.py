"""Daily sales aggregates, written by the `daily-sales` job, each product's sum of them, and
the days to recompute; customers' behaviour (interactions with products, searches), written in
bulk by the `interactions` job, and its daily figures per product."""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    func,
    text,
)
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


class InteractionKind(enum.StrEnum):
    VIEW = "view"
    CART_ADD = "cart_add"
    WISHLIST_ADD = "wishlist_add"
    PURCHASE = "purchase"  # an order line, when the order is paid
    RATING = "rating"  # a review's stars, given or changed


class Interaction(Base):
    """A customer's (or an anonymous session's, until it logs in) interaction with a product:
    `value` is the quantity of a cart add or purchase, the stars of a rating."""

    __tablename__ = "interactions"
    __table_args__ = (
        CheckConstraint("user_id IS NOT NULL OR session_id IS NOT NULL", name="someone"),
        # A customer's history (recommendations, cold start), newest last.
        Index("ix_interactions_user_created", "user_id", "created_at"),
        # A product's figures per day (its report on days not yet aggregated).
        Index("ix_interactions_product_kind_created", "product_id", "kind", "created_at"),
        # A day's figures (the daily aggregates).
        Index("ix_interactions_created_at", "created_at"),
        # A session's interactions, given to the account that logs in with it.
        Index(
            "ix_interactions_anonymous_session",
            "session_id",
            postgresql_where=text("user_id IS NULL"),
            sqlite_where=text("user_id IS NULL"),
        ),
    )

    # BIGINT on PostgreSQL; SQLite numbers only an INTEGER PRIMARY KEY by itself.
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    session_id: Mapped[str | None] = mapped_column(String(128))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class SearchSource(enum.StrEnum):
    LIST = "list"  # GET /products?q=
    SUGGESTIONS = "suggestions"  # GET /products/suggestions


class SearchQuery(Base):
    """A search made (GET /products?q=, suggestions): the query as normalised (lowercase,
    spaces collapsed) and how many results it had. Whose it was is not kept."""

    __tablename__ = "search_queries"
    __table_args__ = (Index("ix_search_queries_created_query", "created_at", "query"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    query: Mapped[str] = mapped_column(String(200))
    results: Mapped[int]
    source: Mapped[str] = mapped_column(String(16))  # SearchSource
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class SessionLogin(Base):
    """An anonymous session (X-Session-ID) logged in as a user: its interactions written
    since, even those another process sent after the login, are the user's. Kept a day."""

    __tablename__ = "session_logins"

    session_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    logged_in_at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)


class InteractionBatch(Base):
    """A batch of facts written (shop.tracking's token): a run that wrote it and died before
    clearing it in Redis is not written twice. Pruned after a day."""

    __tablename__ = "interaction_batches"

    token: Mapped[str] = mapped_column(String(36), primary_key=True)
    applied_at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)


class DailyProductInteractions(Base):
    """A product's views and cart adds of one UTC day (recomputed with the day's sales)."""

    __tablename__ = "report_daily_product_interactions"

    day: Mapped[date] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    views: Mapped[int]
    cart_adds: Mapped[int]
