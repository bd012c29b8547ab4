"""Tax by destination: admins' rates per country and region, the most specific one of the
shipping address, tax on shipping where the rate says so, prices with tax in them, and per
line rounding that adds up to the order's tax."""

import random
from decimal import ROUND_HALF_UP, Decimal

import pytest

from shop.merchandising.coupons import Applied
from shop.orders.checkout import price
from shop.products.sellable import Sellable
from tests.factories import make_product

API = "/api/v1"
CENT = Decimal("0.01")


def rate(client, as_admin, **fields):
    body = {"country": "CA", "rate": "0.0500", "name": "GST", **fields}
    response = client.post(f"{API}/tax-rates", headers=as_admin, json=body)
    assert response.status_code == 201, response.json
    return response.json


def ship_to(country="CA", state=""):
    return {"line1": "1 Main St", "city": "Town", "postal_code": "K1A 0B1", "country": country,
            "state": state}  # fmt: skip


def order(client, headers, product, quantity=1, **address):
    body = {"items": [{"product_id": product.id, "quantity": quantity}],
            "shipping_address": ship_to(**address)}  # fmt: skip
    response = client.post(f"{API}/orders", headers=headers, json=body)
    assert response.status_code == 201, response.json
    return response.json


def test_admin_creates_lists_changes_and_deletes_rates(client, as_admin):
    made = rate(client, as_admin, country="ca")
    assert (made["country"], made["region"], made["rate"]) == ("CA", None, "0.0500")
    assert made["applies_to_shipping"] is False
    ontario = rate(client, as_admin, region="ca-on", rate="0.13", name="HST")
    assert (ontario["region"], ontario["rate"]) == ("CA-ON", "0.1300")
    rate(client, as_admin, country="US", region="US-CA", rate="0.0725", name="CA sales tax")
    listed = client.get(f"{API}/tax-rates?country=ca", headers=as_admin).json
    assert [r["id"] for r in listed["items"]] == [made["id"], ontario["id"]]
    assert client.get(f"{API}/tax-rates", headers=as_admin).json["total"] == 3
    url = f"{API}/tax-rates/{ontario['id']}"
    changed = client.patch(url, headers=as_admin, json={"applies_to_shipping": True})
    assert changed.status_code == 200 and changed.json["applies_to_shipping"] is True
    assert client.get(url, headers=as_admin).json["applies_to_shipping"] is True
    assert client.delete(url, headers=as_admin).status_code == 204
    assert client.get(url, headers=as_admin).status_code == 404


def test_roles(client, as_customer, as_staff, as_admin):
    made = rate(client, as_admin)
    url = f"{API}/tax-rates/{made['id']}"
    body = {"country": "FR", "rate": "0.2", "name": "TVA"}
    for headers, expected in ((None, 401), (as_customer, 403), (as_staff, 403)):
        assert client.get(f"{API}/tax-rates", headers=headers).status_code == expected
        assert client.post(f"{API}/tax-rates", headers=headers, json=body).status_code == expected
        assert client.get(url, headers=headers).status_code == expected
        assert client.patch(url, headers=headers, json={"rate": "0.1"}).status_code == expected
        assert client.delete(url, headers=headers).status_code == expected
    assert client.get(f"{API}/tax-rates/999999", headers=as_admin).status_code == 404
    assert client.patch(f"{API}/tax-rates/999999", headers=as_admin, json={}).status_code == 404


@pytest.mark.parametrize(
    "fields",
    [
        {"country": "CAN"},
        {"country": "C1"},
        {"rate": "1.5"},
        {"rate": "-0.1"},
        {"rate": 0.05},
        {"rate": "0.12345"},
        {"region": "ON"},
        {"region": "CA-TOOLONG"},
        {"name": ""},
        {"colour": "red"},
    ],
)
def test_bad_input_is_422(client, as_admin, fields):
    body = {"country": "CA", "rate": "0.05", "name": "GST", **fields}
    assert client.post(f"{API}/tax-rates", headers=as_admin, json=body).status_code == 422


def test_a_region_outside_its_country_is_422_and_a_second_rate_409(client, as_admin):
    body = {"country": "US", "region": "CA-ON", "rate": "0.1", "name": "x"}
    refused = client.post(f"{API}/tax-rates", headers=as_admin, json=body)
    assert refused.status_code == 422 and refused.json["errors"]["region"]
    rate(client, as_admin)
    again = client.post(f"{API}/tax-rates", headers=as_admin,
                        json={"country": "ca", "rate": "0.06", "name": "again"})  # fmt: skip
    assert again.status_code == 409
    ontario = rate(client, as_admin, region="CA-ON", rate="0.13", name="HST")
    moved = client.patch(f"{API}/tax-rates/{ontario['id']}", headers=as_admin,
                         json={"region": None})  # fmt: skip
    assert moved.status_code == 409  # Canada's own rate exists


