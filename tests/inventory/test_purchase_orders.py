"""Purchase orders: received at once or later, cancellation, reversal by deletion."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from shop.audit.models import AuditLog
from shop.db import db
from shop.products.models import StockMovement
from tests.factories import headers_for, ledger_sum, make_product, make_variant, stock_of

API = "/api/v1/inventory/purchase-orders"


def po(*lines, **extra):
    return {
        "supplier": "Acme Supply",
        "reference": "INV-77",
        "items": [dict(line) for line in lines],
        **extra,
    }


def test_a_purchase_order_with_an_idempotency_key_is_received_once(client, app, as_staff):
    product = make_product(app, stock=2)
    headers = {**as_staff, "Idempotency-Key": "delivery-note-9"}
    line = {"product_id": product.id, "quantity": 10, "unit_cost": "4.50"}
    first = client.post(API, headers=headers, json=po(line))
    again = client.post(API, headers=headers, json=po(line))
    assert first.status_code == again.status_code == 201
    assert first.get_data() == again.get_data()
    assert first.headers["Location"] == again.headers["Location"]
    assert client.post(API, headers=headers, json=po({**line, "quantity": 11})).status_code == 409
    assert stock_of(app, product.id) == ledger_sum(app, product.id) == 12


def test_created_received_by_default_with_purchase_entries(client, app, staff, as_staff):
    product = make_product(app, stock=2)
    other = make_product(app, stock=0)
    variant = make_variant(app, other, stock=1)
    response = client.post(
        API,
        headers=as_staff,
        json=po(
            {"product_id": product.id, "quantity": 10, "unit_cost": "4.50"},
            {"product_id": other.id, "variant_id": variant.id, "quantity": 3, "unit_cost": "2.00"},
        ),
    )
    assert response.status_code == 201
    body = response.json
    assert body["status"] == "received" and body["received_at"]
    assert body["total_cost"] == "51.00"
    assert [i["line_cost"] for i in body["items"]] == ["45.00", "6.00"]
    assert response.headers["Location"].endswith(f"/purchase-orders/{body['id']}")
    assert stock_of(app, product.id) == ledger_sum(app, product.id) == 12
    assert stock_of(app, other.id) == ledger_sum(app, other.id) == 4
    with app.app_context():
        purchases = db.session.scalars(
            select(StockMovement).where(StockMovement.type == "PURCHASE")
        ).all()
        audit = db.session.scalar(
            select(AuditLog).where(AuditLog.action == "purchase_order.created")
        )
    assert {p.reference for p in purchases} == {f"PO-{body['id']}"}
    assert all(p.created_by == staff.id for p in purchases)
    assert audit.changes["total_cost"] == "51.00"


def test_ordered_then_received_once(client, app, as_staff):
    product = make_product(app, stock=0)
    created = client.post(
        API,
        headers=as_staff,
        json=po({"product_id": product.id, "quantity": 5, "unit_cost": "1.00"}, status="ordered"),
    ).json
    assert created["status"] == "ordered" and created["received_at"] is None
    assert stock_of(app, product.id) == 0
    url = f"{API}/{created['id']}/receive"
    received = client.post(url, headers=as_staff)
    assert received.status_code == 200 and received.json["status"] == "received"
    assert client.post(url, headers=as_staff).status_code == 409
    assert stock_of(app, product.id) == ledger_sum(app, product.id) == 5


def test_concurrent_receives_add_stock_once(app, staff):
    product = make_product(app, stock=0)
    headers = headers_for(app, staff)
    created = (
        app.test_client()
        .post(
            API,
            headers=headers,
            json=po(
                {"product_id": product.id, "quantity": 7, "unit_cost": "1.00"}, status="ordered"
            ),
        )
        .json
    )

    def receive(_):
        return app.test_client().post(f"{API}/{created['id']}/receive", headers=headers).status_code

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert sorted(pool.map(receive, range(4))) == [200, 409, 409, 409]
    assert stock_of(app, product.id) == ledger_sum(app, product.id) == 7


def test_cancel_only_ordered(client, app, as_staff):
    product = make_product(app, stock=0)
    ordered = client.post(
        API,
        headers=as_staff,
        json=po({"product_id": product.id, "quantity": 5, "unit_cost": "1.00"}, status="ordered"),
    ).json
    cancelled = client.post(f"{API}/{ordered['id']}/cancel", headers=as_staff)
    assert cancelled.status_code == 200 and cancelled.json["status"] == "cancelled"
    assert client.post(f"{API}/{ordered['id']}/receive", headers=as_staff).status_code == 409
    assert client.post(f"{API}/{ordered['id']}/cancel", headers=as_staff).status_code == 409
    assert stock_of(app, product.id) == 0


def test_delete_received_takes_the_stock_back(client, app, as_admin):
    product = make_product(app, stock=1)
    created = client.post(
        API,
        headers=as_admin,
        json=po({"product_id": product.id, "quantity": 6, "unit_cost": "1.00"}),
    ).json
    assert client.delete(f"{API}/{created['id']}", headers=as_admin).status_code == 204
    assert stock_of(app, product.id) == ledger_sum(app, product.id) == 1
    assert client.get(f"{API}/{created['id']}", headers=as_admin).status_code == 404
    with app.app_context():
        assert db.session.scalar(
            select(AuditLog).where(AuditLog.action == "purchase_order.deleted")
        )


def test_delete_is_409_and_changes_nothing_when_the_stock_was_sold(client, app, as_admin):
    product = make_product(app, stock=0)
    other = make_product(app, stock=0)
    created = client.post(
        API,
        headers=as_admin,
        json=po(
            {"product_id": other.id, "quantity": 2, "unit_cost": "1.00"},
            {"product_id": product.id, "quantity": 6, "unit_cost": "1.00"},
        ),
    ).json
    client.post(
        "/api/v1/inventory/transactions",
        headers=as_admin,
        json={"product_id": product.id, "type": "OUT", "quantity": 5},
    )
    response = client.delete(f"{API}/{created['id']}", headers=as_admin)
    assert response.status_code == 409
    assert stock_of(app, product.id) == ledger_sum(app, product.id) == 1
    assert stock_of(app, other.id) == ledger_sum(app, other.id) == 2
    assert client.get(f"{API}/{created['id']}", headers=as_admin).status_code == 200


def test_delete_ordered_changes_no_stock(client, app, as_admin):
    product = make_product(app, stock=3)
    created = client.post(
        API,
        headers=as_admin,
        json=po({"product_id": product.id, "quantity": 6, "unit_cost": "1.00"}, status="ordered"),
    ).json
    assert client.delete(f"{API}/{created['id']}", headers=as_admin).status_code == 204
    assert stock_of(app, product.id) == 3


LINE = {"quantity": 1, "unit_cost": "1.00"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"supplier": "A", "items": []}, "items"),
        ({"items": [LINE]}, "supplier"),
        ({"supplier": "A", "items": [{**LINE, "quantity": 0}]}, "items"),
        ({"supplier": "A", "items": [{**LINE, "unit_cost": "-1.00"}]}, "items"),
        ({"supplier": "A", "items": [{**LINE, "unit_cost": "1.001"}]}, "items"),
        ({"supplier": "A", "items": [{"quantity": 1}]}, "items"),
        ({"supplier": "A", "status": "cancelled", "items": [LINE]}, "status"),
        ({"supplier": "A", "items": [{**LINE, "product_id": 2**31 - 1}]}, "items"),
        ({"supplier": "", "items": [LINE]}, "supplier"),
        ({"supplier": "A", "id": 4, "items": [LINE]}, "id"),
    ],
)
def test_validation(client, app, as_staff, body, field):
    # Lines name a real product unless the case names another, so each 422 is for its reason.
    product = make_product(app)
    lines = [{"product_id": product.id, **line} for line in body["items"]]
    response = client.post(API, headers=as_staff, json={**body, "items": lines})
    assert response.status_code == 422
    assert set(response.json["errors"]) == {field}
    assert stock_of(app, product.id) == 10


def test_variant_must_belong_to_the_product(client, app, as_staff):
    product = make_product(app, stock=0)
    stranger = make_variant(app, make_product(app, stock=0))
    response = client.post(
        API,
        headers=as_staff,
        json=po(
            {
                "product_id": product.id,
                "variant_id": stranger.id,
                "quantity": 1,
                "unit_cost": "1.00",
            }
        ),
    )
    assert response.status_code == 422


def test_roles_and_list(client, app, as_customer, as_staff, as_admin):
    product = make_product(app, stock=0)
    created = client.post(
        API,
        headers=as_staff,
        json=po({"product_id": product.id, "quantity": 1, "unit_cost": "1.00"}, status="ordered"),
    ).json
    url = f"{API}/{created['id']}"
    assert client.get(API).status_code == 401
    assert client.get(API, headers=as_customer).status_code == 403
    assert client.get(url, headers=as_customer).status_code == 403
    assert client.post(f"{url}/receive", headers=as_customer).status_code == 403
    assert client.delete(url, headers=as_staff).status_code == 403  # delete is admin only
    assert client.get(f"{API}/424242", headers=as_staff).status_code == 404
    listed = client.get(f"{API}?status=ordered", headers=as_staff).json
    assert [o["id"] for o in listed["items"]] == [created["id"]]
    assert client.get(f"{API}?status=received", headers=as_admin).json["total"] == 0
    assert client.get(f"{API}?status=lost", headers=as_admin).status_code == 422
