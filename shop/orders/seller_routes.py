"""The seller's orders: GET /seller/orders (sellers; an admin sees the lines of products they
own, if any)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_jwt_extended import current_user

from shop.api import Blueprint
from shop.db import Page
from shop.orders import sellers
from shop.orders.seller_schemas import SellerOrderQueryArgsSchema, SellerOrderSchema
from shop.schemas import page_of
from shop.security import Role

blp = Blueprint("seller_orders", __name__, url_prefix="/api/v1/seller", description="Sellers")


@blp.route("/orders")
class SellerOrders(MethodView):
    @blp.auth_required(Role.SELLER)
    @blp.arguments(SellerOrderQueryArgsSchema, location="query")
    @blp.response(200, page_of(SellerOrderSchema))
    def get(self, args: dict[str, Any]) -> Page:
        """The orders holding the seller's products, newest first, each with only the
        seller's lines and the shipping address"""
        return sellers.list_seller_orders(current_user, **args)
