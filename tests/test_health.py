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
