"""The embedded default: SQLite, no Redis, in-process cache, jobs (emails) run inline."""

import re

import pytest
from flask_migrate import upgrade

from shop import create_app

pytestmark = pytest.mark.embedded


@pytest.fixture
def embedded_app(tmp_path, smtp, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    controller, _ = smtp
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'shop.db'}",
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": controller.port,
        }
    )
    with app.app_context():
        upgrade()
    return app


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
    code = re.search(r"\b(\d{6})\b", message.get_payload()).group(1)
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
