"""Shipping methods at checkout: required where one ships, priced from the method (free from
free_over on, or by coupon), kept on the order by name; the flat rate where none ships; the
preview lists them priced for the cart."""

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from sqlalchemy import func, select

from shop.db import db
from shop.orders.models import Order
from tests.factories import make_product
from tests.shipping.helpers import API, method

SHIP_TO = {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}


def body_for(product, quantity=1, country="US", **extra):
    return {"items": [{"product_id": product.id, "quantity": quantity}],
            "shipping_address": {**SHIP_TO, "country": country}, **extra}  # fmt: skip


def place(client, headers, body, expected=201):
    response = client.post(f"{API}/orders", headers=headers, json=body)
    assert response.status_code == expected, response.json
    return response.json


def test_no_method_for_the_country_keeps_the_flat_rate(client, app, as_admin, as_customer):
    method(client, as_admin, countries=["DE"])
    pen = make_product(app, price=Decimal("10.00"))
    placed = place(client, as_customer, body_for(pen))
    assert (placed["shipping_cost"], placed["total"]) == ("5.00", "15.00")
    assert placed["shipping_method"] is None
    preview = client.post(f"{API}/checkout/preview", headers=as_customer, json=body_for(pen))
    assert preview.json["shipping_methods"] == [] and preview.json["shipping_method"] is None
    # A method named anyway must ship there.
    de = client.get(f"{API}/shipping-methods?country=DE").json["items"][0]["id"]
    refused = place(client, as_customer, body_for(pen, shipping_method_id=de), 422)
    assert "shipping_method_id" in refused["errors"]


def test_a_method_is_required_where_one_ships_and_sets_the_cost(client, app, as_admin, as_customer):
    express = method(client, as_admin, name="Express", carrier="DHL", price="15.00",
                     countries=["US"], min_days=1, max_days=2)  # fmt: skip
    pen = make_product(app, price=Decimal("10.00"), stock=5)
    missing = place(client, as_customer, body_for(pen), 422)
    assert f"one of {express['id']}" in missing["errors"]["shipping_method_id"][0]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Order)) == 0

    placed = place(client, as_customer, body_for(pen, 2, shipping_method_id=express["id"]))
    assert placed["shipping_method"] == {"id": express["id"], "name": "Express", "carrier": "DHL"}
    assert (placed["subtotal"], placed["shipping_cost"], placed["total"]) == (
        "20.00", "15.00", "35.00"
    )  # fmt: skip
    again = client.get(f"{API}/orders/{placed['id']}", headers=as_customer).json
    assert again == placed
    # Other countries still pay the flat rate without choosing.
    assert place(client, as_customer, body_for(pen, country="FR"))["shipping_cost"] == "5.00"


def test_unknown_inactive_and_other_countries_methods_are_422(client, app, as_admin, as_customer):
    method(client, as_admin, name="US post", countries=["US"])
    europe = method(client, as_admin, name="EU", countries=["DE", "FR"])
    paused = method(client, as_admin, name="Paused", countries=["US"], is_active=False)
    pen = make_product(app, stock=5)
    for method_id in (999999, europe["id"], paused["id"]):
        refused = place(client, as_customer, body_for(pen, shipping_method_id=method_id), 422)
        assert str(method_id) in refused["errors"]["shipping_method_id"][0]
        preview = client.post(f"{API}/checkout/preview", headers=as_customer,
                              json=body_for(pen, shipping_method_id=method_id))  # fmt: skip
        assert preview.status_code == 422
    for bad in ("1", 0, -1, None, 2**31):
        assert place(client, as_customer, body_for(pen, shipping_method_id=bad), 422)
    from_stock = client.get(f"{API}/products/{pen.id}").json["stock"]
    assert from_stock == 5


def test_free_over_counts_the_goods_after_discount_and_a_coupon_ships_free(
    client, app, as_admin, as_customer
):
    standard = method(client, as_admin, price="6.00", free_over="40.00")
    pen = make_product(app, price=Decimal("20.00"), stock=50)
    chosen = {"shipping_method_id": standard["id"]}
    assert place(client, as_customer, body_for(pen, 2, **chosen))["shipping_cost"] == "0.00"
    assert place(client, as_customer, body_for(pen, 1, **chosen))["shipping_cost"] == "6.00"
    # 40.00 less 10 % is under free_over: the method's price.
    ten = {"code": "TEN", "kind": "percent", "value": "10.00"}
    assert client.post(f"{API}/coupons", headers=as_admin, json=ten).status_code == 201
    discounted = place(client, as_customer, body_for(pen, 2, coupon_code="TEN", **chosen))
    assert (discounted["discount"], discounted["shipping_cost"], discounted["total"]) == (
        "4.00", "6.00", "42.00"
    )  # fmt: skip
    free = {"code": "SHIPFREE", "kind": "free_shipping"}
    assert client.post(f"{API}/coupons", headers=as_admin, json=free).status_code == 201
    by_coupon = place(client, as_customer, body_for(pen, 1, coupon_code="SHIPFREE", **chosen))
    assert (by_coupon["shipping_cost"], by_coupon["total"]) == ("0.00", "20.00")
    assert by_coupon["shipping_method"]["id"] == standard["id"]


def test_shipping_by_a_method_is_taxed_where_the_rate_says_so(client, app, as_admin, as_customer):
    rate = {"country": "US", "rate": "0.10", "name": "Tax", "applies_to_shipping": True}
    assert client.post(f"{API}/tax-rates", headers=as_admin, json=rate).status_code == 201
    courier = method(client, as_admin, price="8.00", countries=["US"])
    pen = make_product(app, price=Decimal("10.00"))
    placed = place(client, as_customer, body_for(pen, shipping_method_id=courier["id"]))
    assert (placed["shipping_cost"], placed["tax"], placed["total"]) == ("8.00", "1.80", "19.80")


