"""Shipments (GET/POST /orders/{id}/shipments, POST /shipments/{id}/events, POST
/shipping/webhook): who may, what a body may say, units never shipped twice (also two parcels
at once), the order shipped and delivered through the status machine, the customer emailed
each tracking number, the carrier's signature and each of its events once, the event feed."""

import hashlib
import hmac
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from itertools import count

import pytest
from sqlalchemy import func, select

from shop.db import db, utcnow
from shop.orders.shipment_models import ShipmentEvent
from tests.conftest import text_of
from tests.events.test_realtime import Realtime, listen, nothing_more, received
from tests.factories import headers_for, make_product, make_user

API = "/api/v1"
SHIP_TO = {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}
SECRET = "carrier-secret-for-tests"
_numbers = count(1)


@pytest.fixture
def goods(app):
    pen = make_product(app, name="Pen", price=Decimal("20.00"), stock=10)
    pad = make_product(app, name="Pad", price=Decimal("15.00"), stock=10)
    return pen, pad


def place(client, headers, goods):
    pen, pad = goods
    items = [{"product_id": pen.id, "quantity": 2}, {"product_id": pad.id, "quantity": 1}]
    made = client.post(
        f"{API}/orders", headers=headers, json={"items": items, "shipping_address": SHIP_TO}
    )
    assert made.status_code == 201, made.json
    return made.json


def pay(client, staff_headers, order):
    paid = client.post(
        f"{API}/orders/{order['id']}/payments",
        headers=staff_headers,
        json={"amount": order["total"], "method": "cash"},
    )
    assert paid.status_code == 201, paid.json


@pytest.fixture
def paid(client, goods, as_customer, as_staff):
    """2 pens and 1 pad, paid: lines (pen, pad)."""
    order = place(client, as_customer, goods)
    pay(client, as_staff, order)
    return order


def lines_of(order):
    return [item["id"] for item in order["items"]]


def ship(client, headers, order, **body):
    body = {"carrier": "UPS", "tracking_number": f"1Z{next(_numbers):06d}", **body}
    return client.post(f"{API}/orders/{order['id']}/shipments", headers=headers, json=body)


def shipments_of(client, headers, order, **query):
    return client.get(f"{API}/orders/{order['id']}/shipments", headers=headers, query_string=query)


def track(client, headers, shipment, **body):
    body = {"status": "in_transit", **body}
    return client.post(f"{API}/shipments/{shipment['id']}/events", headers=headers, json=body)


def order_of(client, headers, order):
    return client.get(f"{API}/orders/{order['id']}", headers=headers).json


def history(order):
    return [change["to_status"] for change in order["status_history"]]


@pytest.fixture
def carrier_secret(app):
    app.config["SHIPPING_WEBHOOK_SECRET"] = SECRET
    yield SECRET
    app.config["SHIPPING_WEBHOOK_SECRET"] = ""


def carrier(client, body, signature=None, raw=None):
    raw = raw if raw is not None else json.dumps(body).encode()
    good = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    headers = {} if signature == "" else {"X-Signature": signature or good}
    return client.post(
        f"{API}/shipping/webhook", data=raw, content_type="application/json", headers=headers
    )


def carrier_event(shipment, event_id="evt_1", status="in_transit", **extra):
    at = (utcnow() - timedelta(minutes=1)).isoformat()
    return {
        "event_id": event_id,
        "tracking_number": shipment["tracking_number"],
        "status": status,
        "at": at,
        **extra,
    }


# --- who may ---------------------------------------------------------------------------------


