"""Returns (RMA): who may ask, read, decide and receive; the delivery window; never more than
delivered minus already returned; receipts to stock or written off through the ledger, never
more than asked (also two at once); a refund on receipt through the order's refunds; the list's
filters and cost; audit, events and emails."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from shop.db import db, utcnow
from shop.orders.models import OrderStatusChange
from shop.products.models import StockMovement
from tests.conftest import text_of
from tests.factories import headers_for, ledger_sum, make_product, make_user, stock_of

API = "/api/v1"
SHIP_TO = {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}


@pytest.fixture
def goods(app):
    pen = make_product(app, price=Decimal("20.00"), stock=10, name="Pen")
    pad = make_product(app, price=Decimal("15.00"), stock=10, name="Pad")
    return pen, pad


def place(client, headers, goods, **body):
    pen, pad = goods
    items = [{"product_id": pen.id, "quantity": 2}, {"product_id": pad.id, "quantity": 1}]
    made = client.post(
        f"{API}/orders", headers=headers, json={"items": items, "shipping_address": SHIP_TO, **body}
    )
    assert made.status_code == 201, made.json
    return made.json


def move(client, staff_headers, order, *statuses):
    for to in statuses:
        moved = client.patch(
            f"{API}/orders/{order['id']}/status",
            headers=staff_headers,
            json={"status": to, "tracking_number": "TRK1"} if to == "shipped" else {"status": to},
        )
        assert moved.status_code == 200, moved.json


def deliver(client, staff_headers, order):
    paid = client.post(
        f"{API}/orders/{order['id']}/payments",
        headers=staff_headers,
        json={"amount": order["total"], "method": "cash"},
    )
    assert paid.status_code == 201, paid.json
    move(client, staff_headers, order, "processing", "shipped", "delivered")
    return client.get(f"{API}/orders/{order['id']}", headers=staff_headers).json


@pytest.fixture
def delivered(client, goods, as_customer, as_staff):
    """2 pens at 20.00 and a pad at 15.00 (55.00, free shipping), paid and delivered."""
    return deliver(client, as_staff, place(client, as_customer, goods))


def lines_of(order):
    return [item["id"] for item in order["items"]]


def ask(client, headers, order, *lines, reason="does not fit"):
    body = {"items": [{"order_item_id": i, "quantity": q, "reason": reason} for i, q in lines]}
    return client.post(f"{API}/orders/{order['id']}/returns", headers=headers, json=body)


def act(client, headers, ret, action, body=None):
    return client.post(f"{API}/returns/{ret['id']}/{action}", headers=headers, json=body)


def receive(client, headers, ret, *lines, refund=False):
    items = [{"order_item_id": i, "quantity": q, "condition": c} for i, q, c in lines]
    return act(client, headers, ret, "receive", {"items": items, "refund": refund})


def order_of(client, headers, order):
    return client.get(f"{API}/orders/{order['id']}", headers=headers).json


def movements(app, product_id):
    with app.app_context():
        return [
            (m.type, m.quantity)
            for m in db.session.scalars(
                select(StockMovement)
                .where(StockMovement.product_id == product_id, StockMovement.note.like("return%"))
                .order_by(StockMovement.id)
            )
        ]


def test_who_may_ask_read_and_decide(
    client, app, delivered, as_customer, as_staff, as_admin, customer
):
    pen_line, pad_line = lines_of(delivered)
    intruder = headers_for(app, make_user(app))
    asked = f"{API}/orders/{delivered['id']}/returns"
    body = {"items": [{"order_item_id": pen_line, "quantity": 1, "reason": "scratched"}]}
    assert client.post(asked, json=body).status_code == 401
    assert client.post(asked, headers=intruder, json=body).status_code == 404
    assert client.post(
        f"{API}/orders/999999/returns", headers=as_customer, json=body
    ).status_code == (404)
    made = client.post(asked, headers=as_customer, json=body)
    assert made.status_code == 201, made.json
    ret = made.json
    assert made.headers["Location"] == f"/api/v1/returns/{ret['id']}"
    assert ret == {
        "id": ret["id"],
        "order_id": delivered["id"],
        "status": "requested",
        "items": [
            {
                "order_item_id": pen_line,
                "quantity": 1,
                "reason": "scratched",
                "received_quantity": 0,
                "damaged_quantity": 0,
                "refunded_quantity": 0,
            }
        ],
        "note": None,
        "decided_at": None,
        "refunds": [],
        "created_at": ret["created_at"],
        "updated_at": ret["updated_at"],
    }
    # Staff may open one for the customer (a return phoned in); it is the customer's.
    by_staff = ask(client, as_staff, delivered, (pad_line, 1))
    assert by_staff.status_code == 201
    one = f"{API}/returns/{ret['id']}"
    assert client.get(one).status_code == 401
    assert client.get(one, headers=intruder).status_code == 404
    assert client.get(f"{API}/returns/999999", headers=as_staff).status_code == 404
    for headers in (as_customer, as_staff, as_admin):
        assert client.get(one, headers=headers).json == ret
        assert client.get(f"{API}/returns", headers=headers).json["total"] == 2
    assert client.get(f"{API}/returns").status_code == 401
    assert client.get(f"{API}/returns", headers=intruder).json["total"] == 0
    for action, body in (
        ("approve", {}),
        ("reject", {}),
        ("receive", {"items": [], "refund": False}),
    ):
        assert act(client, {}, ret, action, body).status_code == 401
        assert act(client, as_customer, ret, action, body).status_code == 403
        assert act(client, intruder, ret, action, body).status_code == 403
        assert act(client, as_staff, {"id": 999999}, action, body).status_code in (404, 422)
    assert act(client, as_staff, {"id": 999999}, "approve").status_code == 404
    assert act(client, as_staff, ret, "approve", {"note": "send it in"}).status_code == 200
    assert act(client, as_admin, by_staff.json, "reject").status_code == 200
    entries = client.get(f"{API}/audit-logs?target_type=return", headers=as_admin).json["items"]
    assert {e["action"] for e in entries} == {
        "return.requested",
        "return.approved",
        "return.rejected",
    }
    events = client.get(f"{API}/events?type=return.updated", headers=as_customer).json["items"]
    assert [(e["data"]["return_id"], e["data"]["status"]) for e in events] == [
        (by_staff.json["id"], "rejected"),
        (ret["id"], "approved"),
        (by_staff.json["id"], "requested"),
        (ret["id"], "requested"),
    ]
    assert client.get(f"{API}/events?type=return.updated", headers=intruder).json["total"] == 0


def test_only_a_delivered_order_within_the_window(client, app, goods, as_customer, as_staff):
    order = place(client, as_customer, goods)
    line = lines_of(order)[0]
    assert ask(client, as_customer, order, (line, 1)).status_code == 409  # pending
    order = deliver(client, as_staff, order)

    def delivered_days_ago(days):
        with app.app_context():
            db.session.execute(
                update(OrderStatusChange)
                .where(
                    OrderStatusChange.order_id == order["id"],
                    OrderStatusChange.to_status == "delivered",
                )
                .values(at=utcnow() - timedelta(days=days))
            )
            db.session.commit()

    delivered_days_ago(31)
    late = ask(client, as_customer, order, (line, 1))
    assert late.status_code == 422 and "within 30 days" in late.json["detail"], late.json
    app.config["RETURN_WINDOW_DAYS"] = 40
    try:
        assert ask(client, as_customer, order, (line, 1)).status_code == 201
    finally:
        app.config["RETURN_WINDOW_DAYS"] = 30
    delivered_days_ago(29)
    assert ask(client, as_customer, order, (line, 1)).status_code == 201
    # Refunded in full, the order is no longer delivered: no more returns.
    refunded = client.post(
        f"{API}/orders/{order['id']}/refunds",
        headers=as_staff,
        json={"amount": order["total"], "reason": "all of it"},
    )
    assert refunded.status_code == 201
    assert ask(client, as_customer, order, (lines_of(order)[1], 1)).status_code == 409


def test_never_more_than_delivered_minus_returned(client, delivered, as_customer, as_staff):
    pen_line, pad_line = lines_of(delivered)
    assert ask(client, as_customer, delivered, (pen_line, 3)).status_code == 409
    first = ask(client, as_customer, delivered, (pen_line, 2))
    assert first.status_code == 201
    over = ask(client, as_customer, delivered, (pen_line, 1), (pad_line, 1))
    assert over.status_code == 409 and "at most 0" in over.json["detail"], over.json
    assert act(client, as_staff, first.json, "reject", {"note": "worn"}).status_code == 200
    # A rejected return gives its units back to what may be returned.
    assert ask(client, as_customer, delivered, (pen_line, 2), (pad_line, 1)).status_code == 201
    assert ask(client, as_customer, delivered, (pad_line, 1)).status_code == 409


def test_bad_bodies_are_422(client, goods, delivered, as_customer, as_staff):
    pen_line, pad_line = lines_of(delivered)
    foreign = lines_of(place(client, as_customer, goods))[0]
    url = f"{API}/orders/{delivered['id']}/returns"
    line = {"order_item_id": pen_line, "quantity": 1, "reason": "too big"}
    for body in (
        {},
        {"items": []},
        {"items": [line, line]},
        {"items": [{**line, "quantity": 0}]},
        {"items": [{**line, "quantity": "1"}]},
        {"items": [{**line, "order_item_id": "1"}]},
        {"items": [{**line, "order_item_id": foreign}]},
        {"items": [{**line, "reason": ""}]},
        {"items": [{**line, "reason": "x" * 501}]},
        {"items": [{"order_item_id": pen_line, "quantity": 1}]},
        {"items": [{**line, "condition": "damaged"}]},
        {"items": [line], "status": "approved"},
        {"items": [line] * 51},
    ):
        answer = client.post(url, headers=as_customer, json=body)
        assert answer.status_code == 422, (body, answer.json)
    made = ask(client, as_customer, delivered, (pen_line, 1), reason="x" * 500)
    assert made.status_code == 201
    ret = made.json
    assert act(client, as_staff, ret, "approve", {"note": "x" * 1001}).status_code == 422
    assert act(client, as_staff, ret, "approve", {"surprise": 1}).status_code == 422
    assert act(client, as_staff, ret, "approve").status_code == 200
    got = {"order_item_id": pen_line, "quantity": 1, "condition": "resellable"}
    for body in (
        {},
        {"items": []},
        {"items": [got, got]},
        {"items": [{**got, "condition": "lost"}]},
        {"items": [{**got, "quantity": 0}]},
        {"items": [got], "refund": "yes"},
        {"items": [{**got, "order_item_id": pad_line}]},  # not a line of this return
        {"items": [{**got, "order_item_id": foreign}]},
    ):
        answer = act(client, as_staff, ret, "receive", body)
        assert answer.status_code == 422, (body, answer.json)
    listed = f"{API}/returns"
    for query in ({"status": "lost"}, {"order_id": "x"}, {"page_size": 101}, {"sort": "id"}):
        assert client.get(listed, headers=as_staff, query_string=query).status_code == 422


def test_decisions_only_on_a_requested_return(client, delivered, as_customer, as_staff):
    pen_line, _ = lines_of(delivered)
    ret = ask(client, as_customer, delivered, (pen_line, 1)).json
    early = receive(client, as_staff, ret, (pen_line, 1, "resellable"))
    assert early.status_code == 409 and "approved" in early.json["detail"]
    approved = act(client, as_staff, ret, "approve", {"note": "ok"})
    assert approved.status_code == 200
    assert approved.json["status"] == "approved" and approved.json["note"] == "ok"
    assert approved.json["decided_at"] is not None
    assert act(client, as_staff, ret, "approve").status_code == 409
    assert act(client, as_staff, ret, "reject").status_code == 409
    rejected = ask(client, as_customer, delivered, (pen_line, 1)).json
    assert act(client, as_staff, rejected, "reject").json["status"] == "rejected"
    assert act(client, as_staff, rejected, "approve").status_code == 409
    assert receive(client, as_staff, rejected, (pen_line, 1, "resellable")).status_code == 409


def test_receipts_restock_resellable_units_and_write_off_damaged_ones(
    client, app, goods, delivered, as_customer, as_staff, as_admin, customer, mailbox, run_jobs
):
    pen, pad = goods
    pen_line, pad_line = lines_of(delivered)
    assert (stock_of(app, pen.id), stock_of(app, pad.id)) == (8, 9)
    ret = ask(client, as_customer, delivered, (pen_line, 2), (pad_line, 1)).json
    assert act(client, as_staff, ret, "approve", {"note": "Label attached"}).status_code == 200
    first = receive(client, as_staff, ret, (pen_line, 1, "resellable"), (pad_line, 1, "damaged"))
    assert first.status_code == 200, first.json
    assert first.json["status"] == "approved"  # partly received
    assert [
        (i["received_quantity"], i["damaged_quantity"], i["refunded_quantity"])
        for i in first.json["items"]
    ] == [(1, 0, 0), (1, 1, 0)]
    assert stock_of(app, pen.id) == 9 == ledger_sum(app, pen.id)
    assert stock_of(app, pad.id) == 9 == ledger_sum(app, pad.id)
    assert movements(app, pen.id) == [("RETURN", 1)]
    assert movements(app, pad.id) == [("RETURN", 1), ("DAMAGE", -1)]
    # The pad line is all in: more of it is a 409, as is more pens than are left.
    assert receive(client, as_staff, ret, (pad_line, 1, "resellable")).status_code == 409
    over = receive(client, as_staff, ret, (pen_line, 2, "resellable"))
    assert over.status_code == 409 and "at most 1" in over.json["detail"]
    last = receive(client, as_staff, ret, (pen_line, 1, "damaged"))
    assert last.status_code == 200 and last.json["status"] == "received"
    assert movements(app, pen.id) == [("RETURN", 1), ("RETURN", 1), ("DAMAGE", -1)]
    assert stock_of(app, pen.id) == 9 == ledger_sum(app, pen.id)
    again = receive(client, as_staff, ret, (pen_line, 1, "resellable"))
    assert again.status_code == 409 and "nothing is left" in again.json["detail"]
    order = order_of(client, as_customer, delivered)
    assert (order["status"], order["amount_refunded"]) == ("delivered", "0.00")
    [entry, _] = client.get(f"{API}/audit-logs?action=return.received", headers=as_admin).json[
        "items"
    ]
    assert entry["changes"]["status"] == {"before": "approved", "after": "received"}
    run_jobs()
    mails = {m["Subject"]: text_of(m) for m in mailbox.to(customer.email)}
    approved = mails[f"Your return {ret['id']} of order {delivered['number']} is approved"]
    assert "2 x Pen" in approved and "Label attached" in approved
    assert f"Your return {ret['id']} of order {delivered['number']} is received" in mails


def test_a_refund_on_receipt_is_a_refund_of_the_order(
    client, app, goods, delivered, as_customer, as_staff, customer, mailbox, run_jobs
):
    pen, _ = goods
    pen_line, pad_line = lines_of(delivered)
    ret = ask(client, as_customer, delivered, (pen_line, 2), (pad_line, 1)).json
    act(client, as_staff, ret, "approve")
    first = receive(client, as_staff, ret, (pen_line, 1, "resellable"), refund=True)
    assert first.status_code == 200, first.json
    [refund] = first.json["refunds"]
    assert refund["amount"] == "20.00" and first.json["items"][0]["refunded_quantity"] == 1
    order = order_of(client, as_customer, delivered)
    assert (order["amount_refunded"], order["status"]) == ("20.00", "delivered")
    [made] = client.get(f"{API}/orders/{delivered['id']}/refunds", headers=as_customer).json[
        "items"
    ]
    assert made["id"] == refund["id"] and made["restocked"] is False
    assert made["items"] == [{"order_item_id": pen_line, "quantity": 1}]
    assert stock_of(app, pen.id) == 9 == ledger_sum(app, pen.id)  # restocked once, by the return
    # Received without a refund, the last units leave the return received, not refunded.
    second = receive(client, as_staff, ret, (pad_line, 1, "damaged"))
    assert second.json["status"] == "approved"
    done = receive(client, as_staff, ret, (pen_line, 1, "resellable"), refund=True)
    assert done.json["status"] == "received" and len(done.json["refunds"]) == 2
    assert order_of(client, as_customer, delivered)["amount_refunded"] == "40.00"
    run_jobs()
    refund_mails = [m for m in mailbox.to(customer.email) if "Refund of" in m["Subject"]]
    assert len(refund_mails) == 2


def test_a_return_refunded_in_full_refunds_the_order(
    client, app, as_admin, as_customer, as_staff, goods
):
    """With a coupon and a tax rate, the units' refunds add up to what was paid for the lines."""
    california = {"country": "US", "region": "US-CA", "rate": "0.0725", "name": "CA sales tax"}
    assert client.post(f"{API}/tax-rates", headers=as_admin, json=california).status_code == 201
    ten = {"code": "TEN", "kind": "percent", "value": "10.00"}
    assert client.post(f"{API}/coupons", headers=as_admin, json=ten).status_code == 201
    order = place(
        client, as_customer, goods, coupon_code="ten", shipping_address={**SHIP_TO, "state": "CA"}
    )
    assert Decimal(order["tax"]) > 0 and Decimal(order["discount"]) > 0
    order = deliver(client, as_staff, order)
    pen_line, pad_line = lines_of(order)
    ret = ask(client, as_customer, order, (pen_line, 2), (pad_line, 1)).json
    act(client, as_staff, ret, "approve")
    for line, condition in ((pen_line, "resellable"), (pen_line, "damaged"), (pad_line, "damaged")):
        answer = receive(client, as_staff, ret, (line, 1, condition), refund=True)
        assert answer.status_code == 200, answer.json
    assert answer.json["status"] == "refunded"
    paid_for_lines = sum(Decimal(i["line_total"]) + Decimal(i["tax"]) for i in order["items"])
    amounts = [Decimal(r["amount"]) for r in answer.json["refunds"]]
    assert sum(amounts) == paid_for_lines
    after = order_of(client, as_customer, order)
    assert Decimal(after["amount_refunded"]) == paid_for_lines
    expected = "refunded" if paid_for_lines == Decimal(order["total"]) else "delivered"
    assert after["status"] == expected


