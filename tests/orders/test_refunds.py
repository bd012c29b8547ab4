"""Refunds (GET/POST /orders/{id}/refunds): who may, what a body may say, never more than
paid minus refunded (also two at once), units per line, restock through the ledger, the
order's figures and status, refund_due settled, audit, event and email."""

import hashlib
import hmac
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from sqlalchemy import select

from shop.db import db
from shop.products.models import StockMovement
from tests.conftest import settle_events, text_of
from tests.factories import headers_for, ledger_sum, make_product, make_user, stock_of

API = "/api/v1"
SHIP_TO = {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}
SECRET = "whsec-refunds"


@pytest.fixture
def goods(app):
    pen = make_product(app, price=Decimal("20.00"), stock=10)
    pad = make_product(app, price=Decimal("15.00"), stock=10)
    return pen, pad


def place(client, headers, goods):
    pen, pad = goods
    items = [{"product_id": pen.id, "quantity": 2}, {"product_id": pad.id, "quantity": 1}]
    made = client.post(
        f"{API}/orders", headers=headers, json={"items": items, "shipping_address": SHIP_TO}
    )
    assert made.status_code == 201, made.json
    return made.json


def pay(client, staff_headers, order, amount=None):
    paid = client.post(
        f"{API}/orders/{order['id']}/payments",
        headers=staff_headers,
        json={"amount": amount or order["total"], "method": "cash"},
    )
    assert paid.status_code == 201, paid.json


@pytest.fixture
def paid(client, goods, as_customer, as_staff):
    """2 x 20.00 + 1 x 15.00, free shipping: 55.00, paid in cash."""
    order = place(client, as_customer, goods)
    assert order["total"] == "55.00"
    pay(client, as_staff, order)
    return order


def refund(client, headers, order, **body):
    body = {"amount": "10.00", "reason": "damaged in transit", **body}
    return client.post(f"{API}/orders/{order['id']}/refunds", headers=headers, json=body)


def refunds_of(client, headers, order, **query):
    return client.get(f"{API}/orders/{order['id']}/refunds", headers=headers, query_string=query)


def order_of(client, headers, order):
    return client.get(f"{API}/orders/{order['id']}", headers=headers).json


def test_who_may_read_and_make_refunds(client, app, paid, as_customer, as_staff, as_admin):
    url = f"{API}/orders/{paid['id']}/refunds"
    body = {"amount": "5.00", "reason": "goodwill"}
    intruder = headers_for(app, make_user(app))
    assert client.get(url).status_code == 401
    assert client.post(url, json=body).status_code == 401
    assert client.post(url, headers=as_customer, json=body).status_code == 403
    assert client.post(url, headers=intruder, json=body).status_code == 403
    assert client.get(url, headers=intruder).status_code == 404
    assert client.get(f"{API}/orders/999999/refunds", headers=as_staff).status_code == 404
    assert client.post(f"{API}/orders/999999/refunds", headers=as_staff, json=body).status_code == (
        404
    )
    made = client.post(url, headers=as_staff, json=body)
    assert made.status_code == 201 and made.headers["Location"] == url
    assert client.post(url, headers=as_admin, json=body).status_code == 201
    for headers in (as_customer, as_staff, as_admin):
        listed = client.get(url, headers=headers)
        assert listed.status_code == 200 and listed.json["total"] == 2
    assert listed.json["items"][0] == made.json


def test_a_guest_reads_the_refunds_of_its_order_with_its_key(client, app, goods, as_staff):
    pen, _ = goods
    cart = client.post(f"{API}/carts").json["token"]
    headers = {"X-Cart-Token": cart}
    assert (
        client.post(
            f"{API}/cart/items", headers=headers, json={"product_id": pen.id, "quantity": 1}
        ).status_code
        == 201
    )
    order = client.post(
        f"{API}/orders",
        headers=headers,
        json={"email": "guest@example.com", "shipping_address": SHIP_TO},
    ).json
    pay(client, as_staff, order)
    assert refund(client, as_staff, order, amount="3.00").status_code == 201
    url = f"{API}/orders/{order['id']}/refunds"
    assert client.get(url, query_string={"key": order["access_key"]}).json["total"] == 1
    assert client.get(url, headers={"X-Order-Key": order["access_key"]}).json["total"] == 1
    assert client.get(url, query_string={"key": "wrong"}).status_code == 404


