"""The wishlist (one per customer) and the emails it sends when a product on it is back."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import contains_eager

from shop import mail
from shop.auth.models import User
from shop.db import Page, db, insert_ignoring_conflicts, paginate, unit_of_work
from shop.merchandising.models import WishlistItem
from shop.products.catalog import get_product
from shop.products.events import StockChanged
from shop.products.models import Product

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
    after = 0
    while True:
        wishers: list[Any] = list(
            db.session.execute(
                select(User.id, User.email, User.first_name)
                .join(WishlistItem, WishlistItem.user_id == User.id)
                .where(
                    WishlistItem.product_id == product.id,
                    User.is_active.is_(True),
                    User.id > after,
                )
                .order_by(User.id)
                .limit(EMAIL_BATCH)
            )
        )
        for wisher in wishers:
            mail.queue_email(wisher.email, "back_in_stock", user=wisher, product=product)
        if len(wishers) < EMAIL_BATCH:
            return
        after = wishers[-1].id
