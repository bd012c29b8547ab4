"""Catalog: the category tree, products, their variants, the stock ledger, flash sales,
and catalog imports."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    LargeBinary,
    Numeric,
    String,
    Table,
    Text,
    false,
    func,
    select,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shop.auth.models import User
from shop.db import MONEY, Base, TimestampMixin, rows_named


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

    image: Mapped[CategoryImage | None] = relationship(
        cascade="all, delete-orphan", passive_deletes=True
    )


class ImageFiles:
    """The files of one uploaded image in shop.media (each key unique, never reused): the
    re-encoded image, its thumbnail and the thumbnail in WebP."""

    key: Mapped[str] = mapped_column(String(200))
    thumbnail_key: Mapped[str] = mapped_column(String(200))
    thumbnail_webp_key: Mapped[str] = mapped_column(String(200))
    width: Mapped[int]
    height: Mapped[int]

    @property
    def keys(self) -> tuple[str, str, str]:
        return (self.key, self.thumbnail_key, self.thumbnail_webp_key)


class CategoryImage(ImageFiles, TimestampMixin, Base):
    __tablename__ = "category_images"

    category_id: Mapped[int] = mapped_column(
        ForeignKey("categories.id", ondelete="CASCADE"), primary_key=True
    )


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
    # The seller whose product it is (auth.policy.PRODUCTS); null: the store's own.
    seller_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
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
    seller: Mapped[User | None] = relationship(lazy="joined", innerjoin=False)
    variants: Mapped[list[ProductVariant]] = relationship(
        back_populates="product",
        order_by="ProductVariant.id",
        lazy="selectin",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )
    # Read with every product (one query per page of them): the answers show them.
    images: Mapped[list[ProductImage]] = relationship(
        order_by="(ProductImage.position, ProductImage.id)",
        lazy="selectin",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class ProductImage(ImageFiles, TimestampMixin, Base):
    """An image of a product, or of one of its variants (`variant_id`); a product's images
    are at positions 1 to n."""

    __tablename__ = "product_images"
    __table_args__ = (
        CheckConstraint("position >= 1", name="position_positive"),
        Index("ix_product_images_product_position", "product_id", "position"),
    )
    label: ClassVar[str] = "Image"

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    variant_id: Mapped[int | None] = mapped_column(
        ForeignKey("product_variants.id", ondelete="SET NULL"), index=True
    )
    alt: Mapped[str] = mapped_column(String(300), default="", server_default="")
    position: Mapped[int]


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

    @property
    def images(self) -> list[ProductImage]:
        """Its product's images of it (read with the product, no query of their own)."""
        return [image for image in self.product.images if image.variant_id == self.id]


def category_and_descendants(*category_ids: int) -> Any:
    """The ids of the categories and of every category under them (a recursive CTE)."""
    tree = select(Category.id).where(Category.id.in_(category_ids)).cte("tree", recursive=True)
    tree = tree.union_all(select(Category.id).where(Category.parent_id == tree.c.id))
    return select(tree.c.id)


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


def scope_tables(owner: str, table: str) -> tuple[Table, Table]:
    """The products and the categories a row of `table` (a flash sale, a coupon) names:
    `<owner>_products` and `<owner>_categories`, each keyed by `<owner>_id` and the other id."""

    def pairs(target: str, column: str) -> Table:
        return Table(
            f"{owner}_{target}",
            Base.metadata,
            Column(f"{owner}_id", ForeignKey(f"{table}.id", ondelete="CASCADE"), primary_key=True),
            Column(column, ForeignKey(f"{target}.id", ondelete="CASCADE"), primary_key=True),
        )

    return pairs("products", "product_id"), pairs("categories", "category_id")


class CatalogScope:
    """What a row naming products and categories answers (its `products`, `categories`)."""

    products: list[Product]
    categories: list[Category]

    @property
    def product_ids(self) -> list[int]:
        return [p.id for p in self.products]

    @property
    def category_ids(self) -> list[int]:
        return [c.id for c in self.categories]

    def scope_to(self, data: dict[str, Any]) -> None:
        """Take `product_ids` and `category_ids` out of `data` (those given) and name those
        rows (a 422 naming the unknown ids)."""
        if "product_ids" in data:
            self.products = rows_named(Product, data.pop("product_ids"), "product_ids")
        if "category_ids" in data:
            self.categories = rows_named(Category, data.pop("category_ids"), "category_ids")


flash_sale_products, flash_sale_categories = scope_tables("flash_sale", "flash_sales")


class FlashSale(CatalogScope, TimestampMixin, Base):
    """A percent off the products and categories (with their subcategories) named, for a
    window; where sales overlap, the best one counts."""

    __tablename__ = "flash_sales"
    __table_args__ = (
        CheckConstraint("discount_percent BETWEEN 1 AND 90", name="percent"),
        CheckConstraint("ends_at > starts_at", name="window"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[datetime] = mapped_column(index=True)
    ends_at: Mapped[datetime] = mapped_column(index=True)
    discount_percent: Mapped[int]
    # When the customers waiting for its products were told it started (once per sale).
    announced_at: Mapped[datetime | None]

    products: Mapped[list[Product]] = relationship(
        secondary=flash_sale_products, lazy="selectin", order_by=Product.id
    )
    categories: Mapped[list[Category]] = relationship(
        secondary=flash_sale_categories, lazy="selectin", order_by=Category.id
    )


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