def test_a_refund_of_some_units_puts_them_back_in_stock(
    client, app, goods, paid, as_customer, as_staff, as_admin, customer, mailbox, run_jobs
):
    pen, pad = goods
    pen_line, pad_line = (item["id"] for item in paid["items"])
    assert stock_of(app, pen.id) == 8
    made = refund(
        client,
        as_staff,
        paid,
        amount="20.00",
        reason="one pen broken",
        items=[{"order_item_id": pen_line, "quantity": 1}],
        restock=True,
    )
    assert made.status_code == 201, made.json
    assert made.json == {
        "id": made.json["id"],
        "order_id": paid["id"],
        "amount": "20.00",
        "reason": "one pen broken",
        "items": [{"order_item_id": pen_line, "quantity": 1}],
        "restocked": True,
        "created_at": made.json["created_at"],
        "provider_status": None,
    }
    assert stock_of(app, pen.id) == 9 == ledger_sum(app, pen.id)
    with app.app_context():
        [back] = db.session.scalars(
            select(StockMovement).where(StockMovement.type == "RETURN")
        ).all()
    assert (back.product_id, back.quantity, back.reference) == (pen.id, 1, paid["number"])
    order = order_of(client, as_customer, paid)
    assert (order["amount_paid"], order["amount_refunded"], order["status"]) == (
        "55.00",
        "20.00",
        "paid",
    )
    # Without restock, units are refunded but stay out of stock.
    assert (
        refund(
            client,
            as_staff,
            paid,
            amount="15.00",
            items=[{"order_item_id": pad_line, "quantity": 1}],
        ).status_code
        == 201
    )
    assert stock_of(app, pad.id) == 9
    [entry, _] = client.get(f"{API}/audit-logs?action=refund.created", headers=as_admin).json[
        "items"
    ]
    assert entry["target_id"] == paid["id"] and entry["changes"]["amount"] == "15.00"
    settle_events(app)
    events = client.get(f"{API}/events?type=refund.created", headers=as_customer).json["items"]
    assert [e["data"]["amount"] for e in events] == ["15.00", "20.00"]
    assert events[0]["data"]["amount_refunded"] == "35.00"
    run_jobs()
    mails = [m for m in mailbox.to(customer.email) if "Refund of" in m["Subject"]]
    assert len(mails) == 2 and "one pen broken" in text_of(mails[-1]) + text_of(mails[0])


def test_refunding_everything_makes_the_order_refunded(client, paid, as_customer, as_staff):
    assert refund(client, as_staff, paid, amount="50.00").status_code == 201
    assert order_of(client, as_customer, paid)["status"] == "paid"
    assert refund(client, as_staff, paid, amount="5.01").status_code == 409
    assert refund(client, as_staff, paid, amount="5.00").status_code == 201
    order = order_of(client, as_customer, paid)
    assert (order["status"], order["payment_status"], order["amount_refunded"]) == (
        "refunded",
        "refunded",
        "55.00",
    )
    assert order["status_history"][-1]["to_status"] == "refunded"
    again = refund(client, as_staff, paid, amount="0.01")
    assert again.status_code == 409 and "At most 0.00" in again.json["detail"]


def test_a_shipped_order_refunded_in_full_is_refunded(client, paid, as_customer, as_staff):
    for to in ("processing", "shipped"):
        assert (
            client.patch(
                f"{API}/orders/{paid['id']}/status",
                headers=as_staff,
                json={"status": to, "tracking_number": "TRK1"},
            ).status_code
            == 200
        )
    assert refund(client, as_staff, paid, amount="55.00").status_code == 201
    assert order_of(client, as_customer, paid)["status"] == "refunded"


def test_nothing_paid_nothing_to_refund(client, goods, as_customer, as_staff):
    order = place(client, as_customer, goods)
    answer = refund(client, as_staff, order, amount="1.00")
    assert answer.status_code == 409 and answer.json["errors"]["amount"] == ["At most 0.00."]
    pay(client, as_staff, order, amount="20.00")  # a part: the order stays pending
    assert refund(client, as_staff, order, amount="20.01").status_code == 409
    assert refund(client, as_staff, order, amount="20.00").status_code == 201
    assert order_of(client, as_customer, order)["status"] == "pending"


def test_units_never_exceed_ordered_minus_refunded(client, app, paid, as_staff):
    pen_line, pad_line = (item["id"] for item in paid["items"])
    two = [{"order_item_id": pen_line, "quantity": 2}]
    assert (
        refund(
            client, as_staff, paid, items=[{"order_item_id": pen_line, "quantity": 3}]
        ).status_code
        == 409
    )
    assert refund(client, as_staff, paid, items=two, restock=True).status_code == 201
    over = refund(client, as_staff, paid, items=[{"order_item_id": pen_line, "quantity": 1}])
    assert over.status_code == 409 and "at most 0" in over.json["detail"]
    assert (
        refund(
            client, as_staff, paid, items=[{"order_item_id": pad_line, "quantity": 1}]
        ).status_code
        == 201
    )


