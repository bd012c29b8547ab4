"""Products: reads for everyone, writes for admins, validation, filters, sorting, ledger."""

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from shop.audit.models import AuditLog
from shop.db import db, utcnow
from shop.products import catalog
from shop.products.models import Product, StockMovement
from tests.factories import headers_for, ledger_sum, make_category, make_product, stock_of

API = "/api/v1"
NEW = {"sku": "TEE-001", "name": "Blue Tee", "price": "19.99", "stock": 7}


def test_admin_creates_product_with_initial_ledger_entry(client, app, admin, as_admin):
    category = make_category(app, "Shirts")
    response = client.post(
        f"{API}/products",
        headers=as_admin,
        json={**NEW, "category_id": category.id, "image_url": "https://cdn.example/tee.png"},
    )
    assert response.status_code == 201
    body = response.json
    assert response.headers["Location"].endswith(f"/products/{body['id']}")
    assert body["price"] == "19.99" and body["stock"] == 7 and body["slug"] == "blue-tee"
    assert body["category"] == {"id": category.id, "name": "Shirts", "slug": "shirts"}
    assert body["low_stock_threshold"] == 5 and body["rating_avg"] == 0
    assert body["variants"] == [] and body["is_active"] is True
    with app.app_context():
        [entry] = db.session.scalars(select(StockMovement)).all()
        audit = db.session.scalar(select(AuditLog).where(AuditLog.action == "product.created"))
    assert (entry.type, entry.quantity, entry.stock_after, entry.created_by) == (
        "INITIAL",
        7,
        7,
        admin.id,
    )
    assert audit.changes["sku"] == "TEE-001" and audit.changes["price"] == "19.99"


def test_product_writes_need_admin(client, app, as_customer, as_staff):
    product = make_product(app)
    for headers, status in ((None, 401), (as_customer, 403), (as_staff, 403)):
        kwargs = {"headers": headers} if headers else {}
        assert client.post(f"{API}/products", json=NEW, **kwargs).status_code == status
        assert (
            client.patch(f"{API}/products/{product.id}", json={"name": "x"}, **kwargs).status_code
            == status
        )
        assert client.delete(f"{API}/products/{product.id}", **kwargs).status_code == status


@pytest.mark.parametrize(
    "change",
    [
        {"price": "-1.00"},
        {"price": "0"},
        {"price": "1.999"},
        {"price": "abc"},
        {"price": "99999999999.00"},
        {"stock": -1},
        {"stock": 1.5},
        {"sku": ""},
        {"sku": "has space"},
        {"sku": "x" * 65},
        {"name": ""},
        {"image_url": "ftp://x.example/a"},
        {"image_url": "javascript:alert(1)"},
        {"image_url": "not a url"},
        {"id": 5},
        {"rating_avg": 5},
        {"rating_count": 3},
        {"variants": []},
        {"category_id": 999999},
        {"low_stock_threshold": -2},
        {"slug": "Bad Slug"},
        {"unknown": 1},
    ],
)
def test_create_product_validation(client, as_admin, change):
    response = client.post(f"{API}/products", headers=as_admin, json={**NEW, **change})
    assert response.status_code == 422, response.json
    assert response.json["errors"]


def test_duplicate_sku_is_409_across_products_and_variants(client, app, as_admin):
    product = make_product(app, sku="DUP-1", stock=0)
    assert (
        client.post(f"{API}/products", headers=as_admin, json={**NEW, "sku": "DUP-1"}).status_code
        == 409
    )
    client.post(
        f"{API}/products/{product.id}/variants",
        headers=as_admin,
        json={"sku": "DUP-V", "name": "M", "price": "1.00"},
    )
    assert (
        client.post(f"{API}/products", headers=as_admin, json={**NEW, "sku": "DUP-V"}).status_code
        == 409
    )


def test_concurrent_creates_of_one_sku_make_one_product(app, admin):
    headers = headers_for(app, admin)

    def create(i):
        return (
            app.test_client()
            .post(f"{API}/products", headers=headers, json={**NEW, "name": f"Racer {i}"})
            .status_code
        )

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = sorted(pool.map(create, range(6)))
    assert statuses == [201, 409, 409, 409, 409, 409]


def test_get_product_visibility(client, app, as_customer, as_admin):
    product = make_product(app, is_active=False)
    assert client.get(f"{API}/products/{product.id}").status_code == 404
    assert client.get(f"{API}/products/{product.id}", headers=as_customer).status_code == 404
    assert client.get(f"{API}/products/{product.id}", headers=as_admin).status_code == 200
    assert client.get(f"{API}/products/987654").status_code == 404
    assert (
        client.get(
            f"{API}/products/{product.id}", headers={"Authorization": "Bearer nonsense"}
        ).status_code
        == 401
    )