def test_who_may_read_and_make_shipments(client, app, paid, as_customer, as_staff, as_admin):
    url = f"{API}/orders/{paid['id']}/shipments"
    pen_line, pad_line = lines_of(paid)
    body = {
        "carrier": "UPS",
        "tracking_number": "1ZROLE1",
        "items": [{"order_item_id": pen_line, "quantity": 1}],
    }
    intruder = headers_for(app, make_user(app))
    assert client.get(url).status_code == 401
    assert client.post(url, json=body).status_code == 401
    assert client.post(url, headers=as_customer, json=body).status_code == 403
    assert client.post(url, headers=intruder, json=body).status_code == 403
    assert client.get(url, headers=intruder).status_code == 404
    assert shipments_of(client, as_staff, {"id": 999999}).status_code == 404
    assert ship(client, as_staff, {"id": 999999}).status_code == 404
    made = client.post(url, headers=as_staff, json=body)
    assert made.status_code == 201 and made.headers["Location"] == url
    by_admin = ship(client, as_admin, paid, items=[{"order_item_id": pad_line, "quantity": 1}])
    assert by_admin.status_code == 201
    for headers in (as_customer, as_staff, as_admin):
        listed = shipments_of(client, headers, paid)
        assert listed.status_code == 200 and listed.json["total"] == 2
    assert listed.json["items"][0] == made.json
    assert made.json == {
        "id": made.json["id"],
        "order_id": paid["id"],
        "carrier": "UPS",
        "tracking_number": "1ZROLE1",
        "status": "pending",
        "items": [{"order_item_id": pen_line, "quantity": 1}],
        "events": [],
        "created_at": made.json["created_at"],
        "updated_at": made.json["updated_at"],
    }


def test_who_may_record_tracking_events(client, app, paid, as_customer, as_staff, as_admin):
    shipment = ship(client, as_staff, paid).json
    intruder = headers_for(app, make_user(app))
    assert track(client, {}, shipment).status_code == 401
    assert track(client, as_customer, shipment).status_code == 403
    assert track(client, intruder, shipment).status_code == 403
    assert track(client, as_staff, {"id": 999999}).status_code == 404
    first = track(client, as_staff, shipment, location="Louisville, KY", note="departed")
    assert first.status_code == 201, first.json
    assert first.headers["Location"] == f"{API}/orders/{paid['id']}/shipments"
    assert first.json["status"] == "in_transit"
    [event] = first.json["events"]
    assert (event["status"], event["location"], event["note"]) == (
        "in_transit",
        "Louisville, KY",
        "departed",
    )
    assert track(client, as_admin, shipment, status="out_for_delivery").status_code == 201


def test_a_guest_reads_the_shipments_of_its_order_with_its_key(
    client, goods, as_staff, mailbox, run_jobs
):
    pen, _ = goods
    cart = {"X-Cart-Token": client.post(f"{API}/carts").json["token"]}
    client.post(f"{API}/cart/items", headers=cart, json={"product_id": pen.id, "quantity": 1})
    body = {"email": "guest@example.com", "shipping_address": SHIP_TO}
    order = client.post(f"{API}/orders", headers=cart, json=body).json
    pay(client, as_staff, order)
    assert ship(client, as_staff, order).status_code == 201
    url = f"{API}/orders/{order['id']}/shipments"
    assert client.get(url, query_string={"key": order["access_key"]}).json["total"] == 1
    assert client.get(url, headers={"X-Order-Key": order["access_key"]}).json["total"] == 1
    assert client.get(url, query_string={"key": "wrong"}).status_code == 404
    run_jobs()
    assert any("has shipped" in m["Subject"] for m in mailbox.to("guest@example.com"))


# --- bodies ----------------------------------------------------------------------------------


