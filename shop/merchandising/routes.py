"""Merchandising API: the customer's wishlist; coupons."""

from typing import Any

from flask.views import MethodView
from flask_jwt_extended import current_user

from shop.api import LOCATION, Blueprint
from shop.db import Page
from shop.merchandising import coupons, wishlist
from shop.merchandising.models import Coupon
from shop.merchandising.schemas import (
    CouponQueryArgsSchema,
    CouponSchema,
    CouponUpdateSchema,
    WishlistItemSchema,
)
from shop.schemas import PageArgsSchema, page_of
from shop.security import Role

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


coupons_blp = Blueprint(
    "coupons", __name__, url_prefix="/api/v1/coupons", description="Coupons (admin)"
)


@coupons_blp.route("")
class Coupons(MethodView):
    @coupons_blp.auth_required(Role.ADMIN)
    @coupons_blp.arguments(CouponQueryArgsSchema, location="query")
    @coupons_blp.response(200, page_of(CouponSchema))
    def get(self, args: dict[str, Any]) -> Page:
        """List coupons, newest first (`code`: the one with that code, any case)"""
        return coupons.list_coupons(**args)

    @coupons_blp.auth_required(Role.ADMIN)
    @coupons_blp.arguments(CouponSchema)
    @coupons_blp.errors(409)
    @coupons_blp.response(201, CouponSchema, headers=LOCATION)
    def post(self, data: dict[str, Any]) -> tuple[Coupon, dict[str, str]]:
        """Create a coupon (its code is unique whatever its case: 409)"""
        coupon = coupons.create_coupon(current_user, data)
        return coupon, {"Location": f"/api/v1/coupons/{coupon.id}"}


@coupons_blp.route("/<int:coupon_id>")
class CouponById(MethodView):
    @coupons_blp.auth_required(Role.ADMIN)
    @coupons_blp.errors(404)
    @coupons_blp.response(200, CouponSchema)
    def get(self, coupon_id: int) -> Coupon:
        """Get a coupon, with how many orders hold it"""
        return coupons.get_coupon(coupon_id)

    @coupons_blp.auth_required(Role.ADMIN)
    @coupons_blp.arguments(CouponUpdateSchema, required=False)
    @coupons_blp.errors(404, 409)
    @coupons_blp.response(200, CouponSchema)
    def patch(self, data: dict[str, Any], coupon_id: int) -> Coupon:
        """Change a coupon (orders placed keep the discount they got)"""
        return coupons.update_coupon(current_user, coupon_id, data)

    @coupons_blp.auth_required(Role.ADMIN)
    @coupons_blp.errors(404)
    @coupons_blp.response(204)
    def delete(self, coupon_id: int) -> None:
        """Delete a coupon (orders that used it keep its code and their discount)"""
        coupons.delete_coupon(current_user, coupon_id)
