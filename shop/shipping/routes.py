"""Shipping methods API: anyone lists what ships to a country; admins manage them."""

from flask.views import MethodView
from flask_jwt_extended import current_user

from shop.api import LOCATION, Blueprint, is_admin, visibility_scope
from shop.caching import cached_response
from shop.db import Page
from shop.errors import Forbidden
from shop.schemas import page_of
from shop.security import Role
from shop.shipping import services
from shop.shipping.models import ShippingMethod
from shop.shipping.schemas import (
    ShippingMethodCreate,
    ShippingMethodQuery,
    ShippingMethodQueryArgsSchema,
    ShippingMethodSchema,
    ShippingMethodUpdate,
    ShippingMethodUpdateSchema,
    ShippingOfferSchema,
)
from shop.shipping.services import SHIPPING_METHODS

blp = Blueprint(
    "shipping_methods",
    __name__,
    url_prefix="/api/v1/shipping-methods",
    description="Shipping methods",
)
cached = cached_response(SHIPPING_METHODS, visibility_scope)


@blp.route("")
class ShippingMethods(MethodView):
    @blp.auth_optional
    @cached
    @blp.arguments(ShippingMethodQueryArgsSchema, location="query")
    @blp.errors(403)
    @blp.response(200, page_of(ShippingOfferSchema))
    def get(self, args: ShippingMethodQuery) -> Page:
        """Active shipping methods, cheapest first; with `country`, those shipping there (its
        own and the ones for everywhere), each priced for `subtotal` (admins may include
        inactive ones)"""
        if args["include_inactive"] and not is_admin():
            raise Forbidden("include_inactive is for admins.")
        return services.list_methods(**args)

    @blp.auth_required(Role.ADMIN)
    @blp.arguments(ShippingMethodSchema)
    @blp.response(201, ShippingMethodSchema, headers=LOCATION)
    def post(self, data: ShippingMethodCreate) -> tuple[ShippingMethod, dict[str, str]]:
        """Offer a shipping method to some countries (or ["*"]: everywhere). Once an active
        one ships to a country, orders to it must choose one (shipping_method_id)"""
        method = services.create_method(current_user, data)
        return method, {"Location": f"/api/v1/shipping-methods/{method.id}"}


@blp.route("/<int:method_id>")
class ShippingMethodById(MethodView):
    @blp.auth_optional
    @cached
    @blp.errors(404)
    @blp.response(200, ShippingMethodSchema)
    def get(self, method_id: int) -> ShippingMethod:
        """Get a shipping method (an inactive one: admins only)"""
        return services.get_method(method_id, include_inactive=is_admin())

    @blp.auth_required(Role.ADMIN)
    @blp.arguments(ShippingMethodUpdateSchema, required=False)
    @blp.errors(404)
    @blp.response(200, ShippingMethodSchema)
    def patch(self, data: ShippingMethodUpdate, method_id: int) -> ShippingMethod:
        """Change a shipping method (orders placed keep their shipping cost)"""
        return services.update_method(current_user, method_id, data)

    @blp.auth_required(Role.ADMIN)
    @blp.errors(404)
    @blp.response(204)
    def delete(self, method_id: int) -> None:
        """Delete a shipping method (orders shipped by it keep its name and carrier); to stop
        offering it for a while, set is_active false"""
        services.delete_method(current_user, method_id)
