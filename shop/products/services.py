"""Catalog services: categories, products, variants, listing and search."""

from __future__ import annotations

import re
import unicodedata
from functools import partial
from typing import Any

from flask import current_app
from sqlalchemy import ColumnElement, Select, case, func, literal, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from shop.audit.services import diff, record
from shop.auth.models import User
from shop.caching import CATALOG, CATALOG_MATCHES, cached_value, invalidate
from shop.db import Page, count_rows, is_postgres, paginate, unit_of_work
from shop.errors import Conflict, Forbidden, NotFound, Unprocessable
from shop.extensions import db
from shop.inventory.models import MovementType
from shop.inventory.services import change_stock
from shop.orders.services import has_bought
from shop.products.models import Category, Product, ProductVariant, Review
from shop.security import Role

CATEGORY_FIELDS = ("name", "slug", "description", "parent_id", "is_active")
PRODUCT_FIELDS = (
    "sku",
    "name",
    "slug",
    "description",
    "price",
    "stock",
    "low_stock_threshold",
    "category_id",
    "is_active",
    "is_featured",
    "image_url",
)
VARIANT_FIELDS = ("sku", "name", "attributes", "price", "stock", "is_active")
# Search results whose relevance order is cached; deeper pages are ranked per request.
RANKED_LIMIT = 1000
SUGGESTION_LIMIT = 10


def slugify(value: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:200] or "item"


def _unique_slug(model: type[Category] | type[Product], name: str) -> str:
    base = slugify(name)
    taken = set(db.session.scalars(select(model.slug).where(model.slug.like(f"{base}%"))))
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    return slug


def _snapshot(obj: Any, names: tuple[str, ...]) -> dict[str, Any]:
    def plain(value: Any) -> Any:
        return (
            str(value)
            if value is not None and not isinstance(value, (str, int, bool, dict))
            else value
        )

    return {name: plain(getattr(obj, name)) for name in names}


# --- categories -----------------------------------------------------------------------------


def list_categories(
    *, page: int, page_size: int, include_inactive: bool, parent_id: int | None = None
) -> Page:
    stmt = select(Category).order_by(Category.name, Category.id)
    if not include_inactive:
        stmt = stmt.where(Category.is_active.is_(True))
    if parent_id is not None:
        stmt = stmt.where(Category.parent_id == parent_id)
    return paginate(stmt, page, page_size)


def get_category(category_id: int, *, include_inactive: bool = False) -> Category:
    category = db.session.get(Category, category_id)
    if category is None or not (category.is_active or include_inactive):
        raise NotFound(f"Category {category_id} does not exist.")
    return category


def _check_parent(category: Category | None, parent_id: int | None) -> None:
    if parent_id is None:
        return
    parent = db.session.get(Category, parent_id)
    if parent is None:
        raise Unprocessable("Unknown parent.", errors={"parent_id": ["No such category."]})
    # Walk up from the new parent: meeting the category itself would make a cycle.
    seen: set[int] = set()
    while category is not None and parent is not None and parent.id not in seen:
        if parent.id == category.id:
            raise Conflict("A category cannot be inside itself.")
        seen.add(parent.id)
        parent = db.session.get(Category, parent.parent_id) if parent.parent_id else None


def create_category(actor: User, data: dict[str, Any]) -> Category:
    with unit_of_work():
        _check_parent(None, data.get("parent_id"))
        category = Category(**data)
        category.slug = data.get("slug") or _unique_slug(Category, data["name"])
        db.session.add(category)
        db.session.flush()
        record(
            "category.created",
            actor=actor,
            target_type="category",
            target_id=category.id,
            changes=_snapshot(category, CATEGORY_FIELDS),
        )
        invalidate(CATALOG, CATALOG_MATCHES)
    return category


def update_category(actor: User, category_id: int, data: dict[str, Any]) -> Category:
    with unit_of_work():
        category = get_category(category_id, include_inactive=True)
        if "parent_id" in data:
            _check_parent(category, data["parent_id"])
        before = _snapshot(category, CATEGORY_FIELDS)
        for name, value in data.items():
            setattr(category, name, value)
        db.session.flush()
        changes = diff(before, _snapshot(category, CATEGORY_FIELDS))
        if changes:
            record(
                "category.updated",
                actor=actor,
                target_type="category",
                target_id=category.id,
                changes=changes,
            )
        invalidate(CATALOG, CATALOG_MATCHES)
    return category


