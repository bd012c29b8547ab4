"""Cart lines and addresses: each user sees only their own (another's is a 404)."""

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from tests.factories import headers_for, make_product, make_user, make_variant

API = "/api/v1"
ADDRESS = {
    "label": "Home",
    "line1": "1 Main St",
    "city": "Springfield",
    "postal_code": "12345",
    "country": "US",
}


def test_cart_adds_merges_and_prices(client, app, as_customer):
    product = make_product(app, price=Decimal("2.50"), stock=10)
    first = client.post(
        f"{API}/cart/items", headers=as_customer, json={"product_id": product.id, "quantity": 2}
    )
    assert first.status_code == 201
    assert first.headers["Location"].endswith(f"/cart/items/{first.json['id']}")
    again = client.post(
        f"{API}/cart/items", headers=as_customer, json={"product_id": product.id, "quantity": 3}
    )
    assert again.json["id"] == first.json["id"] and again.json["quantity"] == 5
    cart = client.get(f"{API}/cart", headers=as_customer).json
    assert cart["item_count"] == 5 and cart["subtotal"] == "12.50"
    [line] = cart["items"]
    assert line["unit_price"] == "2.50" and line["line_total"] == "12.50"
    assert line["sku"] == product.sku and line["name"] == product.name


def test_cart_refuses_more_than_in_stock(client, app, as_customer):
    product = make_product(app, stock=3)
    assert (
        client.post(
            f"{API}/cart/items", headers=as_customer, json={"product_id": product.id, "quantity": 4}
        ).status_code
        == 409
    )
    client.post(
        f"{API}/cart/items", headers=as_customer, json={"product_id": product.id, "quantity": 2}
    )
    assert (
        client.post(
            f"{API}/cart/items", headers=as_customer, json={"product_id": product.id, "quantity": 2}
        ).status_code
        == 409
    )


def test_a_cart_line_holds_at_most_what_one_order_line_may(client, app, as_customer):
    product = make_product(app, stock=5000)
    add = {"product_id": product.id, "quantity": 1000}
    assert client.post(f"{API}/cart/items", headers=as_customer, json=add).status_code == 201
    again = client.post(f"{API}/cart/items", headers=as_customer, json={**add, "quantity": 1})
    assert again.status_code == 409
    assert again.json["errors"] == {"quantity": ["the cart holds 1000 already"]}
    assert client.get(f"{API}/cart", headers=as_customer).json["items"][0]["quantity"] == 1000


def test_cart_variants(client, app, as_customer):
    product = make_product(app, stock=0)
    variant = make_variant(app, product, stock=4)
    assert (
        client.post(
            f"{API}/cart/items", headers=as_customer, json={"product_id": product.id, "quantity": 1}
        ).status_code
        == 422
    )
    line = client.post(
        f"{API}/cart/items",
        headers=as_customer,
        json={"product_id": product.id, "variant_id": variant.id, "quantity": 1},
    ).json
    assert line["variant_id"] == variant.id and line["sku"] == variant.sku
    other = make_product(app, stock=0)
    assert (
        client.post(
            f"{API}/cart/items",
            headers=as_customer,
            json={"product_id": other.id, "variant_id": variant.id, "quantity": 1},
        ).status_code
        == 404
    )


def test_cart_patch_delete_and_clear(client, app, as_customer):
    product = make_product(app, stock=9)
    line = client.post(
        f"{API}/cart/items", headers=as_customer, json={"product_id": product.id, "quantity": 1}
    ).json
    url = f"{API}/cart/items/{line['id']}"
    assert client.patch(url, headers=as_customer, json={"quantity": 7}).json["quantity"] == 7
    assert client.patch(url, headers=as_customer, json={"quantity": 10}).status_code == 409
    assert client.patch(url, headers=as_customer, json={"quantity": 0}).status_code == 422
    assert client.delete(url, headers=as_customer).status_code == 204
    assert client.delete(url, headers=as_customer).status_code == 404
    client.post(
        f"{API}/cart/items", headers=as_customer, json={"product_id": product.id, "quantity": 1}
    )
    assert client.delete(f"{API}/cart", headers=as_customer).status_code == 204
    assert client.get(f"{API}/cart", headers=as_customer).json["items"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"product_id": None, "quantity": 1}, "product_id"),
        ({"quantity": 0}, "quantity"),
        ({"quantity": 1001}, "quantity"),
        ({"quantity": "2"}, "quantity"),
        ({"quantity": 1, "unit_price": "1.00"}, "unit_price"),
        ({"product_id": "x", "quantity": 1}, "product_id"),
    ],
)
def test_cart_validation(client, app, as_customer, body, field):
    product = make_product(app, stock=2000)
    response = client.post(
        f"{API}/cart/items", headers=as_customer, json={"product_id": product.id, **body}
    )
    assert response.status_code == 422
    assert set(response.json["errors"]) == {field}


