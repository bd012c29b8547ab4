"""Categories: public reads, admin writes, tree rules, audit."""

import pytest
from sqlalchemy import select

from shop.audit.models import AuditLog
from shop.db import db
from tests.factories import make_category, make_product

API = "/api/v1"


def test_anyone_lists_active_categories(client, app):
    make_category(app, "Books")
    make_category(app, "Hidden", is_active=False)
    body = client.get(f"{API}/categories").json
    assert [c["name"] for c in body["items"]] == ["Books"]
    assert body["total"] == 1
    assert set(body["items"][0]) >= {"id", "name", "slug", "description", "parent_id", "is_active"}


def test_include_inactive_is_for_admins(client, app, as_customer, as_staff, as_admin):
    make_category(app, "Hidden", is_active=False)
    url = f"{API}/categories?include_inactive=true"
    assert client.get(url).status_code == 403
    assert client.get(url, headers=as_customer).status_code == 403
    assert client.get(url, headers=as_staff).status_code == 403
    assert client.get(url, headers=as_admin).json["total"] == 1


def test_get_category_and_404s(client, app, as_admin):
    books = make_category(app, "Books")
    hidden = make_category(app, "Hidden", is_active=False)
    assert client.get(f"{API}/categories/{books.id}").json["slug"] == "books"
    assert client.get(f"{API}/categories/{hidden.id}").status_code == 404
    assert client.get(f"{API}/categories/{hidden.id}", headers=as_admin).status_code == 200
    assert client.get(f"{API}/categories/99999").status_code == 404


def test_admin_creates_category_with_unique_slug_and_audit(client, app, admin, as_admin):
    first = client.post(f"{API}/categories", headers=as_admin, json={"name": "Home & Garden"})
    assert first.status_code == 201
    assert first.json["slug"] == "home-garden"
    assert first.headers["Location"].endswith(f"/categories/{first.json['id']}")
    second = client.post(
        f"{API}/categories",
        headers=as_admin,
        json={"name": "Home & Garden", "parent_id": first.json["id"]},
    )
    assert second.json["slug"] == "home-garden-2"
    dup = client.post(
        f"{API}/categories", headers=as_admin, json={"name": "X", "slug": "home-garden"}
    )
    assert dup.status_code == 409
    with app.app_context():
        entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "category.created"))
    assert entry.actor_id == admin.id and entry.changes["name"] == "Home & Garden"


def test_category_writes_need_admin(client, app, as_customer, as_staff):
    books = make_category(app, "Books")
    for headers, status in ((None, 401), (as_customer, 403), (as_staff, 403)):
        kwargs = {"headers": headers} if headers else {}
        assert client.post(f"{API}/categories", json={"name": "X"}, **kwargs).status_code == status
        assert (
            client.patch(f"{API}/categories/{books.id}", json={"name": "Y"}, **kwargs).status_code
            == status
        )
        assert client.delete(f"{API}/categories/{books.id}", **kwargs).status_code == status


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "x" * 121},
        {"name": "A", "slug": "Not A Slug"},
        {"name": "A", "id": 3},
        {"name": "A", "parent_id": 999999},
        {"name": "A", "parent_id": 0},
        {"name": "A", "is_active": "yes please"},
    ],
)
def test_category_validation(client, as_admin, body):
    assert client.post(f"{API}/categories", headers=as_admin, json=body).status_code == 422


def test_category_tree_and_cycles(client, app, as_admin):
    root = make_category(app, "Root")
    child = make_category(app, "Child", parent_id=root.id)
    grandchild = make_category(app, "Grandchild", parent_id=child.id)
    listed = client.get(f"{API}/categories?parent_id={root.id}").json["items"]
    assert [c["id"] for c in listed] == [child.id]
    cycle = client.patch(
        f"{API}/categories/{root.id}", headers=as_admin, json={"parent_id": grandchild.id}
    )
    assert cycle.status_code == 409
    itself = client.patch(
        f"{API}/categories/{root.id}", headers=as_admin, json={"parent_id": root.id}
    )
    assert itself.status_code == 409


