"""Sending webhook deliveries: the fan-out of the event log into deliveries, and each attempt,
signed by the Standard Webhooks specification, retried with backoff.

The fan-out reads the log in feed order (events.log.since: nothing committed is skipped) from
a cursor, under an advisory lock so one process does it at a time, and writes one delivery per
endpoint that wants the event; the scheduler's tick runs it and hands due deliveries to RQ.
A delivery job posts outside any transaction (a slow receiver holds no row lock and no
transaction id, which would hold the event feed back) and then records the outcome. A job that
is lost in flight leaves its delivery due again after LEASE: delivery is at least once, and
receivers dedupe on `webhook-id`, the event id, the same on every attempt.

Every address a delivery connects to is checked first: the receiver's name is resolved, every
address it has must be public (not private, loopback, link-local, multicast or reserved)
unless WEBHOOK_ALLOW_PRIVATE, and the connection goes to the address that was checked (the
name is kept for the Host header and TLS), so a name that resolves differently later cannot
slip through. Redirects are not followed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import ssl
import time
from collections.abc import Iterable
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
from flask import current_app
from sqlalchemy import func, select

from shop import mail, metrics
from shop.audit.models import Action, Target
from shop.audit.services import record
from shop.db import after_commit, db, insert_ignoring_conflicts, is_postgres, unit_of_work, utcnow
from shop.events.log import since
from shop.events.models import DeliveryStatus, WebhookCursor, WebhookDelivery, WebhookEndpoint
from shop.events.schemas import EventSchema
from shop.queues import enqueue, redis_connection

log = logging.getLogger(__name__)
# Seconds to wait after attempt 1, 2, ... (the last repeats): 8 attempts span 7 h 42 min.
BACKOFF = (30, 120, 600, 1800, 3600, 7200, 14400)
LEASE = timedelta(seconds=60)  # a delivery handed to RQ is due again after this
TIMEOUT = 10.0  # seconds for each of connect, send and each read of the answer
DEACTIVATE_AFTER = 20  # failed attempts in a row
FAN_OUT_BATCH = 500
FAN_OUT_LOCK = 0x5E_B400_C0  # pg_advisory_xact_lock key: one fan-out at a time
KEPT_BYTES = 1024
# One TLS context for every attempt: building one (reading the CA bundle) costs 20 ms.
_tls: ssl.SSLContext | None = None


def _tls_context() -> ssl.SSLContext:
    global _tls
    if _tls is None:
        _tls = httpx.create_ssl_context()
    return _tls


class Refused(Exception):
    """The receiver's address is not one shop sends to."""


