"""Fixtures of the Stripe tests: the stand-in for Stripe's API, an app that uses it
(PAYMENT_PROVIDER=stripe), orders to pay, and a worker of that app for the refund jobs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from redis import Redis
from rq import Queue

from shop.queues import DEFAULT_QUEUE, AppWorker
from tests.conftest import TEST_REDIS_URL
from tests.factories import make_product
from tests.payments.stripe_fake import API, SHIP_TO, TIMEOUT, WEBHOOK_SECRET, FakeStripe


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripe]:
    server = FakeStripe()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def stripe_app(other_app: Any, fake_stripe: FakeStripe) -> Flask:
    app: Flask = other_app(
        PAYMENT_PROVIDER="stripe",
        STRIPE_SECRET_KEY="sk_test_shop",
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        STRIPE_API_BASE=fake_stripe.url,
        STRIPE_TIMEOUT=TIMEOUT,
    )
    return app


@pytest.fixture
def stripe_client(stripe_app: Flask) -> Any:
    return stripe_app.test_client()


@pytest.fixture
def run_stripe_jobs(stripe_app: Flask) -> Any:
    """Run the queued jobs (refunds, emails) with a real worker of the Stripe app, in burst."""

    def run() -> None:
        connection = Redis.from_url(TEST_REDIS_URL)
        queue = Queue(DEFAULT_QUEUE, connection=connection)
        AppWorker([queue], connection=connection, app=stripe_app).work(
            burst=True, with_scheduler=False
        )

    return run


@pytest.fixture
def order(app: Flask, stripe_client: Any, as_customer: dict[str, str]) -> dict[str, Any]:
    """A pending order of the customer's: 3 x 19.99, free shipping, so 59.97 in all."""
    product = make_product(app, price=Decimal("19.99"), stock=10)
    made = stripe_client.post(
        f"{API}/orders",
        headers=as_customer,
        json={"items": [{"product_id": product.id, "quantity": 3}], "shipping_address": SHIP_TO},
    )
    assert made.status_code == 201, made.json
    assert made.json["total"] == "59.97"
    return dict(made.json)


@pytest.fixture
def intent(
    stripe_client: Any, fake_stripe: FakeStripe, order: dict[str, Any], as_customer: Any
) -> dict[str, Any]:
    """The order's PaymentIntent, as the fake Stripe holds it."""
    made = stripe_client.post(f"{API}/orders/{order['id']}/payment-intent", headers=as_customer)
    assert made.status_code == 201, made.json
    secret = made.json["client_secret"]
    [found] = [i for i in fake_stripe.intents.values() if i["client_secret"] == secret]
    return found
