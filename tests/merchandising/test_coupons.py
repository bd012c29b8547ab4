"""Coupons: admin CRUD, what a code takes off a cart and an order (and why it does not apply),
limits that hold under concurrency, and the redemption a cancellation gives back."""

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select

from shop.audit.models import AuditLog
from shop.db import db
from shop.merchandising.coupons import apply
from shop.merchandising.models import Coupon
from shop.orders.models import Order
from shop.products.sellable import Sellable
from tests.factories import headers_for, make_category, make_product, make_user

API = "/api/v1"
SHIP_TO = {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}


def iso(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat()


def coupon(client, as_admin, **fields):
    body = {"code": "SAVE10", "kind": "percent", "value": "10.00", **fields}
    response = client.post(f"{API}/coupons", headers=as_admin, json=body)
    assert response.status_code == 201, response.json
    return response.json


def order(client, headers, *lines, **extra):
    items = [{"product_id": p.id, "quantity": q} for p, q in lines]
    return client.post(
        f"{API}/orders",
        headers=headers,
        json={"items": items, "shipping_address": SHIP_TO, **extra},
    )


def add_to_cart(client, headers, product, quantity=1):
    body = {"product_id": product.id, "quantity": quantity}
    assert client.post(f"{API}/cart/items", headers=headers, json=body).status_code == 201


def adds_up(body):
    lines = sum(Decimal(i["line_total"]) for i in body["items"])
    total = lines + Decimal(body["shipping_cost"]) + Decimal(body["tax"])
    assert total == Decimal(body["total"]), body
    assert Decimal(body["subtotal"]) - Decimal(body["discount"]) == lines, body


# --- admin ----------------------------------------------------------------------------------


def test_admin_creates_reads_changes_and_deletes(client, app, as_admin):
    lamp = make_product(app)
    garden = make_category(app, "Garden")
    created = coupon(
        client,
        as_admin,
        code="Spring-24",
        min_subtotal="20.00",
        starts_at=iso(timedelta(days=-1)),
        ends_at=iso(timedelta(days=30)),
        max_redemptions=100,
        product_ids=[lamp.id],
        category_ids=[garden.id],
    )
    assert created["code"] == "Spring-24" and created["redemptions"] == 0
    assert created["product_ids"] == [lamp.id] and created["category_ids"] == [garden.id]
    assert created["max_per_customer"] == 1 and created["is_active"] is True
    coupon_id = created["id"]
    assert client.get(f"{API}/coupons/{coupon_id}", headers=as_admin).json == created
    found = client.get(f"{API}/coupons?code=SPRING-24", headers=as_admin).json
    assert [c["id"] for c in found["items"]] == [coupon_id]
    changed = client.patch(
        f"{API}/coupons/{coupon_id}",
        headers=as_admin,
        json={"value": "15.00", "product_ids": [], "max_per_customer": None},
    )
    assert changed.status_code == 200, changed.json
    assert changed.json["value"] == "15.00" and changed.json["product_ids"] == []
    assert changed.json["max_per_customer"] is None
    assert client.delete(f"{API}/coupons/{coupon_id}", headers=as_admin).status_code == 204
    assert client.get(f"{API}/coupons/{coupon_id}", headers=as_admin).status_code == 404
    with app.app_context():
        actions = db.session.scalars(
            select(AuditLog.action).where(AuditLog.target_type == "coupon").order_by(AuditLog.id)
        ).all()
        update = db.session.scalar(select(AuditLog).where(AuditLog.action == "coupon.updated"))
    assert actions == ["coupon.created", "coupon.updated", "coupon.deleted"]
    assert update.changes["value"] == {"before": "10.00", "after": "15.00"}
    assert update.changes["product_ids"] == {"before": [lamp.id], "after": []}


def test_roles(client, app, as_customer, as_staff, as_admin):
    made = coupon(client, as_admin)
    for path in (f"{API}/coupons", f"{API}/coupons/{made['id']}"):
        assert client.get(path).status_code == 401
        assert client.get(path, headers=as_customer).status_code == 403
        assert client.get(path, headers=as_staff).status_code == 403
    body = {"code": "X1", "kind": "fixed", "value": "5.00"}
    assert client.post(f"{API}/coupons", json=body).status_code == 401
    assert client.post(f"{API}/coupons", headers=as_staff, json=body).status_code == 403
    one = f"{API}/coupons/{made['id']}"
    assert client.patch(one, headers=as_customer, json={"value": "5.00"}).status_code == 403
    assert client.delete(one, headers=as_staff).status_code == 403
    assert client.get(f"{API}/coupons/999999", headers=as_admin).status_code == 404
    assert client.patch(f"{API}/coupons/999999", headers=as_admin, json={}).status_code == 404
    assert client.delete(f"{API}/coupons/999999", headers=as_admin).status_code == 404


def test_bad_input(client, app, as_admin):
    coupon(client, as_admin, code="TAKEN")
    post = lambda **body: client.post(f"{API}/coupons", headers=as_admin, json=body)  # noqa: E731
    assert post(code="taken", kind="fixed", value="5.00").status_code == 409
    for body, field in (
        ({"code": "A", "kind": "percent", "value": "150.00"}, "value"),
        ({"code": "A", "kind": "percent", "value": "0.50"}, "value"),
        ({"code": "A", "kind": "fixed", "value": "0.00"}, "value"),
        ({"code": "A", "kind": "bogus", "value": "5.00"}, "kind"),
        ({"code": "has space", "kind": "fixed", "value": "5.00"}, "code"),
        ({"code": "A", "kind": "fixed", "value": 5}, "value"),
        ({"code": "A", "kind": "fixed", "value": "5.00", "product_ids": [999999]}, "product_ids"),
        ({"code": "A", "kind": "fixed", "value": "5.00", "redemptions": 3}, "redemptions"),
        ({"code": "A", "kind": "fixed", "value": "5.00", "max_redemptions": 0}, "max_redemptions"),
        (
            {
                "code": "A",
                "kind": "fixed",
                "value": "5.00",
                "starts_at": iso(timedelta(days=2)),
                "ends_at": iso(timedelta(days=1)),
            },
            "ends_at",
        ),
    ):
        response = post(**body)
        assert response.status_code == 422, (body, response.json)
        assert field in response.json["errors"], (body, response.json)
    made = coupon(client, as_admin, code="PCT", value="50.00")
    one = f"{API}/coupons/{made['id']}"
    assert client.patch(one, headers=as_admin, json={"value": "101.00"}).status_code == 422
    assert client.patch(one, headers=as_admin, json={"code": "Taken"}).status_code == 409


# --- what a code takes off ------------------------------------------------------------------


def test_percent_off_each_line_rounded_half_up(client, app, as_customer, as_admin):
    coupon(client, as_admin, code="TENOFF", value="10.00")
    pen = make_product(app, price=Decimal("1.25"), stock=50)  # 3 x 1.25 = 3.75 -> 0.375 -> 0.38
    pad = make_product(app, price=Decimal("3.35"), stock=50)  # 2 x 3.35 = 6.70 -> 0.67
    response = order(client, as_customer, (pen, 3), (pad, 2), coupon_code="tenoff")
    assert response.status_code == 201, response.json
    body = response.json
    assert body["coupon_code"] == "TENOFF" and body["discount"] == "1.05"
    assert [i["discount"] for i in body["items"]] == ["0.38", "0.67"]
    assert [i["line_total"] for i in body["items"]] == ["3.37", "6.03"]
    assert body["subtotal"] == "10.45" and body["total"] == "14.40"  # 9.40 + 5.00 shipping
    adds_up(body)
    again = client.get(f"{API}/orders/{body['id']}", headers=as_customer).json
    assert again["discount"] == "1.05" and again["coupon_code"] == "TENOFF"


def test_a_coupon_limited_to_products_or_categories_discounts_those_lines_only(
    client, app, as_admin
):
    garden = make_category(app, "Garden")
    tools = make_category(app, "Tools", parent_id=garden.id)
    spade = make_product(app, price=Decimal("20.00"), category_id=tools.id, stock=50)
    lamp = make_product(app, price=Decimal("40.00"), stock=50)
    sofa = make_product(app, price=Decimal("100.00"), stock=50)
    coupon(client, as_admin, code="GARDEN", value="50.00", category_ids=[garden.id])
    coupon(client, as_admin, code="LAMP", kind="fixed", value="15.00", product_ids=[lamp.id])
    buyer = headers_for(app, make_user(app))
    body = order(client, buyer, (spade, 1), (lamp, 1), coupon_code="GARDEN").json
    assert [i["discount"] for i in body["items"]] == ["10.00", "0.00"]  # a subcategory counts
    body = order(client, buyer, (spade, 1), (lamp, 1), coupon_code="LAMP").json
    assert [i["discount"] for i in body["items"]] == ["0.00", "15.00"]
    refused = order(client, buyer, (sofa, 1), coupon_code="LAMP")
    assert refused.status_code == 422
    assert "applies to none of these items" in refused.json["detail"]
    assert "coupon_code" in refused.json["errors"]


def test_a_fixed_coupon_is_shared_over_the_lines_and_never_takes_more_than_they_cost(
    client, app, as_admin
):
    a = make_product(app, price=Decimal("10.00"), stock=50)
    b = make_product(app, price=Decimal("20.00"), stock=50)
    coupon(client, as_admin, code="TEN", kind="fixed", value="10.00", max_per_customer=None)
    buyer = headers_for(app, make_user(app))
    body = order(client, buyer, (a, 1), (b, 1), coupon_code="TEN").json
    assert [i["discount"] for i in body["items"]] == ["3.33", "6.67"]
    assert body["discount"] == "10.00"
    adds_up(body)
    coupon(client, as_admin, code="HUGE", kind="fixed", value="500.00", max_per_customer=None)
    body = order(client, buyer, (a, 1), (b, 2), coupon_code="HUGE").json
    assert body["discount"] == "50.00" and body["total"] == "5.00"  # shipping is left
    assert [i["line_total"] for i in body["items"]] == ["0.00", "0.00"]
    adds_up(body)


def test_free_shipping(client, app, as_customer, as_admin):
    coupon(client, as_admin, code="SHIPFREE", kind="free_shipping")
    pen = make_product(app, price=Decimal("5.00"))
    body = order(client, as_customer, (pen, 1), coupon_code="SHIPFREE").json
    assert body["shipping_cost"] == "0.00" and body["discount"] == "0.00"
    assert body["total"] == "5.00" and body["coupon_code"] == "SHIPFREE"


def test_why_a_code_does_not_apply(client, app, as_customer, as_admin):
    pen = make_product(app, price=Decimal("5.00"))
    coupon(client, as_admin, code="LATER", starts_at=iso(timedelta(hours=1)))
    coupon(client, as_admin, code="OVER", ends_at=iso(timedelta(seconds=-1)),
           starts_at=iso(timedelta(days=-1)))  # fmt: skip
    coupon(client, as_admin, code="OFF", is_active=False)
    coupon(client, as_admin, code="BIG", min_subtotal="50.00")
    for code, why in (
        ("NOPE", "There is no coupon NOPE."),
        ("later", "starts at"),
        ("OVER", "ended at"),
        ("OFF", "is not active"),
        ("BIG", "needs a subtotal of at least 50.00 (this one is 5.00)"),
    ):
        refused = order(client, as_customer, (pen, 1), coupon_code=code)
        assert refused.status_code == 422 and why in refused.json["detail"], refused.json
    assert order(client, as_customer, (pen, 1), coupon_code="bad code!").status_code == 422
    with app.app_context():
        assert db.session.scalar(select(Order.id)) is None


# --- the cart -------------------------------------------------------------------------------


def test_the_cart_holds_a_coupon_and_checkout_redeems_it(client, app, as_customer, as_admin):
    coupon(client, as_admin, code="CART20", value="20.00", min_subtotal="20.00")
    lamp = make_product(app, price=Decimal("12.50"), stock=10)
    add_to_cart(client, as_customer, lamp, 2)
    put = client.put(f"{API}/cart/coupon", headers=as_customer, json={"code": "cart20"})
    assert put.status_code == 200, put.json
    cart = put.json
    assert (cart["coupon_code"], cart["discount"], cart["subtotal"], cart["total"]) == (
        "CART20",
        "5.00",
        "25.00",
        "20.00",
    )
    assert cart["coupon_error"] is None and cart["items"][0]["line_total"] == "20.00"
    assert client.get(f"{API}/cart", headers=as_customer).json == cart
    # Below the minimum the cart keeps the code and says why it does not apply now.
    line = cart["items"][0]["id"]
    assert (
        client.patch(
            f"{API}/cart/items/{line}", headers=as_customer, json={"quantity": 1}
        ).status_code
        == 200
    )
    later = client.get(f"{API}/cart", headers=as_customer).json
    assert later["coupon_code"] == "CART20" and later["discount"] == "0.00"
    assert "at least 20.00" in later["coupon_error"] and later["total"] == "12.50"
    refused = client.post(f"{API}/orders", headers=as_customer, json={"shipping_address": SHIP_TO})
    assert refused.status_code == 422 and "at least 20.00" in refused.json["detail"]
    client.patch(f"{API}/cart/items/{line}", headers=as_customer, json={"quantity": 2})
    placed = client.post(f"{API}/orders", headers=as_customer, json={"shipping_address": SHIP_TO})
    assert placed.status_code == 201, placed.json
    assert placed.json["coupon_code"] == "CART20" and placed.json["discount"] == "5.00"
    emptied = client.get(f"{API}/cart", headers=as_customer).json
    assert emptied["items"] == [] and emptied["coupon_code"] is None


def test_cart_coupon_refusals_roles_and_removal(client, app, as_customer, as_admin):
    coupon(client, as_admin, code="ONLYLAMP", product_ids=[make_product(app).id])
    assert client.put(f"{API}/cart/coupon", json={"code": "X"}).status_code == 401
    assert client.delete(f"{API}/cart/coupon").status_code == 401
    # An empty cart may hold a code; what it applies to is checked as the cart fills.
    empty = client.put(f"{API}/cart/coupon", headers=as_customer, json={"code": "onlylamp"})
    assert empty.status_code == 200 and empty.json["coupon_code"] == "ONLYLAMP"
    assert empty.json["coupon_error"] is None and empty.json["discount"] == "0.00"
    add_to_cart(client, as_customer, make_product(app))
    held = client.get(f"{API}/cart", headers=as_customer).json
    assert "applies to none of these items" in held["coupon_error"]
    for body, status in (
        ({"code": "NOPE"}, 422),
        ({"code": "ONLYLAMP"}, 422),
        ({}, 422),
        ({"code": ""}, 422),
        ({"code": "A" * 65}, 422),
        ({"code": "ONLYLAMP", "extra": 1}, 422),
    ):
        response = client.put(f"{API}/cart/coupon", headers=as_customer, json=body)
        assert response.status_code == status, (body, response.json)
    coupon(client, as_admin, code="ANY")
    assert (
        client.put(f"{API}/cart/coupon", headers=as_customer, json={"code": "any"}).status_code
        == 200
    )
    other = headers_for(app, make_user(app))
    assert client.get(f"{API}/cart", headers=other).json["coupon_code"] is None
    assert client.delete(f"{API}/cart/coupon", headers=as_customer).status_code == 204
    assert client.get(f"{API}/cart", headers=as_customer).json["coupon_code"] is None


# --- limits ---------------------------------------------------------------------------------


def test_one_per_customer_and_a_cancellation_gives_it_back(client, app, as_customer, as_admin):
    made = coupon(client, as_admin, code="ONCE")
    pen = make_product(app, price=Decimal("10.00"), stock=50)
    first = order(client, as_customer, (pen, 1), coupon_code="ONCE")
    assert first.status_code == 201
    again = order(client, as_customer, (pen, 1), coupon_code="ONCE")
    assert again.status_code == 409 and "once per customer" in again.json["detail"]
    add_to_cart(client, as_customer, pen)
    held = client.put(f"{API}/cart/coupon", headers=as_customer, json={"code": "ONCE"})
    assert held.status_code == 409
    assert client.get(f"{API}/coupons/{made['id']}", headers=as_admin).json["redemptions"] == 1
    cancel = client.post(f"{API}/orders/{first.json['id']}/cancel", headers=as_customer)
    assert cancel.status_code == 200
    assert client.get(f"{API}/coupons/{made['id']}", headers=as_admin).json["redemptions"] == 0
    assert order(client, as_customer, (pen, 1), coupon_code="ONCE").status_code == 201
    other = headers_for(app, make_user(app))
    assert order(client, other, (pen, 1), coupon_code="ONCE").status_code == 201
    assert client.get(f"{API}/coupons/{made['id']}", headers=as_admin).json["redemptions"] == 2


def test_fifty_checkouts_ten_redemptions(client, app, as_admin):
    made = coupon(client, as_admin, code="TEN", max_redemptions=10)
    pen = make_product(app, price=Decimal("10.00"), stock=1000)
    buyers = [headers_for(app, make_user(app)) for _ in range(50)]
    barrier = threading.Barrier(50)

    def buy(headers):
        barrier.wait()
        return order(app.test_client(), headers, (pen, 1), coupon_code="TEN").status_code

    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(buy, buyers))
    assert statuses.count(201) == 10 and statuses.count(409) == 40, statuses
    assert client.get(f"{API}/coupons/{made['id']}", headers=as_admin).json["redemptions"] == 10
    with app.app_context():
        with_it = db.session.scalars(select(Order.coupon_code)).all()
    assert with_it == ["TEN"] * 10


