"""Serving the stored lists, each in one query (its statement built once): only active
products in stock, and for a customer none they ordered (read now, not as of the job); a
customer's list that falls short is filled with best sellers (of the categories they viewed,
else of the store) in a second, which is the whole answer for a customer the job had no
history of (the cold start)."""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    case,
    exists,
    literal,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.orm import aliased

from shop import media
from shop.auth.models import User
from shop.db import db
from shop.errors import NotFound
from shop.orders.models import Order, OrderItem, OrderStatus
from shop.products.models import Product, ProductImage
from shop.products.pricing import current
from shop.recommendations.models import (
    Algorithm,
    ProductList,
    ProductRecommendation,
    Reason,
    UserRecommendation,
)
from shop.reports.models import Interaction, InteractionKind

RECENT_VIEWS = 100  # the cold start's categories are those of a customer's last views


def _product_columns() -> list[Any]:
    first_image = (
        select(ProductImage.key)
        .where(ProductImage.product_id == Product.id)
        .order_by(ProductImage.position, ProductImage.id)
        .limit(1)
        .scalar_subquery()
    )
    return [
        Product.id, Product.sku, Product.name, Product.price, Product.image_url,
        Product.rating_avg, Product.category_id, first_image.label("image_key"),
    ]  # fmt: skip


def _available() -> ColumnElement[bool]:
    return and_(Product.is_active.is_(True), Product.stock > 0)


def _item(row: Any, score: float, reason: str) -> dict[str, Any]:
    sale = current().best(row.id, row.category_id)
    return {
        "product": {
            "id": row.id,
            "sku": row.sku,
            "name": row.name,
            "price": row.price,
            "sale_price": sale.price_of(row.price) if sale else None,
            "image_url": media.url(row.image_key) if row.image_key else row.image_url,
            "rating_avg": float(row.rating_avg),
        },
        "score": round(float(score), 4),
        "reason": reason,
    }


@cache
def _user_statements() -> tuple[Select[Any], Select[Any]]:
    """The customer's stored list, and the best sellers that fill it: built once (with bound
    parameters), so a request only binds them."""
    user_id, algorithm = bindparam("user_id", type_=Integer), bindparam("algorithm", type_=String)
    limit = bindparam("limit", type_=Integer)
    # What they ordered (not cancelled), and bought as the job knew it (their purchases).
    ordered = union_all(
        select(OrderItem.product_id)
        .join(Order, Order.id == OrderItem.order_id)
        .where(Order.user_id == user_id, Order.status != OrderStatus.CANCELLED.value),
        select(Interaction.product_id).where(
            Interaction.user_id == user_id, Interaction.kind == InteractionKind.PURCHASE.value
        ),
    )
    mine = and_(UserRecommendation.user_id == user_id, UserRecommendation.algorithm == algorithm)
    stored = (
        select(*_product_columns(), UserRecommendation.score, UserRecommendation.reason)
        .join(Product, Product.id == UserRecommendation.recommended_id)
        .where(mine, _available(), Product.id.not_in(ordered))
        .order_by(UserRecommendation.position)
        .limit(limit)
    )
    recent = (
        select(Interaction.product_id)
        .where(Interaction.user_id == user_id, Interaction.kind == InteractionKind.VIEW.value)
        .order_by(Interaction.created_at.desc())
        .limit(RECENT_VIEWS)
        .subquery()
    )
    viewed = aliased(Product)
    categories = (
        select(viewed.category_id)
        .where(viewed.id.in_(select(recent.c.product_id)), viewed.category_id.is_not(None))
        .cte("viewed_categories")
    )
    has_viewed = exists(select(categories.c.category_id))
    best_sellers = (
        select(
            *_product_columns(),
            literal(0.0, Float).label("score"),
            case(
                (has_viewed, Reason.BEST_SELLER_IN_CATEGORY.value), else_=Reason.BEST_SELLER.value
            ).label("reason"),
        )
        .where(
            _available(),
            Product.id.not_in(ordered),
            Product.id.not_in(select(UserRecommendation.recommended_id).where(mine)),
            or_(~has_viewed, Product.category_id.in_(select(categories.c.category_id))),
        )
        .order_by(Product.sales_count.desc(), Product.id)
        .limit(limit)
    )
    return stored, best_sellers


def for_user(user: User, algorithm: Algorithm, limit: int) -> dict[str, Any]:
    """The customer's stored list by `algorithm` (one query), filled with best sellers when
    it falls short of `limit` (a second)."""
    stored, best_sellers = _user_statements()
    params = {"user_id": user.id, "algorithm": algorithm.value, "limit": limit}
    rows = list(db.session.execute(stored, params))
    if len(rows) < limit:
        rows += db.session.execute(best_sellers, {**params, "limit": limit - len(rows)})
    return {"algorithm": algorithm, "items": [_item(r, r.score, r.reason) for r in rows]}


@cache
def _product_statement() -> Select[Any]:
    product_id = bindparam("product_id", type_=Integer)
    lists = (
        select(
            *_product_columns(),
            ProductRecommendation.list.label("list"),
            ProductRecommendation.position.label("position"),
            ProductRecommendation.score.label("score"),
        )
        .join(Product, Product.id == ProductRecommendation.recommended_id)
        .where(ProductRecommendation.product_id == product_id, _available())
        .subquery()
    )
    base = aliased(Product)
    return (
        select(base.id.label("base_id"), lists)
        .select_from(base)
        .outerjoin(lists, true())
        .where(base.id == product_id, base.is_active.is_(True))
    )


def for_product(product_id: int, limit: int) -> dict[str, Any]:
    """An active product's stored lists, each at most `limit` long (one query)."""
    rows = db.session.execute(_product_statement(), {"product_id": product_id}).all()
    if not rows:
        raise NotFound(f"Product {product_id} does not exist.")
    answer: dict[str, list[dict[str, Any]]] = {kind.value: [] for kind in ProductList}
    for row in sorted((r for r in rows if r.list is not None), key=lambda r: r.position):
        if len(answer[row.list]) < limit:
            answer[row.list].append(_item(row, row.score, row.list))
    return answer
