"""Cart, addresses, orders, payments and the payment provider's webhook."""

from __future__ import annotations

from functools import wraps
from typing import Any

from flask import request
from flask.views import MethodView
from flask_jwt_extended import current_user

from shop.api import LOCATION, Blueprint
from shop.db import Page
from shop.orders import addresses, cart, checkout, payments, queries, status, stripe_payments
from shop.orders.models import Address, Order, Payment
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
    CartSchema,
    CheckoutPreviewSchema,
    OrderCreate,
    OrderCreateSchema,
    OrderQueryArgsSchema,
    OrderSchema,
    PaymentCreate,
    PaymentCreateSchema,
    PaymentEvent,
    PaymentIntentAnswer,
    PaymentIntentSchema,
    PaymentSchema,
    StatusUpdate,
    StatusUpdateSchema,
    WebhookResult,
    WebhookResultSchema,
    WebhookSchema,
)
from shop.schemas import PageArgsSchema, page_of
from shop.security import Role

blp = Blueprint("orders", __name__, url_prefix="/api/v1", description="Cart and orders")


@blp.route("/cart")
class Cart(MethodView):
    @blp.auth_required()
    @blp.response(200, CartSchema)
    def get(self) -> dict[str, Any]:
        """The signed-in user's cart, at current prices"""
        return cart.get_cart(current_user)

    @blp.auth_required()
    @blp.response(204)
    def delete(self) -> None:
        """Empty the cart"""
        cart.clear_cart(current_user)


@blp.route("/cart/coupon")
class CartCoupon(MethodView):
    @blp.auth_required()
    @blp.arguments(CartCouponSchema)
    @blp.errors(404, 409)
    @blp.response(200, CartSchema)
    def put(self, data: dict[str, Any]) -> dict[str, Any]:
        """Put a coupon on the cart: 422 saying why a code does not apply, 409 used up"""
        return cart.set_coupon(current_user, data["code"])

    @blp.auth_required()
    @blp.response(204)
    def delete(self) -> None:
        """Take the coupon off the cart"""
        cart.remove_coupon(current_user)


@blp.route("/cart/items")
class CartItems(MethodView):
    @blp.auth_required()
    @blp.arguments(CartLineSchema)
    @blp.errors(404, 409)
    @blp.response(201, CartLineSchema, headers=LOCATION)
    def post(self, data: CartLineCreate) -> tuple[dict[str, Any], dict[str, str]]:
        """Add to the cart (adds to an existing line of the same product and variant)"""
        line = cart.add_to_cart(current_user, data)
        return line, {"Location": f"/api/v1/cart/items/{line['id']}"}


@blp.route("/cart/items/<int:item_id>")
class CartItemById(MethodView):
    @blp.auth_required()
    @blp.arguments(CartLineUpdateSchema)
    @blp.errors(404, 409)
    @blp.response(200, CartLineSchema)
    def patch(self, data: dict[str, Any], item_id: int) -> dict[str, Any]:
        """Change a cart line's quantity"""
        return cart.update_cart_item(current_user, item_id, data["quantity"])

    @blp.auth_required()
    @blp.errors(404)
    @blp.response(204)
    def delete(self, item_id: int) -> None:
        """Remove a cart line"""
        cart.remove_cart_item(current_user, item_id)


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

    @blp.auth_required()
    @blp.arguments(OrderCreateSchema)
    @blp.idempotent
    @blp.errors(404, 409)
    @blp.response(201, OrderSchema, headers=LOCATION)
    def post(self, data: OrderCreate) -> tuple[Order, dict[str, str]]:
        """Check out: the given items, or the cart; stock is taken all or nothing"""
        order = checkout.place_order(current_user, data)
        return order, {"Location": f"/api/v1/orders/{order.id}"}


@blp.route("/checkout/preview")
class CheckoutPreview(MethodView):
    @blp.auth_required()
    @blp.arguments(OrderCreateSchema)
    @blp.errors(404, 409)
    @blp.response(200, CheckoutPreviewSchema)
    def post(self, data: OrderCreate) -> dict[str, Any]:
        """What POST /orders would charge for this body now (the same code): the lines, the
        discount, shipping, tax and total; nothing is written, no stock is taken"""
        return checkout.preview_answer(checkout.preview(current_user, data))