def test_one_customer_checking_out_at_once_gets_their_one_redemption(client, app, as_admin):
    coupon(client, as_admin, code="ONCE", max_per_customer=1)
    pen = make_product(app, price=Decimal("10.00"), stock=1000)
    buyer = headers_for(app, make_user(app))
    barrier = threading.Barrier(10)

    def buy(_):
        barrier.wait()
        return order(app.test_client(), buyer, (pen, 1), coupon_code="ONCE").status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(buy, range(10)))
    assert statuses.count(201) == 1 and statuses.count(409) == 9, statuses


# --- money ----------------------------------------------------------------------------------


def test_discounts_add_up_to_the_cent_over_random_carts(app):
    rng = random.Random(16)
    with app.app_context():
        for _ in range(1000):
            kind = rng.choice(["percent", "fixed"])
            value = (
                Decimal(rng.randint(1, 100))
                if kind == "percent"
                else Decimal(rng.randint(1, 20000)) / 100
            )
            lines = [
                (
                    Sellable(
                        n,
                        None,
                        f"S{n}",
                        "x",
                        Decimal(rng.randint(1, 99999)) / 100,
                        99,
                        Decimal("1"),
                        None,
                    ),
                    rng.randint(1, 5),
                )
                for n in range(rng.randint(1, 8))
            ]
            applied = apply(Coupon(code="R", kind=kind, value=value, min_subtotal=0,
                                   is_active=True, redemptions=0), lines)  # fmt: skip
            totals = [item.price * quantity for item, quantity in lines]
            assert all(
                Decimal(0) <= d <= t for d, t in zip(applied.line_discounts, totals, strict=True)
            )
            assert applied.discount <= sum(totals)
            if kind == "fixed":
                assert applied.discount == min(value, sum(totals))
            assert all(d == d.quantize(Decimal("0.01")) for d in applied.line_discounts)


