"""Liveness and readiness."""


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
