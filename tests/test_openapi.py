"""The OpenAPI document as a storefront developer meets it: valid, with readable operation
names and typed models, and a client generated from it (openapi-python-client) that works."""

import importlib
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from openapi_spec_validator import validate

from shop.security import Role
from tests.factories import PASSWORD, make_product, make_user

BIN = Path(sys.executable).parent


@pytest.fixture
def spec(client):
    return client.get("/openapi.json").json


def operations(spec):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                yield path, method, operation


def test_the_document_is_valid_openapi(spec):
    validate(spec)
    assert "Idempotency-Key" in spec["info"]["description"]


def test_every_operation_has_a_unique_readable_id_and_says_who_may_call_it(spec):
    ids = [operation["operationId"] for _, _, operation in operations(spec)]
    assert len(ids) == len(set(ids))
    assert "postLogin" in ids and "getProductById" in ids
    for path, method, operation in operations(spec):
        if {"bearerAuth": []} in operation.get("security", []):
            assert operation["description"].startswith(("Needs", "Anyone")), (path, method)
    assert spec["paths"]["/api/v1/users"]["get"]["x-roles"] == ["admin"]


# Its view belongs to the recommendations work under way elsewhere; remove it with that merge.
def test_every_operation_has_a_summary_and_a_description(spec):
    lacking = {
        (path, method)
        for path, method, operation in operations(spec)
        if not operation.get("summary", "").strip() or not operation.get("description", "").strip()
    }
    assert not lacking, sorted(lacking)
    for path, _method, operation in operations(spec):
        if not operation.get("security"):
            # An operation without a token says who may call it all the same.
            assert operation["description"].startswith(("Anyone", "The ", "Stripe")), path


def test_notifications_have_their_own_tag_and_orders_a_typed_address(spec):
    assert spec["paths"]["/api/v1/notifications"]["get"]["tags"] == ["notifications"]
    address = spec["components"]["schemas"]["Order"]["properties"]["shipping_address"]
    assert address == {"$ref": "#/components/schemas/AddressFields"}
    assert "id" in spec["components"]["schemas"]["Product"]["required"]  # read-only: answers


@pytest.fixture
def generated(spec, tmp_path, monkeypatch):
    """A client generated from the document, importable as `shop_client`."""
    document = tmp_path / "openapi.json"
    document.write_text(json.dumps(spec))
    subprocess.run(
        [
            str(BIN / "openapi-python-client"),
            "generate",
            "--path",
            str(document),
            "--output-path",
            str(tmp_path / "shop_client"),
            "--meta",
            "none",
        ],
        check=True,
        capture_output=True,
        env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"},
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m == "shop_client" or m.startswith("shop_client.")]:
        del sys.modules[name]
    return importlib.import_module("shop_client")


def test_a_generated_client_logs_in_lists_orders_and_reads_a_csv_report(app, generated):
    from shop_client import AuthenticatedClient, Client  # noqa: PLC0415
    from shop_client.api.auth import post_login  # noqa: PLC0415
    from shop_client.api.orders import post_orders  # noqa: PLC0415
    from shop_client.api.products import get_products  # noqa: PLC0415
    from shop_client.api.reports import get_sales  # noqa: PLC0415
    from shop_client.models import AddressFields, Login, OrderCreate, OrderLineRequest  # noqa: PLC0415
    from shop_client.models.get_sales_format import GetSalesFormat  # noqa: PLC0415

    make_product(app, name="Teapot", price=Decimal("30.00"), stock=5)
    buyer = make_user(app)
    staff = make_user(app, role=Role.STAFF)
    transport = {"transport": httpx.WSGITransport(app=app)}
    anonymous = Client(base_url="http://shop", httpx_args=transport)

    def signed_in(user):
        tokens = post_login.sync(client=anonymous, body=Login(email=user.email, password=PASSWORD))
        return AuthenticatedClient(
            base_url="http://shop", token=tokens.access_token, httpx_args=transport
        )

    customer = signed_in(buyer)
    page = get_products.sync(client=customer, q="teapot")
    assert page.total == 1 and page.items[0].name == "Teapot" and page.links.next_ is None
    teapot = page.items[0]
    order = post_orders.sync(
        client=customer,
        body=OrderCreate(
            items=[OrderLineRequest(product_id=teapot.id, quantity=2)],
            shipping_address=AddressFields(
                line1="1 Main St", city="Springfield", postal_code="12345", country="US"
            ),
        ),
        idempotency_key="generated-1",
    )
    assert order.total == "60.00" and order.shipping_address.city == "Springfield"
    assert order.items[0].name == "Teapot" and order.status.value == "pending"
    csv = get_sales.sync(client=signed_in(staff), format_=GetSalesFormat.CSV)
    assert csv.splitlines()[0] == "period_start,orders,items,revenue"
