"""Shipping methods on the embedded default (SQLite, no Redis, so nothing cached): the
countries' rows, the lookup of a country's methods, checkout choosing one."""

from decimal import Decimal

import pytest

from shop.security import Role
from tests.factories import headers_for, make_product, make_user

pytestmark = pytest.mark.embedded
API = "/api/v1"
SHIP_TO = {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}


def test_methods_by_country_and_an_order_shipped_by_one_on_sqlite(embedded_app):
    client = embedded_app.test_client()
    admin = headers_for(embedded_app, make_user(embedded_app, role=Role.ADMIN))
    customer = headers_for(embedded_app, make_user(embedded_app, email="s@example.com"))
    made = {}
    for name, price, countries in (("Standard", "5.00", ["*"]), ("Express", "15.00", ["US"]),
                                   ("EU", "7.00", ["DE", "FR"])):  # fmt: skip
        body = {"name": name, "carrier": "Post", "price": price, "free_over": "100.00",
                "countries": countries, "min_days": 1, "max_days": 4}  # fmt: skip
        response = client.post(f"{API}/shipping-methods", headers=admin, json=body)
        assert response.status_code == 201, response.json
        made[name] = response.json["id"]
    listed = client.get(f"{API}/shipping-methods?country=US&subtotal=100.00").json
    assert [(m["name"], m["price"]) for m in listed["items"]] == [
        ("Standard", "0.00"), ("Express", "0.00")
    ]  # fmt: skip
    eu = f"{API}/shipping-methods/{made['EU']}"
    assert client.patch(eu, headers=admin, json={"countries": ["FR", "US"]}).status_code == 200
    assert client.get(f"{API}/shipping-methods?country=US").json["total"] == 3

    pen = make_product(embedded_app, price=Decimal("10.00"), stock=5)
    body = {"items": [{"product_id": pen.id, "quantity": 1}], "shipping_address": SHIP_TO}
    assert client.post(f"{API}/orders", headers=customer, json=body).status_code == 422
    placed = client.post(f"{API}/orders", headers=customer,
                         json={**body, "shipping_method_id": made["Express"]})  # fmt: skip
    assert placed.status_code == 201, placed.json
    assert (placed.json["shipping_cost"], placed.json["total"]) == ("15.00", "25.00")
    express = f"{API}/shipping-methods/{made['Express']}"
    assert client.delete(express, headers=admin).status_code == 204
    kept = client.get(f"{API}/orders/{placed.json['id']}", headers=customer).json
    assert kept["shipping_method"]["name"] == "Express"
