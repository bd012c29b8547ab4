"""Checkout: totals, snapshots, all-or-nothing stock, idempotency, concurrency."""

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from shop.audit.models import AuditLog
from shop.db import db
from shop.orders.models import Order
from shop.products.models import StockMovement
from tests.factories import (
    headers_for,
    ledger_sum,
    make_product,
    make_user,
    make_variant,
    stock_of,
)

API = "/api/v1"
SHIP_TO = {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}


def order(client, headers, *lines, **extra):
    items = [{"product_id": p.id, "quantity": q} for p, q in lines]
    return client.post(
        f"{API}/orders",
        headers=headers,
        json={"items": items, "shipping_address": SHIP_TO, **extra},
    )


def count_orders(app):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Order))


def test_order_totals_snapshot_ledger_audit_and_email(
    client, app, customer, as_customer, mailbox, run_jobs
):
    app.config["TAX_RATE"] = Decimal("0.0825")
    try:
        pen = make_product(app, name="Pen", price=Decimal("1.99"), stock=10)
        pad = make_product(app, name="Pad", price=Decimal("3.35"), stock=5)
        response = order(client, as_customer, (pen, 3), (pad, 2), notes="ring twice")
    finally:
        app.config["TAX_RATE"] = Decimal("0")
    assert response.status_code == 201
    body = response.json
    assert response.headers["Location"].endswith(f"/orders/{body['id']}")
    assert body["number"].startswith("ORD-") and body["number"].endswith(f"{body['id']:06d}")
    assert body["status"] == "pending" and body["payment_status"] == "unpaid"
    # 5.97 + 6.70 = 12.67; tax 8.25 % per line, half up: 0.4925 -> 0.49 and 0.55275 -> 0.55
    # (1.04, where the whole would round to 1.05: lines add up); shipping 5.00 under 50.
    assert (body["subtotal"], body["tax"], body["shipping_cost"], body["total"]) == (
        "12.67",
        "1.04",
        "5.00",
        "18.71",
    )
    assert [i["tax"] for i in body["items"]] == ["0.49", "0.55"]
    assert body["tax_lines"] == [{"name": "Tax", "rate": "0.0825", "amount": "1.04"}]
    assert body["currency"] == "USD" and body["notes"] == "ring twice"
    assert body["shipping_address"]["city"] == "Springfield"
    assert [
        (i["name"], i["unit_price"], i["quantity"], i["line_total"]) for i in body["items"]
    ] == [("Pen", "1.99", 3, "5.97"), ("Pad", "3.35", 2, "6.70")]
    assert body["status_history"][0]["to_status"] == "pending"
    assert stock_of(app, pen.id) == ledger_sum(app, pen.id) == 7
    assert stock_of(app, pad.id) == ledger_sum(app, pad.id) == 3
    with app.app_context():
        sales = db.session.scalars(select(StockMovement).where(StockMovement.type == "SALE")).all()
        audit = db.session.scalar(select(AuditLog).where(AuditLog.action == "order.created"))
    assert {s.reference for s in sales} == {body["number"]}
    assert audit.actor_id == customer.id
    run_jobs()
    [email] = mailbox.to(customer.email)
    assert body["number"] in email["Subject"]


def test_a_checkout_is_one_statement_per_table_and_two_per_line(
    client, app, as_customer, count_queries
):
    """The SQL of a checkout, which make bench's ceiling replays: the user, what is for sale
    (variants joined), one INSERT each for the order, its lines, its history, the audit entry,
    the email's outbox row and the order.created event, then per line the conditional UPDATE
    and its ledger row."""
    pen, pad = make_product(app, stock=100), make_product(app, stock=100)
    tee = make_product(app, stock=0)
    large = make_variant(app, tee, stock=40)  # all far above their low-stock thresholds
    body = {
        "items": [
            {"product_id": pen.id, "quantity": 1},
            {"product_id": pad.id, "quantity": 2},
            {"product_id": tee.id, "variant_id": large.id, "quantity": 1},
        ],
        "shipping_address": SHIP_TO,
    }
    # Reads the flash sales running and the tax rates: cached from here.
    assert client.post(f"{API}/checkout/preview", headers=as_customer, json=body).status_code == 200
    with count_queries() as counter:
        response = client.post(f"{API}/orders", headers=as_customer, json=body)
    assert response.status_code == 201
    shapes = [" ".join(s.split()[:3]) for s in counter.statements]
    assert shapes == [
        "SELECT users.id, users.email,",
        "SELECT products.id AS",
        "INSERT INTO orders",
        "INSERT INTO order_items",
        "INSERT INTO order_status_history",
        "INSERT INTO audit_logs",
        "INSERT INTO outbox_messages",
        "INSERT INTO events",
        *["UPDATE products SET", "INSERT INTO inventory_transactions"] * 2,
        "UPDATE products SET",
        "UPDATE product_variants SET",
        "INSERT INTO inventory_transactions",
    ]
    assert [i["sku"] for i in response.json["items"]] == [pen.sku, pad.sku, large.sku]
    # The answer is built from what was inserted: it is what a later read finds.
    again = client.get(f"{API}/orders/{response.json['id']}", headers=as_customer)
    assert again.json == response.json
    assert stock_of(app, tee.id) == ledger_sum(app, tee.id) == 39


