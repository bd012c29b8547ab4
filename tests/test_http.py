"""The HTTP layer: request ids, problem+json for every error, OpenAPI and docs, CORS, odd input."""

import json
import re

import pytest

from tests.factories import PASSWORD, make_product


def test_request_id_generated_and_echoed(client):
    generated = client.get("/health").headers["X-Request-ID"]
    assert len(generated) == 32
    echoed = client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["X-Request-ID"] == "abc-123"


def test_unknown_path_is_problem_json(client):
    response = client.get("/api/v1/nothing-here", headers={"X-Request-ID": "rid-1"})
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    body = response.json
    assert body["status"] == 404 and body["title"] == "Not Found"
    assert body["detail"] and body["request_id"] == "rid-1"


def test_method_not_allowed(client):
    response = client.delete("/api/v1/auth/login")
    assert response.status_code == 405
    assert response.json["status"] == 405
    assert "POST" in response.headers["Allow"]


def test_malformed_json_is_400(client):
    response = client.post("/api/v1/auth/login", data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"


def test_body_over_one_mib_is_413(client):
    body = json.dumps({"email": "a@example.com", "password": "x" * (1024 * 1024)})
    response = client.post("/api/v1/auth/login", data=body, content_type="application/json")
    assert response.status_code == 413
    assert response.json["status"] == 413


def test_validation_error_lists_fields(client):
    response = client.post("/api/v1/auth/register", json={"email": "nope"})
    assert response.status_code == 422
    errors = response.json["errors"]
    assert "email" in errors and "password" in errors
    assert response.json["request_id"]


def test_unexpected_error_is_500_without_traceback(other_app):
    crashing = other_app(TESTING=False)

    @crashing.get("/boom")
    def boom():
        raise RuntimeError("secret internals")

    response = crashing.test_client().get("/boom")
    assert response.status_code == 500
    assert response.mimetype == "application/problem+json"
    assert "secret internals" not in response.get_data(as_text=True)
    assert response.json["request_id"]


def test_openapi_declares_bearer_auth_and_problem_errors(client):
    spec = client.get("/openapi.json").json
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    me = spec["paths"]["/api/v1/auth/me"]["get"]
    assert me["security"] == [{"bearerAuth": []}]
    assert "401" in me["responses"]
    users = spec["paths"]["/api/v1/users"]["get"]
    assert {"401", "403", "422"} <= set(users["responses"])
    register = spec["paths"]["/api/v1/auth/register"]["post"]
    assert {"201", "400", "409", "413", "422", "429"} <= set(register["responses"])
    unauthorized = spec["components"]["responses"]["UNAUTHORIZED"]
    assert "application/problem+json" in unauthorized["content"]


def test_docs_are_served_offline(client):
    page = client.get("/docs")
    assert page.status_code == 200
    assert b"/docs/assets/swagger/swagger-ui-bundle.js" in page.data
    with client.get("/docs/assets/swagger/swagger-ui-bundle.js") as bundle:
        assert bundle.status_code == 200 and len(bundle.data) > 100_000
    redoc = client.get("/redoc")
    assert b"/docs/assets/redoc/redoc.standalone.js" in redoc.data
    with client.get("/docs/assets/redoc/redoc.standalone.js") as script:
        assert script.status_code == 200 and script.mimetype == "text/javascript"
    assert client.get("/docs/assets/swagger/../../etc/passwd").status_code == 404


def test_cors_exposes_request_id(client):
    response = client.get("/health", headers={"Origin": "https://store.example"})
    assert response.status_code == 200
    preflight = client.options(
        "/api/v1/auth/login",
        headers={"Origin": "https://store.example", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.headers["Access-Control-Allow-Origin"] in ("*", "https://store.example")


def test_nul_characters_are_a_422_not_a_database_error(client):
    assert client.get("/api/v1/products/suggestions?q=a%00b").status_code == 422
    body = {"email": "a@example.com", "password": "pass\u0000word-1"}
    response = client.post("/api/v1/auth/register", json=body)
    assert response.status_code == 422 and "password" in response.json["errors"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/auth/register", {"email": "a@example.com", "password": "pass\ud800word-1"}, "password"),
        (
            "/auth/register",
            {"email": "a@example.com", "password": "pass-word-1", "first_name": "\udfff"},
            "first_name",
        ),
        ("/auth/login", {"email": "a\ud800@example.com", "password": "pass-word-1"}, "email"),
        ("/auth/login", {"email": "a@example.com", "password": "\ud800"}, "password"),
    ],
)
def test_lone_surrogates_are_a_422_naming_the_field(client, path, body, field):
    response = client.post(f"/api/v1{path}", json=body)
    assert response.status_code == 422
    assert field in response.json["errors"]


def test_lone_surrogates_in_an_address_are_a_422(client, as_customer):
    address = {"line1": "1 Main \ud800", "city": "X", "postal_code": "1", "country": "US"}
    response = client.post("/api/v1/addresses", headers=as_customer, json=address)
    assert response.status_code == 422 and "line1" in response.json["errors"]


def test_odd_timestamps_and_huge_ids_are_not_server_errors(client, as_admin):
    odd = "since=0197-07-07T13:56:50.783-22:14&until=3556-01-11T00:13:48.2%2B23:54"
    assert client.get(f"/api/v1/audit-logs?{odd}", headers=as_admin).status_code == 200
    assert (
        client.get("/api/v1/audit-logs?actor_id=133802765883", headers=as_admin).status_code == 422
    )
    assert client.get("/api/v1/products/99999999999999999999").status_code == 404


def test_path_ids_document_their_range(client):
    spec = client.get("/openapi.json").json
    [param] = spec["paths"]["/api/v1/products/{product_id}"]["parameters"]
    assert param["schema"] == {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
    assert client.get(f"/api/v1/products/{2**31}").status_code == 404


TIMESTAMP = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$"


def test_202_and_204_answers_have_no_body_and_successes_no_retry_after(client, as_customer):
    accepted = client.post("/api/v1/auth/password-reset", json={"email": "ghost@example.com"})
    assert accepted.status_code == 202 and accepted.get_data() == b""
    assert "Content-Type" not in accepted.headers and "Retry-After" not in accepted.headers
    emptied = client.delete("/api/v1/cart", headers=as_customer)
    assert emptied.status_code == 204 and "Content-Type" not in emptied.headers


def test_timestamps_are_utc_with_milliseconds(client, customer, as_customer):
    me = client.get("/api/v1/auth/me", headers=as_customer).json
    assert re.match(TIMESTAMP, me["created_at"]), me["created_at"]
    login = client.post("/api/v1/auth/login", json={"email": customer.email, "password": PASSWORD})
    assert "Retry-After" not in login.headers
    assert re.match(TIMESTAMP, login.json["user"]["last_login_at"])


def test_booleans_in_a_body_are_json_booleans_only(client, app, as_customer, as_admin, customer):
    address = {"line1": "1 Main St", "city": "X", "postal_code": "1", "country": "US"}
    for body, url, method, headers in (
        ({**address, "is_default": 0}, "/api/v1/addresses", "post", as_customer),
        ({**address, "is_default": "true"}, "/api/v1/addresses", "post", as_customer),
        ({"is_active": 1}, f"/api/v1/users/{customer.id}", "patch", as_admin),
        ({"name": "Gadgets", "is_active": "yes"}, "/api/v1/categories", "post", as_admin),
    ):
        response = getattr(client, method)(url, headers=headers, json=body)
        assert response.status_code == 422, (url, body)
        assert {"is_default", "is_active"} & set(response.json["errors"])
    assert client.get("/api/v1/products?in_stock=true&featured=0").status_code == 200


@pytest.mark.parametrize("price", [-4.7e170, 1e30, "1e400", "-Infinity"])
def test_absurd_money_is_a_422_not_a_500(client, app, as_admin, price):
    product = make_product(app, stock=0)
    response = client.post(
        f"/api/v1/products/{product.id}/variants",
        headers=as_admin,
        json={"sku": "ABSURD-1", "name": "Absurd", "price": price},
    )
    assert response.status_code == 422 and "price" in response.json["errors"]


@pytest.mark.parametrize(
    ("price", "accepted"),
    [
        (12, False),
        (12.5, False),
        ("1E+2", False),
        ("01.50", False),
        (" 5 ", False),
        ("12.50", True),
    ],
)
def test_money_is_a_decimal_string_never_a_json_number(client, app, as_admin, price, accepted):
    product = make_product(app)
    response = client.patch(
        f"/api/v1/products/{product.id}", headers=as_admin, json={"price": price}
    )
    assert response.status_code == (200 if accepted else 422)
    if not accepted:  # a number, or a string that is not the documented pattern
        message = "decimal string" if not isinstance(price, str) else "at most 10 digits"
        assert message in response.json["errors"]["price"][0]


@pytest.mark.parametrize(
    ("password", "accepted"),
    [("12345678901", False), ("²²²²²²²²²²", True), ("١٢٣٤٥٦٧٨", True), ("1234567a", True)],
)
def test_the_password_rule_is_the_documented_pattern(client, password, accepted):
    # OpenAPI says: at least 8 characters, something other than 0-9 (JSON Schema digits).
    response = client.post(
        "/api/v1/auth/register", json={"email": "rule@example.com", "password": password}
    )
    assert response.status_code == (201 if accepted else 422), response.json
    body = client.get("/openapi.json").json["components"]["schemas"]["Register"]
    assert body["properties"]["password"]["pattern"] == "[^0-9]"


def test_a_purchase_order_line_cannot_cost_more_than_money_can_hold(client, app, as_staff):
    product = make_product(app)
    line = {"product_id": product.id, "quantity": 1_000_000, "unit_cost": "9999999999.99"}
    response = client.post(
        "/api/v1/inventory/purchase-orders",
        headers=as_staff,
        json={"supplier": "A", "items": [line]},
    )
    assert response.status_code == 422 and "items" in response.json["errors"]
