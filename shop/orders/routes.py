"""Cart, addresses, orders (payments: payment_routes)."""

from __future__ import annotations

from functools import wraps
from typing import Any

from flask import current_app, request
from flask.views import MethodView
from flask_jwt_extended import current_user, verify_jwt_in_request

from shop.api import BEARER, LOCATION, Blueprint
from shop.auth.models import User
from shop.db import Page
from shop.extensions import limiter
from shop.orders import addresses, cart, checkout, queries, status
from shop.orders.models import Address, Order
from shop.orders.models import Cart as ShoppingCart
from shop.orders.schemas import (
    AddressCreate,
    AddressSchema,
    AddressUpdate,
    AddressUpdateSchema,
    CancelSchema,
    CartCouponSchema,
    CartLineCreate,
    CartLineSchema,
    CartLineUpdateSchema,
    CartMergeSchema,
    CartSchema,
    CheckoutPreviewSchema,
    GuestCartSchema,
    OrderCreate,
    OrderCreateSchema,
    OrderKeyArgsSchema,
    OrderQueryArgsSchema,
    OrderSchema,
    StatusUpdate,
    StatusUpdateSchema,
)
from shop.schemas import PageArgsSchema, page_of
from shop.security import Role

blp = Blueprint("orders", __name__, url_prefix="/api/v1", description="Cart and orders")
CART_TOKEN_SCHEME = "cartToken"  # OpenAPI's name of the X-Cart-Token credential
ORDER_KEY_SCHEME = "orderKey"  # and of X-Order-Key, a guest order's access key
ORDER_KEY = "X-Order-Key"


CART_TOKEN = "X-Cart-Token"
CART_SECURITY: list[dict[str, list[str]]] = [{BEARER: []}, {CART_TOKEN_SCHEME: []}]


def _resolve_cart(create: bool) -> ShoppingCart:
    """The request's cart: the guest's of X-Cart-Token (404 unknown or expired) when no
    bearer token is sent, else the signed-in user's (401 without either)."""
    token = request.headers.get(CART_TOKEN)
    if token is not None and "Authorization" not in request.headers:
        return cart.guest_cart(token)
    verify_jwt_in_request()
    return cart.user_cart(current_user, create=create)


def with_cart(*, create: bool = False) -> Any:
    """The view gets the request's cart as `shopping_cart` (made now for a user who has
    none, if `create`); documents both credentials, 401 and 404."""

    def decorator(func: Any) -> Any:
        @wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return func(*args, shopping_cart=_resolve_cart(create), **kwargs)

        wrapper = blp.doc(
            security=CART_SECURITY,
            description=f"Needs a token (any role), or a guest cart's {CART_TOKEN}.",
            **{"x-roles": ["guest", *(r.value for r in Role)]},
        )(wrapper)
        return blp.errors(401, 404)(wrapper)

    return decorator


def with_buyer(*, guests: Any) -> Any:
    """The view gets `buyer` (the signed-in user, None for a guest) and `shopping_cart` (the
    guest's of X-Cart-Token; None for a user, whose cart is looked up only if ordered).
    Without a bearer token and when `guests()` is false, a 401 as without credentials."""

    def decorator(func: Any) -> Any:
        @wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            token = request.headers.get(CART_TOKEN)
            if token is None or "Authorization" in request.headers or not guests():
                verify_jwt_in_request()
                buyer, guest = current_user._get_current_object(), None
            else:
                buyer, guest = None, cart.guest_cart(token)
            return func(*args, buyer=buyer, shopping_cart=guest, **kwargs)

        wrapper = blp.doc(
            security=CART_SECURITY,
            description=f"Needs a token (any role), or a guest cart's {CART_TOKEN}.",
            **{"x-roles": ["guest", *(r.value for r in Role)]},
        )(wrapper)
        return blp.errors(401)(wrapper)

    return decorator


def _guest_scope(kwargs: dict[str, Any]) -> str | None:
    """A guest's Idempotency-Keys are their cart's (a user's are the user's)."""
    guest = kwargs.get("shopping_cart")
    return f"cart:{guest.id}" if guest is not None else None


def _cart_create_limit() -> str:
    return str(current_app.config["CART_CREATE_LIMIT_PER_IP"])


# POST /carts alone is rate limited here: a blueprint of its own keeps flask-limiter's hooks
# off the cart, checkout and order requests (see shop._scope_limiter_to).
carts_blp = Blueprint("carts", __name__, url_prefix="/api/v1", description="Guest carts")