def test_a_coupon_without_a_limit_per_customer_serves_a_customer_again(client, app, as_admin):
    made = coupon(client, as_admin, code="ALWAYS", max_per_customer=None)
    assert made["max_per_customer"] is None
    pen = make_product(app, price=Decimal("10.00"), stock=50)
    buyer = headers_for(app, make_user(app))
    statuses = [order(client, buyer, (pen, 1), coupon_code="ALWAYS").status_code for _ in range(3)]
    assert statuses == [201] * 3


def test_a_coupon_adds_its_lookup_and_redemption_to_a_checkout(
    client, app, as_admin, as_customer, count_queries
):
    """A coupon without limits costs a checkout two statements (its row, share-locked, and
    its redemption's row) and locks nothing another checkout waits for; a limit per customer
    adds that customer's lock and count; a total limit the counter's conditional UPDATE; a
    scope is read only for a coupon that has one."""
    shoes = make_category(app)
    pen = make_product(app, price=Decimal("10.00"), stock=50, category=shoes)
    coupon(client, as_admin, code="ANY", max_per_customer=None)
    coupon(client, as_admin, code="ONCE")
    coupon(client, as_admin, code="TEN", max_redemptions=10, max_per_customer=None)
    coupon(client, as_admin, code="SHOES", category_ids=[shoes.id], max_per_customer=None)
    order(client, as_customer, (pen, 1))  # the flash sales running, the tax rates: cached now

    def shapes(**extra):
        with count_queries() as counter:
            assert order(client, as_customer, (pen, 1), **extra).status_code == 201
        return [" ".join(s.split()[:3]) for s in counter.statements]

    plain = shapes()
    lookup, redemption = "SELECT (EXISTS (SELECT", "INSERT INTO coupon_redemptions"
    with_coupon = shapes(coupon_code="ANY")
    # After what is for sale; the redemption just before the stock is taken.
    assert with_coupon == [*plain[:2], lookup, *plain[2:-2], redemption, *plain[-2:]]
    with count_queries() as counter:
        order(client, as_customer, (pen, 1), coupon_code="ANY")
    assert counter.statements[2].endswith("FOR KEY SHARE OF coupons")
    lock = "SELECT pg_advisory_xact_lock(%(pg_advisory_xact_lock_2)s, %(pg_advisory_xact_lock_3)s)"
    assert shapes(coupon_code="ONCE") == [
        *with_coupon[:-2], lock, "SELECT count(*) AS", *with_coupon[-2:]
    ]  # fmt: skip
    assert shapes(coupon_code="TEN") == [*with_coupon[:-2], "UPDATE coupons SET", *plain[-2:]]
    assert len(shapes(coupon_code="SHOES")) == len(with_coupon) + 3


