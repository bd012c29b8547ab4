"""Flash sales: admin CRUD, the sale price on products, variants, carts and orders (the best
of overlapping sales), ?on_sale=, and cached answers that change at the second a sale starts
or ends."""

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select

from shop.audit.models import AuditLog
from shop.db import db
from tests.factories import headers_for, make_category, make_product, make_user, make_variant

API = "/api/v1"
SHIP_TO = {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}


def iso(moment: datetime) -> str:
    return moment.isoformat()


def now() -> datetime:
    return datetime.now(UTC)


def sale(client, as_admin, **fields):
    body = {
        "name": "Weekend",
        "starts_at": iso(now() - timedelta(hours=1)),
        "ends_at": iso(now() + timedelta(hours=1)),
        "discount_percent": 20,
        **fields,
    }
    response = client.post(f"{API}/flash-sales", headers=as_admin, json=body)
    assert response.status_code == 201, response.json
    return response.json


def test_admin_creates_changes_and_deletes(client, app, as_admin):
    lamp = make_product(app)
    garden = make_category(app, "Garden")
    made = sale(client, as_admin, product_ids=[lamp.id], category_ids=[garden.id])
    assert made["is_active"] is True and made["discount_percent"] == 20
    assert made["product_ids"] == [lamp.id] and made["category_ids"] == [garden.id]
    later = sale(
        client,
        as_admin,
        name="Later",
        starts_at=iso(now() + timedelta(days=1)),
        ends_at=iso(now() + timedelta(days=2)),
        product_ids=[lamp.id],
    )
    assert later["is_active"] is False
    sale(client, as_admin, name="Over", starts_at=iso(now() - timedelta(days=2)),
         ends_at=iso(now() - timedelta(days=1)), product_ids=[lamp.id])  # fmt: skip
    listed = client.get(f"{API}/flash-sales").json  # anyone: running and upcoming
    assert [s["name"] for s in listed["items"]] == ["Weekend", "Later"]
    one = f"{API}/flash-sales/{made['id']}"
    changed = client.patch(one, headers=as_admin, json={"discount_percent": 30, "category_ids": []})
    assert changed.status_code == 200, changed.json
    assert changed.json["discount_percent"] == 30 and changed.json["category_ids"] == []
    assert client.get(one, headers=as_admin).json == changed.json
    assert client.delete(one, headers=as_admin).status_code == 204
    assert client.get(one, headers=as_admin).status_code == 404
    with app.app_context():
        actions = db.session.scalars(
            select(AuditLog.action)
            .where(AuditLog.target_type == "flash_sale", AuditLog.target_id == made["id"])
            .order_by(AuditLog.id)
        ).all()
    assert actions == ["flash_sale.created", "flash_sale.updated", "flash_sale.deleted"]


def test_roles_and_bad_input(client, app, as_customer, as_staff, as_admin):
    lamp = make_product(app)
    made = sale(client, as_admin, product_ids=[lamp.id])
    one = f"{API}/flash-sales/{made['id']}"
    body = {"name": "X", "starts_at": iso(now()), "ends_at": iso(now() + timedelta(hours=1)),
            "discount_percent": 10, "product_ids": [lamp.id]}  # fmt: skip
    assert client.post(f"{API}/flash-sales", json=body).status_code == 401
    assert client.post(f"{API}/flash-sales", headers=as_staff, json=body).status_code == 403
    assert client.get(one).status_code == 401
    assert client.get(one, headers=as_customer).status_code == 403
    assert client.patch(one, headers=as_staff, json={"name": "Y"}).status_code == 403
    assert client.delete(one, headers=as_customer).status_code == 403
    assert client.get(f"{API}/flash-sales/999999", headers=as_admin).status_code == 404
    assert client.delete(f"{API}/flash-sales/999999", headers=as_admin).status_code == 404
    for change, field in (
        ({"ends_at": body["starts_at"]}, "ends_at"),
        ({"discount_percent": 0}, "discount_percent"),
        ({"discount_percent": 91}, "discount_percent"),
        ({"product_ids": [999999]}, "product_ids"),
        ({"product_ids": [], "category_ids": []}, "product_ids"),
        ({"is_active": True}, "is_active"),
        ({"starts_at": "tomorrow"}, "starts_at"),
    ):
        response = client.post(f"{API}/flash-sales", headers=as_admin, json={**body, **change})
        assert response.status_code == 422, (change, response.json)
        assert field in response.json["errors"], (change, response.json)
    bad = client.patch(one, headers=as_admin, json={"ends_at": made["starts_at"]})
    assert bad.status_code == 422


