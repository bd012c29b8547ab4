"""Payments API: an order's payments, staff payments, the generic signed webhook, Stripe's
PaymentIntent and webhook."""

from __future__ import annotations

from functools import wraps
from typing import Any

from flask import request
from flask.views import MethodView
from flask_jwt_extended import current_user

from shop.api import LOCATION, Blueprint
from shop.auth.models import User
from shop.db import Page
from shop.orders import payments, stripe_payments
from shop.orders.models import Payment
from shop.orders.payment_schemas import (
    PaymentCreate,
    PaymentCreateSchema,
    PaymentEvent,
    PaymentIntentAnswer,
    PaymentIntentSchema,
    PaymentListArgsSchema,
    PaymentSchema,
    WebhookResult,
    WebhookResultSchema,
    WebhookSchema,
)
from shop.orders.routes import with_order_key
from shop.orders.schemas import OrderKeyArgsSchema
from shop.schemas import page_of
from shop.security import Role

blp = Blueprint("payments", __name__, url_prefix="/api/v1", description="Payments")


@blp.route("/orders/<int:order_id>/payments")
class OrderPayments(MethodView):
    @with_order_key
    @blp.arguments(PaymentListArgsSchema, location="query")
    @blp.errors(404)
    @blp.response(200, page_of(PaymentSchema))
    def get(
        self, args: dict[str, Any], order_id: int, *, reader: User | None, key: str | None
    ) -> Page:
        """The payments of an order, oldest first (its owner, staff or admins; a guest's with
        its access key), failed and mismatched ones too"""
        args.pop("key", None)
        return payments.list_payments(reader, order_id, key, **args)

    @blp.auth_required(Role.STAFF)
    @blp.arguments(PaymentCreateSchema)
    @blp.idempotent
    @blp.errors(404, 409)
    @blp.response(201, PaymentSchema)
    def post(self, data: PaymentCreate, order_id: int) -> Payment:
        """Record a payment; paid in full, a pending order becomes paid"""
        return payments.record_payment(current_user, order_id, data)


@blp.route("/payments/webhook")
class PaymentWebhook(MethodView):
    @blp.signed(payments.verify_webhook_signature, "PAYMENT_WEBHOOK_SECRET")
    @blp.arguments(WebhookSchema)
    @blp.errors(401, 404, 409)
    @blp.response(200, WebhookResultSchema)
    def post(self, data: PaymentEvent) -> WebhookResult:
        """The payment provider's signed event (a repeated event_id changes nothing)

        The payment provider only, by signature (`X-Signature`, HMAC with
        PAYMENT_WEBHOOK_SECRET; no token): a missing or wrong signature is a 401. A succeeded
        payment of the full amount makes a pending order paid. An unknown order number is a
        404; an amount or status that does not fit the order is a 409. Not rate-limited."""
        return payments.handle_payment_event(data)


@blp.route("/orders/<int:order_id>/payment-intent")
class OrderPaymentIntent(MethodView):
    @with_order_key
    @blp.arguments(OrderKeyArgsSchema, location="query")
    @blp.errors(404, 409, 503)
    @blp.response(201, PaymentIntentSchema, headers=LOCATION)
    def post(
        self, _: dict[str, Any], order_id: int, *, reader: User | None, key: str | None
    ) -> tuple[PaymentIntentAnswer, dict[str, str]]:
        """Pay a pending, unpaid order online (PAYMENT_PROVIDER=stripe, else 409): its Stripe
        PaymentIntent for the total, made once per order (asked again: the same one); Stripe
        not answering within STRIPE_TIMEOUT is a 503 with Retry-After. Location: the order's
        payments"""
        intent = stripe_payments.create_payment_intent(reader, order_id, key)
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
        the signature is missing, wrong or too old, as the generic webhook's

        Stripe only, by signature (`Stripe-Signature` with STRIPE_WEBHOOK_SECRET; no token).
        payment_intent.succeeded pays the order, payment_intent.payment_failed records the
        failure, charge.refunded records the refund; other event types are answered and
        ignored. Not rate-limited."""
        return stripe_payments.handle_event(event)