def test_a_limit_set_later_counts_the_orders_holding_the_coupon(client, app, as_admin):
    """Without a limit nothing counts on the coupon's row; setting one counts the orders that
    hold it then (an admin's change waits for checkouts in flight: FOR UPDATE against their
    FOR KEY SHARE), and cancelling one gives its redemption back to the limit."""
    made = coupon(client, as_admin, code="LATER", max_per_customer=None)
    pen = make_product(app, price=Decimal("10.00"), stock=50)
    buyer = headers_for(app, make_user(app))
    placed = [order(client, buyer, (pen, 1), coupon_code="LATER") for _ in range(3)]
    assert [p.status_code for p in placed] == [201] * 3
    url = f"{API}/coupons/{made['id']}"
    assert client.get(url, headers=as_admin).json["redemptions"] == 3
    too_low = client.patch(url, headers=as_admin, json={"max_redemptions": 2})
    assert too_low.status_code == 422 and too_low.json["errors"]["max_redemptions"]
    limited = client.patch(url, headers=as_admin, json={"max_redemptions": 3})
    assert (limited.status_code, limited.json["redemptions"]) == (200, 3)
    assert order(client, buyer, (pen, 1), coupon_code="LATER").status_code == 409
    cancel = client.post(f"{API}/orders/{placed[0].json['id']}/cancel", headers=buyer)
    assert cancel.status_code == 200
    assert order(client, buyer, (pen, 1), coupon_code="LATER").status_code == 201
    assert order(client, buyer, (pen, 1), coupon_code="LATER").status_code == 409
    lifted = client.patch(url, headers=as_admin, json={"max_redemptions": None})
    assert (lifted.status_code, lifted.json["redemptions"]) == (200, 3)
    assert order(client, buyer, (pen, 1), coupon_code="LATER").status_code == 201
    listed = client.get(f"{API}/coupons?code=later", headers=as_admin).json["items"]
    assert [c["redemptions"] for c in listed] == [4]
    with app.app_context():
        counter = db.session.get(Coupon, made["id"]).redemptions
    assert counter == 0  # kept only while a total limit is set