def test_free_shipping_over_the_threshold(client, app, as_customer):
    product = make_product(app, price=Decimal("50.00"))
    body = order(client, as_customer, (product, 1)).json
    assert (body["shipping_cost"], body["total"]) == ("0.00", "50.00")


def test_prices_are_snapshotted(client, app, as_customer, as_admin):
    product = make_product(app, name="Lamp", price=Decimal("20.00"))
    created = order(client, as_customer, (product, 1)).json
    client.patch(
        f"{API}/products/{product.id}",
        headers=as_admin,
        json={"price": "99.00", "name": "Deluxe Lamp"},
    )
    again = client.get(f"{API}/orders/{created['id']}", headers=as_customer).json
    assert again["items"][0]["unit_price"] == "20.00" and again["items"][0]["name"] == "Lamp"


def test_client_prices_and_unknown_fields_are_rejected(client, app, as_customer):
    product = make_product(app)
    response = client.post(
        f"{API}/orders",
        headers=as_customer,
        json={
            "items": [{"product_id": product.id, "quantity": 1, "unit_price": "0.01"}],
            "shipping_address": SHIP_TO,
        },
    )
    assert response.status_code == 422
    assert (
        client.post(
            f"{API}/orders",
            headers=as_customer,
            json={
                "items": [{"product_id": product.id, "quantity": 1}],
                "shipping_address": SHIP_TO,
                "total": "1.00",
            },
        ).status_code
        == 422
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"items": [{"quantity": 1}]}, "shipping_address"),
        (
            {"items": [{"quantity": 1}], "shipping_address": SHIP_TO, "address_id": 1},
            "shipping_address",
        ),
        ({"items": [], "shipping_address": SHIP_TO}, "items"),
        ({"items": [{"quantity": 0}], "shipping_address": SHIP_TO}, "items"),
        ({"items": [{"quantity": 1}], "shipping_address": {"city": "X"}}, "shipping_address"),
        ({"items": [{"quantity": 1}] * 51, "shipping_address": SHIP_TO}, "items"),
    ],
)
def test_order_validation(client, app, as_customer, body, field):
    # Lines name a real product on sale, so the 422 can only come from what is under test.
    product = make_product(app, stock=100)
    lines = [{"product_id": product.id, **line} for line in body["items"]]
    response = client.post(f"{API}/orders", headers=as_customer, json={**body, "items": lines})
    assert response.status_code == 422
    assert set(response.json["errors"]) == {field}
    assert count_orders(app) == 0


def test_unknown_inactive_and_variant_lines_are_422(client, app, as_customer):
    retired = make_product(app, is_active=False)
    with_variants = make_product(app, stock=0)
    make_variant(app, with_variants)
    for lines in (
        [{"product_id": 999999, "quantity": 1}],
        [{"product_id": retired.id, "quantity": 1}],
        [{"product_id": with_variants.id, "quantity": 1}],
    ):
        response = client.post(
            f"{API}/orders", headers=as_customer, json={"items": lines, "shipping_address": SHIP_TO}
        )
        assert response.status_code == 422, lines
        assert "items" in response.json["errors"]


