"""Audit trail API: admin only, filters, newest first, read-only."""

from datetime import UTC, datetime, timedelta

import pytest

from shop.audit.services import record
from shop.db import unit_of_work
from tests.factories import PASSWORD

API = "/api/v1"


def test_audit_roles(client, as_customer, as_staff, as_admin):
    assert client.get(f"{API}/audit-logs").status_code == 401
    assert client.get(f"{API}/audit-logs", headers=as_customer).status_code == 403
    assert client.get(f"{API}/audit-logs", headers=as_staff).status_code == 403
    assert client.get(f"{API}/audit-logs", headers=as_admin).status_code == 200


def test_audit_entries_newest_first_with_request_context(client, customer, admin, as_admin):
    client.post(
        f"{API}/auth/login",
        json={"email": customer.email, "password": PASSWORD},
        headers={"X-Request-ID": "req-login", "User-Agent": "pytest-agent"},
    )
    client.patch(f"{API}/users/{customer.id}", headers=as_admin, json={"role": "staff"})
    items = client.get(f"{API}/audit-logs", headers=as_admin).json["items"]
    assert [i["action"] for i in items] == ["user.updated", "auth.login"]
    login_entry = items[1]
    assert login_entry["actor_id"] == customer.id and login_entry["actor_email"] == customer.email
    assert login_entry["request_id"] == "req-login"
    assert login_entry["user_agent"] == "pytest-agent" and login_entry["ip"] == "127.0.0.1"
    assert login_entry["target_type"] == "user" and login_entry["target_id"] == customer.id
    assert items[0]["changes"] == {"role": {"before": "customer", "after": "staff"}}


def test_audit_filters(client, app, customer, admin, as_admin):
    with app.app_context(), unit_of_work():
        record("thing.done", actor=None, target_type="thing", target_id=1)
        record("thing.done", actor=None, target_type="thing", target_id=2)
        record("other.done", actor=None, target_type="other", target_id=1)
    get = lambda q: client.get(f"{API}/audit-logs?{q}", headers=as_admin).json  # noqa: E731
    assert get("action=thing.done")["total"] == 2
    assert get("target_type=thing&target_id=2")["total"] == 1
    assert get(f"actor_id={admin.id}")["total"] == 0
    assert get("target_type=other")["items"][0]["actor_email"] == "system"
    now = datetime.now(UTC)
    since = (now - timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
    until = (now - timedelta(minutes=4)).isoformat().replace("+00:00", "Z")
    assert get(f"since={since}")["total"] == 3
    assert get(f"until={until}")["total"] == 0
    assert get("since=2020-01-01T00:00:00")["total"] == 3  # naive means UTC


@pytest.mark.parametrize(
    "query", ["since=yesterday", "actor_id=abc", "page_size=1000", "target_id=x"]
)
def test_audit_rejects_bad_filters(client, as_admin, query):
    assert client.get(f"{API}/audit-logs?{query}", headers=as_admin).status_code == 422


def test_audit_entry_by_id_and_read_only(client, app, as_admin, as_staff):
    with app.app_context(), unit_of_work():
        record("thing.done", actor=None)
    entry = client.get(f"{API}/audit-logs", headers=as_admin).json["items"][0]
    url = f"{API}/audit-logs/{entry['id']}"
    assert client.get(url, headers=as_admin).json == entry
    assert client.get(url, headers=as_staff).status_code == 403
    assert client.get(url).status_code == 401
    assert client.get(f"{API}/audit-logs/999999", headers=as_admin).status_code == 404
    assert client.delete(url, headers=as_admin).status_code == 405
    assert client.patch(url, headers=as_admin, json={}).status_code == 405
    assert client.put(url, headers=as_admin, json={}).status_code == 405


def test_audit_list_query_count_does_not_grow_with_page_size(client, app, as_admin, count_queries):
    with app.app_context(), unit_of_work():
        for i in range(40):
            record("thing.done", actor=None, target_id=i)
    with count_queries() as small:
        client.get(f"{API}/audit-logs?page_size=5", headers=as_admin)
    with count_queries() as large:
        client.get(f"{API}/audit-logs?page_size=100", headers=as_admin)
    assert small.count == large.count <= 3
