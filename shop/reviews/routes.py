"""Reviews API: under each product, written by the customers who ordered it."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_jwt_extended import current_user

from shop.api import LOCATION, Blueprint
from shop.caching import cached_response
from shop.db import Page
from shop.products.cache import CATALOG
from shop.reviews import services
from shop.reviews.models import Review
from shop.reviews.schemas import ReviewCreate, ReviewSchema, ReviewUpdate, ReviewUpdateSchema
from shop.schemas import PageArgsSchema, page_of

blp = Blueprint("reviews", __name__, url_prefix="/api/v1", description="Product reviews")


@blp.route("/products/<int:product_id>/reviews")
class Reviews(MethodView):
    @cached_response(CATALOG, lambda: "public")
    @blp.arguments(PageArgsSchema, location="query")
    @blp.errors(404)
    @blp.response(200, page_of(ReviewSchema))
    def get(self, args: dict[str, Any], product_id: int) -> Page:
        """A product's reviews, newest first

        Anyone (no token). Paginated; an unknown or inactive product is a 404. Review with
        POST on the same path (a customer who ordered the product)."""
        return services.list_reviews(product_id, **args)

    @blp.auth_required()
    @blp.arguments(ReviewSchema)
    @blp.errors(403, 404, 409)
    @blp.response(201, ReviewSchema, headers=LOCATION)
    def post(self, data: ReviewCreate, product_id: int) -> tuple[Review, dict[str, str]]:
        """Review a product you ordered (once); updates rating_avg and rating_count"""
        review = services.create_review(current_user, product_id, data)
        return review, {"Location": f"/api/v1/products/{product_id}/reviews/{review.id}"}


@blp.route("/products/<int:product_id>/reviews/<int:review_id>")
class ReviewById(MethodView):
    @blp.auth_required()
    @blp.arguments(ReviewUpdateSchema, required=False)
    @blp.errors(404)
    @blp.response(200, ReviewSchema)
    def patch(self, data: ReviewUpdate, product_id: int, review_id: int) -> Review:
        """Change your review"""
        return services.update_review(current_user, product_id, review_id, data)

    @blp.auth_required()
    @blp.errors(404)
    @blp.response(204)
    def delete(self, product_id: int, review_id: int) -> None:
        """Delete your review (admins: any review)"""
        services.delete_review(current_user, product_id, review_id)