def test_bad_bodies_are_422(client, goods, paid, as_customer, as_staff):
    pen_line, _ = lines_of(paid)
    foreign = place(client, as_customer, goods)["items"][0]["id"]
    for body in (
        {"carrier": ""},
        {"carrier": "x" * 101},
        {"carrier": None},
        {"tracking_number": ""},
        {"tracking_number": "1Z 999"},
        {"tracking_number": "x" * 101},
        {"tracking_number": 12345},
        {"items": []},
        {"items": [{"order_item_id": pen_line, "quantity": 1}] * 2},
        {"items": [{"order_item_id": pen_line, "quantity": 0}]},
        {"items": [{"order_item_id": "1", "quantity": 1}]},
        {"items": [{"order_item_id": pen_line}]},
        {"items": [{"order_item_id": foreign, "quantity": 1}]},
        {"status": "shipped"},
    ):
        answer = ship(client, as_staff, paid, **body)
        assert answer.status_code == 422, (body, answer.json)
    no_carrier = {"tracking_number": "1ZNOCARRIER"}
    assert (
        client.post(f"{API}/orders/{paid['id']}/shipments", headers=as_staff, json=no_carrier)
    ).status_code == 422
    assert shipments_of(client, as_staff, paid, page_size=0).status_code == 422
    assert shipments_of(client, as_staff, paid, sort="x").status_code == 422
    shipment = ship(client, as_staff, paid).json
    for body in (
        {"status": "pending"},
        {"status": "lost"},
        {"location": "x" * 201},
        {"note": "x" * 1001},
        {"at": "yesterday"},
        {"at": (utcnow() + timedelta(hours=1)).isoformat()},
        {"event_id": "e1"},
    ):
        answer = track(client, as_staff, shipment, **body)
        assert answer.status_code == 422, (body, answer.json)
    assert shipments_of(client, as_staff, paid).json["items"][0]["events"] == []


def test_only_paid_or_processing_orders_ship(client, goods, as_customer, as_staff):
    pending = place(client, as_customer, goods)
    answer = ship(client, as_staff, pending)
    assert answer.status_code == 409 and "pending" in answer.json["detail"]
    cancelled = place(client, as_customer, goods)
    client.post(f"{API}/orders/{cancelled['id']}/cancel", headers=as_customer)
    assert ship(client, as_staff, cancelled).status_code == 409


def test_units_never_ship_twice_and_tracking_numbers_are_unique(client, paid, as_staff):
    pen_line, pad_line = lines_of(paid)
    over = ship(client, as_staff, paid, items=[{"order_item_id": pen_line, "quantity": 3}])
    assert over.status_code == 409 and "at most 2" in over.json["detail"]
    one = ship(client, as_staff, paid, tracking_number="1ZSAME",
               items=[{"order_item_id": pen_line, "quantity": 1}])  # fmt: skip
    assert one.status_code == 201
    again = ship(client, as_staff, paid, tracking_number="1ZSAME",
                 items=[{"order_item_id": pad_line, "quantity": 1}])  # fmt: skip
    assert again.status_code == 409 and "tracking_number" in again.json["errors"]
    # The default is every unit left: one pen and the pad.
    rest = ship(client, as_staff, paid)
    assert rest.status_code == 201
    assert rest.json["items"] == [
        {"order_item_id": pen_line, "quantity": 1},
        {"order_item_id": pad_line, "quantity": 1},
    ]
    nothing = ship(client, as_staff, paid)
    assert nothing.status_code == 409 and "shipped already" in nothing.json["detail"]


# --- the order follows its parcels -----------------------------------------------------------


def test_partial_shipments_then_the_last_one_ship_the_order(
    client, paid, as_customer, as_staff, as_admin, customer, mailbox, run_jobs
):
    pen_line, pad_line = lines_of(paid)
    first = ship(client, as_staff, paid, carrier="DHL", tracking_number="JD0001",
                 items=[{"order_item_id": pen_line, "quantity": 2}])  # fmt: skip
    assert first.status_code == 201
    order = order_of(client, as_customer, paid)
    assert (order["status"], order["tracking_number"]) == ("processing", "JD0001")
    assert history(order) == ["pending", "paid", "processing"]
    last = ship(client, as_staff, paid, carrier="UPS", tracking_number="1ZLAST",
                items=[{"order_item_id": pad_line, "quantity": 1}])  # fmt: skip
    assert last.status_code == 201
    order = order_of(client, as_customer, paid)
    assert (order["status"], order["tracking_number"]) == ("shipped", "1ZLAST")
    assert history(order) == ["pending", "paid", "processing", "shipped"]
    assert order["status_history"][-1]["note"].startswith("every unit shipped")
    audit = client.get(f"{API}/audit-logs?action=shipment.created", headers=as_admin).json
    assert [e["changes"]["tracking_number"] for e in audit["items"]] == ["1ZLAST", "JD0001"]
    run_jobs()
    subjects = [m["Subject"] for m in mailbox.to(customer.email)]
    shipped = [s for s in subjects if "shipped:" in s]
    assert shipped == [
        f"Part of order {paid['number']} has shipped: DHL JD0001",
        f"Order {paid['number']} has shipped: UPS 1ZLAST",
    ]
    # One email per parcel instead of the machine's "now processing" and "now shipped".
    assert not [s for s in subjects if "is now processing" in s or "is now shipped" in s]
    [mail] = [m for m in mailbox.to(customer.email) if "1ZLAST" in m["Subject"]]
    assert "1 x Pad" in text_of(mail) and "Tracking number: 1ZLAST" in text_of(mail)


