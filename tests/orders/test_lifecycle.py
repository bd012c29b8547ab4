"""Order reading rights, the status machine, cancellation, payments and the webhook."""

import hashlib
import hmac
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from shop.audit.models import AuditLog
from shop.db import db, utcnow
from shop.orders.jobs import process_pending_orders
from shop.orders.models import Order, Payment
from tests.factories import headers_for, ledger_sum, make_product, make_user, stock_of

API = "/api/v1"
SHIP_TO = {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}
SECRET = "whsec-test"


@pytest.fixture
def placed(client, app, as_customer):
    product = make_product(app, price=Decimal("60.00"), stock=5)
    body = client.post(
        f"{API}/orders",
        headers=as_customer,
        json={"items": [{"product_id": product.id, "quantity": 2}], "shipping_address": SHIP_TO},
    ).json
    return product, body


def status(client, headers, order_id, to, **extra):
    return client.patch(
        f"{API}/orders/{order_id}/status", headers=headers, json={"status": to, **extra}
    )


def test_who_sees_which_orders(client, app, placed, as_customer, as_staff, as_admin):
    _, created = placed
    url = f"{API}/orders/{created['id']}"
    intruder = headers_for(app, make_user(app))
    assert client.get(url).status_code == 401
    assert client.get(url, headers=intruder).status_code == 404
    for headers in (as_customer, as_staff, as_admin):
        assert client.get(url, headers=headers).json["id"] == created["id"]
    assert client.get(f"{API}/orders", headers=intruder).json["total"] == 0
    assert client.get(f"{API}/orders", headers=as_customer).json["total"] == 1
    assert client.get(f"{API}/orders", headers=as_staff).json["total"] == 1
    # A customer's user_id filter cannot widen the view.
    assert (
        client.get(f"{API}/orders?user_id={created['user_id']}", headers=intruder).json["total"]
        == 0
    )


