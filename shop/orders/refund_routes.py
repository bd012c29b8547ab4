"""Refunds and invoices API: GET/POST /orders/{id}/refunds, GET /orders/{id}/invoice."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask.views import MethodView
from flask_jwt_extended import current_user

from shop.api import LOCATION, Blueprint
from shop.auth.models import User
from shop.db import Page
from shop.orders import invoices, refunds
from shop.orders.billing_models import Refund
from shop.orders.refund_schemas import (
    RefundCreate,
    RefundCreateSchema,
    RefundListArgsSchema,
    RefundSchema,
)
from shop.orders.routes import with_order_key
from shop.orders.schemas import OrderKeyArgsSchema
from shop.schemas import page_of
from shop.security import Role

blp = Blueprint("refunds", __name__, url_prefix="/api/v1", description="Refunds and invoices")


@blp.route("/orders/<int:order_id>/refunds")
class OrderRefunds(MethodView):
    @with_order_key
    @blp.arguments(RefundListArgsSchema, location="query")
    @blp.errors(404)
    @blp.response(200, page_of(RefundSchema))
    def get(
        self, args: dict[str, Any], order_id: int, *, reader: User | None, key: str | None
    ) -> Page:
        """The refunds of an order, oldest first (its owner, staff or admins; a guest's with
        its access key)"""
        args.pop("key", None)
        return refunds.list_refunds(reader, order_id, key, **args)

    @blp.auth_required(Role.STAFF)
    @blp.arguments(RefundCreateSchema)
    @blp.errors(404, 409)
    @blp.response(201, RefundSchema, headers=LOCATION)
    def post(self, data: RefundCreate, order_id: int) -> tuple[Refund, dict[str, str]]:
        """Refund an amount of an order (at most paid minus refunded: 409), optionally for
        units of its lines (at most ordered minus refunded: 409), put back in stock with
        `restock`. Stripe-held money goes back through Stripe (by a worker); refunding
        everything paid makes the order refunded; the customer is emailed"""
        refund = refunds.create_refund(current_user, order_id, data)
        return refund, {"Location": f"/api/v1/orders/{order_id}/refunds"}


@blp.route("/orders/<int:order_id>/invoice")
class OrderInvoice(MethodView):
    @with_order_key
    @blp.arguments(OrderKeyArgsSchema, location="query")
    @blp.errors(404, 409)
    @blp.response(
        200,
        {"type": "string", "format": "binary"},
        content_type="application/pdf",
        description="the invoice: seller, number and date, bill-to, lines, discount, shipping, "
        "tax lines, total, payments and refunds",
    )
    def get(
        self, _: dict[str, Any], order_id: int, *, reader: User | None, key: str | None
    ) -> Response:
        """The invoice of a paid order as a PDF (its owner, staff or admins; a guest's with
        its access key); an order not paid yet has none (409)"""
        number, pdf = invoices.invoice_pdf(reader, order_id, key)
        return Response(
            pdf,
            mimetype="application/pdf",
            headers={"Content-Disposition": f'inline; filename="{number}.pdf"'},
        )
