"""Catalog: the category tree, products, their variants, the stock ledger, and catalog imports."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    LargeBinary,
    Numeric,
    String,
    Text,
    false,
    func,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shop.db import MONEY, Base, TimestampMixin


class Category(TimestampMixin, Base):
    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    slug: Mapped[str] = mapped_column(String(140), unique=True)
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("categories.id", ondelete="RESTRICT"), index=True
    )
    is_active: Mapped[bool] = mapped_column(default=True, server_default=true(), index=True)


class Product(TimestampMixin, Base):
    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint("price > 0", name="price_positive"),
        CheckConstraint("stock >= 0", name="stock_not_negative"),
        CheckConstraint("low_stock_threshold >= 0", name="threshold_not_negative"),
        # Listing: public lists filter on is_active, then sort by one of these.
        Index("ix_products_active_price", "is_active", "price"),
        Index("ix_products_active_name", "is_active", "name"),
        Index("ix_products_active_created", "is_active", "created_at"),
        Index("ix_products_active_rating", "is_active", "rating_avg"),
        Index("ix_products_active_popularity", "is_active", "sales_count"),
        # ?on_sale=true: the few products on sale.
        Index(
            "ix_products_on_sale",
            "id",
            postgresql_where=text("compare_at_price > price"),
            sqlite_where=text("compare_at_price > price"),
        ),
        # Search (PostgreSQL): weighted full text, and trigrams for SKU fragments and typos.
        Index("ix_products_search_vector", "search_vector", postgresql_using="gin"),
        Index(
            "ix_products_name_trgm",
            "name",
            postgresql_using="gin",
            postgresql_ops={"name": "gin_trgm_ops"},
        ),
        Index(
            "ix_products_sku_trgm",
            "sku",
            postgresql_using="gin",
            postgresql_ops={"sku": "gin_trgm_ops"},
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(220), unique=True)
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    price: Mapped[Decimal] = mapped_column(MONEY)
    # The list price a sale is shown against (struck through): on sale when above `price`.
    compare_at_price: Mapped[Decimal | None] = mapped_column(MONEY)
    # With variants: the sum of theirs, kept in step by the inventory service.
    stock: Mapped[int] = mapped_column(default=0, server_default="0", index=True)
    low_stock_threshold: Mapped[int] = mapped_column(default=5, server_default="5")
    category_id: Mapped[int | None] = mapped_column(
        ForeignKey("categories.id", ondelete="SET NULL"), index=True
    )
    is_active: Mapped[bool] = mapped_column(default=True, server_default=true())
    is_featured: Mapped[bool] = mapped_column(default=False, server_default=false(), index=True)
    image_url: Mapped[str | None] = mapped_column(String(2048))
    rating_avg: Mapped[Decimal] = mapped_column(Numeric(3, 2), default=0, server_default="0")
    rating_count: Mapped[int] = mapped_column(default=0, server_default="0")
    # Units ordered in the last 30 days, for sort=popularity; set by the `popularity` job.
    sales_count: Mapped[int] = mapped_column(default=0, server_default="0")
    # Maintained by a database trigger on PostgreSQL (see the migration); NULL on SQLite.
    search_vector: Mapped[str | None] = mapped_column(
        Text().with_variant(TSVECTOR(), "postgresql"), deferred=True
    )

    category: Mapped[Category | None] = relationship(lazy="joined", innerjoin=False)
    variants: Mapped[list[ProductVariant]] = relationship(
        back_populates="product",
        order_by="ProductVariant.id",
        lazy="selectin",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class ProductVariant(TimestampMixin, Base):
    __tablename__ = "product_variants"
    __table_args__ = (
        CheckConstraint("price > 0", name="price_positive"),
        CheckConstraint("stock >= 0", name="stock_not_negative"),
        Index(
            "ix_product_variants_on_sale",
            "product_id",
            postgresql_where=text("compare_at_price > price"),
            sqlite_where=text("compare_at_price > price"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), index=True
    )
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    attributes: Mapped[dict[str, Any]] = mapped_column(
        JSON().with_variant(JSONB(), "postgresql"), default=dict
    )
    price: Mapped[Decimal] = mapped_column(MONEY)
    # The list price a sale is shown against (struck through): on sale when above `price`.
    compare_at_price: Mapped[Decimal | None] = mapped_column(MONEY)
    stock: Mapped[int] = mapped_column(default=0, server_default="0")
    is_active: Mapped[bool] = mapped_column(default=True, server_default=true())

    product: Mapped[Product] = relationship(back_populates="variants")


# GET /inventory/low-stock and the low-stock sweep compare stock with the threshold.
Index("ix_products_low_stock", Product.stock - Product.low_stock_threshold)
# SKUs are unique whatever their case (products.catalog claims them under a lock).
Index("ix_products_sku_lower", func.lower(Product.sku))
Index("ix_product_variants_sku_lower", func.lower(ProductVariant.sku))


class MovementType(enum.StrEnum):
    # Manual (staff)
    IN = "IN"
    OUT = "OUT"
    ADJUSTMENT = "ADJUSTMENT"
    RETURN = "RETURN"
    DAMAGE = "DAMAGE"
    # System
    INITIAL = "INITIAL"
    SALE = "SALE"
    CANCEL = "CANCEL"
    PURCHASE = "PURCHASE"


MANUAL_TYPES = (
    MovementType.IN,
    MovementType.OUT,
    MovementType.ADJUSTMENT,
    MovementType.RETURN,
    MovementType.DAMAGE,
)


class StockMovement(Base):
    """One row of the stock ledger, written by `stock.change_stock` with the change itself."""

    __tablename__ = "inventory_transactions"
    __table_args__ = (
        Index("ix_inventory_transactions_product_created", "product_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    variant_id: Mapped[int | None] = mapped_column(
        ForeignKey("product_variants.id", ondelete="SET NULL"), index=True
    )
    type: Mapped[str] = mapped_column(String(16), index=True)
    quantity: Mapped[int]  # signed change
    stock_after: Mapped[int]  # of the variant when there is one, else of the product
    reference: Mapped[str | None] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)


class ImportStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"  # every row was tried: `failed` says how many were refused
    FAILED = "failed"  # the job itself stopped (`error`); the batches before it stay


class CatalogImport(TimestampMixin, Base):
    """A catalog import (`POST /products/import`): the uploaded CSV until the job is done, and
    its progress. `next_row` is where the next batch starts: a batch's rows and its advance
    commit together, so a job run again (a worker killed) goes on from there, once."""

    __tablename__ = "catalog_imports"
    label = "Job"

    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default=ImportStatus.QUEUED, index=True)
    dry_run: Mapped[bool] = mapped_column(default=False)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    filename: Mapped[str] = mapped_column(String(255), default="", server_default="")
    encoding: Mapped[str] = mapped_column(String(16))
    # The CSV as uploaded, so that any worker on any host can run the job; cleared when done.
    file: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    total: Mapped[int | None]  # data rows, once the job has read the file through
    next_row: Mapped[int] = mapped_column(default=2, server_default="2")  # the header is row 1
    processed: Mapped[int] = mapped_column(default=0, server_default="0")
    created: Mapped[int] = mapped_column(default=0, server_default="0")
    updated: Mapped[int] = mapped_column(default=0, server_default="0")
    unchanged: Mapped[int] = mapped_column(default=0, server_default="0")
    failed: Mapped[int] = mapped_column(default=0, server_default="0")
    # The first MAX_ERRORS row errors ({row, field, message}); `failed` counts every row.
    errors: Mapped[list[dict[str, Any]]] = mapped_column(
        JSON().with_variant(JSONB(), "postgresql"), default=list
    )
    error: Mapped[str | None] = mapped_column(Text)  # why the job failed, or last failed run
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