def test_all_or_nothing_with_409_naming_the_short_lines(client, app, as_customer):
    plenty = make_product(app, sku="PLENTY", stock=10)
    short = make_product(app, sku="SHORT", stock=1)
    also_short = make_product(app, sku="ALSO", stock=0)
    response = order(client, as_customer, (plenty, 2), (short, 2), (also_short, 1))
    assert response.status_code == 409
    errors = response.json["errors"]["items"]
    assert set(errors) == {"1", "2"}
    assert "SHORT" in errors["1"]["quantity"][0] and "ALSO" in errors["2"]["quantity"][0]
    for product, stock in ((plenty, 10), (short, 1), (also_short, 0)):
        assert stock_of(app, product.id) == ledger_sum(app, product.id) == stock
    assert count_orders(app) == 0


def test_errors_point_at_the_clients_own_lines_whatever_the_lock_order(client, app, as_customer):
    first = make_product(app, sku="FIRST", stock=0)  # locked first: the lower id
    second = make_product(app, stock=10)
    retired = make_product(app, is_active=False)
    short = order(client, as_customer, (second, 1), (first, 50), (second, 2))
    assert short.status_code == 409
    assert set(short.json["errors"]["items"]) == {"1"}
    unknown = order(client, as_customer, (second, 1), (retired, 1))
    assert unknown.status_code == 422
    assert set(unknown.json["errors"]["items"]) == {"1"}


def test_ordering_the_cart_empties_it(client, app, as_customer):
    product = make_product(app, stock=5)
    variant_product = make_product(app, stock=0)
    variant = make_variant(app, variant_product, stock=5, price=Decimal("4.00"))
    client.post(
        f"{API}/cart/items", headers=as_customer, json={"product_id": product.id, "quantity": 2}
    )
    client.post(
        f"{API}/cart/items",
        headers=as_customer,
        json={"product_id": variant_product.id, "variant_id": variant.id, "quantity": 1},
    )
    address = client.post(
        f"{API}/addresses", headers=as_customer, json={**SHIP_TO, "label": "Home"}
    ).json
    response = client.post(f"{API}/orders", headers=as_customer, json={"address_id": address["id"]})
    assert response.status_code == 201
    assert len(response.json["items"]) == 2
    assert response.json["shipping_address"]["line1"] == "1 Main St"
    assert client.get(f"{API}/cart", headers=as_customer).json["items"] == []
    assert stock_of(app, variant_product.id) == ledger_sum(app, variant_product.id) == 4
    empty = client.post(f"{API}/orders", headers=as_customer, json={"address_id": address["id"]})
    assert empty.status_code == 409
    assert empty.json["errors"] == {"items": ["Nothing to order."]}


def test_someone_elses_address_is_404(client, app, as_customer):
    product = make_product(app)
    other = headers_for(app, make_user(app))
    address = client.post(f"{API}/addresses", headers=other, json=SHIP_TO).json
    response = client.post(
        f"{API}/orders",
        headers=as_customer,
        json={"items": [{"product_id": product.id, "quantity": 1}], "address_id": address["id"]},
    )
    assert response.status_code == 404


# --- idempotency ----------------------------------------------------------------------------


def test_idempotent_repeat_replays_byte_for_byte(client, app, as_customer):
    product = make_product(app, stock=5)
    headers = {**as_customer, "Idempotency-Key": "checkout-1"}
    first = order(client, headers, (product, 1))
    second = order(client, headers, (product, 1))
    assert first.status_code == second.status_code == 201
    assert first.get_data() == second.get_data()
    assert first.headers["Location"] == second.headers["Location"]
    assert count_orders(app) == 1 and stock_of(app, product.id) == 4


def test_same_key_other_body_is_409(client, app, as_customer):
    product = make_product(app, stock=5)
    headers = {**as_customer, "Idempotency-Key": "checkout-2"}
    order(client, headers, (product, 1))
    assert order(client, headers, (product, 2)).status_code == 409
    assert count_orders(app) == 1


def test_a_body_is_validated_before_its_key_is_looked_at(client, app, as_customer):
    product = make_product(app, stock=5)
    headers = {**as_customer, "Idempotency-Key": "checkout-3"}
    assert order(client, headers, (product, 1)).status_code == 201
    invalid = order(client, headers, (product, 0))
    assert invalid.status_code == 422 and set(invalid.json["errors"]) == {"items"}
    assert order(client, headers, (product, 1)).status_code == 201
    assert count_orders(app) == 1


