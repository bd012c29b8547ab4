"""Reviews: only buyers review, once per product; the product's rating follows every change."""

from __future__ import annotations

from sqlalchemy import func, select, update

from shop import bus
from shop.audit.models import Action, Target
from shop.audit.services import record
from shop.auth.models import User
from shop.auth.policy import REVIEW_REMOVAL, REVIEWS, Policy
from shop.caching import invalidate
from shop.db import Page, db, get_or_404, paginate, unit_of_work
from shop.errors import Conflict, Forbidden
from shop.orders.queries import has_bought
from shop.products.cache import CATALOG
from shop.products.catalog import get_product
from shop.products.models import Product
from shop.reviews.events import ReviewRated
from shop.reviews.models import Review
from shop.reviews.schemas import ReviewCreate, ReviewUpdate


def list_reviews(product_id: int, *, page: int, page_size: int) -> Page:
    get_product(product_id)
    stmt = (
        select(Review)
        .where(Review.product_id == product_id)
        .order_by(Review.created_at.desc(), Review.id.desc())
    )
    return paginate(stmt, page, page_size)


def _refresh_rating(product_id: int) -> None:
    """The product's rating_avg and rating_count, recomputed from its reviews under the
    product's row lock (taken by the caller): exact when two reviews arrive at once."""
    stats = select(func.count(Review.id), func.avg(Review.rating)).where(
        Review.product_id == product_id
    )
    count, average = db.session.execute(stats).one()
    db.session.execute(
        update(Product)
        .where(Product.id == product_id)
        .values(rating_count=count, rating_avg=round(average or 0, 2))
    )
    invalidate(CATALOG)


def create_review(user: User, product_id: int, data: ReviewCreate) -> Review:
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
        bus.publish(ReviewRated(review.id, user.id, product_id, review.rating))
        record(
            Action.REVIEW_CREATED,
            actor=user,
            target_type=Target.REVIEW,
            target_id=review.id,
            changes={"product_id": product_id, "rating": review.rating},
        )
    return review


def _own_review(user: User, product_id: int, review_id: int, *, policy: Policy) -> Review:
    return get_or_404(
        Review,
        review_id,
        visible=lambda review: (
            review.product_id == product_id and policy.allows(user, review.user_id)
        ),
    )


def update_review(user: User, product_id: int, review_id: int, data: ReviewUpdate) -> Review:
    with unit_of_work():
        get_product(product_id, include_inactive=True, for_update=True)
        review = _own_review(user, product_id, review_id, policy=REVIEWS)
        rated = "rating" in data and data["rating"] != review.rating
        for name, value in data.items():
            setattr(review, name, value)
        db.session.flush()
        _refresh_rating(product_id)
        if rated:
            bus.publish(ReviewRated(review.id, review.user_id, product_id, review.rating))
    return review


def delete_review(user: User, product_id: int, review_id: int) -> None:
    with unit_of_work():
        get_product(product_id, include_inactive=True, for_update=True)
        review = _own_review(user, product_id, review_id, policy=REVIEW_REMOVAL)
        db.session.delete(review)
        db.session.flush()
        _refresh_rating(product_id)
        record(
            Action.REVIEW_DELETED,
            actor=user,
            target_type=Target.REVIEW,
            target_id=review_id,
            changes={"product_id": product_id, "rating": review.rating},
        )
