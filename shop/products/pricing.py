"""What a product sells for now: its price, or its price less the best flash sale running.

The sales running (with their categories' subcategories expanded) and the next moment one
starts or ends are read once and cached until a flash-sale or category write, or until that
moment; every cached catalog answer ends at that moment too (`until=next_boundary`), so a
sale starting or ending shows at that second everywhere."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from flask import g
from sqlalchemy import func, select, union_all

from shop.caching import cached_value
from shop.db import db, utcnow
from shop.products.cache import FLASH_SALES
from shop.products.models import FlashSale, category_and_descendants
from shop.schemas import CENT


@dataclass(frozen=True)
class LiveSale:
    id: int
    name: str
    ends_at: datetime
    discount_percent: int
    product_ids: frozenset[int]
    category_ids: frozenset[int]  # with every subcategory

    def covers(self, product_id: int, category_id: int | None) -> bool:
        return product_id in self.product_ids or category_id in self.category_ids

    def price_of(self, price: Decimal) -> Decimal:
        """`price` less the sale's percent, rounded half up (never below a cent)."""
        off = price * (100 - self.discount_percent) / 100
        return max(off.quantize(CENT, rounding=ROUND_HALF_UP), CENT)


@dataclass(frozen=True)
class Sales:
    """The flash sales running at `as_of`, and when the next one starts or one ends."""

    running: tuple[LiveSale, ...]
    next_boundary: float | None  # seconds since the epoch

    def best(self, product_id: int, category_id: int | None) -> LiveSale | None:
        """The biggest percent among the sales covering the product (the first made, on a tie)."""
        covering = [s for s in self.running if s.covers(product_id, category_id)]
        return max(covering, key=lambda s: (s.discount_percent, -s.id), default=None)

    def product_ids(self) -> frozenset[int]:
        return frozenset().union(*(s.product_ids for s in self.running))

    def category_ids(self) -> frozenset[int]:
        return frozenset().union(*(s.category_ids for s in self.running))


def _load() -> Sales:
    now = utcnow()
    running = []
    for sale in db.session.scalars(
        select(FlashSale).where(FlashSale.starts_at <= now, FlashSale.ends_at > now)
    ):
        categories = (
            frozenset(db.session.scalars(category_and_descendants(*sale.category_ids)))
            if sale.categories
            else frozenset()
        )
        running.append(
            LiveSale(
                sale.id,
                sale.name,
                sale.ends_at,
                sale.discount_percent,
                frozenset(sale.product_ids),
                categories,
            )
        )
    moments = union_all(
        select(func.min(FlashSale.starts_at).label("at")).where(FlashSale.starts_at > now),
        select(func.min(FlashSale.ends_at).label("at")).where(FlashSale.ends_at > now),
    ).subquery()
    boundary = db.session.scalar(select(func.min(moments.c.at)))
    return Sales(tuple(running), boundary.timestamp() if boundary is not None else None)


def current() -> Sales:
    """The sales running now: cached, and read once per request (or app context)."""
    sales: Sales | None = g.get("_flash_sales")
    if sales is None or (
        sales.next_boundary is not None and utcnow().timestamp() >= sales.next_boundary
    ):
        loaded: list[Sales] = []

        def load() -> Sales:
            loaded.append(_load())
            return loaded[0]

        sales = cached_value(
            FLASH_SALES,
            "running",
            load,
            until=lambda: loaded[0].next_boundary if loaded else None,
        )
        g._flash_sales = sales
    return sales


def next_boundary() -> float | None:
    """When a flash sale next starts or ends: where cached catalog answers end."""
    return current().next_boundary
