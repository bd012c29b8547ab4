"""Liveness and readiness, and the database's connections going away."""

import sys
import time

import psycopg2
from sqlalchemy import func, select

from shop.db import db
from tests.conftest import TEST_DATABASE_URL


def test_health(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_ready_checks_database_and_redis(client):
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert response.json["checks"] == {"database": "ok", "redis": "ok"}


def test_ready_names_what_failed(other_app):
    broken = other_app(REDIS_URL="redis://127.0.0.1:1/0")
    response = broken.test_client().get("/health/ready")
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert "redis" in response.json["detail"]
    assert response.json["errors"]["database"] == "ok"


def test_an_unreachable_database_is_a_503_with_retry_after(other_app):
    down = other_app(SQLALCHEMY_DATABASE_URI="postgresql://postgres@127.0.0.1:1/shop_test")
    client = down.test_client()
    for response in (
        client.get("/api/v1/products"),
        client.post("/api/v1/auth/login", json={"email": "a@example.com", "password": "x" * 9}),
    ):
        assert response.status_code == 503
        assert response.mimetype == "application/problem+json"
        assert int(response.headers["Retry-After"]) > 0
        assert "database" in response.json["detail"]
    assert client.get("/health/ready").status_code == 503


def test_the_root_points_at_the_api_and_its_documentation(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.json["api"] == "/api/v1"
    assert {response.json[k] for k in ("docs", "redoc", "openapi")} == {
        "/docs",
        "/redoc",
        "/openapi.json",
    }


def _kill_the_pooled_connection(app):
    """End, from outside, the server process behind the connection `app`'s pool holds (as a
    restart or a failover does), and wait until it is gone."""
    with app.app_context():
        pid = db.session.scalar(select(func.pg_backend_pid()))
        db.session.commit()
    outside = psycopg2.connect(TEST_DATABASE_URL)
    outside.autocommit = True
    try:
        with outside.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", (pid,))
            for _ in range(100):
                cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,))
                if cursor.fetchone()[0] == 0:
                    return
                time.sleep(0.05)
    finally:
        outside.close()
    raise AssertionError(f"backend {pid} still there")


def test_a_connection_gone_while_idle_is_replaced_before_it_is_used(other_app, monkeypatch):
    served = other_app(CACHE_RESPONSES=False)
    client = served.test_client()
    assert client.get("/api/v1/products").status_code == 200
    _kill_the_pooled_connection(served)
    # Idle long enough to be pinged:
    monkeypatch.setattr(sys.modules["shop.db"], "PING_AFTER_IDLE", 0.0)
    assert client.get("/api/v1/products").status_code == 200


def test_a_connection_gone_in_steady_use_costs_one_503(other_app):
    """Used a moment ago, it is not pinged (no round trip per request): its request is a 503
    to retry, and the pool starts over."""
    served = other_app(CACHE_RESPONSES=False)
    client = served.test_client()
    assert client.get("/api/v1/products").status_code == 200
    _kill_the_pooled_connection(served)
    failed = client.get("/api/v1/products")
    assert failed.status_code == 503 and int(failed.headers["Retry-After"]) > 0
    assert client.get("/api/v1/products").status_code == 200
