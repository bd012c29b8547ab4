"""The API-wide rate limits (shop.ratelimits): per user by the token, per address behind
TRUSTED_PROXIES, their RateLimit-* headers and the 429 with Retry-After, the answers left
uncounted, and counting in memory while Redis is down."""

import time

import pytest

from shop import ratelimits
from shop.config import ConfigError
from shop.extensions import limiter
from tests.conftest import statements_of
from tests.factories import bearer, headers_for, make_category, make_product, make_user

API = "/api/v1"
RATE_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")
# Per day: a window aligned to the clock ends at midnight UTC, not during a test.
LOW = {"RATE_LIMIT_ANON": "3 per day", "RATE_LIMIT_USER": "5 per day"}


@pytest.fixture
def catalog(app):
    category = make_category(app, name="Lamps")
    return [make_product(app, name=f"Brass lamp {n}", category_id=category.id) for n in range(2)]


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
    storage = limited_app.extensions[ratelimits.EXTENSION].storage
    tried = []
    counted = storage.incr

    def incr(*args, **kwargs):
        tried.append(args)
        return counted(*args, **kwargs)

    monkeypatch.setattr(storage, "incr", incr)
    redis.pause()
    try:
        started = time.monotonic()
        first = client.get(f"{API}/products")
        assert first.status_code == 200 and time.monotonic() - started < 0.5  # 0.1 s, not 0.5 s
        assert first.headers["RateLimit-Remaining"] == "2"  # counted in memory from zero
        assert client.get(f"{API}/products").status_code == 200
        assert client.get(f"{API}/products").status_code == 200
        assert client.get(f"{API}/products").status_code == 429  # still limited
        assert len(tried) == 1  # Redis is not tried again meanwhile (for RETRY_AFTER)
    finally:
        redis.resume()
    limited_app.extensions[ratelimits.EXTENSION].down_until = 0.0  # as RETRY_AFTER later
    back = client.get(f"{API}/products")
    # Redis's count again: the first, this one and (most likely) the INCR that timed out,
    # which Redis ran when it woke up.
    assert back.status_code == 200 and back.headers["RateLimit-Remaining"] in ("1", "0")


@pytest.mark.parametrize("name", ["RATE_LIMIT_ANON", "RATE_LIMIT_USER"])
def test_a_limit_that_is_not_one_stops_the_app_from_starting(other_app, name):
    with pytest.raises(ConfigError, match=name):
        other_app(**{name: "lots"})