def test_nothing_left_to_refund_is_a_409_and_changes_nothing(
    client, app, goods, delivered, as_customer, as_staff
):
    pen, _ = goods
    pen_line, _ = lines_of(delivered)
    ret = ask(client, as_customer, delivered, (pen_line, 1)).json
    act(client, as_staff, ret, "approve")
    assert (
        client.post(
            f"{API}/orders/{delivered['id']}/refunds",
            headers=as_staff,
            json={"amount": "55.00", "reason": "goodwill"},
        ).status_code
        == 201
    )
    answer = receive(client, as_staff, ret, (pen_line, 1, "resellable"), refund=True)
    assert answer.status_code == 409 and "Nothing is left to refund" in answer.json["detail"]
    assert stock_of(app, pen.id) == 8 == ledger_sum(app, pen.id)  # rolled back with it
    again = receive(client, as_staff, ret, (pen_line, 1, "resellable"))
    assert again.status_code == 200 and again.json["status"] == "received"


def test_two_receipts_of_the_same_line_at_once(
    client, app, goods, delivered, as_customer, as_staff
):
    pen, _ = goods
    pen_line, _ = lines_of(delivered)
    ret = ask(client, as_customer, delivered, (pen_line, 2)).json
    act(client, as_staff, ret, "approve")
    assert receive(client, as_staff, ret, (pen_line, 1, "resellable")).status_code == 200
    barrier = threading.Barrier(2)

    def race(_):
        barrier.wait()
        return receive(
            app.test_client(), as_staff, ret, (pen_line, 1, "resellable"), refund=True
        ).status_code

    with ThreadPoolExecutor(max_workers=2) as pool:
        assert sorted(pool.map(race, range(2))) == [200, 409]
    assert stock_of(app, pen.id) == 10 == ledger_sum(app, pen.id)
    assert movements(app, pen.id) == [("RETURN", 1), ("RETURN", 1)]
    assert order_of(client, as_staff, delivered)["amount_refunded"] == "20.00"
    final = client.get(f"{API}/returns/{ret['id']}", headers=as_staff).json
    assert final["status"] == "received" and final["items"][0]["received_quantity"] == 2


