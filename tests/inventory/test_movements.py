"""Manual stock movements over HTTP: sign rules, 409s, filters, roles, the ledger invariant."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from shop.audit.models import AuditLog
from shop.db import db
from tests.factories import ledger_sum, make_product, make_variant, stock_of

API = "/api/v1/inventory/transactions"


def move(client, headers, product, type, quantity, **extra):
    return client.post(
        API,
        headers=headers,
        json={"product_id": product.id, "type": type, "quantity": quantity, **extra},
    )


@pytest.mark.parametrize(
    ("type", "quantity", "expected"),
    [
        ("IN", 5, 15),
        ("RETURN", 2, 12),
        ("OUT", 4, 6),
        ("DAMAGE", 1, 9),
        ("ADJUSTMENT", -3, 7),
        ("ADJUSTMENT", 8, 18),
    ],
)
def test_sign_rules(client, app, as_staff, type, quantity, expected):
    product = make_product(app, stock=10)
    response = move(client, as_staff, product, type, quantity, reference="R-1", note="count")
    assert response.status_code == 201
    body = response.json
    assert body["stock_after"] == expected and body["type"] == type
    assert body["quantity"] == expected - 10
    assert (body["reference"], body["note"]) == ("R-1", "count")
    assert stock_of(app, product.id) == ledger_sum(app, product.id) == expected


@pytest.mark.parametrize(
    ("type", "quantity"),
    [
        ("IN", 0),
        ("IN", -1),
        ("OUT", -5),
        ("DAMAGE", 0),
        ("ADJUSTMENT", 0),
        ("SALE", 1),
        ("INITIAL", 1),
        ("CANCEL", 1),
        ("PURCHASE", 1),
        ("THEFT", 1),
        ("IN", 1.5),
        ("IN", "2"),
    ],
)
def test_bad_movements_are_422(client, app, as_staff, type, quantity):
    product = make_product(app, stock=10)
    assert move(client, as_staff, product, type, quantity).status_code == 422
    assert stock_of(app, product.id) == 10


def test_below_zero_is_409_and_changes_nothing(client, app, as_staff):
    product = make_product(app, stock=3)
    response = move(client, as_staff, product, "OUT", 4)
    assert response.status_code == 409
    assert "3 available" in response.json["detail"]
    assert move(client, as_staff, product, "ADJUSTMENT", -4).status_code == 409
    assert stock_of(app, product.id) == ledger_sum(app, product.id) == 3


def test_variant_movements_and_404s(client, app, as_staff):
    product = make_product(app, stock=0)
    variant = make_variant(app, product, stock=2)
    assert move(client, as_staff, product, "IN", 3, variant_id=variant.id).status_code == 201
    assert move(client, as_staff, product, "IN", 3).status_code == 422  # needs variant_id
    other = make_product(app)
    assert move(client, as_staff, other, "IN", 1, variant_id=variant.id).status_code == 404
    assert (
        client.post(
            API, headers=as_staff, json={"product_id": 999999, "type": "IN", "quantity": 1}
        ).status_code
        == 404
    )
    assert stock_of(app, product.id) == ledger_sum(app, product.id) == 5


def test_movement_is_audited(client, app, staff, as_staff):
    product = make_product(app, stock=1)
    move(client, as_staff, product, "IN", 4)
    with app.app_context():
        entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "inventory.adjusted"))
    assert entry.actor_id == staff.id and entry.target_id == product.id
    assert entry.changes == {"type": "IN", "quantity": 4, "variant_id": None, "stock_after": 5}


def test_roles(client, app, as_customer, as_staff, as_admin):
    product = make_product(app)
    body = {"product_id": product.id, "type": "IN", "quantity": 1}
    assert client.get(API).status_code == 401
    assert client.post(API, json=body).status_code == 401
    assert client.get(API, headers=as_customer).status_code == 403
    assert client.post(API, headers=as_customer, json=body).status_code == 403
    for headers in (as_staff, as_admin):
        assert client.get(API, headers=headers).status_code == 200
        assert client.post(API, headers=headers, json=body).status_code == 201


def test_list_filters(client, app, as_staff):
    first = make_product(app, stock=5)
    second = make_product(app, stock=5)
    move(client, as_staff, first, "OUT", 1)
    move(client, as_staff, second, "DAMAGE", 2)

    def get(query):
        return client.get(f"{API}?{query}", headers=as_staff).json

    assert get("")["total"] == 4
    assert [e["type"] for e in get(f"product_id={first.id}")["items"]] == ["OUT", "INITIAL"]
    assert get("type=DAMAGE")["items"][0]["product_id"] == second.id
    soon = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    assert get("since=" + soon.replace("+00:00", "Z"))["total"] == 0
    assert get("until=" + soon.replace("+00:00", "Z"))["total"] == 4
    for bad in ("type=FOO", "since=never", "page_size=500", "product_id=x"):
        assert client.get(f"{API}?{bad}", headers=as_staff).status_code == 422


def test_list_query_count_does_not_grow_with_page_size(client, app, as_staff, count_queries):
    for _ in range(15):
        make_product(app, stock=3)
    with count_queries() as small:
        client.get(f"{API}?page_size=2", headers=as_staff)
    with count_queries() as large:
        client.get(f"{API}?page_size=100", headers=as_staff)
    assert small.count == large.count <= 3