def test_update_category_records_before_and_after(client, app, as_admin):
    books = make_category(app, "Books")
    response = client.patch(
        f"{API}/categories/{books.id}",
        headers=as_admin,
        json={"name": "Novels", "description": "Stories"},
    )
    assert response.status_code == 200 and response.json["name"] == "Novels"
    with app.app_context():
        entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "category.updated"))
    assert entry.changes["name"] == {"before": "Books", "after": "Novels"}
    assert (
        client.patch(f"{API}/categories/424242", headers=as_admin, json={"name": "x"}).status_code
        == 404
    )


def test_delete_category_only_when_empty(client, app, as_admin):
    root = make_category(app, "Root")
    child = make_category(app, "Child", parent_id=root.id)
    make_product(app, category_id=child.id)
    assert client.delete(f"{API}/categories/{root.id}", headers=as_admin).status_code == 409
    assert client.delete(f"{API}/categories/{child.id}", headers=as_admin).status_code == 409
    empty = make_category(app, "Empty")
    assert client.delete(f"{API}/categories/{empty.id}", headers=as_admin).status_code == 204
    assert client.get(f"{API}/categories/{empty.id}").status_code == 404
    assert client.delete(f"{API}/categories/{empty.id}", headers=as_admin).status_code == 404
    with app.app_context():
        assert db.session.scalar(select(AuditLog).where(AuditLog.action == "category.deleted"))


def test_category_products_include_subcategories(client, app):
    root = make_category(app, "Root")
    child = make_category(app, "Child", parent_id=root.id)
    other = make_category(app, "Other")
    in_root = make_product(app, name="Root thing", category_id=root.id)
    in_child = make_product(app, name="Child thing", category_id=child.id)
    make_product(app, name="Elsewhere", category_id=other.id)
    body = client.get(f"{API}/categories/{root.id}/products?sort=name").json
    assert [p["id"] for p in body["items"]] == [in_child.id, in_root.id]
    assert client.get(f"{API}/categories/99999/products").status_code == 404
    filtered = client.get(f"{API}/categories/{root.id}/products?max_price=5.00").json
    assert filtered["total"] == 0


def test_a_taken_slug_is_a_409_naming_the_field(client, app, as_admin):
    make_category(app, "Mugs", slug="mugs")
    other = make_category(app, "Cups")
    for response in (
        client.post(f"{API}/categories", headers=as_admin, json={"name": "Jugs", "slug": "mugs"}),
        client.patch(f"{API}/categories/{other.id}", headers=as_admin, json={"slug": "mugs"}),
    ):
        assert response.status_code == 409
        assert set(response.json["errors"]) == {"slug"}


def test_two_categories_of_one_name_under_one_parent_are_a_409(client, app, as_admin):
    kitchen = make_category(app, "Kitchen")
    make_category(app, "Mugs", parent_id=kitchen.id)
    twin = client.post(
        f"{API}/categories", headers=as_admin, json={"name": "mugs", "parent_id": kitchen.id}
    )
    assert twin.status_code == 409 and set(twin.json["errors"]) == {"name"}
    elsewhere = client.post(f"{API}/categories", headers=as_admin, json={"name": "Mugs"})
    assert elsewhere.status_code == 201
    again = client.post(f"{API}/categories", headers=as_admin, json={"name": "MUGS"})
    assert again.status_code == 409 and set(again.json["errors"]) == {"name"}
    cups = make_category(app, "Cups", parent_id=kitchen.id)
    renamed = client.patch(f"{API}/categories/{cups.id}", headers=as_admin, json={"name": "Mugs"})
    assert renamed.status_code == 409 and set(renamed.json["errors"]) == {"name"}
    moved = client.patch(
        f"{API}/categories/{elsewhere.json['id']}", headers=as_admin, json={"parent_id": kitchen.id}
    )
    assert moved.status_code == 409 and set(moved.json["errors"]) == {"name"}
    assert (
        client.patch(
            f"{API}/categories/{cups.id}", headers=as_admin, json={"name": "Cups"}
        ).status_code
        == 200
    )
