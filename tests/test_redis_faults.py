"""A Redis of shop's own, hung (SIGSTOP) or restarted from its own persistence: reads stay
fast, readiness says so, and no stale answer is served afterwards."""

import time
from decimal import Decimal

from rq import Queue

from shop import caching, outbox
from shop.queues import DEFAULT_QUEUE, AppWorker
from shop.security import Role
from tests.factories import headers_for, make_product, make_user

API = "/api/v1"
SHIP_TO = {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}


def app_on(other_app, redis):
    return other_app(
        REDIS_URL=redis.url, CACHE_REDIS_URL=redis.url, RATELIMIT_STORAGE_URI=redis.url
    )


def timed(call):
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def test_a_hung_redis_costs_reads_one_short_timeout_and_readiness_says_so(other_app, private_redis):
    redis = private_redis()
    app = app_on(other_app, redis)
    client = app.test_client()
    product = make_product(app)
    assert client.get(f"{API}/products/{product.id}").status_code == 200  # cached now
    redis.pause()
    try:
        first, took = timed(lambda: client.get(f"{API}/products/{product.id}"))
        assert first.status_code == 200 and took < 1.0
        for path in (f"{API}/products/{product.id}", f"{API}/products", f"{API}/categories"):
            response, took = timed(lambda path=path: client.get(path))
            assert response.status_code == 200 and took < 0.3, (path, took)
        ready, took = timed(lambda: client.get("/health/ready"))
        assert ready.status_code == 503 and "redis" in ready.json["errors"] and took < 1.5
    finally:
        redis.resume()
    time.sleep(0.1)
    assert client.get("/health/ready").status_code == 200


def test_a_hung_redis_costs_the_first_order_three_short_timeouts_and_all_are_emailed_after(
    other_app, private_redis, mailbox
):
    redis = private_redis()
    app = app_on(other_app, redis)
    client = app.test_client()
    product = make_product(app, stock=100)
    buyer = headers_for(app, make_user(app))
    order = {"items": [{"product_id": product.id, "quantity": 1}], "shipping_address": SHIP_TO}
    redis.pause()
    try:
        first, took = timed(lambda: client.post(f"{API}/orders", headers=buyer, json=order))
        # The read of the flash sales running, the bump's and one hand-over's timeout (and
        # the API-wide limiter's, a tenth of one: shop.ratelimits).
        assert first.status_code == 201 and took < 1.95, took  # a fourth would make 2.0 s
        for _ in range(3):  # Redis is known down: neither is tried again for a while
            placed, took = timed(lambda: client.post(f"{API}/orders", headers=buyer, json=order))
            assert placed.status_code == 201 and took < 0.3, took
    finally:
        redis.resume()
    with app.app_context():
        assert outbox.relay() >= 4  # every confirmation waited for the relay; none was lost
        connection = redis.client()
        queue = Queue(DEFAULT_QUEUE, connection=connection)
        AppWorker([queue], connection=connection, app=app).work(burst=True)
    subjects = [message["Subject"] for message in mailbox.messages]
    assert sum(subject.endswith(" received") for subject in subjects) == 4


def test_a_hung_redis_costs_a_stock_movement_with_side_effects_two_timeouts_at_most(
    other_app, private_redis
):
    # A sale below the low-stock threshold has three things for Redis after its commit: the
    # cache bump, the bump's outbox message and the low-stock message (three timeouts before).
    redis = private_redis()
    app = app_on(other_app, redis)
    product = make_product(app, stock=100, low_stock_threshold=10)
    staff = headers_for(app, make_user(app, role=Role.STAFF))
    move = {"product_id": product.id, "type": "OUT", "quantity": 95}
    redis.pause()
    try:
        moved, took = timed(
            lambda: app.test_client().post(
                f"{API}/inventory/transactions", headers=staff, json=move
            )
        )
    finally:
        redis.resume()
    assert moved.status_code == 201 and took < 1.45, took  # a third would make 1.5 s


def restarted_after_a_write_it_missed(other_app, private_redis):
    """A cached product whose price changed while Redis was down; Redis then came back from
    its AOF with the old answer and the old version."""
    redis = private_redis(appendonly=True)
    app = app_on(other_app, redis)
    client = app.test_client()
    product = make_product(app, price=Decimal("10.00"))
    admin = headers_for(app, make_user(app, role=Role.ADMIN))
    assert client.get(f"{API}/products/{product.id}").json["price"] == "10.00"  # cached
    redis.kill()
    patched = client.patch(f"{API}/products/{product.id}", headers=admin, json={"price": "12.00"})
    assert patched.status_code == 200  # committed; the cache could not be told
    redis.start()
    return app, redis, f"{API}/products/{product.id}"


def test_the_process_that_could_not_bump_reads_no_stale_answer(other_app, private_redis):
    app, _, path = restarted_after_a_write_it_missed(other_app, private_redis)
    assert app.test_client().get(path).json["price"] == "12.00"


def test_every_other_process_reads_no_stale_answer_once_the_outbox_bumps(
    other_app, private_redis, monkeypatch
):
    app, redis, path = restarted_after_a_write_it_missed(other_app, private_redis)
    monkeypatch.setattr(caching, "_unbumped", set())  # as in a process that never failed
    monkeypatch.setattr(caching, "_unhealthy_until", 0.0)
    with app.app_context():
        assert outbox.relay() == 1  # the failed bump, kept as an outbox message
        connection = redis.client()
        queue = Queue(DEFAULT_QUEUE, connection=connection)
        AppWorker([queue], connection=connection, app=app).work(burst=True)
    assert app.test_client().get(path).json["price"] == "12.00"