def delete_category(actor: User, category_id: int) -> None:
    with unit_of_work():
        category = get_category(category_id, include_inactive=True)
        if db.session.scalar(select(Category.id).where(Category.parent_id == category_id).limit(1)):
            raise Conflict("The category has subcategories; move or delete them first.")
        if db.session.scalar(select(Product.id).where(Product.category_id == category_id).limit(1)):
            raise Conflict("The category has products; move or delete them first.")
        record(
            "category.deleted",
            actor=actor,
            target_type="category",
            target_id=category.id,
            changes=_snapshot(category, CATEGORY_FIELDS),
        )
        db.session.delete(category)
        invalidate(CATALOG, CATALOG_MATCHES)


# --- listing and search ---------------------------------------------------------------------


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


def _category_and_descendants(category_id: int) -> Any:
    tree = select(Category.id).where(Category.id == category_id).cte("tree", recursive=True)
    tree = tree.union_all(select(Category.id).where(Category.parent_id == tree.c.id))
    return select(tree.c.id)


def list_products(
    *,
    page: int,
    page_size: int,
    include_inactive: bool = False,
    category: int | None = None,
    min_price: Any = None,
    max_price: Any = None,
    in_stock: bool | None = None,
    featured: bool | None = None,
    q: str | None = None,
    sort: str | None = None,
) -> Page:
    stmt = select(Product)
    if not include_inactive:
        stmt = stmt.where(Product.is_active.is_(True))
    if category is not None:
        stmt = stmt.where(Product.category_id.in_(_category_and_descendants(category)))
    if min_price is not None:
        stmt = stmt.where(Product.price >= min_price)
    if max_price is not None:
        stmt = stmt.where(Product.price <= max_price)
    if in_stock is not None:
        stmt = stmt.where(Product.stock > 0 if in_stock else Product.stock == 0)
    if featured is not None:
        stmt = stmt.where(Product.is_featured.is_(featured))
    # Which products match, and in which relevance order, is cached until a write can change
    # it (at volume it is the costly part: a COUNT, or a ranking, over every match); the page
    # itself is always read, with live prices and stock.
    key = f"{(include_inactive, category, min_price, max_price, in_stock, featured, q)}"
    if q:
        stmt, rank = _search(stmt, q)
        if sort in (None, "relevance"):
            return _ranked_page(stmt, rank, key, page, page_size)
    total = partial(cached_value, CATALOG_MATCHES, f"count:{key}", partial(count_rows, stmt))
    return paginate(
        stmt.order_by(*_SORTS[sort or "-created_at"], Product.id.desc()),
        page,
        page_size,
        total=total,
    )


def _ranked_page(
    stmt: Select[Any], rank: ColumnElement[Any], key: str, page: int, page_size: int
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

    total, ranked = cached_value(CATALOG_MATCHES, f"ranked:{key}", rank_and_count)
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


# --- products -------------------------------------------------------------------------------


def get_product(
    product_id: int, *, include_inactive: bool = False, for_update: bool = False
) -> Product:
    """A product; `for_update` locks its row (taken before any variant row, always).

    Read with its variants in one statement; a locking read leaves them to a second one."""
    product = db.session.get(
        Product,
        product_id,
        with_for_update={"of": Product} if for_update else None,
        populate_existing=for_update,
        options=() if for_update else (joinedload(Product.variants),),
    )
    if product is None or not (product.is_active or include_inactive):
        raise NotFound(f"Product {product_id} does not exist.")
    return product


def _claim_sku(sku: str, *, product_id: int | None = None, variant_id: int | None = None) -> None:
    """SKUs are unique across products and variants; concurrent claims queue on a lock."""
    if is_postgres():
        db.session.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"sku:{sku}"))))
    taken_by_product = db.session.scalar(
        select(Product.id).where(Product.sku == sku, Product.id != (product_id or 0))
    )
    taken_by_variant = db.session.scalar(
        select(ProductVariant.id).where(
            ProductVariant.sku == sku, ProductVariant.id != (variant_id or 0)
        )
    )
    if taken_by_product or taken_by_variant:
        raise Conflict(f"SKU {sku} is already in use.", errors={"sku": ["Already in use."]})


def _check_category(category_id: int | None) -> None:
    if category_id is not None and db.session.get(Category, category_id) is None:
        raise Unprocessable("Unknown category.", errors={"category_id": ["No such category."]})


