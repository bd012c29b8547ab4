"""Shipments API: GET/POST /orders/{id}/shipments, POST /shipments/{id}/events, and the
carrier's signed webhook POST /shipping/webhook."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_jwt_extended import current_user

from shop.api import LOCATION, Blueprint
from shop.auth.models import User
from shop.db import Page
from shop.orders import shipments
from shop.orders.routes import with_order_key
from shop.orders.shipment_models import Shipment
from shop.orders.shipment_schemas import (
    CarrierEvent,
    CarrierEventSchema,
    CarrierWebhookResult,
    CarrierWebhookResultSchema,
    ShipmentCreate,
    ShipmentCreateSchema,
    ShipmentEventCreate,
    ShipmentEventCreateSchema,
    ShipmentListArgsSchema,
    ShipmentSchema,
)
from shop.schemas import page_of
from shop.security import Role

blp = Blueprint("shipments", __name__, url_prefix="/api/v1", description="Shipments and tracking")


@blp.route("/orders/<int:order_id>/shipments")
class OrderShipments(MethodView):
    @with_order_key
    @blp.arguments(ShipmentListArgsSchema, location="query")
    @blp.errors(404)
    @blp.response(200, page_of(ShipmentSchema))
    def get(
        self, args: dict[str, Any], order_id: int, *, reader: User | None, key: str | None
    ) -> Page:
        """The shipments of an order with their items and tracking events, oldest first (its
        owner, staff or admins; a guest's with its access key)"""
        args.pop("key", None)
        return shipments.list_shipments(reader, order_id, key, **args)

    @blp.auth_required(Role.STAFF)
    @blp.arguments(ShipmentCreateSchema)
    @blp.errors(404, 409)
    @blp.response(201, ShipmentSchema, headers=LOCATION)
    def post(self, data: ShipmentCreate, order_id: int) -> tuple[Shipment, dict[str, str]]:
        """Send a parcel of a paid or processing order (else 409): the units named, at most
        ordered minus shipped (409), or every unit not shipped yet. The first parcel makes a
        paid order processing, the one that ships the last unit makes it shipped; the
        customer is emailed the tracking number of each"""
        shipment = shipments.create_shipment(current_user, order_id, data)
        return shipment, {"Location": f"/api/v1/orders/{order_id}/shipments"}


@blp.route("/shipments/<int:shipment_id>/events")
class ShipmentEvents(MethodView):
    @blp.auth_required(Role.STAFF)
    @blp.arguments(ShipmentEventCreateSchema)
    @blp.errors(404, 409)
    @blp.response(201, ShipmentSchema, headers=LOCATION)
    def post(self, data: ShipmentEventCreate, shipment_id: int) -> tuple[Shipment, dict[str, str]]:
        """Record a tracking event of a shipment (none after it is delivered: 409); answers
        the shipment. When every shipment of a shipped order is delivered, the order is
        delivered"""
        shipment = shipments.add_event(current_user, shipment_id, data)
        return shipment, {"Location": f"/api/v1/orders/{shipment.order_id}/shipments"}


@blp.route("/shipping/webhook")
class CarrierWebhook(MethodView):
    @blp.signed(shipments.verify_carrier_signature, "SHIPPING_WEBHOOK_SECRET")
    @blp.arguments(CarrierEventSchema)
    @blp.errors(401, 404, 409)
    @blp.response(200, CarrierWebhookResultSchema)
    def post(self, data: CarrierEvent) -> CarrierWebhookResult:
        """The carrier's signed tracking event, by tracking number (unknown: 404); a repeated
        event_id changes nothing (duplicate), as the payment webhook's

        The carrier only, by signature (`X-Signature`, HMAC with SHIPPING_WEBHOOK_SECRET; no
        token): a missing or wrong signature is a 401. The event is added to the shipment's
        tracking history and moves it on; a delivered event on an order's last shipment
        makes the order delivered. An event dated in the future is a 422. Not
        rate-limited."""
        return shipments.handle_carrier_event(data)