def test_every_shipment_delivered_delivers_the_order(
    client, paid, as_customer, as_staff, customer, mailbox, run_jobs
):
    pen_line, pad_line = lines_of(paid)
    pens = ship(client, as_staff, paid, items=[{"order_item_id": pen_line, "quantity": 2}]).json
    assert track(client, as_staff, pens, status="delivered").status_code == 201
    # Delivered, but a unit has not shipped: the order is not delivered.
    assert order_of(client, as_customer, paid)["status"] == "processing"
    pad = ship(client, as_staff, paid, items=[{"order_item_id": pad_line, "quantity": 1}]).json
    assert track(client, as_staff, pad, status="out_for_delivery").status_code == 201
    assert order_of(client, as_customer, paid)["status"] == "shipped"
    done = track(client, as_staff, pad, status="delivered", location="Springfield")
    assert done.status_code == 201 and done.json["status"] == "delivered"
    order = order_of(client, as_customer, paid)
    assert order["status"] == "delivered"
    assert history(order)[-1] == "delivered"  # what the returns window counts from
    assert order["status_history"][-1]["note"] == "every shipment delivered"
    after = track(client, as_staff, pad, status="exception")
    assert after.status_code == 409 and "delivered" in after.json["detail"]
    run_jobs()
    assert any("is now delivered" in m["Subject"] for m in mailbox.to(customer.email))


def test_an_older_event_is_history_only(client, paid, as_staff):
    shipment = ship(client, as_staff, paid).json
    now = utcnow()
    track(client, as_staff, shipment, status="out_for_delivery", at=now.isoformat())
    late = track(client, as_staff, shipment, status="in_transit",
                 at=(now - timedelta(hours=5)).isoformat())  # fmt: skip
    assert late.status_code == 201
    assert late.json["status"] == "out_for_delivery"
    assert [e["status"] for e in late.json["events"]] == ["in_transit", "out_for_delivery"]
    # An exception is not final: the parcel moves on.
    track(client, as_staff, shipment, status="exception", note="address unclear")
    moved = track(client, as_staff, shipment, status="out_for_delivery")
    assert moved.json["status"] == "out_for_delivery"


def test_an_order_shipped_by_hand_may_still_record_its_parcel(client, paid, as_staff):
    for to, extra in (("processing", {}), ("shipped", {"tracking_number": "BYHAND1"})):
        patched = client.patch(
            f"{API}/orders/{paid['id']}/status", headers=as_staff, json={"status": to, **extra}
        )
        assert patched.status_code == 200
    shipment = ship(client, as_staff, paid, tracking_number="BYHAND1").json
    assert track(client, as_staff, shipment, status="delivered").status_code == 201
    order = order_of(client, as_staff, paid)
    assert order["status"] == "delivered"
    assert history(order) == ["pending", "paid", "processing", "shipped", "delivered"]


def test_an_order_with_a_parcel_on_its_way_cannot_be_cancelled(client, paid, as_staff):
    ship(client, as_staff, paid, items=[{"order_item_id": lines_of(paid)[0], "quantity": 1}])
    answer = client.post(f"{API}/orders/{paid['id']}/cancel", headers=as_staff)
    assert answer.status_code == 409 and "shipments" in answer.json["detail"]
    assert order_of(client, as_staff, paid)["status"] == "processing"


