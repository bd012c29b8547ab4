"""Returns API: POST /orders/{id}/returns, GET /returns, GET /returns/{id}, and staff's
approve, reject and receive."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_jwt_extended import current_user

from shop.api import LOCATION, Blueprint
from shop.db import Page
from shop.orders import returns
from shop.orders.return_models import Return
from shop.orders.return_schemas import (
    Receipt,
    ReceiptSchema,
    ReturnCreate,
    ReturnCreateSchema,
    ReturnDecision,
    ReturnDecisionSchema,
    ReturnListArgsSchema,
    ReturnSchema,
)
from shop.schemas import page_of
from shop.security import Role

blp = Blueprint("returns", __name__, url_prefix="/api/v1", description="Returns (RMA)")


@blp.route("/orders/<int:order_id>/returns")
class OrderReturns(MethodView):
    @blp.auth_required()
    @blp.arguments(ReturnCreateSchema)
    @blp.errors(404, 409)
    @blp.response(201, ReturnSchema, headers=LOCATION)
    def post(self, data: ReturnCreate, order_id: int) -> tuple[Return, dict[str, str]]:
        """Ask to send units of a delivered order back (its customer; staff and admins for
        them), within RETURN_WINDOW_DAYS of delivery (422 after); an order not delivered, or
        more units than delivered minus already returned, is a 409"""
        ret = returns.request_return(current_user, order_id, data)
        return ret, {"Location": f"/api/v1/returns/{ret.id}"}


@blp.route("/returns")
class Returns(MethodView):
    @blp.auth_required()
    @blp.arguments(ReturnListArgsSchema, location="query")
    @blp.response(200, page_of(ReturnSchema))
    def get(self, args: dict[str, Any]) -> Page:
        """Returns, newest first: a customer's own; staff and admins see all"""
        return returns.list_returns(current_user, **args)


@blp.route("/returns/<int:return_id>")
class ReturnById(MethodView):
    @blp.auth_required()
    @blp.errors(404)
    @blp.response(200, ReturnSchema)
    def get(self, return_id: int) -> Return:
        """A return (of its customer's order; staff and admins any)"""
        return returns.get_return(current_user, return_id)


@blp.route("/returns/<int:return_id>/approve")
class ApproveReturn(MethodView):
    @blp.auth_required(Role.STAFF)
    @blp.arguments(ReturnDecisionSchema(), required=False)
    @blp.errors(404, 409)
    @blp.response(200, ReturnSchema)
    def post(self, data: ReturnDecision, return_id: int) -> Return:
        """Approve a requested return (else 409); the customer is emailed"""
        return returns.approve_return(current_user, return_id, data)


@blp.route("/returns/<int:return_id>/reject")
class RejectReturn(MethodView):
    @blp.auth_required(Role.STAFF)
    @blp.arguments(ReturnDecisionSchema(), required=False)
    @blp.errors(404, 409)
    @blp.response(200, ReturnSchema)
    def post(self, data: ReturnDecision, return_id: int) -> Return:
        """Reject a requested return (else 409); its units may be asked back again; the
        customer is emailed"""
        return returns.reject_return(current_user, return_id, data)


@blp.route("/returns/<int:return_id>/receive")
class ReceiveReturn(MethodView):
    @blp.auth_required(Role.STAFF)
    @blp.arguments(ReceiptSchema)
    @blp.errors(404, 409)
    @blp.response(200, ReturnSchema)
    def post(self, data: Receipt, return_id: int) -> Return:
        """Receive units of an approved return (more than asked minus received: 409):
        resellable ones go back to stock (ledger RETURN), damaged ones are written off
        (RETURN, then DAMAGE); with `refund`, what was paid for them is refunded (at most paid
        minus refunded). Received when every unit is in, refunded when all are refunded too"""
        return returns.receive_return(current_user, return_id, data)
