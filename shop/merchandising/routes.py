"""Merchandising API: the customer's wishlist."""

from typing import Any

from flask.views import MethodView
from flask_jwt_extended import current_user

from shop.api import Blueprint
from shop.db import Page
from shop.merchandising import wishlist
from shop.merchandising.schemas import WishlistItemSchema
from shop.schemas import PageArgsSchema, page_of

blp = Blueprint("wishlist", __name__, url_prefix="/api/v1/wishlist", description="Wishlist")


@blp.route("")
class Wishlist(MethodView):
    @blp.auth_required()
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, page_of(WishlistItemSchema))
    def get(self, args: dict[str, Any]) -> Page:
        """Your wishlist, newest first (products no longer sold are left out)"""
        return wishlist.list_wishlist(current_user, **args)


@blp.route("/<int:product_id>")
class WishlistProduct(MethodView):
    @blp.auth_required()
    @blp.errors(404)
    @blp.response(200, WishlistItemSchema)
    @blp.alt_response(201, schema=WishlistItemSchema, description="Added now")
    def put(self, product_id: int) -> tuple[Any, int]:
        """Keep a product on your wishlist (201 the first time, 200 after); you are emailed
        when it is back in stock"""
        item, added = wishlist.add(current_user, product_id)
        return item, 201 if added else 200

    @blp.auth_required()
    @blp.errors(404)
    @blp.response(204)
    def delete(self, product_id: int) -> None:
        """Take a product off your wishlist (204 also when it was not on it)"""
        wishlist.remove(current_user, product_id)