def test_the_preview_lists_the_methods_priced_for_the_cart(client, app, as_admin, as_customer):
    standard = method(client, as_admin, price="6.00", free_over="30.00")
    express = method(client, as_admin, name="Express", carrier="DHL", price="15.00",
                     countries=["US"], min_days=1, max_days=2)  # fmt: skip
    method(client, as_admin, name="EU", price="1.00", countries=["FR"])
    method(client, as_admin, name="Paused", price="0.50", is_active=False)
    pen = make_product(app, price=Decimal("10.00"), stock=10)

    small = client.post(f"{API}/checkout/preview", headers=as_customer, json=body_for(pen))
    assert small.status_code == 200, small.json
    assert small.json["shipping_methods"] == [
        {"id": standard["id"], "name": "Standard", "carrier": "Post", "price": "6.00",
         "list_price": "6.00", "free_over": "30.00", "min_days": 3, "max_days": 5},
        {"id": express["id"], "name": "Express", "carrier": "DHL", "price": "15.00",
         "list_price": "15.00", "free_over": None, "min_days": 1, "max_days": 2},
    ]  # fmt: skip
    # No choice yet: priced with the cheapest, and says so.
    assert small.json["shipping_method"]["id"] == standard["id"]
    assert (small.json["shipping_cost"], small.json["total"]) == ("6.00", "16.00")

    large = client.post(f"{API}/checkout/preview", headers=as_customer, json=body_for(pen, 3))
    assert [(m["name"], m["price"]) for m in large.json["shipping_methods"]] == [
        ("Standard", "0.00"), ("Express", "15.00")
    ]  # fmt: skip
    chosen = body_for(pen, 3, shipping_method_id=express["id"])
    preview = client.post(f"{API}/checkout/preview", headers=as_customer, json=chosen).json
    placed = place(client, as_customer, chosen)
    for name in ("subtotal", "shipping_cost", "tax", "total", "shipping_method"):
        assert preview[name] == placed[name], name
    assert placed["shipping_cost"] == "15.00"


def test_a_saved_address_decides_too(client, app, as_admin, as_customer):
    france = {**SHIP_TO, "country": "FR", "label": "Paris"}
    address = client.post(f"{API}/addresses", headers=as_customer, json=france).json
    colis = method(client, as_admin, name="Colissimo", carrier="La Poste", countries=["FR"])
    pen = make_product(app)
    body = {"items": [{"product_id": pen.id, "quantity": 1}], "address_id": address["id"]}
    assert "shipping_method_id" in place(client, as_customer, body, 422)["errors"]
    placed = place(client, as_customer, {**body, "shipping_method_id": colis["id"]})
    assert placed["shipping_method"]["name"] == "Colissimo"


def test_guests_choose_a_method_and_their_keys_replay(client, app, as_admin):
    standard = method(client, as_admin, price="4.00")
    pen = make_product(app, price=Decimal("10.00"), stock=10)
    guest = {"X-Cart-Token": client.post(f"{API}/carts").json["token"]}
    added = client.post(f"{API}/cart/items", headers=guest,
                        json={"product_id": pen.id, "quantity": 1})  # fmt: skip
    assert added.status_code == 201
    body = {"email": "guest@example.com", "shipping_address": SHIP_TO}
    assert place(client, guest, body, 422)["errors"]["shipping_method_id"]
    body["shipping_method_id"] = standard["id"]
    keyed = {**guest, "Idempotency-Key": "guest-ship-1"}
    first = client.post(f"{API}/orders", headers=keyed, json=body)
    assert first.status_code == 201, first.json
    assert (first.json["shipping_cost"], first.json["total"]) == ("4.00", "14.00")
    assert first.json["shipping_method"]["id"] == standard["id"]
    again = client.post(f"{API}/orders", headers=keyed, json=body)
    assert again.status_code == 201 and again.json == first.json
    other = client.post(f"{API}/orders", headers=keyed, json={**body, "notes": "other"})
    assert other.status_code == 409


def test_concurrent_repeats_of_a_keyed_order_make_one(client, app, as_admin, as_customer):
    standard = method(client, as_admin)
    pen = make_product(app, stock=10)
    body = body_for(pen, shipping_method_id=standard["id"])
    headers = {**as_customer, "Idempotency-Key": "ship-race"}

    def post(_):
        with app.test_client() as own:
            return own.post(f"{API}/orders", headers=headers, json=body)

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(post, range(4)))
    assert {a.status_code for a in answers} <= {201, 409}
    created = [a.json["id"] for a in answers if a.status_code == 201]
    assert created and len(set(created)) == 1
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Order)) == 1


def test_an_order_keeps_the_method_it_was_shipped_by(client, app, as_admin, as_customer):
    courier = method(client, as_admin, name="Courier", carrier="UPS", price="9.00")
    pen = make_product(app)
    placed = place(client, as_customer, body_for(pen, shipping_method_id=courier["id"]))
    url = f"{API}/shipping-methods/{courier['id']}"
    renamed = client.patch(url, headers=as_admin, json={"name": "Courier+", "price": "12.00"})
    assert renamed.status_code == 200
    order_url = f"{API}/orders/{placed['id']}"
    kept = client.get(order_url, headers=as_customer).json
    assert kept["shipping_method"]["name"] == "Courier" and kept["shipping_cost"] == "9.00"
    assert client.delete(url, headers=as_admin).status_code == 204
    gone = client.get(order_url, headers=as_customer).json
    assert gone["shipping_method"] == {"id": None, "name": "Courier", "carrier": "UPS"}
    # With none left, checkout to the US is back to the flat rate.
    assert place(client, as_customer, body_for(pen))["shipping_method"] is None
