"""The event log and `GET /events`: written with the change (never for a rolled-back one), seen
by whom it concerns, and read on by `after` without ever skipping a committed event, even when
transactions commit in the opposite order to the one they wrote their events in."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, text, update

from shop.db import db, unit_of_work, utcnow
from shop.events.log import prune_events, record
from shop.events.models import EventRecord
from tests.conftest import settle_events
from tests.factories import headers_for, make_product, make_user
from tests.orders.test_lifecycle import SECRET, post_event

API = "/api/v1"
SHIP_TO = {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}


def order(client, headers, product, quantity=1):
    return client.post(
        f"{API}/orders",
        headers=headers,
        json={
            "items": [{"product_id": product.id, "quantity": quantity}],
            "shipping_address": SHIP_TO,
        },
    )


def events(client, headers, query="", *, settle=True):
    if settle:  # every transaction on the server that began before the last event has ended
        settle_events(client.application)
    response = client.get(f"{API}/events{query}", headers=headers)
    assert response.status_code == 200, response.json
    return response.json["items"]


def test_an_order_s_life_is_in_its_customer_s_feed_and_staff_s(
    client, app, as_customer, as_staff, monkeypatch
):
    monkeypatch.setitem(app.config, "PAYMENT_WEBHOOK_SECRET", SECRET)
    product = make_product(app, price=Decimal("60.00"), stock=10, low_stock_threshold=2)
    placed = order(client, as_customer, product).json
    client.patch(
        f"{API}/orders/{placed['id']}/status", headers=as_staff, json={"status": "cancelled"}
    )
    second = order(client, as_customer, product).json
    failed = {"event_id": "e1", "order_number": second["number"], "amount": second["total"]}
    post_event(client, {**failed, "status": "failed", "reference": "ch_1"})
    post_event(client, {**failed, "event_id": "e2", "status": "succeeded", "reference": "ch_2"})

    mine = events(client, as_customer)  # newest first
    assert [e["type"] for e in mine] == [
        "order.status_changed",  # paid in full
        "payment.succeeded",
        "payment.failed",
        "order.created",
        "order.cancelled",
        "order.created",
    ]
    assert mine[-1]["data"] == {
        "order_id": placed["id"],
        "number": placed["number"],
        "status": "pending",
        "previous_status": None,
        "total": "60.00",
    }
    assert mine[-2]["data"]["status"] == "cancelled"
    assert mine[-2]["data"]["previous_status"] == "pending"
    assert mine[1]["data"] == {
        "order_id": second["id"],
        "number": second["number"],
        "payment_id": mine[1]["data"]["payment_id"],
        "amount": "60.00",
        "amount_paid": "60.00",
        "payment_status": "paid",
        "status": "pending",  # the order becomes paid by the status change after it
    }
    assert mine[0]["data"]["status"] == "paid"
    assert all(e["id"].isdigit() and len(e["id"]) == 32 for e in mine)
    assert [e["id"] for e in mine] == sorted((e["id"] for e in mine), reverse=True)
    assert {"id", "type", "created_at", "data"} == set(mine[0])
    # Staff see every event, the customer's and the stock's.
    everything = events(client, as_staff, "?page_size=100")
    assert [e["id"] for e in everything if e["type"].startswith(("order", "payment"))] == [
        e["id"] for e in mine
    ]


def test_a_customer_never_sees_another_s_events(client, app, as_customer):
    other = headers_for(app, make_user(app, email="other@example.com"))
    product = make_product(app, stock=10)
    assert order(client, as_customer, product).status_code == 201
    assert events(client, other) == []
    assert client.get(f"{API}/events").status_code == 401
    assert len(events(client, as_customer)) == 1


def test_stock_events_are_for_staff_once_per_crossing(client, app, as_customer, as_staff):
    product = make_product(app, stock=4, low_stock_threshold=2)
    order(client, as_customer, product, 1)  # 3: still above
    order(client, as_customer, product, 2)  # 1: crosses into low
    order(client, as_customer, product, 1)  # 0: already low, no second event
    restock = client.post(
        f"{API}/inventory/transactions",
        headers=as_staff,
        json={"product_id": product.id, "type": "IN", "quantity": 5},
    )
    assert restock.status_code == 201, restock.json
    stock = [e for e in events(client, as_staff, "?page_size=100") if "stock" in e["type"]]
    assert [(e["type"], e["data"]["stock"]) for e in stock] == [
        ("product.back_in_stock", 5),
        ("inventory.low_stock", 1),
    ]
    assert stock[1]["data"] == {
        "product_id": product.id,
        "variant_id": None,
        "stock": 1,
        "low_stock_threshold": 2,
    }
    assert [e for e in events(client, as_customer) if "stock" in e["type"]] == []
    assert events(client, as_staff, "?type=inventory.low_stock")[0]["data"]["stock"] == 1


def test_a_rolled_back_change_leaves_no_event(client, app, as_customer, as_staff):
    product = make_product(app, stock=1, low_stock_threshold=0)
    assert order(client, as_customer, product, 2).status_code == 409  # not enough stock
    assert events(client, as_staff) == []


def test_after_reads_on_oldest_first(client, app, as_customer):
    product = make_product(app, stock=10)
    for _ in range(3):
        order(client, as_customer, product)
    newest_first = [e["id"] for e in events(client, as_customer)]
    oldest = newest_first[-1]
    on = events(client, as_customer, f"?after={oldest}")
    assert [e["id"] for e in on] == newest_first[-2::-1]
    assert events(client, as_customer, f"?after={newest_first[0]}") == []
    page = client.get(f"{API}/events?after={oldest}&page_size=1", headers=as_customer).json
    assert page["total"] == 2 and [e["id"] for e in page["items"]] == [newest_first[1]]


@pytest.mark.parametrize(
    "query",
    ["?after=12", "?after=" + "x" * 32, "?type=order.exploded", "?page_size=0", "?since=1"],
)
def test_bad_feed_queries_are_422(client, as_customer, query):
    assert client.get(f"{API}/events{query}", headers=as_customer).status_code == 422


def test_the_feed_s_query_count_does_not_grow_with_its_page(
    client, app, as_customer, count_queries
):
    product = make_product(app, stock=100)
    for _ in range(6):
        order(client, as_customer, product)
    counts = []
    settle_events(app)
    for size in (1, 6):
        with count_queries() as counter:
            assert len(events(client, as_customer, f"?page_size={size}", settle=False)) == size
        counts.append(counter.count)
    assert counts[0] == counts[1]


def _in_transaction(app, steps):
    """Run `steps` (a generator function given the session) in a unit of work on a thread of
    its own; each `yield` waits until the test says go on. Returns (go_on, done)."""
    go_on, paused, done = threading.Semaphore(0), threading.Semaphore(0), threading.Event()

    def run():
        with app.app_context(), unit_of_work() as session:
            for _ in steps(session):
                paused.release()
                go_on.acquire()
        done.set()

    threading.Thread(target=run, daemon=True).start()

    def step():
        go_on.release()
        assert paused.acquire(timeout=5)

    paused.acquire(timeout=5)
    return step, lambda: (go_on.release(), done.wait(5))


def test_overlapping_transactions_committing_in_the_opposite_order_are_never_skipped(
    client, app, as_staff
):
    """Two cases: the transaction that took the smaller event id commits last; and the one
    whose transaction id is older writes its event last and commits last."""
    with app.app_context(), unit_of_work():
        record("order.created", {"n": 0}, user_id=None)
    cursor = events(client, as_staff)[0]["id"]
    seen: list[dict] = []

    def read_on(*, settle=True):
        nonlocal cursor
        new = events(client, as_staff, f"?after={cursor}&page_size=100", settle=settle)
        seen.extend(new)
        if new:
            cursor = new[-1]["id"]

    def write(n, *, take_xid_first=False):
        def steps(session):
            if take_xid_first:
                session.execute(text("SELECT pg_current_xact_id()"))
                yield
            record("order.created", {"n": n}, user_id=None)
            yield

        return steps

    # 1. A writes event 1, B writes event 2 and commits, the reader reads, then A commits.
    _, a_commits = _in_transaction(app, write(1))
    _, b_commits = _in_transaction(app, write(2))
    b_commits()
    read_on(settle=False)
    assert seen == []  # event 2 waits for A, which began before it
    a_commits()
    read_on()
    # 2. C takes its transaction id, D writes event 3, C writes event 4, D commits, then C.
    c_step, c_commits = _in_transaction(app, write(4, take_xid_first=True))
    _, d_commits = _in_transaction(app, write(3))
    c_step()
    d_commits()
    read_on(settle=False)
    c_commits()
    read_on()
    read_on()
    assert sorted(e["data"]["n"] for e in seen) == [1, 2, 3, 4]  # each once, none skipped
    assert [e["id"] for e in seen] == sorted(e["id"] for e in seen)


def test_old_events_are_pruned_after_the_retention(client, app, as_customer):
    product = make_product(app, stock=10)
    for _ in range(2):
        order(client, as_customer, product)
    with app.app_context():
        [old, _] = db.session.scalars(
            select(EventRecord.id).where(EventRecord.type == "order.created").order_by("id")
        ).all()
        hours = app.config["EVENT_RETENTION_HOURS"]
        with unit_of_work() as session:
            session.execute(
                update(EventRecord)
                .where(EventRecord.id == old)
                .values(created_at=utcnow() - timedelta(hours=hours, minutes=1))
            )
        assert prune_events() == {"deleted": 1}
        assert prune_events() == {"deleted": 0}
    [kept] = events(client, as_customer)
    assert kept["type"] == "order.created"