def test_products_and_variants_answer_the_best_running_sale(client, app, as_admin):
    garden = make_category(app, "Garden")
    tools = make_category(app, "Tools", parent_id=garden.id)
    spade = make_product(app, price=Decimal("19.99"), category_id=tools.id)
    tee = make_product(app, price=Decimal("10.00"), stock=0)
    make_variant(app, tee, price=Decimal("12.50"))
    plain = make_product(app, price=Decimal("5.00"))
    small = sale(client, as_admin, name="Small", discount_percent=10, category_ids=[garden.id])
    big = sale(client, as_admin, name="Big", discount_percent=25, product_ids=[spade.id, tee.id])
    soon = now() + timedelta(hours=1)
    sale(client, as_admin, name="Soon", discount_percent=80, product_ids=[plain.id],
         starts_at=iso(soon), ends_at=iso(soon + timedelta(hours=1)))  # fmt: skip
    body = client.get(f"{API}/products/{spade.id}").json
    assert body["sale_price"] == "14.99"  # 19.99 x 0.75 = 14.9925: the best of the two
    assert body["flash_sale"] == {"id": big["id"], "name": "Big", "ends_at": big["ends_at"]}
    assert body["price"] == "19.99"
    body = client.get(f"{API}/products/{tee.id}").json
    assert body["sale_price"] == "7.50"
    assert body["variants"][0]["sale_price"] == "9.38"  # 12.50 x 0.75 = 9.375, half up
    assert body["variants"][0]["flash_sale"]["id"] == big["id"]
    variants = client.get(f"{API}/products/{tee.id}/variants").json["items"]
    assert variants[0]["sale_price"] == "9.38"
    body = client.get(f"{API}/products/{plain.id}").json  # its sale has not started
    assert body["sale_price"] is None and body["flash_sale"] is None
    client.delete(f"{API}/flash-sales/{big['id']}", headers=as_admin)
    body = client.get(f"{API}/products/{spade.id}").json  # a subcategory's product
    assert body["sale_price"] == "17.99" and body["flash_sale"]["id"] == small["id"]
    on_sale = client.get(f"{API}/products?on_sale=true").json["items"]
    assert [p["id"] for p in on_sale] == [spade.id]
    off_sale = client.get(f"{API}/products?on_sale=false").json["items"]
    assert sorted(p["id"] for p in off_sale) == sorted([tee.id, plain.id])


def test_the_cart_and_checkout_charge_the_sale_price(client, app, as_customer, as_admin):
    lamp = make_product(app, price=Decimal("40.00"), compare_at_price=Decimal("50.00"))
    sale(client, as_admin, discount_percent=50, product_ids=[lamp.id])
    client.post(
        f"{API}/cart/items", headers=as_customer, json={"product_id": lamp.id, "quantity": 2}
    )
    line = client.get(f"{API}/cart", headers=as_customer).json["items"][0]
    assert (line["unit_price"], line["list_price"], line["line_total"]) == (
        "20.00",
        "50.00",
        "40.00",
    )
    placed = client.post(f"{API}/orders", headers=as_customer, json={"shipping_address": SHIP_TO})
    item = placed.json["items"][0]
    assert (item["unit_price"], item["list_price"], item["line_total"]) == (
        "20.00",
        "50.00",
        "40.00",
    )
    assert placed.json["subtotal"] == "40.00"


def test_a_sale_starting_and_ending_shows_at_that_second_in_cached_answers(client, app, as_admin):
    lamp = make_product(app, price=Decimal("10.00"))
    start = now() + timedelta(seconds=1.5)
    end = start + timedelta(seconds=1.5)
    sale(client, as_admin, discount_percent=50, product_ids=[lamp.id],
         starts_at=iso(start), ends_at=iso(end))  # fmt: skip
    detail, on_sale = f"{API}/products/{lamp.id}", f"{API}/products?on_sale=true"
    assert client.get(detail).json["sale_price"] is None
    assert client.get(on_sale).json["total"] == 0  # both cached now, until `start`
    assert client.get(detail).json["sale_price"] is None
    time.sleep(max(0.0, (start - now()).total_seconds()))
    assert client.get(detail).json["sale_price"] == "5.00"
    assert client.get(on_sale).json["total"] == 1
    time.sleep(max(0.0, (end - now()).total_seconds()))
    assert client.get(detail).json["sale_price"] is None
    assert client.get(on_sale).json["total"] == 0


def test_checkouts_racing_the_end_of_a_sale_pay_the_price_of_their_moment(client, app, as_admin):
    lamp = make_product(app, price=Decimal("10.00"), stock=1000)
    end = now() + timedelta(seconds=1)
    sale(client, as_admin, discount_percent=50, product_ids=[lamp.id], ends_at=iso(end))
    buyers = [headers_for(app, make_user(app)) for _ in range(8)]
    client.get(f"{API}/products/{lamp.id}")

    def buy(headers):
        priced = []
        deadline = end + timedelta(seconds=0.5)
        while now() < deadline:
            before = now()
            body = {"items": [{"product_id": lamp.id, "quantity": 1}], "shipping_address": SHIP_TO}
            response = app.test_client().post(f"{API}/orders", headers=headers, json=body)
            assert response.status_code == 201, response.json
            priced.append((before, now(), response.json["items"][0]["unit_price"]))
        return priced

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = [p for priced in pool.map(buy, buyers) for p in priced]
    assert {price for _, _, price in results} == {"5.00", "10.00"}
    for sent, answered, price in results:
        if answered < end:
            assert price == "5.00", (sent, answered, end)
        if sent >= end:
            assert price == "10.00", (sent, answered, end)
