"""The seller role across the whole API: a seller is a customer everywhere but where the
contract gives sellers more (their products, their stock, /seller/...). Every operation of the
OpenAPI document is called as a customer and as a seller, each with a fresh account, and must
answer both alike, or, where sellers may do more, refuse the customer and not the seller."""

import re

import pytest

from shop import create_app
from shop.security import Role
from tests.factories import headers_for, make_user

SELLERS_MORE = {
    ("post", "/api/v1/products"),
    ("patch", "/api/v1/products/{product_id}"),
    ("delete", "/api/v1/products/{product_id}"),
    ("post", "/api/v1/products/{product_id}/variants"),
    ("patch", "/api/v1/products/{product_id}/variants/{variant_id}"),
    ("delete", "/api/v1/products/{product_id}/variants/{variant_id}"),
    ("post", "/api/v1/products/{product_id}/images"),
    ("patch", "/api/v1/products/{product_id}/images/{image_id}"),
    ("delete", "/api/v1/products/{product_id}/images/{image_id}"),
    ("post", "/api/v1/inventory/transactions"),
    ("get", "/api/v1/seller/orders"),
    ("get", "/api/v1/seller/reports/sales"),
}


def _operations():
    app = create_app({"TESTING": True})
    with app.test_request_context():
        spec = app.test_client().get("/openapi.json").json
    for path, item in sorted(spec["paths"].items()):
        for method, operation in sorted(item.items()):
            if method in {"get", "post", "put", "patch", "delete"}:
                yield method, path, operation.get("x-roles")


OPERATIONS = list(_operations())


def test_the_document_gives_sellers_what_customers_have_and_no_more_but_theirs():
    for method, path, roles in OPERATIONS:
        if roles is None:
            continue  # anyone
        has_seller, has_customer = "seller" in roles, "customer" in roles
        if (method, path) in SELLERS_MORE:
            assert has_seller and not has_customer, (method, path, roles)
        else:
            assert has_seller == has_customer, (method, path, roles)


@pytest.mark.parametrize(("method", "path", "roles"), OPERATIONS, ids=lambda v: str(v))
def test_a_seller_is_answered_as_a_customer(client, app, method, path, roles):
    url = re.sub(r"\{[^}]+\}", "999999", path)
    body = {} if method in {"post", "put", "patch"} else None

    def call(role):
        headers = headers_for(app, make_user(app, role=role))
        return client.open(url, method=method.upper(), headers=headers, json=body).status_code

    as_customer, as_seller = call(Role.CUSTOMER), call(Role.SELLER)
    if (method, path) in SELLERS_MORE:
        assert as_customer == 403 and as_seller != 403, (as_customer, as_seller)
    else:
        assert as_customer == as_seller, (as_customer, as_seller)
    assert as_seller < 500