def create_product(actor: User, data: dict[str, Any]) -> Product:
    with unit_of_work():
        _claim_sku(data["sku"])
        _check_category(data.get("category_id"))
        stock = data.pop("stock", 0)
        product = Product(**data)
        product.slug = data.get("slug") or _unique_slug(Product, data["name"])
        product.low_stock_threshold = data.get(
            "low_stock_threshold", current_app.config["LOW_STOCK_THRESHOLD"]
        )
        db.session.add(product)
        db.session.flush()
        if stock:
            change_stock(
                product_id=product.id,
                delta=stock,
                type=MovementType.INITIAL,
                actor=actor,
                note="initial stock",
            )
        db.session.refresh(product)
        record(
            "product.created",
            actor=actor,
            target_type="product",
            target_id=product.id,
            changes=_snapshot(product, PRODUCT_FIELDS),
        )
        invalidate(CATALOG, CATALOG_MATCHES)
    return product


def update_product(actor: User, product_id: int, data: dict[str, Any]) -> Product:
    with unit_of_work():
        # Locked, so that "stock becomes N" is exact even among concurrent edits.
        product = get_product(product_id, include_inactive=True, for_update=True)
        before = _snapshot(product, PRODUCT_FIELDS)
        if "sku" in data and data["sku"] != product.sku:
            _claim_sku(data["sku"], product_id=product.id)
        if "category_id" in data:
            _check_category(data["category_id"])
        stock = data.pop("stock", None)
        for name, value in data.items():
            setattr(product, name, value)
        db.session.flush()
        if stock is not None and stock != product.stock:
            if product.variants:
                raise Unprocessable(
                    "The stock of a product with variants is the sum of theirs.",
                    errors={"stock": ["Change the variants' stock instead."]},
                )
            change_stock(
                product_id=product.id,
                delta=stock - product.stock,
                type=MovementType.ADJUSTMENT,
                actor=actor,
                note="product edit",
            )
        db.session.refresh(product)
        changes = diff(before, _snapshot(product, PRODUCT_FIELDS))
        if changes:
            record(
                "product.updated",
                actor=actor,
                target_type="product",
                target_id=product.id,
                changes=changes,
            )
        invalidate(CATALOG, CATALOG_MATCHES)
    return product


def delete_product(actor: User, product_id: int) -> None:
    """Delete a product; one that order lines refer to is deactivated instead."""
    with unit_of_work():
        product = get_product(product_id, include_inactive=True)
        snapshot = _snapshot(product, PRODUCT_FIELDS)
        try:
            with db.session.begin_nested():
                db.session.delete(product)
                db.session.flush()
            action = "product.deleted"
        except IntegrityError:
            product = get_product(product_id, include_inactive=True)
            product.is_active = False
            action = "product.deactivated"
        record(action, actor=actor, target_type="product", target_id=product_id, changes=snapshot)
        invalidate(CATALOG, CATALOG_MATCHES)


# --- variants -------------------------------------------------------------------------------


def list_variants(product_id: int, *, include_inactive: bool) -> list[ProductVariant]:
    product = get_product(product_id, include_inactive=include_inactive)
    return [v for v in product.variants if v.is_active or include_inactive]


