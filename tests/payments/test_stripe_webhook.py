"""POST /payments/stripe/webhook: Stripe-Signature verified by the library (missing, forged,
tampered, expired: 401), each event handled once (a replay, two at once), events in any order
(a success after a failure), an amount that does not match, events that are not shop's."""

import hashlib
import hmac
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from sqlalchemy import select

from shop.audit.models import AuditLog
from shop.db import db
from shop.orders.models import Order, Payment, StripeEvent
from tests.payments.stripe_fake import (
    API,
    charge_refunded,
    event,
    intent_event,
    post_event,
    sign,
)

SUCCEEDED = "payment_intent.succeeded"
FAILED = "payment_intent.payment_failed"


def payments_of(client, headers, order):
    return client.get(f"{API}/orders/{order['id']}/payments", headers=headers).json["items"]


def order_of(client, headers, order):
    return client.get(f"{API}/orders/{order['id']}", headers=headers).json


def test_a_success_pays_the_order_once(stripe_client, order, intent, as_customer, as_staff):
    body = intent_event(SUCCEEDED, intent)
    first = post_event(stripe_client, body)
    assert first.status_code == 200 and first.json["result"] == "recorded"
    [payment] = payments_of(stripe_client, as_customer, order)
    assert payment["id"] == first.json["payment_id"]
    assert payment["method"] == "stripe" and payment["status"] == "succeeded"
    assert payment["amount"] == "59.97" and payment["reference"] == intent["id"]
    paid = order_of(stripe_client, as_staff, order)
    assert paid["status"] == "paid" and paid["payment_status"] == "paid"
    assert paid["amount_paid"] == "59.97"
    # A replay (Stripe sends again what it thinks was not received) changes nothing.
    assert post_event(stripe_client, body).json == {"result": "duplicate", "payment_id": None}
    assert len(payments_of(stripe_client, as_customer, order)) == 1
    assert order_of(stripe_client, as_staff, order)["amount_paid"] == "59.97"


def test_the_signature_is_checked_by_the_library(stripe_client, order, intent, other_app):
    body = intent_event(SUCCEEDED, intent)
    raw = json.dumps(body).encode()
    url = f"{API}/payments/stripe/webhook"
    missing = stripe_client.post(url, data=raw, content_type="application/json")
    assert missing.status_code == 401 and missing.mimetype == "application/problem+json"
    forged = sign(raw, secret="whsec_someone_else")
    assert post_event(stripe_client, body, signature=forged).status_code == 401
    tampered = raw.replace(b'"amount_received": 5997', b'"amount_received": 1')
    assert tampered != raw
    headers = {"Stripe-Signature": sign(raw)}
    answer = stripe_client.post(
        url, data=tampered, content_type="application/json", headers=headers
    )
    assert answer.status_code == 401
    # Older than the library's tolerance (5 minutes), even if well signed.
    expired = sign(raw, at=time.time() - 301)
    assert post_event(stripe_client, body, signature=expired).status_code == 401
    for garbage in ("t=abc,v1=00", "v1=" + "0" * 64, "nonsense"):
        assert post_event(stripe_client, body, signature=garbage).status_code == 401
    not_utf8 = stripe_client.post(
        url, data=b"\xff\xfe", content_type="application/json", headers=headers
    )
    assert not_utf8.status_code == 401
    # Without STRIPE_WEBHOOK_SECRET (PAYMENT_PROVIDER=manual) nothing verifies.
    assert post_event(other_app().test_client(), body).status_code == 401
    # Within the tolerance it goes through, and counts.
    recent = sign(raw, at=time.time() - 200)
    assert post_event(stripe_client, body, signature=recent).json["result"] == "recorded"


def test_a_signed_body_that_is_no_event_is_a_400(stripe_client):
    raw = b"not json"
    answer = stripe_client.post(
        f"{API}/payments/stripe/webhook",
        data=raw,
        content_type="application/json",
        headers={"Stripe-Signature": sign(raw)},
    )
    assert answer.status_code == 400
    no_data = {"id": "evt_x", "object": "event", "type": SUCCEEDED}
    assert post_event(stripe_client, no_data).status_code == 400


def test_two_identical_events_at_once_count_once(stripe_app, order, intent, as_staff):
    body = intent_event(SUCCEEDED, intent)
    barrier = threading.Barrier(5)

    def deliver(_):
        client = stripe_app.test_client()
        barrier.wait()
        return post_event(client, body).json["result"]

    with ThreadPoolExecutor(max_workers=5) as pool:
        results = sorted(pool.map(deliver, range(5)))
    assert results == ["duplicate"] * 4 + ["recorded"]
    with stripe_app.app_context():
        payments = db.session.scalars(select(Payment)).all()
        paid = db.session.get(Order, order["id"])
        assert len(payments) == 1 and paid.amount_paid == Decimal("59.97")
        assert db.session.scalars(select(StripeEvent.id)).all() == [body["id"]]