@carts_blp.route("/carts")
class Carts(MethodView):
    decorators = [limiter.limit(_cart_create_limit, scope="cart-create")]

    @carts_blp.errors(429)
    @carts_blp.response(201, GuestCartSchema, headers=LOCATION)
    def post(self) -> tuple[dict[str, Any], dict[str, str]]:
        """Start a guest cart (anyone): send its token as X-Cart-Token to the /cart calls,
        POST /orders and /checkout/preview. Limited per client address
        (CART_CREATE_LIMIT_PER_IP); idle 30 days, a guest cart is purged

        Anyone (no token; a signed-in customer has a cart already, at GET /cart). The token
        is answered once and is the only way to the cart; past the limit per client address
        it is a 429."""
        made, token = cart.create_guest_cart()
        return {"id": made.id, "token": token}, {"Location": "/api/v1/cart"}


@blp.route("/cart")
class Cart(MethodView):
    @with_cart()
    @blp.response(200, CartSchema)
    def get(self, *, shopping_cart: ShoppingCart) -> dict[str, Any]:
        """The cart (the signed-in user's, or the guest's of X-Cart-Token), at current prices"""
        return cart.get_cart(shopping_cart)

    @with_cart()
    @blp.response(204)
    def delete(self, *, shopping_cart: ShoppingCart) -> None:
        """Empty the cart"""
        cart.clear_cart(shopping_cart)


@blp.route("/cart/merge")
class CartMerge(MethodView):
    @blp.auth_required()
    @blp.arguments(CartMergeSchema)
    @blp.errors(404, 409)
    @blp.response(200, CartSchema)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Move a guest cart (its token) into the signed-in user's: lines of the same item add
        up, stock-checked (409 naming the guest lines that cannot); its coupon moves if this
        cart has none; the guest cart is deleted"""
        return cart.merge_guest_cart(current_user, data["token"])


@blp.route("/cart/coupon")
class CartCoupon(MethodView):
    @with_cart(create=True)
    @blp.arguments(CartCouponSchema)
    @blp.errors(404, 409)
    @blp.response(200, CartSchema)
    def put(self, data: dict[str, Any], *, shopping_cart: ShoppingCart) -> dict[str, Any]:
        """Put a coupon on the cart: 422 saying why a code does not apply, 409 used up"""
        return cart.set_coupon(shopping_cart, data["code"])

    @with_cart()
    @blp.response(204)
    def delete(self, *, shopping_cart: ShoppingCart) -> None:
        """Take the coupon off the cart"""
        cart.remove_coupon(shopping_cart)


@blp.route("/cart/items")
class CartItems(MethodView):
    @with_cart(create=True)
    @blp.arguments(CartLineSchema)
    @blp.errors(404, 409)
    @blp.response(201, CartLineSchema, headers=LOCATION)
    def post(
        self, data: CartLineCreate, *, shopping_cart: ShoppingCart
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """Add to the cart (adds to an existing line of the same product and variant; at most
        100 lines: 409 beyond)"""
        line = cart.add_to_cart(shopping_cart, data)
        return line, {"Location": f"/api/v1/cart/items/{line['id']}"}


@blp.route("/cart/items/<int:item_id>")
class CartItemById(MethodView):
    @with_cart()
    @blp.arguments(CartLineUpdateSchema)
    @blp.errors(404, 409)
    @blp.response(200, CartLineSchema)
    def patch(
        self, data: dict[str, Any], item_id: int, *, shopping_cart: ShoppingCart
    ) -> dict[str, Any]:
        """Change a cart line's quantity"""
        return cart.update_cart_item(shopping_cart, item_id, data["quantity"])

    @with_cart()
    @blp.errors(404)
    @blp.response(204)
    def delete(self, item_id: int, *, shopping_cart: ShoppingCart) -> None:
        """Remove a cart line"""
        cart.remove_cart_item(shopping_cart, item_id)


@blp.route("/addresses")
class Addresses(MethodView):
    @blp.auth_required()
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, page_of(AddressSchema))
    def get(self, args: dict[str, Any]) -> Page:
        """The signed-in user's addresses"""
        return addresses.list_addresses(current_user, **args)

    @blp.auth_required()
    @blp.arguments(AddressSchema)
    @blp.errors(409)
    @blp.response(201, AddressSchema, headers=LOCATION)
    def post(self, data: AddressCreate) -> tuple[Address, dict[str, str]]:
        """Add an address (the first one becomes the default)"""
        address = addresses.create_address(current_user, data)
        return address, {"Location": f"/api/v1/addresses/{address.id}"}


