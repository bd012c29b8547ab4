"""User administration: admin only, filters, role changes and deactivation."""

import pytest
from sqlalchemy import select

from shop.audit.models import AuditLog
from shop.db import db
from shop.security import Role
from tests.factories import make_user, tokens_for

API = "/api/v1"


def test_users_list_roles(client, as_customer, as_staff, as_admin):
    assert client.get(f"{API}/users").status_code == 401
    assert client.get(f"{API}/users", headers=as_customer).status_code == 403
    assert client.get(f"{API}/users", headers=as_staff).status_code == 403
    response = client.get(f"{API}/users", headers=as_admin)
    assert response.status_code == 200
    body = response.json
    assert set(body) == {"items", "page", "page_size", "total", "pages", "links"}
    assert body["total"] == 3 and body["page"] == 1 and body["page_size"] == 20
    assert body["pages"] == 1


def test_users_filters_and_sort(client, app, as_admin, admin):
    make_user(app, email="Zed@example.com", role=Role.STAFF)
    make_user(app, email="amy@example.com", active=False)
    by_role = client.get(f"{API}/users?role=staff", headers=as_admin).json
    assert [u["email"] for u in by_role["items"]] == ["Zed@example.com"]
    inactive = client.get(f"{API}/users?is_active=false", headers=as_admin).json
    assert [u["email"] for u in inactive["items"]] == ["amy@example.com"]
    exact = client.get(f"{API}/users?email=ZED@EXAMPLE.COM", headers=as_admin).json
    assert exact["total"] == 1
    emails = [
        u["email"] for u in client.get(f"{API}/users?sort=email", headers=as_admin).json["items"]
    ]
    assert emails == sorted(emails, key=str.lower)
    newest = client.get(f"{API}/users", headers=as_admin).json["items"]
    assert [u["id"] for u in newest] == sorted((u["id"] for u in newest), reverse=True)


@pytest.mark.parametrize(
    "query",
    ["page_size=101", "page=0", "page_size=0", "role=king", "sort=password", "is_active=maybe"],
)
def test_users_list_rejects_bad_query(client, as_admin, query):
    assert client.get(f"{API}/users?{query}", headers=as_admin).status_code == 422


def test_users_pagination(client, app, as_admin):
    for _ in range(5):
        make_user(app)
    page = client.get(f"{API}/users?page=2&page_size=2", headers=as_admin).json
    assert page["total"] == 6 and page["pages"] == 3 and len(page["items"]) == 2


def test_users_list_query_count_does_not_grow_with_page_size(client, app, as_admin, count_queries):
    for _ in range(30):
        make_user(app)
    with count_queries() as small:
        client.get(f"{API}/users?page_size=2", headers=as_admin)
    with count_queries() as large:
        client.get(f"{API}/users?page_size=100", headers=as_admin)
    assert small.count == large.count <= 3  # token user, count, page


def test_get_user(client, customer, as_admin, as_staff):
    response = client.get(f"{API}/users/{customer.id}", headers=as_admin)
    assert response.status_code == 200 and response.json["email"] == customer.email
    assert client.get(f"{API}/users/999999", headers=as_admin).status_code == 404
    assert client.get(f"{API}/users/{customer.id}", headers=as_staff).status_code == 403
    assert client.get(f"{API}/users/{customer.id}").status_code == 401


def test_admin_changes_role_with_audit(client, app, customer, admin, as_admin):
    response = client.patch(f"{API}/users/{customer.id}", headers=as_admin, json={"role": "staff"})
    assert response.status_code == 200 and response.json["role"] == "staff"
    with app.app_context():
        entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "user.updated"))
    assert entry.actor_id == admin.id and entry.target_id == customer.id
    assert entry.changes == {"role": {"before": "customer", "after": "staff"}}


def test_role_change_applies_to_existing_tokens(client, app, customer, as_customer, as_admin):
    assert client.get(f"{API}/users", headers=as_customer).status_code == 403
    client.patch(f"{API}/users/{customer.id}", headers=as_admin, json={"role": "admin"})
    assert client.get(f"{API}/users", headers=as_customer).status_code == 200


def test_deactivation_kills_tokens_and_reactivation_does_not_revive_them(
    client, app, customer, as_admin
):
    tokens = tokens_for(app, customer)
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert client.get(f"{API}/auth/me", headers=headers).status_code == 200
    assert (
        client.patch(
            f"{API}/users/{customer.id}", headers=as_admin, json={"is_active": False}
        ).status_code
        == 200
    )
    assert client.get(f"{API}/auth/me", headers=headers).status_code == 401
    refresh = {"Authorization": f"Bearer {tokens['refresh_token']}"}
    assert client.post(f"{API}/auth/refresh", headers=refresh).status_code == 401
    client.patch(f"{API}/users/{customer.id}", headers=as_admin, json={"is_active": True})
    assert client.get(f"{API}/auth/me", headers=headers).status_code == 401


def test_admin_cannot_lock_themselves_out(client, admin, as_admin):
    assert (
        client.patch(
            f"{API}/users/{admin.id}", headers=as_admin, json={"is_active": False}
        ).status_code
        == 409
    )
    assert (
        client.patch(
            f"{API}/users/{admin.id}", headers=as_admin, json={"role": "customer"}
        ).status_code
        == 409
    )


@pytest.mark.parametrize(
    "body",
    [{"role": "king"}, {"email": "x@example.com"}, {"is_active": "sometimes"}, {"password": "x"}],
)
def test_admin_update_rejects_bad_fields(client, customer, as_admin, body):
    assert (
        client.patch(f"{API}/users/{customer.id}", headers=as_admin, json=body).status_code == 422
    )


def test_admin_update_roles_and_unknown_user(client, customer, as_customer, as_staff, as_admin):
    url = f"{API}/users/{customer.id}"
    assert client.patch(url, json={"role": "staff"}).status_code == 401
    assert client.patch(url, headers=as_customer, json={"role": "staff"}).status_code == 403
    assert client.patch(url, headers=as_staff, json={"role": "staff"}).status_code == 403
    assert (
        client.patch(f"{API}/users/424242", headers=as_admin, json={"role": "staff"}).status_code
        == 404
    )
