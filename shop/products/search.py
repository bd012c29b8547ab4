"""Listing and search: every filter and sort of the catalog, full-text relevance (PostgreSQL),
a LIKE fallback (SQLite), and autocomplete suggestions."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    Select,
    String,
    and_,
    case,
    cast,
    func,
    literal,
    null,
    or_,
    select,
    text,
    union_all,
)

from shop.caching import cached_value
from shop.db import Page, db, is_postgres, paginate
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
    seller: int | None = None,
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
    if seller is not None:
        stmt = stmt.where(Product.seller_id == seller)
    # Which products match (how many, how they spread over the facets asked for, and, for a
    # search by relevance, the best RANKED_LIMIT) is cached until a write can change it: at
    # volume it is the costly part, read in one statement; the page itself is always read,
    # with live prices and stock.
    filters = (include_inactive, category, min_price, max_price, in_stock, featured, on_sale)
    key = f"{(*filters, seller, q)}"
    # Which products are on sale changes when a flash sale starts or ends.
    until = next_boundary if on_sale is not None else None
    rank: ColumnElement[Any] | None = None
    if q:
        stmt, rank = _search(stmt, q)
    if sort not in (None, "relevance"):
        rank = None
    wanted = tuple(facets or ())
    matches: Matches = cached_value(
        CATALOG_MATCHES,
        f"matches:{key}:{rank is not None}:{wanted}",
        partial(_summarise, stmt, rank, wanted),
        until=until,
    )
    if rank is not None:
        found = _ranked_page(stmt, rank, matches, page, page_size)
    else:
        found = paginate(
            stmt.order_by(*_SORTS[sort or "-created_at"], Product.id.desc()),
            page,
            page_size,
            total=lambda: matches.total,
        )
    return ProductPage(**vars(found), facets=matches.facets)


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


@dataclass
class Matches:
    """What a filter matches: how many, the facets asked for, and (by relevance) the ids of
    the best RANKED_LIMIT, best first."""

    total: int
    facets: dict[str, list[dict[str, Any]]]
    ranked: list[int]


def _summarise(
    stmt: Select[Any], rank: ColumnElement[Any] | None, facets: tuple[str, ...]
) -> Matches:
    """One statement, one pass over the matches (a CTE, materialised on PostgreSQL when read
    more than once: a common word matches tens of thousands of a million products, and
    reading them is the cost):
    their count, one group of rows per facet, and the best RANKED_LIMIT ids by `rank`.
    Its rows are (part, key, label, n, score): a facet's key, label and count; a ranked id
    and its score (sorted here: a window's row number would sort every match)."""
    ranking = (rank if rank is not None else literal(0)).label("rank")
    found = stmt.with_only_columns(Product.id, Product.category_id, Product.price, ranking)
    matches = found.cte("matches")
    if is_postgres() and (facets or rank is not None):  # read more than once: read it once
        matches = matches.prefix_with("MATERIALIZED")
    text_, number, score = (cast(null(), type_) for type_ in (String, Integer, Float))
    parts: list[Select[Any]] = [
        select(
            literal("total").label("part"),
            number.label("key"),
            text_.label("label"),
            func.count().label("n"),
            score.label("score"),
        ).select_from(matches)
    ]
    for name in facets:
        key, label, grouped = _FACETS[name](matches)  # a label (a name) is grouped by too
        counted = grouped.add_columns(literal(name), key, label if label is not None else text_,
                                      func.count(), score)  # fmt: skip
        parts.append(counted.group_by(key, *([label] if label is not None else [])))
    if rank is not None:
        order = (matches.c.rank.desc(), matches.c.id.desc())
        top = select(matches.c.id, matches.c.rank).order_by(*order).limit(RANKED_LIMIT)
        best = top.subquery()
        parts.append(select(literal("ranked"), best.c.id, text_, number, best.c.rank))
    rows = db.session.execute(union_all(*parts)).all()
    ranked = sorted(((r.score, r.key) for r in rows if r.part == "ranked"), reverse=True)
    return Matches(
        total=next(r.n for r in rows if r.part == "total"),
        facets={
            name: _ANSWERS[name]([(r.key, r.label, r.n) for r in rows if r.part == name])
            for name in facets
        },
        ranked=[key for _, key in ranked],
    )


def _category_facet(matches: Any) -> tuple[Any, Any, Select[Any]]:
    """How many matches each category holds (its own products)."""
    grouped = select().select_from(matches).join(Category, Category.id == matches.c.category_id)
    return Category.id, Category.name, grouped


def _category_answer(rows: list[tuple[int, str, int]]) -> list[dict[str, Any]]:
    """Most first."""
    ordered = sorted(rows, key=lambda r: (-r[2], r[0]))
    return [{"id": key, "name": name, "count": n} for key, name, n in ordered]


def _price_facet(matches: Any) -> tuple[Any, Any, Select[Any]]:
    """How many matches fall in each PRICE_EDGES bucket (empty ones left out)."""
    bucket = case(
        *((matches.c.price < edge, index) for index, edge in enumerate(PRICE_EDGES[1:])),
        else_=len(PRICE_EDGES) - 1,
    )
    return bucket, None, select().select_from(matches)


def _price_answer(rows: list[tuple[int, None, int]]) -> list[dict[str, Any]]:
    edges = [*PRICE_EDGES, None]
    return [
        {"min": str(edges[b]), "max": None if edges[b + 1] is None else str(edges[b + 1]),
         "count": n}
        for b, _, n in sorted(rows)
    ]  # fmt: skip


_FACETS = {"category": _category_facet, "price": _price_facet}
_ANSWERS: dict[str, Callable[[list[Any]], list[dict[str, Any]]]] = {
    "category": _category_answer,
    "price": _price_answer,
}
FACETS = tuple(_FACETS)


def _ranked_page(
    stmt: Select[Any], rank: ColumnElement[Any], matches: Matches, page: int, page_size: int
) -> Page:
    """A page of search results by relevance: pages within the ranked ids are read by id,
    deeper pages are ranked live."""
    start = (page - 1) * page_size
    if len(matches.ranked) == RANKED_LIMIT and start + page_size > RANKED_LIMIT:
        ordered = stmt.order_by(rank.desc(), Product.id.desc())
        return paginate(ordered, page, page_size, total=lambda: matches.total)
    ids = matches.ranked[start : start + page_size]
    # Through `stmt`, so every filter still holds for the rows read now.
    found = {p.id: p for p in db.session.scalars(stmt.where(Product.id.in_(ids))).unique()}
    items = [found[i] for i in ids if i in found]
    return Page(items=items, page=page, page_size=page_size, total=matches.total)


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
