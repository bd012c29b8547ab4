"""Personal data on the embedded default (SQLite, no Redis): the export, and the erasure with
its farewell email sent inline after the commit, its audit entries scrubbed, its email free."""

import pytest

from tests.conftest import text_of
from tests.factories import PASSWORD, headers_for, make_product, make_user

pytestmark = pytest.mark.embedded
API = "/api/v1"
SHIP_TO = {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}


def test_export_and_erase_on_sqlite(embedded_app, mailbox):
    client = embedded_app.test_client()
    user = make_user(embedded_app, email="Erin@example.com", first_name="Erin")
    headers = headers_for(embedded_app, user)
    product = make_product(embedded_app, stock=10)
    assert client.post(f"{API}/addresses", headers=headers, json=SHIP_TO).status_code == 201
    order = client.post(
        f"{API}/orders",
        headers=headers,
        json={"items": [{"product_id": product.id, "quantity": 1}], "shipping_address": SHIP_TO},
    ).json
    assert client.put(f"{API}/wishlist/{product.id}", headers=headers).status_code in (200, 201)
    assert (
        client.post(
            f"{API}/auth/login", json={"email": user.email, "password": "nope-nope-1"}
        ).status_code
        == 401
    )
    exported = client.get(f"{API}/auth/me/export", headers=headers).json
    assert [o["id"] for o in exported["orders"]] == [order["id"]]
    assert len(exported["addresses"]) == 1 and len(exported["wishlist"]) == 1
    mailbox.messages.clear()

    erased = client.delete(f"{API}/auth/me", headers=headers, json={"password": PASSWORD})
    assert erased.status_code == 204
    [farewell] = mailbox.to("Erin@example.com")  # sent inline, right after the commit
    assert "account was deleted" in farewell["Subject"] and "Hello Erin" in text_of(farewell)
    assert client.get(f"{API}/auth/me", headers=headers).status_code == 401
    admin = headers_for(embedded_app, make_user(embedded_app, role="admin"))
    entries = client.get(f"{API}/audit-logs?page_size=100", headers=admin).json["items"]
    assert entries and all("erin@example.com" not in str(e).lower() for e in entries)
    assert {"user.erased", "auth.login_failed"} <= {e["action"] for e in entries}
    login = {"email": "erin@example.com", "password": PASSWORD}
    assert client.post(f"{API}/auth/login", json=login).status_code == 401
    again = client.post(f"{API}/auth/register", json=login)
    assert again.status_code == 201 and again.json["id"] != user.id
    kept = client.get(f"{API}/orders/{order['id']}", headers=admin).json
    assert kept["user_id"] == user.id and kept["total"] == order["total"]
