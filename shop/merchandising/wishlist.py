"""The wishlist (one per customer) and the emails it sends when a product on it is back in
stock or goes on sale."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, delete, literal, or_, select, tuple_
from sqlalchemy.orm import contains_eager

from shop import bus, mail
from shop.auth.models import User
from shop.db import Page, db, insert_ignoring_conflicts, paginate, unit_of_work, utcnow
from shop.merchandising.events import WishlistItemAdded
from shop.merchandising.models import WishlistItem
from shop.products.catalog import get_product
from shop.products.events import StockChanged, WentOnSale
from shop.products.models import FlashSale, Product, category_and_descendants

EMAIL_BATCH = 500  # wishers read (and emails queued) a batch at a time


def list_wishlist(user: User, page: int, page_size: int) -> Page:
    """Newest first, with each product (active ones only) and its variants."""
    stmt = (
        select(WishlistItem)
        .join(WishlistItem.product)
        .where(WishlistItem.user_id == user.id, Product.is_active.is_(True))
        .options(contains_eager(WishlistItem.product))
        .order_by(WishlistItem.added_at.desc(), WishlistItem.product_id.desc())
    )
    return paginate(stmt, page, page_size)


def add(user: User, product_id: int) -> tuple[WishlistItem, bool]:
    """Keep `product_id` on the wishlist; True when it was not there yet."""
    with unit_of_work() as session:
        product = get_product(product_id)
        added = session.execute(
            insert_ignoring_conflicts(WishlistItem)
            .values(user_id=user.id, product_id=product.id)
            .returning(WishlistItem.product_id)
        ).first()
        item = session.scalars(
            select(WishlistItem)
            .where(WishlistItem.user_id == user.id, WishlistItem.product_id == product.id)
            .execution_options(populate_existing=True)
        ).one()
        item.product = product
        if added is not None:
            bus.publish(WishlistItemAdded(user_id=user.id, product_id=product.id))
    return item, added is not None


def remove(user: User, product_id: int) -> None:
    """Take `product_id` off (nothing to do when it was not on it; 404 for no such product)."""
    with unit_of_work() as session:
        get_product(product_id, include_inactive=True)
        session.execute(
            delete(WishlistItem).where(
                WishlistItem.user_id == user.id, WishlistItem.product_id == product_id
            )
        )


def email_wishers(event: StockChanged) -> None:
    """The durable subscriber (a worker, once per occurrence): one email per customer whose
    wishlist holds the product, queued in this job's transaction."""
    product = db.session.get(Product, event.product_id)
    if product is None or not product.is_active:
        return
    _email(WishlistItem.product_id == product.id, "back_in_stock")


def email_sale_wishers(event: WentOnSale) -> None:
    """The durable subscriber: one email per customer and product on their wishlist that went
    on sale (a markdown below its compare-at price, or a flash sale that started)."""
    if event.flash_sale_id is None:
        product = db.session.get(Product, event.product_id)
        if product is None or not product.is_active or product.compare_at_price is None:
            return
        if product.price >= product.compare_at_price:
            return  # marked up again before this ran
        _email(WishlistItem.product_id == product.id, "on_sale", sale=None)
        return
    sale = db.session.get(FlashSale, event.flash_sale_id)
    if sale is None or not sale.starts_at <= utcnow() < sale.ends_at:
        return
    categories = select(literal(0))  # an IN over nothing
    if sale.categories:
        categories = category_and_descendants(*sale.category_ids)
    covered = or_(
        WishlistItem.product_id.in_(sale.product_ids), Product.category_id.in_(categories)
    )
    _email(covered, "on_sale", sale=sale)


def _email(wished: ColumnElement[bool], template: str, **context: Any) -> None:
    """One email per (active customer, active product) on a wishlist matching `wished`, read
    and queued a batch at a time."""
    after = (0, 0)
    while True:
        rows: list[Any] = list(
            db.session.execute(
                select(User.id, User.email, User.first_name, Product)
                .join(WishlistItem, WishlistItem.user_id == User.id)
                .join(Product, Product.id == WishlistItem.product_id)
                .where(
                    wished,
                    User.is_active.is_(True),
                    Product.is_active.is_(True),
                    tuple_(User.id, Product.id) > after,
                )
                .order_by(User.id, Product.id)
                .limit(EMAIL_BATCH)
            )
        )
        for row in rows:
            mail.queue_email(row.email, template, user=row, product=row.Product, **context)
        if len(rows) < EMAIL_BATCH:
            return
        after = (rows[-1].id, rows[-1].Product.id)
