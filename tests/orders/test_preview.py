"""POST /checkout/preview: the totals POST /orders would charge for the same body, from the
same code, with nothing written and no stock taken."""

from decimal import Decimal

from sqlalchemy import func, select

from shop.db import db
from shop.orders.models import Order
from shop.products.models import StockMovement
from tests.factories import make_product

API = "/api/v1"
SHIP_TO = {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}
TOTALS = ("subtotal", "discount", "shipping_cost", "tax", "tax_lines", "total", "currency")


def counts(app):
    with app.app_context():
        return tuple(
            db.session.scalar(select(func.count()).select_from(model))
            for model in (Order, StockMovement)
        )


def test_the_preview_is_what_the_order_then_charges(client, app, as_admin, as_customer):
    pen = make_product(app, price=Decimal("19.99"), stock=3)
    pad = make_product(app, price=Decimal("3.35"), stock=10)
    california = {"country": "US", "region": "US-CA", "rate": "0.0725", "name": "CA"}
    assert client.post(f"{API}/tax-rates", headers=as_admin, json=california).status_code == 201
    ten = {"code": "TEN", "kind": "percent", "value": "10.00"}
    assert client.post(f"{API}/coupons", headers=as_admin, json=ten).status_code == 201
    body = {
        "items": [{"product_id": pen.id, "quantity": 2}, {"product_id": pad.id, "quantity": 1}],
        "shipping_address": {**SHIP_TO, "state": "CA"},
        "coupon_code": "ten",
    }
    before = counts(app)
    preview = client.post(f"{API}/checkout/preview", headers=as_customer, json=body)
    assert preview.status_code == 200, preview.json
    assert counts(app) == before  # nothing written, no stock taken
    assert client.post(f"{API}/checkout/preview", headers=as_customer, json=body).json == (
        preview.json
    )
    placed = client.post(f"{API}/orders", headers=as_customer, json=body)
    assert placed.status_code == 201
    for name in TOTALS:
        assert preview.json[name] == placed.json[name], name
    fields = ("product_id", "sku", "unit_price", "quantity", "discount", "line_total", "tax")
    assert [{f: line[f] for f in fields} for line in preview.json["lines"]] == [
        {f: item[f] for f in fields} for item in placed.json["items"]
    ]
    assert preview.json["coupon_code"] == "TEN" and preview.json["shipping_methods"] == []
    # 39.98 + 3.35 = 43.33, 10 % off per line 4.00 + 0.34; under 50: shipping 5.00;
    # 7.25 % of 35.98 = 2.61 and of 3.01 = 0.22.
    assert (preview.json["discount"], preview.json["tax"], preview.json["total"]) == (
        "4.34", "2.83", "46.82"
    )  # fmt: skip


def test_the_cart_is_previewed_without_items(client, app, as_customer):
    pen = make_product(app, price=Decimal("60.00"), stock=5)
    client.post(
        f"{API}/cart/items", headers=as_customer, json={"product_id": pen.id, "quantity": 1}
    )
    preview = client.post(f"{API}/checkout/preview", headers=as_customer,
                          json={"shipping_address": SHIP_TO})  # fmt: skip
    assert preview.status_code == 200
    assert (preview.json["subtotal"], preview.json["shipping_cost"]) == ("60.00", "0.00")
    assert client.get(f"{API}/cart", headers=as_customer).json["item_count"] == 1  # kept


def test_what_the_order_would_refuse_the_preview_refuses(client, app, as_customer, as_admin):
    pen = make_product(app, price=Decimal("5.00"), stock=2)
    url = f"{API}/checkout/preview"

    def preview(headers=as_customer, **body):
        return client.post(url, headers=headers, json={"shipping_address": SHIP_TO, **body})

    line = [{"product_id": pen.id, "quantity": 3}]
    short = preview(items=line)
    assert short.status_code == 409 and short.json["errors"]["items"]["0"]
    assert preview(items=[{"product_id": 999_999, "quantity": 1}]).status_code == 422
    assert preview(items=[{"product_id": pen.id, "quantity": 0}]).status_code == 422
    assert preview().status_code == 409  # the cart is empty
    unknown = preview(items=[{"product_id": pen.id, "quantity": 1}], coupon_code="NOPE")
    assert unknown.status_code == 422 and unknown.json["errors"]["coupon_code"]
    assert client.post(url, headers=as_customer, json={"items": line}).status_code == 422
    assert preview(headers=None, items=line).status_code == 401
    assert preview(headers=as_admin, items=[{"product_id": pen.id, "quantity": 1}]).status_code == (
        200
    )