@blp.route("/orders/<int:order_id>")
class OrderById(MethodView):
    @blp.auth_required()
    @blp.errors(404)
    @blp.response(200, OrderSchema)
    def get(self, order_id: int) -> Order:
        """An order (its owner, staff or admins)"""
        return queries.get_order(current_user, order_id)


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


@blp.route("/orders/<int:order_id>/payments")
class OrderPayments(MethodView):
    @blp.auth_required()
    @blp.arguments(PageArgsSchema, location="query")
    @blp.errors(404)
    @blp.response(200, page_of(PaymentSchema))
    def get(self, args: dict[str, Any], order_id: int) -> Page:
        """The payments of an order, oldest first (its owner, staff or admins), failed and
        mismatched ones too"""
        return payments.list_payments(current_user, order_id, **args)

    @blp.auth_required(Role.STAFF)
    @blp.arguments(PaymentCreateSchema)
    @blp.idempotent
    @blp.errors(404, 409)
    @blp.response(201, PaymentSchema)
    def post(self, data: PaymentCreate, order_id: int) -> Payment:
        """Record a payment; paid in full, a pending order becomes paid"""
        return payments.record_payment(current_user, order_id, data)


def _signed(view: Any) -> Any:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        # Checked on the raw bytes before anything parses them.
        payments.verify_webhook_signature(request.get_data(), request.headers.get("X-Signature"))
        return view(*args, **kwargs)

    return wrapper


@blp.route("/payments/webhook")
class PaymentWebhook(MethodView):
    @_signed
    @blp.arguments(WebhookSchema)
    @blp.doc(
        parameters=[
            {
                "in": "header",
                "name": "X-Signature",
                "required": True,
                "schema": {"type": "string"},
                "description": "sha256=<hex HMAC-SHA256 of the raw body>",
            }
        ]
    )
    @blp.errors(401, 404, 409)
    @blp.response(200, WebhookResultSchema)
    def post(self, data: PaymentEvent) -> WebhookResult:
        """The payment provider's signed event (a repeated event_id changes nothing)"""
        return payments.handle_payment_event(data)


@blp.route("/orders/<int:order_id>/payment-intent")
class OrderPaymentIntent(MethodView):
    @blp.auth_required()
    @blp.errors(404, 409, 503)
    @blp.response(201, PaymentIntentSchema, headers=LOCATION)
    def post(self, order_id: int) -> tuple[PaymentIntentAnswer, dict[str, str]]:
        """Pay a pending, unpaid order online (PAYMENT_PROVIDER=stripe, else 409): its Stripe
        PaymentIntent for the total, made once per order (asked again: the same one); Stripe
        not answering within STRIPE_TIMEOUT is a 503 with Retry-After. Location: the order's
        payments"""
        intent = stripe_payments.create_payment_intent(current_user, order_id)
        return intent, {"Location": f"/api/v1/orders/{order_id}/payments"}


def _stripe_signed(view: Any) -> Any:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        # Verified on the raw bytes by the library, then handed over as the event it built.
        event = stripe_payments.verify_event(
            request.get_data(), request.headers.get("Stripe-Signature")
        )
        return view(*args, event, **kwargs)

    return wrapper


@blp.route("/payments/stripe/webhook")
class StripeWebhook(MethodView):
    @_stripe_signed
    @blp.doc(
        parameters=[
            {
                "in": "header",
                "name": "Stripe-Signature",
                "required": True,
                "schema": {"type": "string"},
                "description": "t=<unix time>,v1=<hex HMAC-SHA256 of '<t>.<raw body>' with "
                "STRIPE_WEBHOOK_SECRET>; older than 5 minutes is refused",
            }
        ],
        requestBody={
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "description": "A Stripe event: payment_intent.succeeded, "
                        "payment_intent.payment_failed and charge.refunded are handled, "
                        "others ignored",
                    }
                }
            },
        },
    )
    @blp.errors(400, 401, 409)
    @blp.response(200, WebhookResultSchema)
    def post(self, event: dict[str, Any]) -> WebhookResult:
        """Stripe's signed events, each handled once (a replay answers duplicate); 401 when
        the signature is missing, wrong or too old, as the generic webhook's"""
        return stripe_payments.handle_event(event)
