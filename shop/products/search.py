"""Listing and search: every filter and sort of the catalog, full-text relevance (PostgreSQL),
a LIKE fallback (SQLite), and autocomplete suggestions."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, func, literal, or_, select, text

from shop.caching import Until, cached_value
from shop.db import Page, count_rows, db, is_postgres, paginate
from shop.products.cache import CATALOG_MATCHES
from shop.products.models import Category, Product, ProductVariant, category_and_descendants
from shop.products.pricing import current, next_boundary

# Search results whose relevance order is cached; deeper pages are ranked per request.
RANKED_LIMIT = 1000
SUGGESTION_LIMIT = 10


def _prefix_tsquery(q: str) -> str | None:
    # Words as prefixes ("lapt" finds "laptop"), all required; only \w characters survive.
    words = re.findall(r"\w+", q.lower())[:10]
    return " & ".join(f"{w}:*" for w in words) or None


def _search(stmt: Select[Any], q: str) -> tuple[Select[Any], ColumnElement[Any]]:
    """Filter by `q`; return the statement and its relevance (higher is better)."""
    sku_hit = Product.sku.ilike(f"%{_escape_like(q)}%", escape="\\")
    if is_postgres():
        tsquery = _prefix_tsquery(q)
        if tsquery is None:
            return stmt.where(sku_hit), case((sku_hit, 1.0), else_=0.0)
        query = func.to_tsquery("english", tsquery)
        matches = Product.search_vector.op("@@")(query)
        relevance = func.ts_rank_cd(Product.search_vector, query) + case((sku_hit, 1.0), else_=0.0)
        return stmt.where(or_(matches, sku_hit)), relevance
    # SQLite fallback: every word must appear in the name, SKU, category or description;
    # relevance weighs where it appears (name and SKU 3, category 2, description 1).
    category_name = (
        select(Category.name).where(Category.id == Product.category_id).scalar_subquery()
    )
    rank: ColumnElement[Any] = literal(0)
    for word in re.findall(r"\w+", q.lower())[:10] or [q]:
        pattern = f"%{_escape_like(word)}%"
        in_name = Product.name.ilike(pattern, escape="\\")
        in_sku = Product.sku.ilike(pattern, escape="\\")
        in_category = func.coalesce(category_name, "").ilike(pattern, escape="\\")
        in_description = Product.description.ilike(pattern, escape="\\")
        stmt = stmt.where(or_(in_name, in_sku, in_category, in_description))
        rank = (
            rank
            + case((in_name, 3), else_=0)
            + case((in_sku, 3), else_=0)
            + case((in_category, 2), else_=0)
            + case((in_description, 1), else_=0)
        )
    return stmt, rank


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


_SORTS: dict[str, tuple[Any, ...]] = {
    "price": (Product.price.asc(),),
    "-price": (Product.price.desc(),),
    "name": (Product.name.asc(),),
    "-name": (Product.name.desc(),),
    "created_at": (Product.created_at.asc(),),
    "-created_at": (Product.created_at.desc(),),
    "rating": (Product.rating_avg.asc(),),
    "-rating": (Product.rating_avg.desc(),),
    "popularity": (Product.sales_count.desc(),),
}


def list_products(
    *,
    page: int,
    page_size: int,
    include_inactive: bool = False,
    category: int | None = None,
    min_price: Decimal | None = None,
    max_price: Decimal | None = None,
    in_stock: bool | None = None,
    featured: bool | None = None,
    on_sale: bool | None = None,
    q: str | None = None,
    sort: str | None = None,
    facets: list[str] | None = None,
) -> Page:
    """A page of products; with `facets`, also how all the matches spread over them, each
    facet one query, cached like the total."""
    stmt = select(Product)
    if not include_inactive:
        stmt = stmt.where(Product.is_active.is_(True))
    if category is not None:
        stmt = stmt.where(Product.category_id.in_(category_and_descendants(category)))
    if min_price is not None:
        stmt = stmt.where(Product.price >= min_price)
    if max_price is not None:
        stmt = stmt.where(Product.price <= max_price)
    if in_stock is not None:
        stmt = stmt.where(Product.stock > 0 if in_stock else Product.stock == 0)
    if featured is not None:
        stmt = stmt.where(Product.is_featured.is_(featured))
    if on_sale is not None:
        stmt = stmt.where(_on_sale(on_sale))
    # Which products match, and in which relevance order, is cached until a write can change
    # it (at volume it is the costly part: a COUNT, or a ranking, over every match); the page
    # itself is always read, with live prices and stock.
    key = f"{(include_inactive, category, min_price, max_price, in_stock, featured, on_sale, q)}"
    # Which products are on sale changes when a flash sale starts or ends.
    until = next_boundary if on_sale is not None else None
    if q:
        stmt, rank = _search(stmt, q)
    if q and sort in (None, "relevance"):
        found = _ranked_page(stmt, rank, key, page, page_size, until)
    else:
        total = partial(
            cached_value, CATALOG_MATCHES, f"count:{key}", partial(count_rows, stmt), until=until
        )
        found = paginate(
            stmt.order_by(*_SORTS[sort or "-created_at"], Product.id.desc()),
            page,
            page_size,
            total=total,
        )
    return ProductPage(**vars(found), facets={
        name: cached_value(CATALOG_MATCHES, f"facet:{name}:{key}", partial(_FACETS[name], stmt),
                           until=until)
        for name in facets or ()
    })  # fmt: skip


def _on_sale(wanted: bool) -> ColumnElement[bool]:
    """Priced below its compare-at price, or with a variant that is (the partial indexes'
    own condition, so they serve it), or in a flash sale running now (the few products and
    categories named, by primary key and the category index); not `wanted`, none of these."""
    sales = current()
    in_flash_sale = or_(
        Product.id.in_(sorted(sales.product_ids())),
        and_(  # never NULL, so that its negation keeps products without a category
            Product.category_id.is_not(None),
            Product.category_id.in_(sorted(sales.category_ids())),
        ),
    )
    variant_on_sale = (
        select(ProductVariant.id)
        .where(
            ProductVariant.product_id == Product.id,
            ProductVariant.compare_at_price > ProductVariant.price,
        )
        .exists()
    )
    if wanted:
        return or_(Product.compare_at_price > Product.price, variant_on_sale, in_flash_sale)
    return and_(
        or_(Product.compare_at_price.is_(None), Product.compare_at_price <= Product.price),
        ~variant_on_sale,
        ~in_flash_sale,
    )


# The price facet's buckets: [edge, next edge), the last one open.
PRICE_EDGES = tuple(
    Decimal(e) for e in ("0.00", "10.00", "25.00", "50.00", "100.00", "250.00", "500.00", "1000.00")
)


@dataclass
class ProductPage(Page):
    """A page of products and the facets asked for (none: empty)."""

    facets: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def _category_facet(stmt: Select[Any]) -> list[dict[str, Any]]:
    """How many matches each category holds (its own products), most first: one query."""
    matches = stmt.with_only_columns(Product.category_id.label("category_id")).subquery()
    rows = db.session.execute(
        select(Category.id, Category.name, func.count().label("count"))
        .join(matches, matches.c.category_id == Category.id)
        .group_by(Category.id, Category.name)
        .order_by(func.count().desc(), Category.id)
    )
    return [{"id": r.id, "name": r.name, "count": r.count} for r in rows]


def _price_facet(stmt: Select[Any]) -> list[dict[str, Any]]:
    """How many matches fall in each PRICE_EDGES bucket (empty ones left out): one query."""
    bucket = case(
        *((Product.price < edge, index) for index, edge in enumerate(PRICE_EDGES[1:])),
        else_=len(PRICE_EDGES) - 1,
    ).label("bucket")
    matches = stmt.with_only_columns(bucket).subquery()
    rows = db.session.execute(
        select(matches.c.bucket, func.count().label("count"))
        .group_by(matches.c.bucket)
        .order_by(matches.c.bucket)
    )
    edges = [*PRICE_EDGES, None]
    return [
        {"min": str(edges[r.bucket]), "max": None if edges[r.bucket + 1] is None
         else str(edges[r.bucket + 1]), "count": r.count}
        for r in rows
    ]  # fmt: skip


_FACETS = {"category": _category_facet, "price": _price_facet}
FACETS = tuple(_FACETS)


def _ranked_page(
    stmt: Select[Any],
    rank: ColumnElement[Any],
    key: str,
    page: int,
    page_size: int,
    until: Until | None,
) -> Page:
    """A page of search results by relevance. Ranking scores every match (a common word
    matches tens of thousands of a million products), so one query ranks and counts them and
    the total and the first RANKED_LIMIT ids are cached; pages within them are read by id,
    deeper pages are ranked live."""
    ordered = stmt.order_by(rank.desc(), Product.id.desc())

    def rank_and_count() -> tuple[int, list[int]]:
        top = ordered.with_only_columns(Product.id, func.count().over()).limit(RANKED_LIMIT)
        rows = db.session.execute(top).all()
        return (rows[0][1] if rows else 0), [row[0] for row in rows]

    total, ranked = cached_value(CATALOG_MATCHES, f"ranked:{key}", rank_and_count, until=until)
    start = (page - 1) * page_size
    if len(ranked) == RANKED_LIMIT and start + page_size > RANKED_LIMIT:
        return paginate(ordered, page, page_size, total=lambda: total)
    ids = ranked[start : start + page_size]
    # Through `stmt`, so every filter still holds for the rows read now.
    found = {p.id: p for p in db.session.scalars(stmt.where(Product.id.in_(ids))).unique()}
    items = [found[i] for i in ids if i in found]
    return Page(items=items, page=page, page_size=page_size, total=total)


def suggest(q: str) -> list[dict[str, Any]]:
    """Up to ten active products for autocomplete: prefix matches first, then near misses."""
    prefix = Product.name.ilike(f"{_escape_like(q)}%", escape="\\")
    word_prefix = Product.name.ilike(f"% {_escape_like(q)}%", escape="\\")
    stmt = select(Product.id, Product.name).where(Product.is_active.is_(True))
    if is_postgres():
        db.session.execute(text("SET LOCAL pg_trgm.word_similarity_threshold = 0.4"))
        similar = literal(q).op("<%")(Product.name)
        stmt = stmt.where(or_(prefix, word_prefix, similar)).order_by(
            prefix.desc(), func.word_similarity(q, Product.name).desc(), Product.name
        )
    else:
        stmt = stmt.where(or_(prefix, word_prefix)).order_by(prefix.desc(), Product.name)
    rows = db.session.execute(stmt.limit(SUGGESTION_LIMIT)).all()
    return [{"id": row.id, "name": row.name} for row in rows]