@blp.route("/addresses/<int:address_id>")
class AddressById(MethodView):
    @blp.auth_required()
    @blp.arguments(AddressUpdateSchema, required=False)
    @blp.errors(404)
    @blp.response(200, AddressSchema)
    def patch(self, data: AddressUpdate, address_id: int) -> Address:
        """Change an address"""
        return addresses.update_address(current_user, address_id, data)

    @blp.auth_required()
    @blp.errors(404)
    @blp.response(204)
    def delete(self, address_id: int) -> None:
        """Delete an address (orders keep their own copy)"""
        addresses.delete_address(current_user, address_id)


@blp.route("/orders")
class Orders(MethodView):
    @blp.auth_required()
    @blp.arguments(OrderQueryArgsSchema, location="query")
    @blp.response(200, page_of(OrderSchema))
    def get(self, args: dict[str, Any]) -> Page:
        """Orders, newest first: a customer's own; staff and admins see all"""
        return queries.list_orders(current_user, **args)

    @with_buyer(guests=lambda: bool(current_app.config["GUEST_CHECKOUT"]))
    @blp.arguments(OrderCreateSchema)
    @blp.idempotent(scope=_guest_scope)
    @blp.errors(403, 404, 409)
    @blp.response(201, OrderSchema, headers=LOCATION)
    def post(
        self, data: OrderCreate, *, buyer: User | None, shopping_cart: ShoppingCart | None
    ) -> tuple[Order, dict[str, str]]:
        """Check out: the given items, or the cart; stock is taken all or nothing. A guest
        (X-Cart-Token, GUEST_CHECKOUT) gives `email` and `shipping_address`, and gets the
        order's `access_key` in this answer only"""
        order = checkout.place_order(buyer, data, shopping_cart)
        return order, {"Location": f"/api/v1/orders/{order.id}"}


@blp.route("/checkout/preview")
class CheckoutPreview(MethodView):
    @with_buyer(guests=lambda: True)
    @blp.arguments(OrderCreateSchema)
    @blp.errors(404, 409)
    @blp.response(200, CheckoutPreviewSchema)
    def post(
        self, data: OrderCreate, *, buyer: User | None, shopping_cart: ShoppingCart | None
    ) -> dict[str, Any]:
        """What POST /orders would charge for this body now (the same code): the lines, the
        discount, shipping, tax and total; nothing is written, no stock is taken"""
        return checkout.preview_answer(checkout.preview(buyer, data, shopping_cart))


def with_order_key(func: Any) -> Any:
    """A bearer token, or a guest order's access key (`?key=` or X-Order-Key): the view
    gets `reader` (the user, or None with a key alone) and `key`."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = request.args.get("key") or request.headers.get(ORDER_KEY)
        if key is None or "Authorization" in request.headers:
            verify_jwt_in_request()
            reader = current_user
        else:
            reader = None
        return func(*args, reader=reader, key=key, **kwargs)

    wrapper = blp.doc(
        security=[{BEARER: []}, {ORDER_KEY_SCHEME: []}],
        description=f"Needs a token (any role), or the order's access key ({ORDER_KEY} or ?key=).",
        **{"x-roles": ["guest", *(r.value for r in Role)]},
    )(wrapper)
    return blp.errors(401)(wrapper)


@blp.route("/orders/<int:order_id>")
class OrderById(MethodView):
    @with_order_key
    @blp.arguments(OrderKeyArgsSchema, location="query")
    @blp.errors(404)
    @blp.response(200, OrderSchema)
    def get(
        self, args: dict[str, Any], order_id: int, *, reader: User | None, key: str | None
    ) -> Order:
        """An order (its owner, staff or admins; a guest's with its access key)"""
        return queries.readable_order(reader, order_id, key)


@blp.route("/orders/<int:order_id>/cancel")
class CancelOrder(MethodView):
    @blp.auth_required()
    @blp.arguments(CancelSchema(), required=False)
    @blp.errors(404, 409)
    @blp.response(200, OrderSchema)
    def post(self, data: dict[str, Any], order_id: int) -> Order:
        """Cancel: owners while pending, staff until shipped; the stock returns"""
        return status.cancel_order(current_user, order_id, data.get("note"))


@blp.route("/orders/<int:order_id>/status")
class OrderStatusById(MethodView):
    @blp.auth_required(Role.STAFF)
    @blp.arguments(StatusUpdateSchema)
    @blp.errors(404, 409)
    @blp.response(200, OrderSchema)
    def patch(self, data: StatusUpdate, order_id: int) -> Order:
        """Move an order through its status machine; the customer is emailed"""
        return status.change_status(current_user, order_id, data)
