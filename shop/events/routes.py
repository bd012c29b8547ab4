"""Events API: the feed of what happened, as each user may see it; webhook endpoints."""

from typing import Any

from flask.views import MethodView
from flask_jwt_extended import current_user

from shop.api import LOCATION, Blueprint
from shop.db import Page
from shop.events import log, webhooks
from shop.events.models import WebhookDelivery, WebhookEndpoint
from shop.events.schemas import (
    EventQueryArgsSchema,
    EventSchema,
    WebhookDeliverySchema,
    WebhookEndpointSchema,
    WebhookEndpointSecretSchema,
    WebhookEndpointUpdateSchema,
)
from shop.schemas import PageArgsSchema, page_of
from shop.security import Role

blp = Blueprint("events", __name__, url_prefix="/api/v1/events", description="Events")


@blp.route("")
class Events(MethodView):
    @blp.auth_required()
    @blp.arguments(EventQueryArgsSchema, location="query")
    @blp.response(200, page_of(EventSchema))
    def get(self, args: dict[str, Any]) -> Page:
        """List events: newest first, or those after an id, oldest first

        A customer sees the events of their own orders; staff and admins every event.
        With `after`, an event appears only once every transaction that began before it
        has ended, so reading on from the last id received never skips one."""
        return log.feed(current_user, **args)


webhooks_blp = Blueprint(
    "webhooks", __name__, url_prefix="/api/v1/webhooks", description="Outbound webhooks (admin)"
)


@webhooks_blp.route("")
class Webhooks(MethodView):
    @webhooks_blp.auth_required(Role.ADMIN)
    @webhooks_blp.arguments(PageArgsSchema, location="query")
    @webhooks_blp.response(200, page_of(WebhookEndpointSchema))
    def get(self, args: dict[str, Any]) -> Page:
        """List webhook endpoints"""
        return webhooks.list_endpoints(**args)

    @webhooks_blp.auth_required(Role.ADMIN)
    @webhooks_blp.arguments(WebhookEndpointSchema)
    @webhooks_blp.response(201, WebhookEndpointSecretSchema, headers=LOCATION)
    def post(self, data: dict[str, Any]) -> tuple[WebhookEndpoint, dict[str, str]]:
        """Add an endpoint; the answer carries its signing secret, shown this once"""
        endpoint = webhooks.create_endpoint(current_user, data)
        return endpoint, {"Location": f"/api/v1/webhooks/{endpoint.id}"}


@webhooks_blp.route("/<int:webhook_id>")
class WebhookById(MethodView):
    @webhooks_blp.auth_required(Role.ADMIN)
    @webhooks_blp.errors(404)
    @webhooks_blp.response(200, WebhookEndpointSchema)
    def get(self, webhook_id: int) -> WebhookEndpoint:
        """Get an endpoint"""
        return webhooks.get_endpoint(webhook_id)

    @webhooks_blp.auth_required(Role.ADMIN)
    @webhooks_blp.arguments(WebhookEndpointUpdateSchema, required=False)
    @webhooks_blp.errors(404)
    @webhooks_blp.response(200, WebhookEndpointSchema)
    def patch(self, data: dict[str, Any], webhook_id: int) -> WebhookEndpoint:
        """Change an endpoint (turning it back on starts its failure count again)"""
        return webhooks.update_endpoint(current_user, webhook_id, data)

    @webhooks_blp.auth_required(Role.ADMIN)
    @webhooks_blp.errors(404)
    @webhooks_blp.response(204)
    def delete(self, webhook_id: int) -> None:
        """Delete an endpoint and its deliveries"""
        webhooks.delete_endpoint(current_user, webhook_id)


@webhooks_blp.route("/<int:webhook_id>/rotate-secret")
class RotateSecret(MethodView):
    @webhooks_blp.auth_required(Role.ADMIN)
    @webhooks_blp.errors(404)
    @webhooks_blp.response(200, WebhookEndpointSecretSchema)
    def post(self, webhook_id: int) -> WebhookEndpoint:
        """A new signing secret; the previous one also signs for 24 hours"""
        return webhooks.rotate_secret(current_user, webhook_id)


@webhooks_blp.route("/<int:webhook_id>/ping")
class Ping(MethodView):
    @webhooks_blp.auth_required(Role.ADMIN)
    @webhooks_blp.errors(404)
    @webhooks_blp.response(202, WebhookDeliverySchema)
    def post(self, webhook_id: int) -> WebhookDelivery:
        """Send a `ping` event now"""
        return webhooks.ping(current_user, webhook_id)


@webhooks_blp.route("/<int:webhook_id>/deliveries")
class Deliveries(MethodView):
    @webhooks_blp.auth_required(Role.ADMIN)
    @webhooks_blp.arguments(PageArgsSchema, location="query")
    @webhooks_blp.errors(404)
    @webhooks_blp.response(200, page_of(WebhookDeliverySchema))
    def get(self, args: dict[str, Any], webhook_id: int) -> Page:
        """An endpoint's deliveries, newest first"""
        return webhooks.list_deliveries(webhook_id, **args)


@webhooks_blp.route("/<int:webhook_id>/deliveries/<int:delivery_id>/redeliver")
class Redeliver(MethodView):
    @webhooks_blp.auth_required(Role.ADMIN)
    @webhooks_blp.errors(404)
    @webhooks_blp.response(202, WebhookDeliverySchema)
    def post(self, webhook_id: int, delivery_id: int) -> WebhookDelivery:
        """Send a delivery again now (a fresh count of attempts)"""
        return webhooks.redeliver(current_user, webhook_id, delivery_id)
