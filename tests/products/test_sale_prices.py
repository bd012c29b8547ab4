"""Sale prices: a compare-at price on products and variants (a lower price is a sale),
`?on_sale=true`, and order lines that keep the price charged and the list price."""

from decimal import Decimal

import pytest

from tests.factories import make_product, make_variant

API = "/api/v1"
SHIP_TO = {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}


def test_compare_at_price_is_written_shown_and_cleared(client, app, as_admin):
    made = client.post(
        f"{API}/products",
        headers=as_admin,
        json={"sku": "SALE-1", "name": "Kettle", "price": "15.00", "compare_at_price": "20.00"},
    )
    assert made.status_code == 201 and made.json["compare_at_price"] == "20.00"
    product_id = made.json["id"]
    variant = client.post(
        f"{API}/products/{product_id}/variants",
        headers=as_admin,
        json={"sku": "SALE-1-B", "name": "Blue", "price": "16.00", "compare_at_price": "21.00"},
    )
    assert variant.status_code == 201 and variant.json["compare_at_price"] == "21.00"
    cleared = client.patch(
        f"{API}/products/{product_id}", headers=as_admin, json={"compare_at_price": None}
    )
    assert cleared.status_code == 200 and cleared.json["compare_at_price"] is None
    shown = client.get(f"{API}/products/{product_id}").json
    assert shown["compare_at_price"] is None
    assert shown["variants"][0]["compare_at_price"] == "21.00"


@pytest.mark.parametrize("value", ["0", "0.00", 20, "-5.00", "20.001", "twenty"])
def test_a_bad_compare_at_price_is_422(client, as_admin, value):
    response = client.post(
        f"{API}/products",
        headers=as_admin,
        json={"sku": "BAD-1", "name": "X", "price": "5.00", "compare_at_price": value},
    )
    assert response.status_code == 422 and "compare_at_price" in response.json["errors"]


def test_on_sale_lists_products_below_their_compare_at_price(client, app):
    on_sale = make_product(
        app, name="On sale", price=Decimal("8.00"), compare_at_price=Decimal("10.00")
    )
    not_below = make_product(
        app, name="Same", price=Decimal("10.00"), compare_at_price=Decimal("10.00")
    )
    plain = make_product(app, name="Plain", price=Decimal("10.00"))
    by_variant = make_product(app, name="By variant", stock=0)
    make_variant(app, by_variant, price=Decimal("5.00"), compare_at_price=Decimal("9.00"))

    def names(query):
        return {p["name"] for p in client.get(f"{API}/products?{query}").json["items"]}

    assert names("on_sale=true") == {on_sale.name, by_variant.name}
    assert names("on_sale=false") == {not_below.name, plain.name}
    assert names("on_sale=true&max_price=9.00") == {on_sale.name}


def test_order_and_cart_lines_keep_the_price_charged_and_the_list_price(client, app, as_customer):
    kettle = make_product(app, price=Decimal("15.00"), compare_at_price=Decimal("20.00"))
    mug = make_product(app, price=Decimal("4.00"))
    cheaper_list = make_product(app, price=Decimal("6.00"), compare_at_price=Decimal("5.00"))
    client.post(
        f"{API}/cart/items", headers=as_customer, json={"product_id": kettle.id, "quantity": 1}
    )
    [line] = client.get(f"{API}/cart", headers=as_customer).json["items"]
    assert (line["unit_price"], line["list_price"]) == ("15.00", "20.00")
    order = client.post(
        f"{API}/orders",
        headers=as_customer,
        json={
            "items": [
                {"product_id": kettle.id, "quantity": 2},
                {"product_id": mug.id, "quantity": 1},
                {"product_id": cheaper_list.id, "quantity": 1},
            ],
            "shipping_address": SHIP_TO,
        },
    ).json
    lines = {i["product_id"]: (i["unit_price"], i["list_price"]) for i in order["items"]}
    assert lines == {
        kettle.id: ("15.00", "20.00"),
        mug.id: ("4.00", "4.00"),
        cheaper_list.id: ("6.00", "6.00"),  # a compare-at price below the price is no sale
    }
    assert order["subtotal"] == "40.00"
    again = client.get(f"{API}/orders/{order['id']}", headers=as_customer).json
    assert {i["product_id"]: i["list_price"] for i in again["items"]}[kettle.id] == "20.00"


def test_the_export_carries_the_compare_at_price(client, app, as_staff):
    make_product(app, sku="EXP-1", price=Decimal("8.00"), compare_at_price=Decimal("12.00"))
    body = client.get(f"{API}/products/export", headers=as_staff).get_data(as_text=True)
    assert "EXP-1,,Widget,,8.00,12.00," in body