def _get_variant(product_id: int, variant_id: int) -> ProductVariant:
    """A product's variant, its rows locked in the fixed order: product, then variant."""
    get_product(product_id, include_inactive=True, for_update=True)
    variant = db.session.scalar(
        select(ProductVariant)
        .where(ProductVariant.id == variant_id, ProductVariant.product_id == product_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if variant is None:
        raise NotFound(f"Product {product_id} has no variant {variant_id}.")
    return variant


def create_variant(actor: User, product_id: int, data: dict[str, Any]) -> ProductVariant:
    with unit_of_work():
        product = get_product(product_id, include_inactive=True)
        has_variants = db.session.scalar(
            select(ProductVariant.id).where(ProductVariant.product_id == product.id).limit(1)
        )
        if not has_variants and product.stock:
            raise Conflict(
                "The product holds stock of its own: set it to 0 before adding variants."
            )
        _claim_sku(data["sku"])
        stock = data.pop("stock", 0)
        variant = ProductVariant(product_id=product.id, **data)
        db.session.add(variant)
        db.session.flush()
        if stock:
            change_stock(
                product_id=product.id,
                variant_id=variant.id,
                delta=stock,
                type=MovementType.INITIAL,
                actor=actor,
                note="initial stock",
            )
        db.session.refresh(variant)
        db.session.expire(product, ["variants"])
        record(
            "variant.created",
            actor=actor,
            target_type="variant",
            target_id=variant.id,
            changes={"product_id": product.id, **_snapshot(variant, VARIANT_FIELDS)},
        )
        invalidate(CATALOG, CATALOG_MATCHES)
    return variant


def update_variant(
    actor: User, product_id: int, variant_id: int, data: dict[str, Any]
) -> ProductVariant:
    with unit_of_work():
        variant = _get_variant(product_id, variant_id)
        before = _snapshot(variant, VARIANT_FIELDS)
        if "sku" in data and data["sku"] != variant.sku:
            _claim_sku(data["sku"], variant_id=variant.id)
        stock = data.pop("stock", None)
        for name, value in data.items():
            setattr(variant, name, value)
        db.session.flush()
        if stock is not None and stock != variant.stock:
            change_stock(
                product_id=product_id,
                variant_id=variant.id,
                delta=stock - variant.stock,
                type=MovementType.ADJUSTMENT,
                actor=actor,
                note="variant edit",
            )
        db.session.refresh(variant)
        changes = diff(before, _snapshot(variant, VARIANT_FIELDS))
        if changes:
            record(
                "variant.updated",
                actor=actor,
                target_type="variant",
                target_id=variant.id,
                changes=changes,
            )
        invalidate(CATALOG, CATALOG_MATCHES)
    return variant


def delete_variant(actor: User, product_id: int, variant_id: int) -> None:
    with unit_of_work():
        variant = _get_variant(product_id, variant_id)
        snapshot = _snapshot(variant, VARIANT_FIELDS)
        if variant.stock:
            # Its stock leaves the product too, through the ledger.
            change_stock(
                product_id=product_id,
                variant_id=variant.id,
                delta=-variant.stock,
                type=MovementType.ADJUSTMENT,
                actor=actor,
                note="variant deleted",
            )
        db.session.delete(variant)
        db.session.flush()
        db.session.expire(variant.product, ["variants"])
        record(
            "variant.deleted",
            actor=actor,
            target_type="variant",
            target_id=variant_id,
            changes={"product_id": product_id, **snapshot},
        )
        invalidate(CATALOG, CATALOG_MATCHES)


# --- reviews --------------------------------------------------------------------------------


def list_reviews(product_id: int, *, page: int, page_size: int) -> Page:
    get_product(product_id)
    stmt = (
        select(Review)
        .where(Review.product_id == product_id)
        .order_by(Review.created_at.desc(), Review.id.desc())
    )
    return paginate(stmt, page, page_size)


def _refresh_rating(product_id: int) -> None:
    # Recomputed from the reviews under the product's row lock: exact, and safe when two
    # reviews of one product arrive at once.
    stats = select(func.count(Review.id), func.avg(Review.rating)).where(
        Review.product_id == product_id
    )
    count, average = db.session.execute(stats).one()
    db.session.execute(
        update(Product)
        .where(Product.id == product_id)
        .values(rating_count=count, rating_avg=round(average or 0, 2))
    )


def create_review(user: User, product_id: int, data: dict[str, Any]) -> Review:
    with unit_of_work():
        get_product(product_id, for_update=True)
        if not has_bought(user, product_id):
            raise Forbidden("Only customers who ordered this product may review it.")
        if db.session.scalar(
            select(Review.id).where(Review.user_id == user.id, Review.product_id == product_id)
        ):
            raise Conflict("You have already reviewed this product.")
        review = Review(product_id=product_id, user_id=user.id, **data)
        db.session.add(review)
        db.session.flush()
        _refresh_rating(product_id)
        record(
            "review.created",
            actor=user,
            target_type="review",
            target_id=review.id,
            changes={"product_id": product_id, "rating": review.rating},
        )
        invalidate(CATALOG)
    return review


def _own_review(user: User, product_id: int, review_id: int, *, admin_ok: bool) -> Review:
    review = db.session.get(Review, review_id)
    mine = review is not None and (
        review.user_id == user.id or (admin_ok and user.has_role(Role.ADMIN))
    )
    if review is None or review.product_id != product_id or not mine:
        raise NotFound(f"Review {review_id} does not exist.")
    return review


def update_review(user: User, product_id: int, review_id: int, data: dict[str, Any]) -> Review:
    with unit_of_work():
        get_product(product_id, include_inactive=True, for_update=True)
        review = _own_review(user, product_id, review_id, admin_ok=False)
        for name, value in data.items():
            setattr(review, name, value)
        db.session.flush()
        _refresh_rating(product_id)
        invalidate(CATALOG)
    return review


def delete_review(user: User, product_id: int, review_id: int) -> None:
    with unit_of_work():
        get_product(product_id, include_inactive=True, for_update=True)
        review = _own_review(user, product_id, review_id, admin_ok=True)
        db.session.delete(review)
        db.session.flush()
        _refresh_rating(product_id)
        record(
            "review.deleted",
            actor=user,
            target_type="review",
            target_id=review_id,
            changes={"product_id": product_id, "rating": review.rating},
        )
        invalidate(CATALOG)