def test_two_shipments_racing_for_the_last_units(client, app, paid, as_staff):
    pen_line, _ = lines_of(paid)
    one = ship(client, as_staff, paid, items=[{"order_item_id": pen_line, "quantity": 1}])
    assert one.status_code == 201
    barrier = threading.Barrier(2)

    def race(n):
        barrier.wait()
        return ship(
            app.test_client(),
            as_staff,
            paid,
            tracking_number=f"1ZRACE{n}",
            items=[{"order_item_id": pen_line, "quantity": 1}],
        ).status_code

    with ThreadPoolExecutor(max_workers=2) as pool:
        assert sorted(pool.map(race, range(2))) == [201, 409]
    listed = shipments_of(client, as_staff, paid).json["items"]
    assert sum(line["quantity"] for s in listed for line in s["items"]) == 2


def test_the_shipment_list_costs_the_same_for_any_page_size(client, paid, as_staff, count_queries):
    pen_line, pad_line = lines_of(paid)
    for line in (pen_line, pen_line, pad_line):
        shipment = ship(client, as_staff, paid, items=[{"order_item_id": line, "quantity": 1}])
        track(client, as_staff, shipment.json, status="in_transit")
    with count_queries() as small:
        assert len(shipments_of(client, as_staff, paid, page_size=1).json["items"]) == 1
    with count_queries() as large:
        listed = shipments_of(client, as_staff, paid, page_size=100).json["items"]
    assert len(listed) == 3 and all(len(s["events"]) == 1 for s in listed)
    assert small.count == large.count


# --- the carrier's webhook -------------------------------------------------------------------


def test_the_carrier_webhook_is_signed(client, app, paid, as_staff, carrier_secret):
    shipment = ship(client, as_staff, paid).json
    body = carrier_event(shipment)
    raw = json.dumps(body).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    assert carrier(client, body, signature="").status_code == 401  # no header
    assert carrier(client, body, signature="sha256=" + "0" * 64).status_code == 401
    assert carrier(client, body, signature="deadbeef").status_code == 401
    assert carrier(client, body, signature=signature.upper()).status_code == 401
    wrong_key = "sha256=" + hmac.new(b"another", raw, hashlib.sha256).hexdigest()
    assert carrier(client, body, signature=wrong_key).status_code == 401
    # The signature of the body as sent: another body under it is refused.
    tampered = raw.replace(b"in_transit", b"delivered")
    answer = carrier(client, body, raw=tampered, signature=signature)
    assert answer.status_code == 401 and answer.json["title"]
    app.config["SHIPPING_WEBHOOK_SECRET"] = ""  # not configured: nothing is accepted
    assert carrier(client, body).status_code == 401
    assert shipments_of(client, as_staff, paid).json["items"][0]["events"] == []


def test_each_carrier_event_is_applied_once(client, app, paid, as_staff, carrier_secret):
    shipment = ship(client, as_staff, paid).json
    body = carrier_event(shipment, "evt_a", "out_for_delivery", location="Springfield")
    first = carrier(client, body)
    assert first.status_code == 200
    assert first.json == {"result": "recorded", "shipment_id": shipment["id"]}
    again = carrier(client, body)
    assert again.status_code == 200 and again.json["result"] == "duplicate"
    [listed] = shipments_of(client, as_staff, paid).json["items"]
    assert listed["status"] == "out_for_delivery" and len(listed["events"]) == 1
    delivered = carrier(client, carrier_event(shipment, "evt_b", "delivered"))
    assert delivered.json["result"] == "recorded"
    assert order_of(client, as_staff, paid)["status"] == "delivered"
    # A repeat of the delivery is still a duplicate (200), a new event after it a 409.
    assert carrier(client, carrier_event(shipment, "evt_b", "delivered")).status_code == 200
    assert carrier(client, carrier_event(shipment, "evt_c", "exception")).status_code == 409


