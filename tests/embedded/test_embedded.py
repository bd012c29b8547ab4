"""The embedded default: SQLite, no Redis, in-process cache, jobs (emails) run inline."""

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from shop.security import Role
from tests.conftest import text_of
from tests.factories import headers_for, make_user

pytestmark = pytest.mark.embedded
ROOT = Path(__file__).resolve().parent.parent.parent


def test_embedded_defaults(embedded_app):
    config = embedded_app.config
    assert config["REDIS_URL"] is None
    assert config["CACHE_TYPE"] == "SimpleCache"
    assert config["RATELIMIT_STORAGE_URI"] == "memory://"


def test_register_login_me_on_sqlite_without_redis(embedded_app, smtp):
    mailbox = smtp[1]
    mailbox.messages.clear()
    client = embedded_app.test_client()
    assert client.get("/health/ready").json["checks"] == {"database": "ok"}

    registered = client.post(
        "/api/v1/auth/register", json={"email": "Solo@Example.com", "password": "solo-pass-123"}
    )
    assert registered.status_code == 201
    # No Redis: the verification email went out inline, right after the commit.
    [message] = mailbox.to("Solo@Example.com")
    code = re.search(r"\b(\d{6})\b", text_of(message)).group(1)
    assert (
        client.post(
            "/api/v1/auth/verify-email", json={"email": "solo@example.com", "code": code}
        ).status_code
        == 204
    )

    tokens = client.post(
        "/api/v1/auth/login", json={"email": "solo@example.com", "password": "solo-pass-123"}
    ).json
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    me = client.get("/api/v1/auth/me", headers=headers).json
    assert me["email"] == "Solo@Example.com" and me["email_verified"] is True
    assert me["created_at"].endswith("+00:00")

    refreshed = client.post(
        "/api/v1/auth/refresh", headers={"Authorization": f"Bearer {tokens['refresh_token']}"}
    )
    assert refreshed.status_code == 200
    assert client.post("/api/v1/auth/logout", headers=headers).status_code == 204
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 401


def test_login_throttling_works_in_memory(embedded_app):
    client = embedded_app.test_client()
    for _ in range(5):
        client.post("/api/v1/auth/login", json={"email": "x@example.com", "password": "nope-1234"})
    blocked = client.post(
        "/api/v1/auth/login", json={"email": "x@example.com", "password": "nope-1234"}
    )
    assert blocked.status_code == 429 and blocked.headers["Retry-After"]


def test_catalog_on_sqlite_with_the_search_fallback(embedded_app):
    client = embedded_app.test_client()
    admin = headers_for(embedded_app, make_user(embedded_app, role=Role.ADMIN))
    category = client.post("/api/v1/categories", headers=admin, json={"name": "Outdoor"}).json
    created = [
        client.post("/api/v1/products", headers=admin, json=body).json
        for body in (
            {"sku": "LMP-1", "name": "Camping Lamp", "price": "25.00", "stock": 4},
            {"sku": "RUG-1", "name": "Rug", "price": "80.00", "description": "a lamp-free rug"},
            {"sku": "CHR-1", "name": "Chair", "price": "40.00", "category_id": category["id"]},
        )
    ]
    assert all("id" in p for p in created), created
    lamp, rug, chair = created

    # Name and SKU outrank the description; the category name is searched too.
    found = client.get("/api/v1/products?q=lamp").json["items"]
    assert [p["id"] for p in found] == [lamp["id"], rug["id"]]
    assert [p["id"] for p in client.get("/api/v1/products?q=outdoor").json["items"]] == [
        chair["id"]
    ]
    assert [p["id"] for p in client.get("/api/v1/products?q=LMP").json["items"]] == [lamp["id"]]
    # The count, the facets and the ranking in one statement there too.
    faceted = client.get("/api/v1/products?q=lamp&facets=category,price").json
    assert (faceted["total"], faceted["facets"]["category"]) == (2, [])
    assert [b["count"] for b in faceted["facets"]["price"]] == [1, 1]  # 25-50, 50-100
    assert client.get("/api/v1/products?facets=category").json["facets"]["category"] == [
        {"id": category["id"], "name": category["name"], "count": 1}
    ]
    assert client.get("/api/v1/products/suggestions?q=cam").json == [
        {"id": lamp["id"], "name": "Camping Lamp"}
    ]

    # In-process cache: a write is visible on the next read.
    url = f"/api/v1/products/{lamp['id']}"
    assert client.get(url).json["stock"] == 4
    client.patch(url, headers=admin, json={"stock": 9})
    assert client.get(url).json["stock"] == 9
    assert client.get("/api/v1/products?sort=-price").json["items"][0]["id"] == rug["id"]


ROUTES_WITH_IDS = [
    ("get", "/api/v1/products/{}"),
    ("get", "/api/v1/products/{}/variants"),
    ("patch", "/api/v1/products/1/variants/{}"),
    ("get", "/api/v1/products/{}/reviews"),
    ("delete", "/api/v1/products/1/reviews/{}"),
    ("get", "/api/v1/users/{}"),
    ("get", "/api/v1/orders/{}"),
    ("post", "/api/v1/orders/{}/cancel"),
    ("get", "/api/v1/audit-logs/{}"),
    ("get", "/api/v1/notifications/{}"),
    ("post", "/api/v1/inventory/purchase-orders/{}/receive"),
    ("get", "/api/v1/categories/{}"),
    ("delete", "/api/v1/addresses/{}"),
]


@pytest.mark.parametrize("ident", [2**31, 2**63, 10**20])
def test_ids_beyond_the_integer_range_are_404_not_500(embedded_app, ident):
    client = embedded_app.test_client()
    with embedded_app.app_context():
        admin = headers_for(embedded_app, make_user(embedded_app, role=Role.ADMIN))
    for method, path in ROUTES_WITH_IDS:
        response = getattr(client, method)(path.format(ident), headers=admin)
        assert response.status_code == 404, (method, path, response.status_code)
        assert response.mimetype == "application/problem+json"


def test_flask_serve_answers_and_runs_the_periodic_jobs(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}", "REDIS_URL": ""}
    flask = str(Path(sys.executable).parent / "flask")
    subprocess.run([flask, "--app", "wsgi", "db", "upgrade"], env=env, check=True,
                   capture_output=True, cwd=ROOT)  # fmt: skip
    server = subprocess.Popen(
        [flask, "--app", "wsgi", "serve", "--port", str(port)],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as answer:
                    index = json.load(answer)
                break
            except OSError:
                assert time.monotonic() < deadline, "flask serve did not answer"
                time.sleep(0.2)
        assert index["api"] == "/api/v1"
    finally:
        server.terminate()
        output = server.communicate(timeout=10)[0]
    assert "Periodic jobs run in this process" in output
