"""The event feed on the embedded default: SQLite's writers commit one at a time, so the id
alone orders the feed (txid 0)."""

import threading

import pytest
from standardwebhooks import Webhook

from shop.schedule import InlineScheduler
from shop.security import Role
from tests.conftest import wait_for
from tests.events.test_webhooks import Receiver
from tests.factories import headers_for, make_product, make_user

pytestmark = pytest.mark.embedded
API = "/api/v1"
SHIP_TO = {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}


def test_orders_appear_in_the_feed_and_read_on_after_an_id(embedded_app):
    client = embedded_app.test_client()
    customer = headers_for(embedded_app, make_user(embedded_app, email="e@example.com"))
    product = make_product(embedded_app, stock=10)
    for _ in range(3):
        placed = client.post(
            f"{API}/orders",
            headers=customer,
            json={
                "items": [{"product_id": product.id, "quantity": 1}],
                "shipping_address": SHIP_TO,
            },
        )
        assert placed.status_code == 201
    newest_first = client.get(f"{API}/events", headers=customer).json["items"]
    assert [e["type"] for e in newest_first] == ["order.created"] * 3
    assert all(e["id"].startswith("0" * 16) for e in newest_first)
    oldest = newest_first[-1]["id"]
    on = client.get(f"{API}/events?after={oldest}", headers=customer).json["items"]
    assert [e["id"] for e in on] == [newest_first[1]["id"], newest_first[0]["id"]]


def test_webhooks_go_out_from_the_inline_scheduler_s_tick(embedded_app):
    """No Redis: the development server's scheduler thread fans events out and sends them."""
    embedded_app.config["WEBHOOK_ALLOW_PRIVATE"] = True
    receiver = Receiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    client = embedded_app.test_client()
    admin = headers_for(embedded_app, make_user(embedded_app, role=Role.ADMIN))
    endpoint = client.post(
        f"{API}/webhooks", headers=admin, json={"url": receiver.url, "events": ["order.created"]}
    ).json
    customer = headers_for(embedded_app, make_user(embedded_app, email="w@example.com"))
    product = make_product(embedded_app, stock=10)
    client.post(
        f"{API}/orders",
        headers=customer,
        json={"items": [{"product_id": product.id, "quantity": 1}], "shipping_address": SHIP_TO},
    )
    inline = InlineScheduler(embedded_app, jobs=(), tick=0.05)
    inline.start()
    try:
        assert wait_for(lambda: receiver.requests)
    finally:
        inline.stopping.set()
        inline.join(timeout=5)
        receiver.shutdown()
        receiver.server_close()
    headers, body = receiver.requests[0]
    assert Webhook(endpoint["secret"]).verify(body, headers)["type"] == "order.created"