def test_patch_product_stock_is_an_adjustment(client, app, as_admin):
    product = make_product(app, stock=10)
    response = client.patch(
        f"{API}/products/{product.id}",
        headers=as_admin,
        json={"stock": 4, "price": "12.50", "is_featured": True},
    )
    assert response.status_code == 200
    assert response.json["stock"] == 4 and response.json["price"] == "12.50"
    with app.app_context():
        entries = db.session.scalars(select(StockMovement).order_by(StockMovement.id)).all()
        audit = db.session.scalar(select(AuditLog).where(AuditLog.action == "product.updated"))
    assert [(e.type, e.quantity, e.stock_after) for e in entries] == [
        ("INITIAL", 10, 10),
        ("ADJUSTMENT", -6, 4),
    ]
    assert audit.changes["stock"] == {"before": 10, "after": 4}
    assert audit.changes["price"] == {"before": "10.00", "after": "12.50"}
    assert stock_of(app, product.id) == ledger_sum(app, product.id) == 4


@pytest.mark.parametrize(
    "change", [{"stock": -3}, {"price": "0.00"}, {"id": 9}, {"rating_avg": 1}, {"sku": "bad sku"}]
)
def test_patch_product_validation(client, app, as_admin, change):
    product = make_product(app)
    response = client.patch(f"{API}/products/{product.id}", headers=as_admin, json=change)
    assert response.status_code == 422


def test_patch_unknown_product_is_404(client, as_admin):
    assert (
        client.patch(f"{API}/products/55555", headers=as_admin, json={"name": "x"}).status_code
        == 404
    )


def test_delete_product(client, app, as_admin):
    product = make_product(app)
    assert client.delete(f"{API}/products/{product.id}", headers=as_admin).status_code == 204
    assert client.get(f"{API}/products/{product.id}", headers=as_admin).status_code == 404
    assert client.delete(f"{API}/products/{product.id}", headers=as_admin).status_code == 404
    with app.app_context():
        assert db.session.scalar(select(AuditLog).where(AuditLog.action == "product.deleted"))


# --- listing --------------------------------------------------------------------------------


def test_list_shows_active_products_only(client, app, as_customer, as_admin):
    make_product(app, name="Visible")
    make_product(app, name="Retired", is_active=False)
    assert [p["name"] for p in client.get(f"{API}/products").json["items"]] == ["Visible"]
    assert client.get(f"{API}/products?include_inactive=true").status_code == 403
    assert (
        client.get(f"{API}/products?include_inactive=true", headers=as_customer).status_code == 403
    )
    everything = client.get(f"{API}/products?include_inactive=true", headers=as_admin).json
    assert {p["name"] for p in everything["items"]} == {"Visible", "Retired"}


def test_filters(client, app):
    books = make_category(app, "Books")
    cheap = make_product(app, name="Cheap", price=Decimal("5.00"), stock=0)
    mid = make_product(
        app, name="Mid", price=Decimal("50.00"), category_id=books.id, is_featured=True
    )
    dear = make_product(app, name="Dear", price=Decimal("500.00"))

    def ids(query):
        return {p["id"] for p in client.get(f"{API}/products?{query}").json["items"]}

    assert ids("min_price=10") == {mid.id, dear.id}
    assert ids("max_price=50.00") == {cheap.id, mid.id}
    assert ids("min_price=10&max_price=100") == {mid.id}
    assert ids("in_stock=true") == {mid.id, dear.id}
    assert ids("in_stock=false") == {cheap.id}
    assert ids("featured=true") == {mid.id}
    assert ids(f"category={books.id}") == {mid.id}


