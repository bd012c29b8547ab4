"""What every answer gets at the edge, by its headers: compression (brotli or gzip, JSON of
1 KiB or more, never images, PDFs or the streamed export), security headers (no-store when the
caller is named, CSP on HTML pages, HSTS in production), the API-wide rate limits (per user, per
address behind TRUSTED_PROXIES, in memory while Redis is down) and HTTP caching of public
catalog answers (strong ETag from the cache versions, 304 before the view, a write moves it)."""

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

from shop import ratelimits
from shop.extensions import limiter
from tests.conftest import statements_of
from tests.factories import bearer, headers_for, make_category, make_product, make_user
from tests.products.images import encoded, upload

API = "/api/v1"
SHIP_TO = {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}
RATE_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")
# Per day: a window aligned to the clock ends at midnight UTC, not during a test.
LOW = {"RATE_LIMIT_ANON": "3 per day", "RATE_LIMIT_USER": "5 per day"}


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


# API-wide rate limits


def limited(other_app, **settings):
    return other_app(**{**LOW, **settings}).test_client()


def test_anonymous_calls_are_limited_per_address_with_their_headers(other_app, catalog):
    client = limited(other_app)
    for left in (2, 1, 0):
        answer = client.get(f"{API}/products")
        assert answer.status_code == 200
        assert answer.headers["RateLimit-Limit"] == "3"
        assert answer.headers["RateLimit-Remaining"] == str(left)
        assert 0 < int(answer.headers["RateLimit-Reset"]) <= 86400
        assert "Retry-After" not in answer.headers
    blocked = client.get(f"{API}/products/{catalog[0].id}")
    assert blocked.status_code == 429 and blocked.mimetype == "application/problem+json"
    assert blocked.json["status"] == 429 and blocked.json["request_id"]
    assert blocked.headers["RateLimit-Remaining"] == "0"
    assert 0 < int(blocked.headers["Retry-After"]) <= 86400
    assert abs(int(blocked.headers["Retry-After"]) - int(blocked.headers["RateLimit-Reset"])) <= 1
    # Another address has its own count.
    elsewhere = client.get(f"{API}/products", environ_base={"REMOTE_ADDR": "198.51.100.9"})
    assert elsewhere.status_code == 200 and elsewhere.headers["RateLimit-Remaining"] == "2"


def test_a_user_is_limited_by_the_token_apart_from_the_address(other_app, app, catalog):
    client = limited(other_app)
    alice, bob = (headers_for(app, make_user(app)) for _ in range(2))
    for _ in range(3):
        assert client.get(f"{API}/products").status_code == 200
    assert client.get(f"{API}/products").status_code == 429  # the address's budget is spent
    for left in (4, 3, 2, 1, 0):
        answer = client.get(f"{API}/products", headers=alice)
        assert answer.status_code == 200 and answer.headers["RateLimit-Limit"] == "5"
        assert answer.headers["RateLimit-Remaining"] == str(left)
    assert client.get(f"{API}/auth/me", headers=alice).status_code == 429
    assert client.get(f"{API}/auth/me", headers=bob).status_code == 200  # Bob's own budget
    # A token that does not verify counts against the address (spent): a 429 before the 401.
    assert client.get(f"{API}/auth/me", headers=bearer("forged")).status_code == 429


def test_the_user_is_read_from_the_token_without_a_query(other_app, app, catalog):
    limited_app = other_app(**LOW)
    client = limited_app.test_client()
    user = headers_for(app, make_user(app))
    client.get(f"{API}/products", headers=user)  # cached now
    with statements_of(limited_app) as counter:
        answer = client.get(f"{API}/products", headers=user)
    assert answer.status_code == 200 and answer.headers["RateLimit-Remaining"] == "3"
    assert counter.count == 1  # the view's own token check; the limiter asked nothing


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/health"),
        ("get", "/health/ready"),
        ("get", "/metrics"),
        ("get", "/docs"),
        ("get", "/redoc"),
        ("get", "/openapi.json"),
        ("get", "/"),
        ("post", f"{API}/payments/webhook"),
        ("options", f"{API}/products"),
    ],
)
def test_exempt_answers_carry_no_limit_and_are_never_refused(other_app, method, path):
    client = limited(other_app)
    for _ in range(5):
        answer = getattr(client, method)(path, headers={"Origin": "https://shop.example"})
        assert answer.status_code != 429
        assert not any(header in answer.headers for header in RATE_HEADERS), path


def test_limits_are_per_client_behind_trusted_proxies(other_app, catalog):
    proxied = limited(other_app, TRUSTED_PROXIES=1)

    def via(client, address):
        return client.get(f"{API}/products", headers={"X-Forwarded-For": address})

    for _ in range(3):
        assert via(proxied, "203.0.113.7").status_code == 200
    assert via(proxied, "203.0.113.7").status_code == 429
    assert via(proxied, "203.0.113.8").status_code == 200  # the proxy's other client
    # Trusting no proxy, a forged X-Forwarded-For changes nothing: the peer is counted.
    direct = limited(other_app)
    for n in range(3):
        assert via(direct, f"192.0.2.{n}").status_code == 200
    assert via(direct, "192.0.2.99").status_code == 429


@pytest.fixture
def restore_limiter(app):
    """flask-limiter's Limiter is one object for every app: put its storage back on the test
    Redis after a test that gave it a Redis of its own."""
    yield
    limiter.init_app(app)


def test_while_redis_is_down_limits_are_counted_in_memory(
    other_app, private_redis, catalog, monkeypatch, restore_limiter
):
    redis = private_redis()
    limited_app = other_app(**LOW, RATELIMIT_STORAGE_URI=redis.url)
    client = limited_app.test_client()
    assert client.get(f"{API}/products").headers["RateLimit-Remaining"] == "2"  # on Redis
    redis.pause()
    try:
        started = time.monotonic()
        first = client.get(f"{API}/products")
        assert first.status_code == 200 and time.monotonic() - started < 0.5
        assert first.headers["RateLimit-Remaining"] == "2"  # counted in memory from zero
        started = time.monotonic()
        assert client.get(f"{API}/products").status_code == 200
        assert client.get(f"{API}/products").status_code == 200
        assert client.get(f"{API}/products").status_code == 429  # still limited
        assert time.monotonic() - started < 0.3  # Redis is not tried again meanwhile
    finally:
        redis.resume()
    limited_app.extensions[ratelimits.EXTENSION].down_until = 0.0  # as RETRY_AFTER later
    back = client.get(f"{API}/products")
    # Redis's count again: the first, this one and (most likely) the INCR that timed out,
    # which Redis ran when it woke up.
    assert back.status_code == 200 and back.headers["RateLimit-Remaining"] in ("1", "0")


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
    starts = datetime.now(UTC) + timedelta(seconds=1.5)
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