def test_two_requests_for_the_last_units_at_once(client, app, delivered, as_customer):
    pen_line, _ = lines_of(delivered)
    barrier = threading.Barrier(2)

    def race(_):
        barrier.wait()
        return ask(app.test_client(), as_customer, delivered, (pen_line, 2)).status_code

    with ThreadPoolExecutor(max_workers=2) as pool:
        assert sorted(pool.map(race, range(2))) == [201, 409]


def test_the_list_filters_and_costs_the_same_for_any_page_size(
    client, app, goods, delivered, as_customer, as_staff, count_queries
):
    pen_line, pad_line = lines_of(delivered)
    other = deliver(client, as_staff, place(client, as_customer, goods))
    made = [
        ask(client, as_customer, delivered, (pen_line, 1)).json,
        ask(client, as_customer, delivered, (pen_line, 1), (pad_line, 1)).json,
        ask(client, as_customer, other, (lines_of(other)[0], 1)).json,
    ]
    act(client, as_staff, made[2], "approve")
    receive(client, as_staff, made[2], (lines_of(other)[0], 1, "resellable"), refund=True)
    act(client, as_staff, made[0], "reject")
    listed = client.get(f"{API}/returns", headers=as_customer).json
    assert [r["id"] for r in listed["items"]] == [r["id"] for r in reversed(made)]
    for query, expected in (
        ({"status": "refunded"}, [made[2]["id"]]),
        ({"status": "requested"}, [made[1]["id"]]),
        ({"order_id": other["id"]}, [made[2]["id"]]),
        ({"order_id": delivered["id"], "status": "rejected"}, [made[0]["id"]]),
        ({"order_id": other["id"], "status": "rejected"}, []),
    ):
        answer = client.get(f"{API}/returns", headers=as_staff, query_string=query).json
        assert [r["id"] for r in answer["items"]] == expected, query
    page = client.get(f"{API}/returns?page_size=1&page=2", headers=as_staff)
    assert page.json["pages"] == 3 and page.json["links"]["next"].endswith("page=3")
    assert 'rel="next"' in page.headers["Link"]
    with count_queries() as small:  # the newest, made[2], has a refund too
        assert len(client.get(f"{API}/returns?page_size=1", headers=as_staff).json["items"]) == 1
    with count_queries() as large:
        assert len(client.get(f"{API}/returns?page_size=100", headers=as_staff).json["items"]) == 3
    assert small.count == large.count