def test_cart_of_unknown_or_inactive_product_is_404(client, app, as_customer):
    retired = make_product(app, is_active=False)
    for product_id in (retired.id, 999999):
        response = client.post(
            f"{API}/cart/items", headers=as_customer, json={"product_id": product_id, "quantity": 1}
        )
        assert response.status_code == 404


def test_cart_needs_a_token(client):
    assert client.get(f"{API}/cart").status_code == 401
    assert (
        client.post(f"{API}/cart/items", json={"product_id": 1, "quantity": 1}).status_code == 401
    )
    assert client.delete(f"{API}/cart").status_code == 401


def test_cart_lines_are_private(client, app, as_customer):
    product = make_product(app)
    line = client.post(
        f"{API}/cart/items", headers=as_customer, json={"product_id": product.id, "quantity": 1}
    ).json
    intruder = headers_for(app, make_user(app))
    url = f"{API}/cart/items/{line['id']}"
    assert client.patch(url, headers=intruder, json={"quantity": 2}).status_code == 404
    assert client.delete(url, headers=intruder).status_code == 404
    assert client.get(f"{API}/cart", headers=intruder).json["items"] == []


def test_addresses_crud_and_single_default(client, as_customer):
    first = client.post(f"{API}/addresses", headers=as_customer, json=ADDRESS)
    assert first.status_code == 201 and first.json["is_default"] is True
    second = client.post(
        f"{API}/addresses",
        headers=as_customer,
        json={**ADDRESS, "label": "Work", "is_default": True},
    ).json
    listed = client.get(f"{API}/addresses", headers=as_customer).json["items"]
    assert [(a["label"], a["is_default"]) for a in listed] == [("Home", False), ("Work", True)]
    url = f"{API}/addresses/{first.json['id']}"
    patched = client.patch(
        url, headers=as_customer, json={"city": "Shelbyville", "is_default": True}
    )
    assert patched.json["city"] == "Shelbyville" and patched.json["is_default"] is True
    listed = client.get(f"{API}/addresses", headers=as_customer).json["items"]
    assert [a["is_default"] for a in listed] == [True, False]
    assert client.delete(f"{API}/addresses/{second['id']}", headers=as_customer).status_code == 204


@pytest.mark.parametrize(
    "change",
    [
        {"country": "usa"},
        {"country": "us"},
        {"line1": ""},
        {"postal_code": "x" * 21},
        {"phone": "call me"},
        {"user_id": 3},
        {"id": 1},
    ],
)
def test_address_validation(client, as_customer, change):
    assert (
        client.post(f"{API}/addresses", headers=as_customer, json={**ADDRESS, **change}).status_code
        == 422
    )


def test_addresses_are_private(client, app, as_customer):
    address = client.post(f"{API}/addresses", headers=as_customer, json=ADDRESS).json
    intruder = headers_for(app, make_user(app))
    url = f"{API}/addresses/{address['id']}"
    assert client.patch(url, headers=intruder, json={"city": "X"}).status_code == 404
    assert client.delete(url, headers=intruder).status_code == 404
    assert client.get(f"{API}/addresses", headers=intruder).json["items"] == []
    assert client.get(f"{API}/addresses").status_code == 401


def test_simultaneous_first_adds_of_a_line_all_count(app, customer):
    # `make bench` found it: two adds racing to create the same line met the line's unique
    # index, and one was a 409 "conflicts with existing data" for a valid request.
    product = make_product(app, stock=100)
    headers = headers_for(app, customer)
    barrier = threading.Barrier(8)

    def add(_):
        barrier.wait()
        body = {"product_id": product.id, "quantity": 1}
        return app.test_client().post(f"{API}/cart/items", headers=headers, json=body).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(add, range(8)))
    assert statuses == [201] * 8
    cart = app.test_client().get(f"{API}/cart", headers=headers).json
    assert [line["quantity"] for line in cart["items"]] == [8]
