"""Variants: a product with variants sells by variant and its stock is their sum."""

from decimal import Decimal

import pytest
from sqlalchemy import select

from shop.audit.models import AuditLog
from shop.db import db
from shop.products.models import StockMovement
from tests.factories import ledger_sum, make_product, make_variant, stock_of

API = "/api/v1"
VARIANT = {
    "sku": "TEE-M",
    "name": "Medium",
    "attributes": {"size": "M", "colour": "blue"},
    "price": "21.00",
    "stock": 4,
}


def test_admin_adds_variants_and_product_stock_is_their_sum(client, app, as_admin):
    product = make_product(app, stock=0)
    url = f"{API}/products/{product.id}/variants"
    first = client.post(url, headers=as_admin, json=VARIANT)
    assert first.status_code == 201
    assert first.json["attributes"] == {"size": "M", "colour": "blue"}
    assert first.headers["Location"].endswith(f"/variants/{first.json['id']}")
    second = client.post(
        url, headers=as_admin, json={**VARIANT, "sku": "TEE-L", "name": "Large", "stock": 6}
    )
    assert second.status_code == 201
    detail = client.get(f"{API}/products/{product.id}").json
    assert detail["stock"] == 10
    assert [v["sku"] for v in detail["variants"]] == ["TEE-M", "TEE-L"]
    assert stock_of(app, product.id) == ledger_sum(app, product.id) == 10
    assert ledger_sum(app, product.id, second.json["id"]) == 6
    with app.app_context():
        assert db.session.scalar(select(AuditLog).where(AuditLog.action == "variant.created"))


def test_variants_need_the_product_stock_moved_first(client, app, as_admin):
    product = make_product(app, stock=3)
    response = client.post(f"{API}/products/{product.id}/variants", headers=as_admin, json=VARIANT)
    assert response.status_code == 409


def test_product_stock_of_a_variant_product_cannot_be_patched(client, app, as_admin):
    product = make_product(app, stock=0)
    make_variant(app, product, stock=2)
    response = client.patch(f"{API}/products/{product.id}", headers=as_admin, json={"stock": 9})
    assert response.status_code == 422 and "stock" in response.json["errors"]


def test_patch_variant_stock_is_an_adjustment(client, app, as_admin):
    product = make_product(app, stock=0)
    variant = make_variant(app, product, stock=5)
    response = client.patch(
        f"{API}/products/{product.id}/variants/{variant.id}",
        headers=as_admin,
        json={"stock": 1, "price": "15.00"},
    )
    assert response.status_code == 200
    assert response.json["stock"] == 1 and response.json["price"] == "15.00"
    assert stock_of(app, product.id) == ledger_sum(app, product.id) == 1
    with app.app_context():
        last = db.session.scalar(select(StockMovement).order_by(StockMovement.id.desc()).limit(1))
    assert (last.type, last.quantity, last.stock_after, last.variant_id) == (
        "ADJUSTMENT",
        -4,
        1,
        variant.id,
    )


def test_delete_variant_takes_its_stock_out_through_the_ledger(client, app, as_admin):
    product = make_product(app, stock=0)
    keep = make_variant(app, product, stock=3)
    gone = make_variant(app, product, stock=4)
    url = f"{API}/products/{product.id}/variants/{gone.id}"
    assert client.delete(url, headers=as_admin).status_code == 204
    assert client.delete(url, headers=as_admin).status_code == 404
    assert stock_of(app, product.id) == ledger_sum(app, product.id) == 3
    assert [v["id"] for v in client.get(f"{API}/products/{product.id}/variants").json["items"]] == [
        keep.id
    ]


def test_inactive_variants_are_hidden_from_the_public(client, app, as_admin):
    product = make_product(app, stock=0)
    make_variant(app, product, name="On sale")
    make_variant(app, product, name="Retired", is_active=False)
    public = client.get(f"{API}/products/{product.id}/variants").json["items"]
    assert [v["name"] for v in public] == ["On sale"]
    detail = client.get(f"{API}/products/{product.id}").json
    assert [v["name"] for v in detail["variants"]] == ["On sale"]
    admin_view = client.get(f"{API}/products/{product.id}/variants", headers=as_admin)
    admin_view = admin_view.json["items"]
    assert {v["name"] for v in admin_view} == {"On sale", "Retired"}


def test_variant_roles_and_404s(client, app, as_customer, as_staff, as_admin):
    product = make_product(app, stock=0)
    variant = make_variant(app, product)
    other = make_product(app, stock=0)
    url = f"{API}/products/{product.id}/variants"
    for headers, status in ((None, 401), (as_customer, 403), (as_staff, 403)):
        kwargs = {"headers": headers} if headers else {}
        assert client.post(url, json=VARIANT, **kwargs).status_code == status
        assert (
            client.patch(f"{url}/{variant.id}", json={"name": "x"}, **kwargs).status_code == status
        )
        assert client.delete(f"{url}/{variant.id}", **kwargs).status_code == status
    # A variant is only reachable through its own product.
    assert (
        client.patch(
            f"{API}/products/{other.id}/variants/{variant.id}", headers=as_admin, json={"name": "x"}
        ).status_code
        == 404
    )
    assert client.get(f"{API}/products/424242/variants").status_code == 404
    assert (
        client.post(f"{API}/products/424242/variants", headers=as_admin, json=VARIANT).status_code
        == 404
    )


@pytest.mark.parametrize(
    "change",
    [
        {"price": "0"},
        {"price": "1.001"},
        {"stock": -1},
        {"sku": ""},
        {"attributes": "big"},
        {"attributes": {"size": 5}},
        {"attributes": {f"k{i}": "v" for i in range(21)}},
        {"product_id": 3},
        {"id": 1},
    ],
)
def test_variant_validation(client, app, as_admin, change):
    product = make_product(app, stock=0)
    response = client.post(
        f"{API}/products/{product.id}/variants", headers=as_admin, json={**VARIANT, **change}
    )
    assert response.status_code == 422


def test_variant_sku_is_unique_against_products(client, app, as_admin):
    taken = make_product(app, sku="TAKEN-1")
    product = make_product(app, stock=0)
    response = client.post(
        f"{API}/products/{product.id}/variants",
        headers=as_admin,
        json={**VARIANT, "sku": taken.sku},
    )
    assert response.status_code == 409
    assert Decimal(client.get(f"{API}/products/{taken.id}").json["price"]) == Decimal("10.00")