def test_order_list_filters_and_query_count(client, app, placed, as_staff, count_queries):
    _, created = placed
    assert client.get(f"{API}/orders?status=pending", headers=as_staff).json["total"] == 1
    assert client.get(f"{API}/orders?status=paid", headers=as_staff).json["total"] == 0
    assert (
        client.get(f"{API}/orders?user_id={created['user_id']}", headers=as_staff).json["total"]
        == 1
    )
    future = (utcnow() + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert client.get(f"{API}/orders?created_after={future}", headers=as_staff).json["total"] == 0
    assert client.get(f"{API}/orders?status=lost", headers=as_staff).status_code == 422
    with count_queries() as small:
        client.get(f"{API}/orders?page_size=1", headers=as_staff)
    with count_queries() as large:
        client.get(f"{API}/orders?page_size=100", headers=as_staff)
    assert small.count == large.count <= 5


def test_happy_path_through_the_machine(
    client, app, placed, customer, staff, as_staff, mailbox, run_jobs
):
    _, created = placed
    order_id = created["id"]
    assert status(client, as_staff, order_id, "paid", note="cash on counter").status_code == 200
    assert status(client, as_staff, order_id, "processing").status_code == 200
    assert status(client, as_staff, order_id, "shipped").status_code == 422  # no tracking
    shipped = status(client, as_staff, order_id, "shipped", tracking_number="1Z999")
    assert shipped.json["tracking_number"] == "1Z999"
    delivered = status(client, as_staff, order_id, "delivered").json
    history = [(h["from_status"], h["to_status"]) for h in delivered["status_history"]]
    assert history == [
        (None, "pending"),
        ("pending", "paid"),
        ("paid", "processing"),
        ("processing", "shipped"),
        ("shipped", "delivered"),
    ]
    assert delivered["status_history"][1]["changed_by"] == staff.id
    assert delivered["status_history"][1]["note"] == "cash on counter"
    refunded = status(client, as_staff, order_id, "refunded").json
    assert refunded["status"] == "refunded" and refunded["payment_status"] == "refunded"
    run_jobs()
    subjects = [m["Subject"] for m in mailbox.to(customer.email)]
    assert len(subjects) == 6 and any("now shipped" in s for s in subjects)


@pytest.mark.parametrize(
    ("path", "to"),
    [
        ([], "shipped"),
        ([], "delivered"),
        ([], "refunded"),
        (["paid"], "pending"),
        (["paid", "processing", "shipped"], "cancelled"),
        (["cancelled"], "paid"),
    ],
)
def test_illegal_transitions_are_409(client, placed, as_staff, path, to):
    _, created = placed
    for step in path:
        extra = {"tracking_number": "T"} if step == "shipped" else {}
        assert status(client, as_staff, created["id"], step, **extra).status_code == 200
    assert status(client, as_staff, created["id"], to).status_code == 409


def test_status_needs_staff(client, app, placed, as_customer):
    _, created = placed
    assert status(client, as_customer, created["id"], "paid").status_code == 403
    assert (
        client.patch(f"{API}/orders/{created['id']}/status", json={"status": "paid"}).status_code
        == 401
    )
    staff = headers_for(app, make_user(app, role="staff"))
    assert status(client, staff, 999999, "paid").status_code == 404
    assert status(client, staff, created["id"], "lost").status_code == 422


def test_owner_cancels_pending_and_stock_returns(client, app, placed, as_customer, as_staff):
    product, created = placed
    assert stock_of(app, product.id) == 3
    response = client.post(f"{API}/orders/{created['id']}/cancel", headers=as_customer)
    assert response.status_code == 200 and response.json["status"] == "cancelled"
    assert stock_of(app, product.id) == ledger_sum(app, product.id) == 5
    again = client.post(f"{API}/orders/{created['id']}/cancel", headers=as_staff)
    assert again.status_code == 409
    with app.app_context():
        assert db.session.scalar(select(AuditLog).where(AuditLog.action == "order.cancelled"))


def test_owner_cannot_cancel_after_payment_but_staff_can_until_shipped(
    client, app, placed, as_customer, as_staff
):
    product, created = placed
    status(client, as_staff, created["id"], "paid")
    assert (
        client.post(f"{API}/orders/{created['id']}/cancel", headers=as_customer).status_code == 409
    )
    status(client, as_staff, created["id"], "processing")
    assert client.post(f"{API}/orders/{created['id']}/cancel", headers=as_staff).status_code == 200
    assert stock_of(app, product.id) == ledger_sum(app, product.id) == 5


def test_someone_elses_order_cannot_be_cancelled(client, app, placed):
    _, created = placed
    intruder = headers_for(app, make_user(app))
    assert client.post(f"{API}/orders/{created['id']}/cancel", headers=intruder).status_code == 404


# --- payments -------------------------------------------------------------------------------


def test_partial_payments_add_up_to_paid(client, app, placed, as_staff, as_customer):
    _, created = placed  # total 120.00 (free shipping)
    url = f"{API}/orders/{created['id']}/payments"
    first = client.post(url, headers=as_staff, json={"amount": "100.00", "method": "card"})
    assert first.status_code == 201
    after_first = client.get(f"{API}/orders/{created['id']}", headers=as_staff).json
    assert after_first["status"] == "pending"
    assert after_first["payment_status"] == "partially_paid"
    assert (
        client.post(url, headers=as_staff, json={"amount": "20.01", "method": "cash"}).status_code
        == 409
    )
    client.post(url, headers=as_staff, json={"amount": "20.00", "method": "cash"})
    paid = client.get(f"{API}/orders/{created['id']}", headers=as_staff).json
    assert (paid["status"], paid["payment_status"], paid["amount_paid"]) == (
        "paid",
        "paid",
        "120.00",
    )
    assert (
        client.post(url, headers=as_customer, json={"amount": "1.00", "method": "cash"}).status_code
        == 403
    )
    with app.app_context():
        assert (
            len(
                db.session.scalars(
                    select(AuditLog).where(AuditLog.action == "payment.recorded")
                ).all()
            )
            == 2
        )


def test_a_payment_with_an_idempotency_key_is_recorded_once(client, app, placed, as_staff):
    _, created = placed
    url = f"{API}/orders/{created['id']}/payments"
    headers = {**as_staff, "Idempotency-Key": "till-receipt-1"}
    first = client.post(url, headers=headers, json={"amount": "50.00", "method": "cash"})
    again = client.post(url, headers=headers, json={"amount": "50.00", "method": "cash"})
    assert first.status_code == again.status_code == 201
    assert first.get_data() == again.get_data()
    other = client.post(url, headers=headers, json={"amount": "60.00", "method": "cash"})
    assert other.status_code == 409
    order = client.get(f"{API}/orders/{created['id']}", headers=as_staff).json
    assert order["amount_paid"] == "50.00"
    with app.app_context():
        assert len(db.session.scalars(select(Payment)).all()) == 1


def test_a_key_belongs_to_one_request_not_to_every_endpoint(client, app, placed, as_staff):
    product, created = placed
    headers = {**as_staff, "Idempotency-Key": "reused-elsewhere"}
    ordered = client.post(
        f"{API}/orders",
        headers=headers,
        json={"items": [{"product_id": product.id, "quantity": 1}], "shipping_address": SHIP_TO},
    )
    assert ordered.status_code == 201
    payment = client.post(
        f"{API}/orders/{created['id']}/payments",
        headers=headers,
        json={"amount": "5.00", "method": "cash"},
    )
    assert payment.status_code == 409
    with app.app_context():
        assert db.session.scalars(select(Payment)).all() == []


@pytest.mark.parametrize(
    "body",
    [
        {"amount": "0", "method": "cash"},
        {"amount": "-5.00", "method": "cash"},
        {"amount": "5.001", "method": "cash"},
        {"amount": "5.00", "method": "bitcoin"},
        {"amount": "5.00", "method": "provider"},
    ],
)
def test_payment_validation(client, placed, as_staff, body):
    _, created = placed
    assert (
        client.post(
            f"{API}/orders/{created['id']}/payments", headers=as_staff, json=body
        ).status_code
        == 422
    )


def _signed(body):
    raw = json.dumps(body).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    return raw, signature


@pytest.fixture
def webhook_secret(app):
    app.config["PAYMENT_WEBHOOK_SECRET"] = SECRET
    yield
    app.config["PAYMENT_WEBHOOK_SECRET"] = ""


def post_event(client, body, signature=None):
    raw, good = _signed(body)
    return client.post(
        f"{API}/payments/webhook",
        data=raw,
        content_type="application/json",
        headers={"X-Signature": signature or good},
    )


def test_webhook_pays_the_order_once(client, app, placed, webhook_secret, as_staff):
    _, created = placed
    event = {
        "event_id": "evt_1",
        "order_number": created["number"],
        "amount": "120.00",
        "status": "succeeded",
        "reference": "ch_1",
    }
    first = post_event(client, event)
    assert first.status_code == 200 and first.json["result"] == "recorded"
    assert post_event(client, event).json == {"result": "duplicate", "payment_id": None}
    paid = client.get(f"{API}/orders/{created['id']}", headers=as_staff).json
    assert paid["status"] == "paid" and paid["amount_paid"] == "120.00"


def test_a_payment_for_a_cancelled_order_is_kept_for_a_refund_and_alerted(
    client, app, placed, webhook_secret, as_customer, as_staff, mailbox, run_jobs
):
    _, created = placed
    client.post(f"{API}/orders/{created['id']}/cancel", headers=as_customer)
    event = {
        "event_id": "evt_late",
        "order_number": created["number"],
        "amount": "120.00",
        "status": "succeeded",
        "reference": "ch_late",
    }
    assert post_event(client, event).json["result"] == "recorded"
    order = client.get(f"{API}/orders/{created['id']}", headers=as_staff).json
    assert order["status"] == "cancelled" and order["amount_paid"] == "120.00"
    assert order["refund_due"] == "120.00"
    due = client.get(f"{API}/orders?needs_refund=true", headers=as_staff).json["items"]
    assert [o["id"] for o in due] == [created["id"]]
    assert client.get(f"{API}/orders?needs_refund=false", headers=as_staff).json["total"] == 0
    run_jobs()
    [alert] = [m for m in mailbox.to("ops@example.com") if "Refund due" in m["Subject"]]
    assert created["number"] in alert["Subject"]


def test_webhook_signatures(client, placed, webhook_secret):
    _, created = placed
    event = {
        "event_id": "evt_2",
        "order_number": created["number"],
        "amount": "120.00",
        "status": "succeeded",
        "reference": "ch_2",
    }
    raw, good = _signed(event)
    url = f"{API}/payments/webhook"
    assert client.post(url, data=raw, content_type="application/json").status_code == 401
    assert post_event(client, event, signature="sha256=" + "0" * 64).status_code == 401
    tampered = raw.replace(b"120.00", b"1.00")
    assert (
        client.post(
            url, data=tampered, content_type="application/json", headers={"X-Signature": good}
        ).status_code
        == 401
    )
    assert post_event(client, event, signature=good.replace("sha256=", "md5=")).status_code == 401


def test_webhook_checks_amount_currency_and_order(client, placed, webhook_secret):
    _, created = placed
    base = {
        "event_id": "evt_3",
        "order_number": created["number"],
        "status": "succeeded",
        "reference": "r",
    }
    assert post_event(client, {**base, "amount": "1.00"}).status_code == 409
    assert post_event(client, {**base, "amount": "120.00", "currency": "EUR"}).status_code == 409
    assert (
        post_event(
            client, {**base, "amount": "120.00", "order_number": "ORD-20200101-999999"}
        ).status_code
        == 404
    )
    assert post_event(client, {**base, "amount": "120.00", "status": "maybe"}).status_code == 422
    failed = post_event(
        client, {**base, "event_id": "evt_4", "amount": "120.00", "status": "failed"}
    )
    assert failed.status_code == 200 and failed.json["result"] == "recorded"


def test_concurrent_deliveries_of_one_event_count_once(app, placed, webhook_secret):
    _, created = placed
    event = {
        "event_id": "evt_race",
        "order_number": created["number"],
        "amount": "120.00",
        "status": "succeeded",
        "reference": "r",
    }
    barrier = threading.Barrier(5)

    def deliver(_):
        barrier.wait()
        return post_event(app.test_client(), event).json["result"]

    with ThreadPoolExecutor(max_workers=5) as pool:
        results = sorted(pool.map(deliver, range(5)))
    assert results == ["duplicate"] * 4 + ["recorded"]
    with app.app_context():
        payments = db.session.scalars(select(Payment)).all()
        order = db.session.get(Order, created["id"])
    assert len(payments) == 1 and order.amount_paid == Decimal("120.00")


# --- the pending-orders job ------------------------------------------------------------------


def _age(app, order_id, hours):
    with app.app_context():
        db.session.execute(
            update(Order)
            .where(Order.id == order_id)
            .values(created_at=utcnow() - timedelta(hours=hours))
        )
        db.session.commit()


def test_pending_orders_are_reminded_once_then_expired(
    client, app, customer, as_customer, mailbox, run_jobs
):
    product = make_product(app, stock=10)
    ids = [
        client.post(
            f"{API}/orders",
            headers=as_customer,
            json={
                "items": [{"product_id": product.id, "quantity": 2}],
                "shipping_address": SHIP_TO,
            },
        ).json["id"]
        for _ in range(3)
    ]
    fresh, old, ancient = ids
    _age(app, old, 30)
    _age(app, ancient, 80)
    run_jobs()
    mailbox.messages.clear()
    with app.app_context():
        assert process_pending_orders() == {"reminded": 1, "expired": 1}
        assert process_pending_orders() == {"reminded": 0, "expired": 0}
    statuses = {i: client.get(f"{API}/orders/{i}", headers=as_customer).json["status"] for i in ids}
    assert statuses == {fresh: "pending", old: "pending", ancient: "cancelled"}
    assert stock_of(app, product.id) == ledger_sum(app, product.id) == 6
    run_jobs()
    subjects = sorted(m["Subject"] for m in mailbox.to(customer.email))
    assert any("waiting for payment" in s for s in subjects)
    assert any("cancelled" in s for s in subjects)


def test_pending_orders_job_is_registered(app):
    result = app.test_cli_runner().invoke(args=["jobs", "run", "pending-orders"])
    assert result.exit_code == 0 and '"expired": 0' in result.output