def test_featured_products_have_their_own_list(client, app, as_admin):
    plain = make_product(app, name="Plain", price=Decimal("5.00"))
    shown = [
        make_product(app, name=f"Shown {i}", price=Decimal(f"{i + 1}.00"), is_featured=True)
        for i in range(3)
    ]
    featured = client.get(f"{API}/products/featured?sort=-price&page_size=2").json
    assert [p["name"] for p in featured["items"]] == ["Shown 2", "Shown 1"]
    assert featured["total"] == 3 and featured["links"]["next"] is not None
    assert client.get(f"{API}/products/featured?max_price=1.00").json["total"] == 1
    # An edit takes a product out of the (cached) list at once.
    client.patch(f"{API}/products/{shown[0].id}", headers=as_admin, json={"is_featured": False})
    client.patch(f"{API}/products/{plain.id}", headers=as_admin, json={"is_featured": True})
    names = {p["name"] for p in client.get(f"{API}/products/featured").json["items"]}
    assert names == {"Plain", "Shown 1", "Shown 2"}
    assert client.get(f"{API}/products/featured?include_inactive=true").status_code == 403
    assert client.get(f"{API}/products/featured?colour=red").status_code == 422


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("price", ["B", "C", "A"]),
        ("-price", ["A", "C", "B"]),
        ("name", ["A", "B", "C"]),
        ("-name", ["C", "B", "A"]),
        ("created_at", ["A", "B", "C"]),
        ("-created_at", ["C", "B", "A"]),
        ("rating", ["C", "A", "B"]),
        ("-rating", ["B", "A", "C"]),
        ("popularity", ["C", "B", "A"]),
    ],
)
def test_sorts(client, app, sort, expected):
    specs = [("A", "30.00", "3.00", 1), ("B", "10.00", "4.50", 5), ("C", "20.00", "1.00", 9)]
    for age, (name, price, rating, sold) in enumerate(specs):
        product = make_product(app, name=name, price=Decimal(price))
        with app.app_context():
            db.session.execute(
                update(Product)
                .where(Product.id == product.id)
                .values(
                    rating_avg=Decimal(rating),
                    sales_count=sold,
                    created_at=utcnow() - timedelta(days=10 - age),
                )
            )
            db.session.commit()
    names = [p["name"] for p in client.get(f"{API}/products?sort={sort}").json["items"]]
    assert names == expected


@pytest.mark.parametrize(
    "query",
    [
        "page_size=101",
        "page=0",
        "sort=cheapest",
        "sort=relevance",
        "min_price=abc",
        "min_price=10&max_price=5",
        "in_stock=perhaps",
        "category=zero",
        "q=" + "x" * 201,
    ],
)
def test_list_rejects_bad_query(client, query):
    response = client.get(f"{API}/products?{query}")
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"


def test_pagination_envelope(client, app):
    for i in range(5):
        make_product(app, name=f"P{i}")
    page = client.get(f"{API}/products?page=2&page_size=2&sort=name").json
    assert [p["name"] for p in page["items"]] == ["P2", "P3"]
    assert (page["page"], page["page_size"], page["total"], page["pages"]) == (2, 2, 5, 3)
    assert client.get(f"{API}/products?page=9&page_size=2").json["items"] == []


def test_list_query_count_does_not_grow_with_page_size(client, app, count_queries):
    category = make_category(app, "All")
    for i in range(30):
        product = make_product(
            app, name=f"P{i}", category_id=category.id, stock=0 if i % 3 == 0 else 5
        )
        if i % 3 == 0:
            with app.app_context():
                catalog.create_variant(
                    None, product.id, {"sku": f"V-{i}", "name": "M", "price": Decimal("1.00")}
                )
    with count_queries() as first:
        assert client.get(f"{API}/products?page_size=1").json["total"] == 30
    with count_queries() as small:
        assert len(client.get(f"{API}/products?page_size=2").json["items"]) == 2
    with count_queries() as large:
        assert len(client.get(f"{API}/products?page_size=100").json["items"]) == 30
    # count, page (with categories), variants, images; the flash sales running and when the
    # next one starts or ends (cached apart: a flash-sale write or that moment reads them again)
    assert first.count == 6
    assert small.count == large.count == 3  # the total is cached apart from the page


def test_product_body_has_every_contract_field(client, app):
    product = make_product(app)
    body = client.get(f"{API}/products/{product.id}").json
    assert set(body) >= {
        "id",
        "sku",
        "name",
        "slug",
        "description",
        "price",
        "stock",
        "low_stock_threshold",
        "category_id",
        "category",
        "is_active",
        "is_featured",
        "image_url",
        "rating_avg",
        "rating_count",
        "variants",
        "created_at",
        "updated_at",
    }
    assert "search_vector" not in body and "sales_count" not in body


def test_a_taken_slug_is_a_409_naming_the_field(client, app, as_admin):
    make_product(app, name="Enamel Mug", slug="enamel-mug")
    other = make_product(app, name="Enamel Mug")
    patched = client.patch(
        f"{API}/products/{other.id}", headers=as_admin, json={"slug": "enamel-mug"}
    )
    assert patched.status_code == 409 and set(patched.json["errors"]) == {"slug"}
    body = {"sku": "NEW-1", "name": "Mug", "price": "5.00", "slug": "enamel-mug"}
    created = client.post(f"{API}/products", headers=as_admin, json=body)
    assert created.status_code == 409 and set(created.json["errors"]) == {"slug"}
    same = client.patch(f"{API}/products/{other.id}", headers=as_admin, json={"slug": other.slug})
    assert same.status_code == 200
