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


def test_processes_share_their_counts_through_redis(other_app, catalog):
    one, two = (other_app(**LOW).test_client() for _ in range(2))  # two gunicorn workers, say
    assert one.get(f"{API}/products").headers["RateLimit-Remaining"] == "2"
    assert two.get(f"{API}/products").headers["RateLimit-Remaining"] == "1"  # read at its sync
    time.sleep(ratelimits.SYNC_SECONDS)  # the next hit of each process syncs
    assert one.get(f"{API}/products").headers["RateLimit-Remaining"] == "0"
    time.sleep(ratelimits.SYNC_SECONDS)
    assert two.get(f"{API}/products").status_code == 429


def test_a_request_makes_no_redis_round_trip_of_its_own(other_app, catalog):
    limited_app = other_app(**{**LOW, "RATE_LIMIT_ANON": "100 per day"})
    client = limited_app.test_client()
    counts = limited_app.extensions[ratelimits.EXTENSION].counts
    syncs = []
    sync = counts.sync
    counts.sync = lambda: syncs.append(1) or sync()
    for left in range(99, 89, -1):
        assert client.get(f"{API}/products").headers["RateLimit-Remaining"] == str(left)
    assert len(syncs) <= 2  # the first hit's, and one more if 0.1 s went by


def test_while_redis_is_down_limits_are_counted_in_memory_and_sent_after(
    other_app, private_redis, catalog, restore_limiter
):
    redis = private_redis()
    limited_app = other_app(**LOW, RATELIMIT_STORAGE_URI=redis.url)
    client = limited_app.test_client()
    counts = limited_app.extensions[ratelimits.EXTENSION].counts
    assert client.get(f"{API}/products").headers["RateLimit-Remaining"] == "2"  # on Redis
    tried = []
    pipeline = counts.redis.pipeline
    counts.redis.pipeline = lambda **kwargs: tried.append(1) or pipeline(**kwargs)
    redis.pause()
    try:
        for left in ("1", "0"):
            time.sleep(ratelimits.SYNC_SECONDS)  # a sync is due
            started = time.monotonic()
            answer = client.get(f"{API}/products")
            assert answer.status_code == 200 and time.monotonic() - started < 0.5  # 0.05 s
            assert answer.headers["RateLimit-Remaining"] == left  # counted on from Redis's
        time.sleep(ratelimits.SYNC_SECONDS)
        assert client.get(f"{API}/products").status_code == 429  # still limited
        assert len(tried) == 1  # Redis is not tried again meanwhile (for RETRY_AFTER)
    finally:
        redis.resume()
    counts.down_until = 0.0  # as RETRY_AFTER later
    time.sleep(ratelimits.SYNC_SECONDS)
    assert client.get(f"{API}/products").status_code == 429
    key = next(iter(counts.known))
    # Redis was told what it missed: the four hits (or five, when the batch that timed out
    # ran as Redis woke up).
    assert int(redis.client().get(key)) in (5, 6)


@pytest.mark.parametrize("name", ["RATE_LIMIT_ANON", "RATE_LIMIT_USER"])
def test_a_limit_that_is_not_one_stops_the_app_from_starting(other_app, name):
    with pytest.raises(ConfigError, match=name):
        other_app(**{name: "lots"})