def test_keys_are_scoped_to_the_user(client, app, as_customer):
    product = make_product(app, stock=5)
    other = headers_for(app, make_user(app))
    order(client, {**as_customer, "Idempotency-Key": "shared"}, (product, 1))
    assert order(client, {**other, "Idempotency-Key": "shared"}, (product, 1)).status_code == 201
    assert count_orders(app) == 2


def test_key_too_long_is_422(client, app, as_customer):
    product = make_product(app)
    response = order(client, {**as_customer, "Idempotency-Key": "k" * 256}, (product, 1))
    assert response.status_code == 422


def test_a_failed_attempt_does_not_burn_the_key(client, app, as_customer, as_admin):
    product = make_product(app, stock=0)
    headers = {**as_customer, "Idempotency-Key": "retry-me"}
    assert order(client, headers, (product, 1)).status_code == 409
    client.patch(f"{API}/products/{product.id}", headers=as_admin, json={"stock": 1})
    assert order(client, headers, (product, 1)).status_code == 201


def test_simultaneous_identical_requests_make_one_order(app, customer):
    product = make_product(app, stock=50)
    headers = {**headers_for(app, customer), "Idempotency-Key": "double-click"}
    barrier = threading.Barrier(6)

    def submit(_):
        barrier.wait()
        response = order(app.test_client(), headers, (product, 1))
        return response.status_code, response.get_data()

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(submit, range(6)))
    created = [body for status, body in results if status == 201]
    assert {status for status, _ in results} <= {201, 409}
    assert len(set(created)) == 1  # every 201 is the same order, byte for byte
    assert count_orders(app) == 1
    assert stock_of(app, product.id) == ledger_sum(app, product.id) == 49


# --- concurrency ----------------------------------------------------------------------------


def test_fifty_buyers_ten_in_stock(app):
    product = make_product(app, stock=10, price=Decimal("5.00"))
    buyers = [headers_for(app, make_user(app)) for _ in range(50)]
    barrier = threading.Barrier(50)

    def buy(headers):
        barrier.wait()
        return order(app.test_client(), headers, (product, 1)).status_code

    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(buy, buyers))
    assert statuses.count(201) == 10 and statuses.count(409) == 40
    assert count_orders(app) == 10
    assert stock_of(app, product.id) == ledger_sum(app, product.id) == 0


def test_opposite_order_checkouts_do_not_deadlock(app):
    first = make_product(app, stock=1000)
    second = make_product(app, stock=1000)
    buyers = [headers_for(app, make_user(app)) for _ in range(20)]

    def buy(index):
        lines = [(first, 1), (second, 1)] if index % 2 else [(second, 1), (first, 1)]
        return order(app.test_client(), buyers[index], *lines).status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(buy, range(20)))
    assert statuses == [201] * 20
    assert stock_of(app, first.id) == ledger_sum(app, first.id) == 980
    assert stock_of(app, second.id) == ledger_sum(app, second.id) == 980


def test_an_ordered_product_is_deactivated_not_deleted(client, app, as_customer, as_admin):
    product = make_product(app, stock=5)
    order(client, as_customer, (product, 1))
    assert client.delete(f"{API}/products/{product.id}", headers=as_admin).status_code == 204
    detail = client.get(f"{API}/products/{product.id}", headers=as_admin)
    assert detail.status_code == 200 and detail.json["is_active"] is False
    assert client.get(f"{API}/products/{product.id}").status_code == 404
    with app.app_context():
        assert db.session.scalar(select(AuditLog).where(AuditLog.action == "product.deactivated"))


def test_an_unverified_email_may_not_check_out_unless_the_store_allows_it(client, app):
    product = make_product(app, stock=5)
    unverified = make_user(app, verified=False)
    headers = headers_for(app, unverified)
    assert client.get(f"{API}/auth/me", headers=headers).status_code == 200  # logged in
    refused = order(client, headers, (product, 1))
    assert refused.status_code == 403 and unverified.email in refused.json["detail"]
    assert count_orders(app) == 0 and stock_of(app, product.id) == 5
    app.config["REQUIRE_VERIFIED_EMAIL"] = False
    try:
        assert order(client, headers, (product, 1)).status_code == 201
    finally:
        app.config["REQUIRE_VERIFIED_EMAIL"] = True
