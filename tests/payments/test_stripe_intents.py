"""POST /orders/{id}/payment-intent and GET /orders/{id}/payments: who may call them, the
intent made once per order with the library (minor units, metadata, an idempotency key), read
back when asked again, Stripe down or hanging (a 503 within the timeout), the settings."""

import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from sqlalchemy import select

from shop.config import ConfigError
from shop.db import db
from shop.orders.models import PaymentIntent
from shop.orders.stripe_api import from_minor_units, minor_units
from tests.factories import headers_for, make_product, make_user
from tests.payments.stripe_fake import API, TIMEOUT


def intent_url(order):
    return f"{API}/orders/{order['id']}/payment-intent"


def intents_of(app, order):
    with app.app_context():
        return db.session.scalars(
            select(PaymentIntent.intent_id).where(PaymentIntent.order_id == order["id"])
        ).all()


def test_the_role_matrix(app, stripe_client, order, as_customer, as_staff, as_admin):
    intruder = headers_for(app, make_user(app))
    payments = f"{API}/orders/{order['id']}/payments"
    for url, call in ((intent_url(order), stripe_client.post), (payments, stripe_client.get)):
        assert call(url).status_code == 401
        assert call(url, headers=intruder).status_code == 404
    assert (
        stripe_client.post(f"{API}/orders/999999/payment-intent", headers=as_staff).status_code
        == 404
    )
    for headers in (as_customer, as_staff, as_admin):
        made = stripe_client.post(intent_url(order), headers=headers)
        assert made.status_code == 201, made.json
        assert made.headers["Location"].endswith(f"/orders/{order['id']}/payments")
        listed = stripe_client.get(payments, headers=headers)
        assert listed.status_code == 200 and listed.json["total"] == 0


def test_an_intent_is_made_once_per_order_in_minor_units(
    app, stripe_client, fake_stripe, order, as_customer
):
    first = stripe_client.post(intent_url(order), headers=as_customer)
    assert first.status_code == 201
    assert first.json["provider"] == "stripe" and first.json["currency"] == "USD"
    assert first.json["amount"] == "59.97" and first.json["client_secret"].startswith("pi_")
    [made] = fake_stripe.made("/v1/payment_intents")
    assert made["params"]["amount"] == "5997" and made["params"]["currency"] == "usd"
    assert made["params"]["metadata[order_id]"] == str(order["id"])
    assert made["params"]["metadata[order_number]"] == order["number"]
    assert made["key"] == f"{order['number']}-payment-intent"
    again = stripe_client.post(intent_url(order), headers=as_customer)
    assert again.status_code == 201 and again.json == first.json
    # Read back (its client_secret is not stored), not made again.
    assert len(fake_stripe.made("/v1/payment_intents")) == 1
    assert fake_stripe.requests[-1]["method"] == "GET"
    assert len(intents_of(app, order)) == 1


def test_two_first_calls_at_once_make_one_intent(app, stripe_app, fake_stripe, order, as_customer):
    def ask(_):
        return stripe_app.test_client().post(intent_url(order), headers=as_customer)

    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(pool.map(ask, range(2)))
    assert [a.status_code for a in answers] == [201, 201]
    assert answers[0].json == answers[1].json
    assert len(fake_stripe.intents) == 1 and len(intents_of(app, order)) == 1


def test_only_a_pending_unpaid_order_is_paid_online(
    app, other_app, stripe_client, fake_stripe, order, as_customer, as_staff
):
    manual = other_app().test_client()  # PAYMENT_PROVIDER=manual, the default
    refused = manual.post(intent_url(order), headers=as_customer)
    assert refused.status_code == 409 and "PAYMENT_PROVIDER=manual" in refused.json["detail"]
    paid = stripe_client.post(
        f"{API}/orders/{order['id']}/payments",
        headers=as_staff,
        json={"amount": "10.00", "method": "cash"},
    )
    assert paid.status_code == 201
    partly = stripe_client.post(intent_url(order), headers=as_customer)
    assert partly.status_code == 409 and "partially_paid" in partly.json["detail"]
    stripe_client.post(f"{API}/orders/{order['id']}/cancel", headers=as_staff)
    assert stripe_client.post(intent_url(order), headers=as_customer).status_code == 409
    assert fake_stripe.requests == []