def public_addresses(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, each checked; raises Refused or OSError."""
    found = [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]
    if not current_app.config["WEBHOOK_ALLOW_PRIVATE"]:
        for address in found:
            ip = ipaddress.ip_address(str(address).split("%", 1)[0])
            if not ip.is_global or ip.is_multicast:
                raise Refused(f"{host} resolves to {ip}, which is not a public address.")
    return [str(address) for address in found]


def host_and_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


def send_after_commit(delivery_ids: list[int]) -> None:
    after_commit(lambda: _hand_over(delivery_ids))


def _hand_over(delivery_ids: Iterable[int]) -> None:
    """To RQ; without Redis (the embedded default), sent here and now. A delivery RQ refused
    is due again once its lease is over."""
    for delivery_id in delivery_ids:
        if redis_connection() is None:
            deliver(delivery_id)
            continue
        try:
            enqueue(deliver, delivery_id)
        except Exception:
            log.warning("could not hand webhook delivery %s to RQ now", delivery_id)
            return


# --- the tick: fan-out and due deliveries ---------------------------------------------------


def tick() -> dict[str, int]:
    """Run by the scheduler every few seconds: new events into deliveries, due ones sent."""
    return {"fanned_out": fan_out(), "sent": send_due()}


def fan_out() -> int:
    """Deliveries for the events after the cursor, for each active endpoint that wants them
    (and existed when the event happened); the cursor moves past them in the same commit."""
    created = 0
    for _ in range(20):  # at most 20 batches a tick
        with unit_of_work() as session:
            if is_postgres() and not session.scalar(
                select(func.pg_try_advisory_xact_lock(FAN_OUT_LOCK))
            ):
                return created  # another process is at it
            cursor = session.get(WebhookCursor, 1) or WebhookCursor(id=1, txid=0, event_id=0)
            events = since(cursor.txid, cursor.event_id, FAN_OUT_BATCH)
            if not events:
                return created
            endpoints = session.scalars(
                select(WebhookEndpoint).where(WebhookEndpoint.is_active)
            ).all()
            now, dump = utcnow(), EventSchema().dump
            rows = [
                {
                    "endpoint_id": endpoint.id,
                    "event_id": event.position,
                    "event_type": event.type,
                    "body": dump(event),
                    "status": DeliveryStatus.PENDING,
                    "next_attempt_at": now + LEASE,
                }
                for event in events
                for endpoint in endpoints
                if endpoint.wants(event.type) and event.created_at >= endpoint.created_at
            ]
            if rows:
                ids = session.scalars(
                    insert_ignoring_conflicts(WebhookDelivery)
                    .values(rows)
                    .returning(WebhookDelivery.id)
                ).all()
                created += len(ids)
                send_after_commit(list(ids))
            cursor.txid, cursor.event_id = events[-1].txid, events[-1].id
            session.merge(cursor)
        if len(events) < FAN_OUT_BATCH:
            return created
    return created


def send_due(limit: int = 500) -> int:
    """Hand over the deliveries whose attempt is due (retries, and those whose job was lost),
    each leased for LEASE so that it is not handed over twice meanwhile."""
    with unit_of_work() as session:
        now = utcnow()
        due = session.scalars(
            select(WebhookDelivery)
            .join(WebhookEndpoint)
            .where(
                WebhookDelivery.status == DeliveryStatus.PENDING,
                WebhookDelivery.next_attempt_at <= now,
                WebhookEndpoint.is_active,
            )
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(limit)
            .with_for_update(of=WebhookDelivery, skip_locked=True)
        ).all()
        for delivery in due:
            delivery.next_attempt_at = now + LEASE
        send_after_commit([d.id for d in due])
    return len(due)


# --- one attempt ----------------------------------------------------------------------------


def _signing_secrets(endpoint: WebhookEndpoint) -> list[str]:
    kept = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and kept is not None and kept > utcnow():
        return [endpoint.secret, endpoint.previous_secret]
    return [endpoint.secret]


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">` with a `whsec_` secret."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def deliver(delivery_id: int) -> None:
    """The RQ job: one attempt of a delivery, then its outcome (and the next attempt's time)."""
    with unit_of_work() as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        if delivery is None or delivery.status != DeliveryStatus.PENDING:
            return  # sent already, or its endpoint deleted
        endpoint = session.get(WebhookEndpoint, delivery.endpoint_id)
        if endpoint is None or not endpoint.is_active:
            return
        body = json.dumps(delivery.body, separators=(",", ":")).encode()
        timestamp = int(time.time())
        signatures = " ".join(
            sign(secret, delivery.event_id, timestamp, body)
            for secret in _signing_secrets(endpoint)
        )
        url = endpoint.url
    headers = {
        "content-type": "application/json",
        "user-agent": "shop-webhooks/1",
        "webhook-id": delivery.event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signatures,
    }
    status, answer, error = _post(url, body, headers)
    _record_attempt(delivery_id, status, answer, error)


def _post(
    url: str, body: bytes, headers: dict[str, str]
) -> tuple[int | None, str | None, str | None]:
    """(response status, its first KEPT_BYTES, error): never raises."""
    parts = urlsplit(url)
    host, port = host_and_port(url)
    try:
        address = public_addresses(host, port)[0]
    except Refused as refused:
        return None, None, f"refused: {refused}"
    except (OSError, UnicodeError, ValueError) as error:
        return None, None, f"{host} does not resolve: {error}"
    # Connect to the address just checked; the name stays in Host and in TLS (SNI, certificate).
    literal = f"[{address}]" if ":" in address else address
    pinned = parts._replace(netloc=f"{literal}:{port}").geturl()
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    try:
        with (
            httpx.Client(timeout=TIMEOUT, follow_redirects=False, verify=_tls_context()) as client,
            client.stream(
                "POST",
                pinned,
                content=body,
                headers={**headers, "host": parts.netloc.rsplit("@", 1)[-1]},
                extensions=extensions,
            ) as response,
        ):
            kept = b""
            for chunk in response.iter_bytes():
                kept += chunk
                if len(kept) >= KEPT_BYTES:
                    break
    except httpx.HTTPError as error:
        return None, None, f"{type(error).__name__}: {error}"[:KEPT_BYTES]
    answer = kept[:KEPT_BYTES].decode(errors="replace")
    if 200 <= response.status_code < 300:
        return response.status_code, answer, None
    why = " (redirects are not followed)" if 300 <= response.status_code < 400 else ""
    return response.status_code, answer, f"answered {response.status_code}{why}"


RETRYING = "retrying"  # an attempt failed and another is due (the metric's status label)


def _count_after_commit(status: str) -> None:
    counter = metrics.child(metrics.WEBHOOK_DELIVERIES, status)
    after_commit(counter.inc)


def _record_attempt(
    delivery_id: int, status: int | None, answer: str | None, error: str | None
) -> None:
    with unit_of_work():
        delivery = db.session.get(WebhookDelivery, delivery_id, with_for_update=True)
        if delivery is None:
            return
        endpoint = db.session.get(WebhookEndpoint, delivery.endpoint_id, with_for_update=True)
        assert endpoint is not None  # deliveries go with their endpoint
        delivery.attempts += 1
        delivery.response_status, delivery.response_body = status, answer
        delivery.last_error = error
        if error is None:
            delivery.status, delivery.next_attempt_at = DeliveryStatus.SUCCEEDED, None
            endpoint.failure_count = 0
            _count_after_commit(DeliveryStatus.SUCCEEDED)
            return
        if delivery.attempts >= current_app.config["WEBHOOK_MAX_ATTEMPTS"]:
            delivery.status, delivery.next_attempt_at = DeliveryStatus.FAILED, None
            _count_after_commit(DeliveryStatus.FAILED)
        else:
            _count_after_commit(RETRYING)
            wait = BACKOFF[min(delivery.attempts, len(BACKOFF)) - 1]
            delivery.next_attempt_at = utcnow() + timedelta(seconds=wait)
        endpoint.failure_count += 1
        if endpoint.failure_count >= DEACTIVATE_AFTER and endpoint.is_active:
            endpoint.is_active = False
            record(
                Action.WEBHOOK_DEACTIVATED,
                actor=None,
                target_type=Target.WEBHOOK,
                target_id=endpoint.id,
                changes={"failure_count": endpoint.failure_count, "last_error": error},
            )
            mail.queue_email(
                current_app.config["ADMIN_EMAILS"],
                "webhook_disabled",
                endpoint=endpoint,
                last_error=error,
            )
