"""Every list answers one envelope, with links and a Link header; unknown query parameters are
a 422 naming them; a JSON body must say it is JSON (415)."""

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.factories import make_product, make_variant

API = "/api/v1"


def query(link):
    parts = urlsplit(link)
    return parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}


def test_links_in_the_envelope_and_the_link_header(client, app):
    for i in range(5):
        make_product(app, name=f"Lamp {i}", price=f"{i + 1}.00")
    for _ in range(2):  # the second answer comes from the cache: same links, same header
        response = client.get(f"{API}/products?sort=price&page=2&page_size=2")
        links = response.json["links"]
        assert query(links["self"]) == (
            f"{API}/products",
            {"sort": "price", "page": "2", "page_size": "2"},
        )
        assert query(links["first"])[1]["page"] == "1"
        assert query(links["last"])[1]["page"] == "3"
        assert query(links["next"])[1] == {"sort": "price", "page": "3", "page_size": "2"}
        assert query(links["prev"])[1]["page"] == "1"
        header = response.headers["Link"]
        for rel in ("self", "first", "last", "next", "prev"):
            assert f'<{links[rel]}>; rel="{rel}"' in header
    last = client.get(f"{API}/products?sort=price&page=3&page_size=2").json["links"]
    assert last["next"] is None and last["prev"] is not None
    first = client.get(f"{API}/products?page_size=50").json["links"]
    assert first["next"] is None and first["prev"] is None


def test_addresses_and_variants_answer_the_envelope(client, app, as_customer):
    product = make_product(app, stock=0)
    make_variant(app, product)
    variants = client.get(f"{API}/products/{product.id}/variants").json
    assert variants["total"] == 1 and len(variants["items"]) == 1 and "links" in variants
    address = {"line1": "1 Main St", "city": "X", "postal_code": "1", "country": "US"}
    client.post(f"{API}/addresses", headers=as_customer, json=address)
    addresses = client.get(f"{API}/addresses?page_size=1", headers=as_customer).json
    assert addresses["total"] == 1 and addresses["items"][0]["line1"] == "1 Main St"


@pytest.mark.parametrize(
    "path",
    ["/products?per_page=5", "/categories?colour=red", "/orders?foo=1", "/addresses?x=1"],
)
def test_unknown_query_parameters_are_a_422_naming_them(client, as_customer, path):
    response = client.get(f"{API}{path}", headers=as_customer)
    assert response.status_code == 422
    [name] = response.json["errors"]
    assert name in path


def test_a_body_that_is_not_declared_json_is_a_415(client, app, as_customer):
    product = make_product(app)
    response = client.post(
        f"{API}/cart/items",
        headers=as_customer,
        data=f'{{"product_id": {product.id}, "quantity": 1}}',
        content_type="text/plain",
    )
    assert response.status_code == 415
    assert response.mimetype == "application/problem+json"


def test_skus_are_unique_whatever_their_case(client, app, as_admin):
    product = make_product(app, sku="MUG-1", stock=0)
    body = {"sku": "mug-1", "name": "Mug", "price": "5.00"}
    assert client.post(f"{API}/products", headers=as_admin, json=body).status_code == 409
    variant = client.post(
        f"{API}/products/{product.id}/variants",
        headers=as_admin,
        json={"sku": "Mug-1", "name": "Big", "price": "6.00"},
    )
    assert variant.status_code == 409 and set(variant.json["errors"]) == {"sku"}
