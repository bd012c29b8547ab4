"""Outbound webhooks: the endpoints admins register, their secrets, and their deliveries as
admins see and resend them (sending itself: events.delivery)."""

from __future__ import annotations

import base64
import secrets
import uuid
from datetime import timedelta
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select

from shop.audit.models import Action, Target
from shop.audit.services import changes_recorded, record, snapshot
from shop.auth.models import User
from shop.db import Page, get_or_404, paginate, unit_of_work, utcnow
from shop.errors import Unprocessable
from shop.events.delivery import LEASE, Refused, host_and_port, public_addresses, send_after_commit
from shop.events.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from shop.events.schemas import EventSchema

ROTATION_OVERLAP = timedelta(hours=24)


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _check_receiver(url: str) -> None:
    """422 unless `url` is http(s) on a name that resolves to allowed addresses."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise Unprocessable("A webhook URL is http or https.", errors={"url": ["Not http(s)."]})
    host, port = host_and_port(url)
    try:
        public_addresses(host, port)
    except Refused as refused:
        raise Unprocessable(str(refused), errors={"url": [str(refused)]}) from None
    except (OSError, UnicodeError, ValueError):
        message = f"{host} does not resolve."
        raise Unprocessable(message, errors={"url": [message]}) from None


# --- endpoints ------------------------------------------------------------------------------

ENDPOINT_FIELDS = ("url", "events", "description", "is_active")


def list_endpoints(page: int, page_size: int) -> Page:
    return paginate(select(WebhookEndpoint).order_by(WebhookEndpoint.id), page, page_size)


def get_endpoint(endpoint_id: int) -> WebhookEndpoint:
    return get_or_404(WebhookEndpoint, endpoint_id)


def create_endpoint(actor: User, data: dict[str, Any]) -> WebhookEndpoint:
    _check_receiver(data["url"])
    with unit_of_work() as session:
        endpoint = WebhookEndpoint(**data, secret=new_secret(), failure_count=0)
        session.add(endpoint)
        session.flush()
        record(
            Action.WEBHOOK_CREATED,
            actor=actor,
            target_type=Target.WEBHOOK,
            target_id=endpoint.id,
            changes=snapshot(endpoint, ENDPOINT_FIELDS),
        )
    return endpoint


def update_endpoint(actor: User, endpoint_id: int, data: dict[str, Any]) -> WebhookEndpoint:
    if "url" in data:
        _check_receiver(data["url"])
    with unit_of_work():
        endpoint = get_or_404(WebhookEndpoint, endpoint_id, for_update=True)
        with changes_recorded(
            Action.WEBHOOK_UPDATED,
            actor=actor,
            target_type=Target.WEBHOOK,
            target=endpoint,
            fields=ENDPOINT_FIELDS,
        ):
            if data.get("is_active") and not endpoint.is_active:
                endpoint.failure_count = 0  # turned back on: a fresh count of failures
            for name, value in data.items():
                setattr(endpoint, name, value)
    return endpoint


def delete_endpoint(actor: User, endpoint_id: int) -> None:
    with unit_of_work() as session:
        endpoint = get_or_404(WebhookEndpoint, endpoint_id, for_update=True)
        session.delete(endpoint)
        record(
            Action.WEBHOOK_DELETED,
            actor=actor,
            target_type=Target.WEBHOOK,
            target_id=endpoint_id,
            changes={"url": endpoint.url},
        )


def rotate_secret(actor: User, endpoint_id: int) -> WebhookEndpoint:
    """A new secret; the old one signs too for ROTATION_OVERLAP, while receivers switch."""
    with unit_of_work():
        endpoint = get_or_404(WebhookEndpoint, endpoint_id, for_update=True)
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_expires_at = utcnow() + ROTATION_OVERLAP
        endpoint.secret = new_secret()
        record(
            Action.WEBHOOK_SECRET_ROTATED,
            actor=actor,
            target_type=Target.WEBHOOK,
            target_id=endpoint.id,
        )
    return endpoint


# --- deliveries -----------------------------------------------------------------------------


def list_deliveries(endpoint_id: int, page: int, page_size: int) -> Page:
    get_or_404(WebhookEndpoint, endpoint_id)
    stmt = (
        select(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint_id)
        .order_by(WebhookDelivery.id.desc())
    )
    return paginate(stmt, page, page_size)


def ping(actor: User, endpoint_id: int) -> WebhookDelivery:
    """A `ping` event sent to the endpoint now (whatever events it wants)."""
    with unit_of_work() as session:
        endpoint = get_or_404(WebhookEndpoint, endpoint_id)
        event = SimpleNamespace(
            position=f"ping_{uuid.uuid4().hex}",
            type="ping",
            created_at=utcnow(),
            data={"webhook_id": endpoint.id},
        )
        delivery = WebhookDelivery(
            endpoint_id=endpoint.id,
            event_id=event.position,
            event_type="ping",
            body=EventSchema().dump(event),
            status=DeliveryStatus.PENDING,
            attempts=0,
            next_attempt_at=utcnow() + LEASE,
        )
        session.add(delivery)
        session.flush()
        record(
            Action.WEBHOOK_PINGED, actor=actor, target_type=Target.WEBHOOK, target_id=endpoint.id
        )
        send_after_commit([delivery.id])
    return delivery


def redeliver(actor: User, endpoint_id: int, delivery_id: int) -> WebhookDelivery:
    """Send a delivery again now, with a fresh count of attempts."""
    with unit_of_work():
        delivery = get_or_404(
            WebhookDelivery,
            delivery_id,
            visible=lambda d: d.endpoint_id == endpoint_id,
            for_update=True,
        )
        delivery.status = DeliveryStatus.PENDING
        delivery.attempts = 0
        delivery.next_attempt_at = utcnow() + LEASE
        record(
            Action.WEBHOOK_REDELIVERED,
            actor=actor,
            target_type=Target.WEBHOOK,
            target_id=endpoint_id,
            changes={"delivery_id": delivery.id, "event_id": delivery.event_id},
        )
        send_after_commit([delivery.id])
    return delivery
