"""Serving the stored lists, each answer in one query: only active products in stock, and for
a customer none they ordered (read now, not as of the job); a customer's list is filled up
with best sellers (of the categories they viewed, else of the store), which is the whole
answer for a customer the job had no history of (cold start)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Select,
    and_,
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


def for_user(user: User, algorithm: Algorithm, limit: int) -> dict[str, Any]:
    """The customer's stored list by `algorithm`, then best sellers, `limit` in all."""
    # What they ordered (not cancelled), and bought as the job knew it (their purchases).
    ordered = union_all(
        select(OrderItem.product_id)
        .join(Order, Order.id == OrderItem.order_id)
        .where(Order.user_id == user.id, Order.status != OrderStatus.CANCELLED.value),
        select(Interaction.product_id).where(
            Interaction.user_id == user.id, Interaction.kind == InteractionKind.PURCHASE.value
        ),
    )
    mine = and_(UserRecommendation.user_id == user.id, UserRecommendation.algorithm == algorithm)
    stored = (
        select(
            *_product_columns(),
            UserRecommendation.score.label("score"),
            UserRecommendation.reason.label("reason"),
            literal(0).label("part"),
            UserRecommendation.position.label("rank"),
        )
        .join(Product, Product.id == UserRecommendation.recommended_id)
        .where(mine, _available(), Product.id.not_in(ordered))
        .order_by(UserRecommendation.position)
        .limit(limit)
        .subquery()
    )
    recent = (
        select(Interaction.product_id)
        .where(Interaction.user_id == user.id, Interaction.kind == InteractionKind.VIEW.value)
        .order_by(Interaction.created_at.desc())
        .limit(RECENT_VIEWS)
        .subquery()
    )
    viewed = aliased(Product)
    categories = select(viewed.category_id).where(
        viewed.id.in_(select(recent.c.product_id)), viewed.category_id.is_not(None)
    )
    has_viewed = exists(categories)
    best_sellers = (
        select(
            *_product_columns(),
            literal(0.0, Float).label("score"),
            case(
                (has_viewed, Reason.BEST_SELLER_IN_CATEGORY.value), else_=Reason.BEST_SELLER.value
            ).label("reason"),
            literal(1).label("part"),
            (-Product.sales_count).label("rank"),
        )
        .where(
            _available(),
            Product.id.not_in(ordered),
            Product.id.not_in(select(UserRecommendation.recommended_id).where(mine)),
            or_(~has_viewed, Product.category_id.in_(categories)),
        )
        .order_by(Product.sales_count.desc(), Product.id)
        .limit(limit)
        .subquery()
    )
    # The best sellers are read only when the stored list falls short (LIMIT stops the
    # UNION ALL once the first part has given enough).
    stmt: Select[Any] = union_all(select(stored), select(best_sellers)).limit(limit)  # type: ignore[assignment]
    rows = sorted(db.session.execute(stmt), key=lambda r: (r.part, r.rank, r.id))
    return {"algorithm": algorithm, "items": [_item(r, r.score, r.reason) for r in rows]}


def for_product(product_id: int, limit: int) -> dict[str, Any]:
    """An active product's stored lists, each at most `limit` long."""
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
    rows = db.session.execute(
        select(base.id.label("base_id"), lists)
        .select_from(base)
        .outerjoin(lists, true())
        .where(base.id == product_id, base.is_active.is_(True))
    ).all()
    if not rows:
        raise NotFound(f"Product {product_id} does not exist.")
    answer: dict[str, list[dict[str, Any]]] = {kind.value: [] for kind in ProductList}
    for row in sorted((r for r in rows if r.list is not None), key=lambda r: r.position):
        if len(answer[row.list]) < limit:
            answer[row.list].append(_item(row, row.score, row.list))
    return answer