def test_bad_bodies_are_422(client, app, goods, paid, as_customer, as_staff):
    pen_line, _ = (item["id"] for item in paid["items"])
    other = place(client, as_customer, goods)
    foreign = other["items"][0]["id"]
    for body in (
        {"amount": "0.00"},
        {"amount": "-5.00"},
        {"amount": "1.234"},
        {"amount": 5},
        {"amount": "abc"},
        {"reason": ""},
        {"reason": "x" * 501},
        {"reason": None},
        {"items": [{"order_item_id": pen_line, "quantity": 1}] * 2},
        {"items": [{"order_item_id": pen_line, "quantity": 0}]},
        {"items": [{"order_item_id": "1", "quantity": 1}]},
        {"items": [{"order_item_id": foreign, "quantity": 1}]},
        {"restock": True},
        {"restock": "yes", "items": [{"order_item_id": pen_line, "quantity": 1}]},
        {"surprise": 1},
    ):
        answer = refund(client, as_staff, paid, **body)
        assert answer.status_code == 422, (body, answer.json)
    assert (
        client.post(
            f"{API}/orders/{paid['id']}/refunds", headers=as_staff, json={"reason": "no amount"}
        ).status_code
        == 422
    )
    assert refund(client, as_staff, paid, reason="x" * 500).status_code == 201
    assert refunds_of(client, as_staff, paid, page_size=0).status_code == 422
    assert refunds_of(client, as_staff, paid, sort="x").status_code == 422


def test_two_refunds_racing_for_the_last_amount(client, app, paid, as_staff):
    assert refund(client, as_staff, paid, amount="25.00").status_code == 201
    barrier = threading.Barrier(2)

    def race(_):
        barrier.wait()
        return refund(app.test_client(), as_staff, paid, amount="30.00").status_code

    with ThreadPoolExecutor(max_workers=2) as pool:
        assert sorted(pool.map(race, range(2))) == [201, 409]
    assert order_of(client, as_staff, paid)["amount_refunded"] == "55.00"
    assert refunds_of(client, as_staff, paid).json["total"] == 2


def test_two_refunds_racing_for_the_last_units(client, app, goods, paid, as_staff):
    pen, _ = goods
    pen_line = paid["items"][0]["id"]
    barrier = threading.Barrier(2)

    def race(_):
        barrier.wait()
        return refund(
            app.test_client(),
            as_staff,
            paid,
            amount="1.00",
            restock=True,
            items=[{"order_item_id": pen_line, "quantity": 2}],
        ).status_code

    with ThreadPoolExecutor(max_workers=2) as pool:
        assert sorted(pool.map(race, range(2))) == [201, 409]
    assert stock_of(app, pen.id) == 10 == ledger_sum(app, pen.id)


def test_the_refund_list_costs_the_same_for_any_page_size(client, paid, as_staff, count_queries):
    pen_line = paid["items"][0]["id"]
    for _ in range(3):
        refund(
            client,
            as_staff,
            paid,
            amount="1.00",
            items=[{"order_item_id": pen_line, "quantity": 1}] if _ < 2 else [],
        )
    with count_queries() as small:
        assert len(refunds_of(client, as_staff, paid, page_size=1).json["items"]) == 1
    with count_queries() as large:
        assert len(refunds_of(client, as_staff, paid, page_size=100).json["items"]) == 3
    assert small.count == large.count
    with count_queries() as orders_small:
        client.get(f"{API}/orders?page_size=1", headers=as_staff)
    with count_queries() as orders_large:
        client.get(f"{API}/orders?page_size=100", headers=as_staff)
    assert orders_small.count == orders_large.count <= 5


def _signed(body):
    raw = json.dumps(body).encode()
    return raw, "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()


def test_a_refund_of_a_cancelled_order_paid_late_settles_its_refund_due(
    client, app, goods, as_customer, as_staff
):
    order = place(client, as_customer, goods)
    assert client.post(f"{API}/orders/{order['id']}/cancel", headers=as_customer).status_code == (
        200
    )
    app.config["PAYMENT_WEBHOOK_SECRET"] = SECRET
    try:
        raw, signature = _signed(
            {
                "event_id": "evt_late",
                "order_number": order["number"],
                "amount": "55.00",
                "status": "succeeded",
            }
        )
        late = client.post(
            f"{API}/payments/webhook",
            data=raw,
            content_type="application/json",
            headers={"X-Signature": signature},
        )
        assert late.json["result"] == "recorded"
    finally:
        app.config["PAYMENT_WEBHOOK_SECRET"] = ""
    assert order_of(client, as_staff, order)["refund_due"] == "55.00"
    assert (
        refund(
            client, as_staff, order, amount="30.00", reason="paid back by bank transfer"
        ).status_code
        == 201
    )
    half = order_of(client, as_staff, order)
    assert (half["refund_due"], half["amount_refunded"]) == ("25.00", "30.00")
    assert refund(client, as_staff, order, amount="25.00").status_code == 201
    settled = order_of(client, as_staff, order)
    assert (settled["refund_due"], settled["status"]) == ("0.00", "cancelled")
    assert client.get(f"{API}/orders?needs_refund=true", headers=as_staff).json["total"] == 0