def test_a_success_after_a_failure_still_pays(stripe_client, order, intent, as_customer):
    failed = post_event(stripe_client, intent_event(FAILED, intent))
    assert failed.json["result"] == "recorded"
    pending = order_of(stripe_client, as_customer, order)
    assert pending["status"] == "pending" and pending["amount_paid"] == "0.00"
    assert post_event(stripe_client, intent_event(SUCCEEDED, intent)).json["result"] == "recorded"
    assert order_of(stripe_client, as_customer, order)["status"] == "paid"
    assert [(p["status"], p["amount"]) for p in payments_of(stripe_client, as_customer, order)] == [
        ("failed", "59.97"),
        ("succeeded", "59.97"),
    ]
    # A failure arriving after the success (out of order) leaves it paid.
    assert post_event(stripe_client, intent_event(FAILED, intent)).json["result"] == "recorded"
    assert order_of(stripe_client, as_customer, order)["status"] == "paid"


def test_an_amount_that_does_not_match_is_recorded_not_paid(
    stripe_client, stripe_app, order, intent, as_customer, mailbox, run_stripe_jobs
):
    answer = post_event(stripe_client, intent_event(SUCCEEDED, intent, amount=5000))
    assert answer.status_code == 200 and answer.json["result"] == "recorded"
    [payment] = payments_of(stripe_client, as_customer, order)
    assert payment["status"] == "mismatched" and payment["amount"] == "50.00"
    unpaid = order_of(stripe_client, as_customer, order)
    assert unpaid["status"] == "pending" and unpaid["payment_status"] == "unpaid"
    assert unpaid["amount_paid"] == "0.00"
    with stripe_app.app_context():
        entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "payment.mismatched"))
        assert entry.changes["due"] == "59.97" and entry.changes["amount"] == "50.00"
    run_stripe_jobs()
    [alert] = [m for m in mailbox.to("ops@example.com") if "Payment mismatch" in m["Subject"]]
    assert order["number"] in alert["Subject"]
    # Another currency is no match either.
    other = dict(intent, currency="eur")
    assert post_event(stripe_client, intent_event(SUCCEEDED, other)).json["result"] == "recorded"
    assert payments_of(stripe_client, as_customer, order)[1]["status"] == "mismatched"
    assert order_of(stripe_client, as_customer, order)["status"] == "pending"


def test_a_payment_for_an_order_paid_already_is_a_mismatch(
    stripe_client, order, intent, as_customer
):
    assert post_event(stripe_client, intent_event(SUCCEEDED, intent)).json["result"] == "recorded"
    second = dict(intent, id="pi_second")
    assert post_event(stripe_client, intent_event(SUCCEEDED, second)).json["result"] == "recorded"
    statuses = [p["status"] for p in payments_of(stripe_client, as_customer, order)]
    assert statuses == ["succeeded", "mismatched"]
    assert order_of(stripe_client, as_customer, order)["amount_paid"] == "59.97"


def test_events_that_are_not_shops_are_ignored(stripe_client, order, intent, as_customer):
    ignored = {"result": "ignored", "payment_id": None}
    other_type = event("customer.created", {"id": "cus_1", "object": "customer"})
    assert post_event(stripe_client, other_type).json == ignored
    for metadata in ({}, {"order_id": str(order["id"]), "order_number": "ORD-20200101-000001"},
                     {"order_id": "99999999999", "order_number": order["number"]}):  # fmt: skip
        stranger = dict(intent, metadata=metadata)
        assert post_event(stripe_client, intent_event(SUCCEEDED, stranger)).json == ignored
    unknown_charge = charge_refunded(dict(intent, id="pi_elsewhere"), 100)
    assert post_event(stripe_client, unknown_charge).json == ignored
    assert payments_of(stripe_client, as_customer, order) == []


def test_a_refund_before_its_payment_is_refused_until_the_payment_is_in(
    stripe_client, order, intent, as_customer
):
    refunded = charge_refunded(intent, 1000)
    early = post_event(stripe_client, refunded)
    assert early.status_code == 409  # Stripe sends it again later
    assert post_event(stripe_client, intent_event(SUCCEEDED, intent)).json["result"] == "recorded"
    again = post_event(stripe_client, refunded)
    assert again.status_code == 200 and again.json["result"] == "recorded"
    assert post_event(stripe_client, refunded).json["result"] == "duplicate"


def test_the_generic_webhook_still_works_with_stripe(
    stripe_app, stripe_client, order, as_staff, monkeypatch
):
    monkeypatch.setitem(stripe_app.config, "PAYMENT_WEBHOOK_SECRET", "whsec-generic")
    raw = json.dumps(
        {
            "event_id": "gen_1",
            "order_number": order["number"],
            "amount": "59.97",
            "status": "succeeded",
            "reference": "bank-1",
        }
    ).encode()
    signature = "sha256=" + hmac.new(b"whsec-generic", raw, hashlib.sha256).hexdigest()
    answer = stripe_client.post(
        f"{API}/payments/webhook",
        data=raw,
        content_type="application/json",
        headers={"X-Signature": signature},
    )
    assert answer.status_code == 200 and answer.json["result"] == "recorded"
    assert order_of(stripe_client, as_staff, order)["status"] == "paid"
    mismatched = {"event_id": "gen_2", "order_number": order["number"], "amount": "1.00",
                  "status": "mismatched", "reference": None}  # fmt: skip
    raw = json.dumps(mismatched).encode()
    signature = "sha256=" + hmac.new(b"whsec-generic", raw, hashlib.sha256).hexdigest()
    refused = stripe_client.post(
        f"{API}/payments/webhook",
        data=raw,
        content_type="application/json",
        headers={"X-Signature": signature},
    )
    assert refused.status_code == 422  # only succeeded or failed