@pytest.mark.parametrize("failure", [500, ("hang", 3 * TIMEOUT)])
def test_stripe_down_or_hanging_is_a_503_within_the_timeout(
    app, stripe_client, fake_stripe, order, as_customer, failure
):
    fake_stripe.answers = [failure]
    started = time.monotonic()
    answer = stripe_client.post(intent_url(order), headers=as_customer)
    took = time.monotonic() - started
    assert answer.status_code == 503 and answer.mimetype == "application/problem+json"
    assert answer.headers["Retry-After"] == "5" and "retry" in answer.json["detail"]
    assert took < 2 * TIMEOUT, took  # one timeout, no retry inside the request
    assert intents_of(app, order) == []
    # Stripe back: the same key makes the one intent.
    assert stripe_client.post(intent_url(order), headers=as_customer).status_code == 201
    assert len(fake_stripe.intents) == 1


def test_a_refusal_by_stripe_is_a_409_saying_so(stripe_client, fake_stripe, order, as_customer):
    fake_stripe.answers = [400]
    answer = stripe_client.post(intent_url(order), headers=as_customer)
    assert answer.status_code == 409 and answer.json["detail"].startswith("Stripe refused")


@pytest.mark.parametrize(
    ("amount", "currency", "units"),
    [
        ("19.99", "USD", 1999),
        ("0.10", "eur", 10),
        ("59.97", "USD", 5997),
        ("9999999999.99", "USD", 999999999999),
        ("500.00", "JPY", 500),
        ("1.25", "KWD", 1250),
    ],
)
def test_minor_units_are_exact(amount, currency, units):
    assert minor_units(Decimal(amount), currency) == units
    assert from_minor_units(units, currency) == Decimal(amount)
    assert str(from_minor_units(units, currency)) == f"{Decimal(amount):.2f}"


def test_an_amount_a_currency_cannot_express_is_refused():
    with pytest.raises(ValueError, match="JPY"):
        minor_units(Decimal("500.50"), "JPY")


def test_the_payments_of_an_order_list_in_a_fixed_number_of_queries(
    app, stripe_client, order, as_customer, as_staff, count_queries
):
    for _ in range(5):
        made = stripe_client.post(
            f"{API}/orders/{order['id']}/payments",
            headers=as_staff,
            json={"amount": "1.00", "method": "card", "reference": "r"},
        )
        assert made.status_code == 201
    url = f"{API}/orders/{order['id']}/payments"
    counts = []
    for size in (1, 5):
        with count_queries() as counter:
            page = stripe_client.get(f"{url}?page_size={size}", headers=as_customer)
        assert page.status_code == 200 and len(page.json["items"]) == size
        counts.append(counter.count)
    assert counts[0] == counts[1], counts
    assert page.json["total"] == 5 and page.json["pages"] == 1
    assert [p["amount"] for p in page.json["items"]] == ["1.00"] * 5
    assert page.json["items"][0]["method"] == "card"
    assert stripe_client.get(f"{url}?page_size=101", headers=as_customer).status_code == 422


def test_stripe_needs_its_keys_and_the_provider_a_known_name(other_app):
    with pytest.raises(ConfigError, match="STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET"):
        other_app(PAYMENT_PROVIDER="stripe")
    with pytest.raises(ConfigError, match="manual or stripe"):
        other_app(PAYMENT_PROVIDER="paypal")


def test_a_guest_pays_and_reads_the_payments_with_the_order_s_key(app, stripe_client):
    pen = make_product(app, price=Decimal("12.50"), stock=5)
    cart = {"X-Cart-Token": stripe_client.post(f"{API}/carts").json["token"]}
    line = {"product_id": pen.id, "quantity": 2}
    assert stripe_client.post(f"{API}/cart/items", headers=cart, json=line).status_code == 201
    address = {"line1": "1 Main St", "city": "Town", "postal_code": "12345", "country": "US"}
    placed = stripe_client.post(
        f"{API}/orders", headers=cart, json={"email": "g@example.com", "shipping_address": address}
    )
    assert placed.status_code == 201, placed.json
    order, key = placed.json, placed.json["access_key"]
    payments = f"{API}/orders/{order['id']}/payments"
    assert stripe_client.post(intent_url(order)).status_code == 401
    assert stripe_client.post(f"{intent_url(order)}?key=wrong").status_code == 404
    paid = stripe_client.post(intent_url(order), headers={"X-Order-Key": key})
    assert paid.status_code == 201, paid.json
    assert paid.json["amount"] == "30.00"  # 25.00 + shipping 5.00
    assert stripe_client.get(f"{payments}?key={key}").json["total"] == 0
    assert stripe_client.get(f"{payments}?key=wrong").status_code == 404
    assert stripe_client.get(payments, headers={"X-Order-Key": key}).status_code == 200