def test_concurrent_deliveries_of_one_carrier_event_count_once(
    app, client, paid, as_staff, carrier_secret
):
    shipment = ship(client, as_staff, paid).json
    body = carrier_event(shipment, "evt_race")
    barrier = threading.Barrier(4)

    def deliver(_):
        barrier.wait()
        return carrier(app.test_client(), body).json["result"]

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert sorted(pool.map(deliver, range(4))) == ["duplicate"] * 3 + ["recorded"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ShipmentEvent)) == 1


def test_the_carrier_webhook_refuses_what_it_cannot_apply(client, paid, as_staff, carrier_secret):
    shipment = ship(client, as_staff, paid).json
    unknown = carrier(client, {**carrier_event(shipment), "tracking_number": "NOSUCH1"})
    assert unknown.status_code == 404
    for body in (
        {k: v for k, v in carrier_event(shipment).items() if k != "at"},
        {k: v for k, v in carrier_event(shipment).items() if k != "event_id"},
        carrier_event(shipment, status="pending"),
        carrier_event(shipment, order_number="ORD-1"),
        carrier_event(shipment, at="soon"),
    ):
        answer = carrier(client, body)
        assert answer.status_code == 422, (body, answer.json)
    future = carrier_event(shipment, at=(utcnow() + timedelta(days=1)).isoformat())
    assert carrier(client, future).status_code == 422
    assert carrier(client, None, raw=b"{not json").status_code == 400


# --- events: the feed and the WebSocket -----------------------------------------------------


def test_shipment_events_reach_the_customer_s_feed(client, app, paid, as_customer, as_staff):
    shipment = ship(client, as_staff, paid).json
    track(client, as_staff, shipment, status="in_transit", location="Memphis")
    feed = client.get(f"{API}/events", headers=as_customer).json["items"]
    types = [e["type"] for e in feed]
    assert types[:4] == [
        "shipment.updated",
        "order.status_changed",  # processing -> shipped
        "order.status_changed",  # paid -> processing
        "shipment.created",
    ]
    updated, created = feed[0]["data"], feed[3]["data"]
    assert created == {
        "order_id": paid["id"],
        "number": paid["number"],
        "shipment_id": shipment["id"],
        "carrier": "UPS",
        "tracking_number": shipment["tracking_number"],
        "status": "pending",
        "units": 3,
    }
    assert (updated["status"], updated["previous_status"], updated["location"]) == (
        "in_transit",
        "pending",
        "Memphis",
    )
    filtered = client.get(f"{API}/events?type=shipment.created", headers=as_customer).json
    assert filtered["total"] == 1
    intruder = headers_for(app, make_user(app))
    assert client.get(f"{API}/events", headers=intruder).json["total"] == 0


@pytest.fixture(scope="module")
def realtime(app):
    service = Realtime(app)
    yield service
    service.stop()


def test_the_customer_gets_the_shipment_events_over_the_websocket(
    client, app, realtime, paid, customer, as_staff
):
    with listen(realtime, app, customer) as socket_:
        shipment = ship(client, as_staff, paid).json
        # The order's own events, committed just before the connection, may come first.
        [created] = received(socket_, 1)
        while created["type"] != "shipment.created":
            assert created["type"] in ("order.created", "payment.succeeded", "order.status_changed")
            [created] = received(socket_, 1)
        processing, shipped = received(socket_, 2)
        assert created["data"]["tracking_number"] == shipment["tracking_number"]
        assert [processing["data"]["status"], shipped["data"]["status"]] == [
            "processing",
            "shipped",
        ]
        track(client, as_staff, shipment, status="delivered")
        updated, delivered = received(socket_, 2)
        assert updated["type"] == "shipment.updated" and updated["data"]["status"] == "delivered"
        assert delivered["type"] == "order.status_changed"
        assert delivered["data"]["status"] == "delivered"
        assert nothing_more(socket_)