def test_the_most_specific_rate_of_the_address_applies(client, app, as_admin, as_customer):
    """Region (written "ON" or "CA-ON"), then country, then TAX_RATE; a rate written now
    applies to the next order (the cached table is replaced)."""
    pen = make_product(app, price=Decimal("100.00"), stock=100)
    assert order(client, as_customer, pen, country="CA")["tax"] == "0.00"  # TAX_RATE 0
    rate(client, as_admin)
    rate(client, as_admin, region="CA-ON", rate="0.13", name="HST")
    canada = order(client, as_customer, pen, country="CA", state="QC")
    assert canada["tax"] == "5.00"
    assert canada["tax_lines"] == [{"name": "GST", "rate": "0.0500", "amount": "5.00"}]
    for state in ("ON", "on", "CA-ON"):
        ontario = order(client, as_customer, pen, country="CA", state=state)
        assert (ontario["tax"], ontario["total"]) == ("13.00", "113.00")  # shipping free
        assert ontario["items"][0]["tax"] == "13.00"
    app.config["TAX_RATE"] = Decimal("0.2")
    try:
        france = order(client, as_customer, pen, country="FR")
    finally:
        app.config["TAX_RATE"] = Decimal("0")
    assert france["tax_lines"] == [{"name": "Tax", "rate": "0.2000", "amount": "20.00"}]


def test_shipping_is_taxed_where_the_rate_says_so(client, app, as_admin, as_customer):
    pen = make_product(app, price=Decimal("10.00"), stock=100)  # under 50: shipping 5.00
    rate(client, as_admin, rate="0.10", applies_to_shipping=True)
    placed = order(client, as_customer, pen, 2, country="CA")
    assert (placed["shipping_cost"], placed["tax"], placed["total"]) == ("5.00", "2.50", "27.50")
    assert placed["items"][0]["tax"] == "2.00"  # the other 0.50 is shipping's


def test_prices_that_include_tax_have_it_extracted(client, app, as_admin, as_customer):
    pen = make_product(app, price=Decimal("12.00"), stock=100)
    rate(client, as_admin, country="GB", rate="0.20", name="VAT", applies_to_shipping=True)
    app.config["PRICES_INCLUDE_TAX"] = True
    try:
        placed = order(client, as_customer, pen, 2, country="GB")
    finally:
        app.config["PRICES_INCLUDE_TAX"] = False
    # 24.00 holds 4.00 of VAT; shipping 5.00 holds 0.83 (0.8333 half up); nothing is added.
    assert (placed["subtotal"], placed["shipping_cost"]) == ("24.00", "5.00")
    assert (placed["tax"], placed["total"]) == ("4.83", "29.00")
    assert placed["items"][0]["tax"] == "4.00"


@pytest.mark.parametrize("included", [False, True])
def test_line_taxes_add_up_to_the_order_tax_over_a_thousand_random_carts(app, included):
    generator = random.Random(16)
    app.config["PRICES_INCLUDE_TAX"] = included
    try:
        with app.test_request_context():
            for _ in range(1000):
                prices = [Decimal(generator.randint(1, 99_999)) / 100 for _ in range(6)]
                lines = [
                    (Sellable(n, None, f"S{n}", "x", p, 10, p, None), generator.randint(1, 9))
                    for n, p in enumerate(prices[: generator.randint(1, 6)])
                ]
                app.config["TAX_RATE"] = Decimal(generator.randint(0, 2500)) / 10_000
                off = [
                    min(item.price * quantity, Decimal(generator.randint(0, 500)) / 100)
                    for item, quantity in lines
                ]
                applied = Applied(None, off, free_shipping=False)  # type: ignore[arg-type]
                priced = price(lines, applied, {"country": "ZZ"})
                assert all(t == t.quantize(CENT) for t in priced.taxes)
                assert sum(priced.taxes) == priced.tax  # TAX_RATE: shipping untaxed
                goods = priced.subtotal - priced.discount
                added = Decimal(0) if included else priced.tax
                assert priced.total == goods + priced.shipping + added
                for (item, quantity), d, t in zip(lines, off, priced.taxes, strict=True):
                    net = item.price * quantity - d
                    rate_ = app.config["TAX_RATE"]
                    exact = net * rate_ / (1 + rate_) if included else net * rate_
                    assert t == exact.quantize(CENT, rounding=ROUND_HALF_UP)
    finally:
        app.config["PRICES_INCLUDE_TAX"] = False
        app.config["TAX_RATE"] = Decimal("0")
