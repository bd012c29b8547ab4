"""The popularity job behind sort=popularity: units ordered in the last 30 days."""

from shop.reports.jobs import refresh_popularity
from tests.factories import make_product

API = "/api/v1"
SHIP_TO = {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}


def order(client, headers, *lines):
    items = [{"product_id": p.id, "quantity": q} for p, q in lines]
    return client.post(
        f"{API}/orders", headers=headers, json={"items": items, "shipping_address": SHIP_TO}
    )


def test_popularity_job_counts_recent_units_ordered(client, app, as_customer):
    hit = make_product(app, name="Hit", stock=20)
    flop = make_product(app, name="Flop", stock=20)
    order(client, as_customer, (hit, 3))
    cancelled = order(client, as_customer, (flop, 5)).json
    client.post(f"{API}/orders/{cancelled['id']}/cancel", headers=as_customer)
    with app.app_context():
        assert refresh_popularity() == {"updated": 1}
        assert refresh_popularity() == {"updated": 0}
    names = [p["name"] for p in client.get(f"{API}/products?sort=popularity").json["items"]]
    assert names == ["Hit", "Flop"]
