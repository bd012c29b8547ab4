"""The event feed on the embedded default: SQLite's writers commit one at a time, so the id
alone orders the feed (txid 0)."""

import pytest

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
