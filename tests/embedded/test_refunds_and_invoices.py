"""Refunds and invoice numbers on the embedded default (SQLite, no Redis): the year's counter
row is made with ON CONFLICT DO NOTHING and taken with UPDATE ... RETURNING there too."""

from datetime import UTC, datetime

import pytest

from shop.security import Role
from tests.factories import headers_for, make_product, make_user

pytestmark = pytest.mark.embedded
API = "/api/v1"
SHIP_TO = {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}


def test_paid_orders_are_numbered_refunded_and_invoiced_on_sqlite(embedded_app):
    client = embedded_app.test_client()
    customer = headers_for(embedded_app, make_user(embedded_app, email="r@example.com"))
    staff = headers_for(embedded_app, make_user(embedded_app, role=Role.STAFF))
    product = make_product(embedded_app, stock=10)
    year = datetime.now(UTC).year
    for n in (1, 2):
        order = client.post(
            f"{API}/orders",
            headers=customer,
            json={
                "items": [{"product_id": product.id, "quantity": 1}],
                "shipping_address": SHIP_TO,
            },
        ).json
        paid = client.post(
            f"{API}/orders/{order['id']}/payments",
            headers=staff,
            json={"amount": order["total"], "method": "cash"},
        )
        assert paid.status_code == 201
        again = client.get(f"{API}/orders/{order['id']}", headers=customer).json
        assert again["invoice_number"] == f"INV-{year}-{n:06d}"
    line = order["items"][0]["id"]
    made = client.post(
        f"{API}/orders/{order['id']}/refunds",
        headers=staff,
        json={"amount": order["total"], "reason": "returned", "restock": True,
              "items": [{"order_item_id": line, "quantity": 1}]},
    )  # fmt: skip
    assert made.status_code == 201, made.json
    assert client.get(f"{API}/orders/{order['id']}", headers=customer).json["status"] == "refunded"
    invoice = client.get(f"{API}/orders/{order['id']}/invoice", headers=customer)
    assert invoice.status_code == 200 and invoice.data.startswith(b"%PDF-")
