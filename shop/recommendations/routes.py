"""Recommendations API: a customer's (signed in), a product's (anyone)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_jwt_extended import current_user

from shop.api import Blueprint
from shop.recommendations import services
from shop.recommendations.schemas import (
    ProductRecommendationArgsSchema,
    ProductRecommendationsSchema,
    UserRecommendationArgsSchema,
    UserRecommendationsSchema,
)

blp = Blueprint(
    "recommendations", __name__, url_prefix="/api/v1/recommendations", description="Recommendations"
)


@blp.route("/user")
class UserRecommendations(MethodView):
    @blp.auth_required()
    @blp.arguments(UserRecommendationArgsSchema, location="query")
    @blp.response(200, UserRecommendationsSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Products for you: active, in stock, none you ordered; without a history, the best
        sellers of the categories you viewed (else of the store)"""
        return services.for_user(current_user, args["algorithm"], args["limit"])


@blp.route("/product/<int:product_id>")
class ProductRecommendations(MethodView):
    @blp.arguments(ProductRecommendationArgsSchema, location="query")
    @blp.errors(404)
    @blp.response(200, ProductRecommendationsSchema)
    def get(self, args: dict[str, Any], product_id: int) -> dict[str, Any]:
        """What goes with a product: bought together, and similar

        Anyone may call it, with or without a token. `bought_together` lists what customers
        ordered with this product, `similar` what is like it (same category, attributes and
        text); both are precomputed by the recommendations job and hold only active products in
        stock, at most `limit` each. An unknown or inactive product is a 404."""
        return services.for_product(product_id, args["limit"])
