"""What every answer gets at the edge (shop.edge), by its headers: compression (brotli or gzip,
JSON of 1 KiB or more, never images, PDFs or the streamed export), security headers (no-store
when the caller is named, CSP on HTML pages, HSTS in production); and the HTTP caching of public
catalog answers (shop.caching: a strong ETag from the cache versions, a 304 before the view
without a query, a write or a flash sale's start moves it). The API-wide limits:
tests/test_ratelimits.py."""

import base64
import gzip
import hashlib
import re
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlsplit

import brotli
import pytest

from shop.extensions import cache
from tests.factories import bearer, make_category, make_product
from tests.products.images import encoded, upload

API = "/api/v1"
SHIP_TO = {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}


@pytest.fixture
def catalog(app):
    """Enough products for a list page well over 1 KiB."""
    category = make_category(app, name="Lamps")
    return [
        make_product(
            app, name=f"Brass lamp {n}", description="Warm light. " * 20, category_id=category.id
        )
        for n in range(6)
    ]


def get(client, path, **headers):
    return client.get(path, headers=headers)


# Compression


def test_a_large_json_answer_is_compressed_as_the_client_prefers(client, catalog):
    plain = get(client, f"{API}/products")
    assert plain.status_code == 200 and "Content-Encoding" not in plain.headers
    assert len(plain.data) > 1024 and "Accept-Encoding" in plain.headers["Vary"]

    zipped = get(client, f"{API}/products", **{"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.data) == plain.data
    assert int(zipped.headers["Content-Length"]) == len(zipped.data) < len(plain.data) / 3

    both = get(client, f"{API}/products", **{"Accept-Encoding": "gzip, deflate, br"})
    assert both.headers["Content-Encoding"] == "br"
    assert brotli.decompress(both.data) == plain.data
    gzip_first = get(client, f"{API}/products", **{"Accept-Encoding": "br;q=0.5, gzip"})
    assert gzip_first.headers["Content-Encoding"] == "gzip"
    unknown = get(client, f"{API}/products", **{"Accept-Encoding": "zstd"})
    assert "Content-Encoding" not in unknown.headers
    # The same body again (compressed once per tag and encoding, then kept).
    assert get(client, f"{API}/products", **{"Accept-Encoding": "gzip"}).data == zipped.data


def test_small_answers_and_errors_under_1_kib_are_not_compressed(client, catalog):
    for path in ("/health", f"{API}/products/999999", f"{API}/categories"):
        answer = get(client, path, **{"Accept-Encoding": "gzip, br"})
        assert len(answer.data) < 1024 and "Content-Encoding" not in answer.headers, path


def test_every_answer_varies_on_accept_encoding_once_compressed_or_not(client, catalog):
    for path, headers in (
        (f"{API}/products", {}),  # a public catalog answer: Vary: Authorization as well
        (f"{API}/products", {"Accept-Encoding": "gzip"}),
        (f"{API}/products/999999", {"Accept-Encoding": "gzip"}),
        ("/health", {}),
    ):
        vary = [
            v.strip()
            for v in ",".join(get(client, path, **headers).headers.getlist("Vary")).split(",")
        ]
        assert vary.count("Accept-Encoding") == 1, (path, headers, vary)


def test_a_large_answer_of_another_2xx_is_compressed_too(client, as_admin):
    made = client.post(
        f"{API}/products",
        headers={**as_admin, "Accept-Encoding": "gzip"},
        json={"sku": "LONG-1", "name": "Long", "price": "1.00", "description": "Words. " * 400},
    )
    assert made.status_code == 201 and made.headers["Content-Encoding"] == "gzip"
    assert b"Words. " * 400 in gzip.decompress(made.data)


def test_images_are_never_compressed(client, app, as_admin):
    product = make_product(app)
    made = upload(client, as_admin, f"products/{product.id}/images", encoded("PNG", (800, 600)))
    assert made.status_code == 201, made.json
    for url in (made.json["url"], made.json["thumbnail_webp_url"]):
        image = client.get(urlsplit(url).path, headers={"Accept-Encoding": "gzip, br"})
        image.get_data()
        image.close()
        assert image.status_code == 200 and image.mimetype.startswith("image/")
        assert "Content-Encoding" not in image.headers
        assert image.headers.getlist("X-Content-Type-Options") == ["nosniff"]  # once


def test_an_invoice_pdf_is_never_compressed(client, app, as_customer, as_staff):
    product = make_product(app, price=Decimal("10.00"), stock=5)
    order = {"items": [{"product_id": product.id, "quantity": 1}], "shipping_address": SHIP_TO}
    made = client.post(f"{API}/orders", headers=as_customer, json=order)
    assert made.status_code == 201, made.json
    paid = client.post(
        f"{API}/orders/{made.json['id']}/payments",
        headers=as_staff,
        json={"amount": made.json["total"], "method": "card"},
    )
    assert paid.status_code == 201, paid.json
    pdf = client.get(
        f"{API}/orders/{made.json['id']}/invoice",
        headers={**as_customer, "Accept-Encoding": "gzip, br"},
    )
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf" and len(pdf.data) > 1024
    assert "Content-Encoding" not in pdf.headers and pdf.data.startswith(b"%PDF-")


def test_the_csv_export_still_streams_uncompressed(client, catalog, as_staff):
    export = client.get(
        f"{API}/products/export",
        headers={**as_staff, "Accept-Encoding": "gzip, br"},
        buffered=False,
    )
    try:
        assert export.status_code == 200 and export.is_streamed
        assert "Content-Encoding" not in export.headers and "Content-Length" not in export.headers
        first = next(iter(export.response))
        assert first.startswith(b"sku,")
    finally:
        export.close()


# Security headers


def test_every_answer_says_nosniff_and_no_referrer(client, catalog):
    for path in ("/health", f"{API}/products", f"{API}/products/999999", "/openapi.json"):
        answer = get(client, path)
        assert answer.headers["X-Content-Type-Options"] == "nosniff", path
        assert answer.headers["Referrer-Policy"] == "no-referrer", path
        assert "Content-Security-Policy" not in answer.headers, path  # JSON: no page to guard
        assert "Strict-Transport-Security" not in answer.headers, path  # not production


def _inline_script_hashes(html):
    return {
        "'sha256-" + base64.b64encode(hashlib.sha256(script).digest()).decode() + "'"
        for script in re.findall(rb"<script>(.*?)</script>", html, re.DOTALL)
    }


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_documentation_pages_have_a_csp_that_allows_what_they_load(client, page):
    answer = get(client, page)
    assert answer.status_code == 200 and answer.mimetype == "text/html"
    policy = dict(
        (part.split()[0], part.split()[1:])
        for part in answer.headers["Content-Security-Policy"].split("; ")
    )
    assert policy["default-src"] == ["'self'"] and policy["frame-ancestors"] == ["'none'"]
    # Their scripts and styles come from this server (nothing from a CDN), their inline
    # script is allowed by its hash alone.
    for source in re.findall(rb'(?:src|href)="([^"]+)"', answer.data):
        assert source.startswith(b"/docs/assets/"), source
        asset = client.get(source.decode())
        asset.close()  # a file's answer holds it open until closed
        assert asset.status_code == 200
    assert set(policy["script-src"]) == {"'self'"} | _inline_script_hashes(answer.data)
    assert "'unsafe-inline'" not in policy["script-src"]
    assert "blob:" in policy["worker-src"]  # ReDoc's worker


def test_answers_to_a_named_caller_are_never_stored(client, app, as_customer, catalog):
    me = client.get(f"{API}/auth/me", headers=as_customer)
    assert me.status_code == 200 and me.headers["Cache-Control"] == "no-store"
    listed = client.get(f"{API}/products", headers=as_customer)
    assert listed.headers["Cache-Control"] == "no-store" and listed.headers["ETag"]
    refused = client.get(f"{API}/auth/me", headers=bearer("not-a-token"))
    assert refused.status_code == 401 and refused.headers["Cache-Control"] == "no-store"
    cart = client.post(f"{API}/carts").json["token"]
    guest = client.get(f"{API}/cart", headers={"X-Cart-Token": cart})
    assert guest.status_code == 200 and guest.headers["Cache-Control"] == "no-store"
    anonymous = get(client, "/health")
    assert "Cache-Control" not in anonymous.headers


def test_hsts_only_in_production(other_app):
    production = other_app(SHOP_ENV="production").test_client()
    for path in ("/health", f"{API}/products", "/docs"):
        hsts = production.get(path).headers["Strict-Transport-Security"]
        assert hsts == "max-age=31536000; includeSubDomains", path


# HTTP caching of public catalog answers


def test_public_catalog_answers_carry_a_strong_etag_and_cache_control(client, app, catalog):
    product, category = catalog[0], catalog[0].category_id
    for path in (
        f"{API}/products",
        f"{API}/products?page_size=2&sort=-price",
        f"{API}/products/{product.id}",
        f"{API}/categories",
        f"{API}/categories/{category}",
        f"{API}/categories/{category}/products",
        f"{API}/products/suggestions?q=bras",
    ):
        answer = get(client, path)
        assert answer.status_code == 200, path
        tag = answer.headers["ETag"]
        assert re.fullmatch(r'"[0-9a-f]{24}"', tag), (path, tag)  # strong: no W/
        assert answer.headers["Cache-Control"] == "public, max-age=30", path
        assert {"Authorization", "Accept-Encoding"} <= {
            v.strip() for v in answer.headers["Vary"].split(",")
        }
        assert get(client, path).headers["ETag"] == tag  # the same answer, the same tag
    tags = {get(client, path).headers["ETag"] for path in (f"{API}/products", f"{API}/categories")}
    assert len(tags) == 2
    assert "ETag" not in get(client, f"{API}/products/999999").headers  # errors are not tagged
    assert "ETag" not in get(client, f"{API}/products?page_size=1000").headers


def test_catalog_max_age_is_a_setting(other_app, catalog):
    answer = other_app(CATALOG_MAX_AGE=120).test_client().get(f"{API}/products")
    assert answer.headers["Cache-Control"] == "public, max-age=120"


def test_if_none_match_with_the_current_tag_is_a_304_without_a_query(
    client, catalog, count_queries
):
    path = f"{API}/products/{catalog[0].id}"
    tag = get(client, path).headers["ETag"]
    with count_queries() as counter:
        again = get(client, path, **{"If-None-Match": tag})
        weakly = get(client, path, **{"If-None-Match": f'"other", W/{tag}'})
        anything = get(client, path, **{"If-None-Match": "*"})
    assert counter.count == 0
    for answer in (again, weakly, anything):
        assert answer.status_code == 304 and answer.data == b""
        assert answer.headers["ETag"] == tag and "Content-Type" not in answer.headers
        assert answer.headers["Cache-Control"] == "public, max-age=30"
    assert get(client, path, **{"If-None-Match": '"stale"'}).status_code == 200


def test_a_304_reads_the_versions_and_the_tag_not_the_cached_body(
    client, app, catalog, monkeypatch
):
    path = f"{API}/products"
    tag = get(client, path).headers["ETag"]
    reads = []
    with app.app_context():
        backend = cache.cache
    read = backend.get_many

    def counted(*keys):
        reads.append(keys)
        return read(*keys)

    monkeypatch.setattr(backend, "get_many", counted)
    assert get(client, path, **{"If-None-Match": tag}).status_code == 304
    assert len(reads) == 1 and not any(key.startswith("resp:") for key in reads[0])
    reads.clear()
    assert get(client, path).status_code == 200  # the body comes with the versions
    assert len(reads) == 1 and any(key.startswith("resp:") for key in reads[0])
    reads.clear()
    stale = get(client, path, **{"If-None-Match": '"stale"'})  # then the entry is read
    assert stale.status_code == 200 and stale.headers["ETag"] == tag and len(reads) == 2


def test_each_encoding_has_its_own_tag_and_304(client, catalog, count_queries):
    path = f"{API}/products"
    plain = get(client, path).headers["ETag"]
    zipped = get(client, path, **{"Accept-Encoding": "gzip"})
    assert zipped.headers["ETag"] == plain[:-1] + ':gzip"'
    with count_queries() as counter:
        hit = get(
            client, path, **{"Accept-Encoding": "gzip", "If-None-Match": zipped.headers["ETag"]}
        )
    assert hit.status_code == 304 and hit.headers["ETag"] == zipped.headers["ETag"]
    assert counter.count == 0
    # The identity tag is another representation's: a gzip client holding it gets the body.
    other = get(client, path, **{"Accept-Encoding": "gzip", "If-None-Match": plain})
    assert other.status_code == 200 and other.headers["Content-Encoding"] == "gzip"
    # A small answer is sent as it is, so its tag has no encoding.
    small = f"{API}/categories"
    tag = get(client, small, **{"Accept-Encoding": "gzip"}).headers["ETag"]
    assert ":" not in tag
    assert get(client, small, **{"Accept-Encoding": "br", "If-None-Match": tag}).status_code == 304


def test_a_write_changes_the_tag_at_once(client, catalog, as_admin):
    product = catalog[0]
    paths = (f"{API}/products/{product.id}", f"{API}/products", f"{API}/categories")
    before = {path: get(client, path).headers["ETag"] for path in paths}
    patched = client.patch(
        f"{API}/products/{product.id}", headers=as_admin, json={"price": "12.50"}
    )
    assert patched.status_code == 200
    for path in paths:
        after = get(client, path, **{"If-None-Match": before[path]})
        assert after.status_code == 200, path
        assert after.headers["ETag"] != before[path]
    assert get(client, paths[0]).json["price"] == "12.50"


def test_a_flash_sale_starting_changes_the_tag_without_a_write(client, app, catalog, as_admin):
    product = catalog[0]
    path = f"{API}/products/{product.id}"
    starts = datetime.now(UTC) + timedelta(seconds=3)
    sale = {
        "name": "Lamp hour",
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=1)).isoformat(),
        "discount_percent": 20,
        "product_ids": [product.id],
    }
    assert client.post(f"{API}/flash-sales", headers=as_admin, json=sale).status_code == 201
    before = get(client, path)
    assert before.json["sale_price"] is None
    time.sleep(max(0.0, (starts - datetime.now(UTC)).total_seconds()) + 0.2)
    after = get(client, path, **{"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200 and after.json["sale_price"] is not None
    assert after.headers["ETag"] != before.headers["ETag"]


def test_staff_and_anonymous_answers_have_their_own_tags(client, catalog, as_admin):
    path = f"{API}/products"
    anonymous = get(client, path).headers["ETag"]
    admin = client.get(path, headers=as_admin)
    assert admin.headers["ETag"] != anonymous and admin.headers["Cache-Control"] == "no-store"
    refused = client.get(path, headers={**as_admin, "If-None-Match": anonymous})
    assert refused.status_code == 200
    assert (
        client.get(path, headers={**as_admin, "If-None-Match": admin.headers["ETag"]}).status_code
        == 304
    )


def test_without_the_response_cache_answers_are_tagged_by_their_body(other_app, catalog):
    client = other_app(CACHE_RESPONSES=False).test_client()
    path = f"{API}/products"
    first = get(client, path)
    tag = first.headers["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{24}"', tag) and get(client, path).headers["ETag"] == tag
    again = get(client, path, **{"If-None-Match": tag})
    assert again.status_code == 304 and again.data == b""


def test_other_answers_are_not_tagged_by_the_catalog(client, as_customer, catalog):
    for path in (f"{API}/auth/me", f"{API}/cart"):
        answer = client.get(path, headers=as_customer)
        assert answer.status_code == 200 and "ETag" not in answer.headers, path
