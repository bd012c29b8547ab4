"""Interactions: product views buffered in Redis (one RPUSH, no write on the read), cart and
wishlist adds and paid purchases recorded by subscribers, written in bulk by the job (once,
however often it runs), anonymous sessions given to the account that logs in with them; a
Redis that is down drops views without failing the read."""

import time

from redis import Redis

from shop import tracking
from tests.conftest import TEST_REDIS_URL
from tests.factories import PASSWORD, headers_for, make_product, make_user
from tests.recommendations.helpers import API, SESSION, flush, interactions, order, pay


def test_views_of_customers_and_sessions_are_buffered_then_written(
    client, app, customer, as_customer, count_queries
):
    product = make_product(app)
    with count_queries() as counter:
        assert client.get(f"{API}/products/{product.id}", headers=as_customer).status_code == 200
    assert not any(s.lstrip().upper().startswith("INSERT") for s in counter.statements)
    # The cached answer counts too; an anonymous client counts with its session id only.
    client.get(f"{API}/products/{product.id}", headers=as_customer)
    client.get(f"{API}/products/{product.id}", headers={"X-Session-ID": SESSION})
    client.get(f"{API}/products/{product.id}")
    client.get(f"{API}/products/{product.id}", headers={"X-Session-ID": "short"})
    client.get(f"{API}/products/{product.id}", headers={"X-Session-ID": "bad id with spaces"})
    client.get(f"{API}/products/999999")
    with app.app_context():
        assert app.extensions["tracking"].buffer  # gathered, sent in batches
        tracking.flush()
    assert Redis.from_url(TEST_REDIS_URL).llen(tracking.FACTS) == 3
    assert interactions(app) == []
    summary = flush(app)
    assert summary["interactions"] == 3 and summary["batches"] == 1
    assert interactions(app) == [
        (customer.id, None, product.id, "view", None),
        (customer.id, None, product.id, "view", None),
        (None, SESSION, product.id, "view", None),
    ]
    assert flush(app)["interactions"] == 0  # nothing twice


def test_cart_and_wishlist_adds_and_paid_purchases_are_recorded(
    client, app, customer, as_customer, as_staff
):
    lamp, mug = make_product(app, stock=50), make_product(app, stock=50)
    add = {"product_id": lamp.id, "quantity": 2}
    assert client.post(f"{API}/cart/items", headers=as_customer, json=add).status_code == 201
    assert client.put(f"{API}/wishlist/{mug.id}", headers=as_customer).status_code in (200, 201)
    client.put(f"{API}/wishlist/{mug.id}", headers=as_customer)  # already there: no new fact
    placed = order(client, as_customer, lamp, mug, quantity=3)
    flush(app)
    assert interactions(app) == [
        (customer.id, None, lamp.id, "cart_add", 2),
        (customer.id, None, mug.id, "wishlist_add", None),
    ]  # a pending order is no purchase yet
    pay(client, as_staff, placed)
    flush(app)
    assert sorted(interactions(app)[2:]) == sorted(
        [(customer.id, None, lamp.id, "purchase", 3), (customer.id, None, mug.id, "purchase", 3)]
    )


def test_a_guest_cart_add_counts_under_its_session(client, app):
    product = make_product(app)
    token = client.post(f"{API}/carts").json["token"]
    headers = {"X-Cart-Token": token, "X-Session-ID": SESSION}
    add = {"product_id": product.id, "quantity": 1}
    assert client.post(f"{API}/cart/items", headers=headers, json=add).status_code == 201
    refused = {"product_id": product.id, "quantity": 500}  # more than its stock
    assert client.post(f"{API}/cart/items", headers=headers, json=refused).status_code == 409
    flush(app)
    assert interactions(app) == [(None, SESSION, product.id, "cart_add", 1)]


def test_a_login_with_the_session_takes_over_its_interactions(client, app):
    user = make_user(app, email="viewer@example.com")
    seen, other = make_product(app), make_product(app)
    client.get(f"{API}/products/{seen.id}", headers={"X-Session-ID": SESSION})
    client.get(f"{API}/products/{other.id}", headers={"X-Session-ID": "someone-else-123"})
    flush(app)  # written before the login: merged by the login's own fact later
    client.get(f"{API}/products/{other.id}", headers={"X-Session-ID": SESSION})
    login = client.post(
        f"{API}/auth/login",
        headers={"X-Session-ID": SESSION},
        json={"email": "viewer@example.com", "password": PASSWORD},
    )
    assert login.status_code == 200
    assert flush(app)["sessions_merged"] == 2
    assert interactions(app) == [
        (user.id, SESSION, seen.id, "view", None),
        (None, "someone-else-123", other.id, "view", None),
        (user.id, SESSION, other.id, "view", None),
    ]
    # A view of the session another process sent after the login: the user's too.
    late = {"kind": "view", "at": time.time() - 5, "product_id": seen.id, "session_id": SESSION}
    Redis.from_url(TEST_REDIS_URL).rpush(tracking.FACTS, tracking.json.dumps(late))
    assert flush(app)["sessions_merged"] == 1
    assert interactions(app)[-1] == (user.id, SESSION, seen.id, "view", None)


def test_a_batch_taken_but_not_cleared_is_written_once(client, app, as_customer):
    product = make_product(app)
    for _ in range(3):
        client.get(f"{API}/products/{product.id}", headers=as_customer)
    with app.app_context():
        taken = tracking.take(10)  # a run that died before writing: the batch waits
        assert len(taken.facts) == 3
    assert flush(app)["interactions"] == 3
    with app.app_context():
        again = tracking.take(10)
        assert again.token is None and again.facts == []
    # A run that wrote it and died before clearing it: the next one clears it, writing nothing.
    client.get(f"{API}/products/{product.id}", headers=as_customer)
    with app.app_context():
        batch = tracking.take(10)
    flush(app)
    redis = Redis.from_url(TEST_REDIS_URL)
    redis.set(tracking.BATCH_TOKEN, batch.token)
    redis.rpush(tracking.BATCH, *[tracking.json.dumps(f) for f in batch.facts])
    assert flush(app)["interactions"] == 0
    assert len(interactions(app)) == 4


def test_a_fact_that_does_not_parse_or_names_a_deleted_product_is_skipped(client, app):
    product = make_product(app)
    redis = Redis.from_url(TEST_REDIS_URL)
    redis.rpush(tracking.FACTS, '{"kind": "view"}', '{"kind": "nonsense", "at": 1}')
    redis.rpush(
        tracking.FACTS,
        tracking.json.dumps({"kind": "view", "at": time.time(), "product_id": 2**31 - 1,
                             "session_id": SESSION}),
        tracking.json.dumps({"kind": "view", "at": time.time(), "product_id": product.id,
                             "session_id": SESSION}),
    )  # fmt: skip
    summary = flush(app)
    assert (summary["interactions"], summary["skipped"]) == (1, 3)


def test_views_with_redis_down_are_dropped_counted_and_the_read_answers(other_app, private_redis):
    redis = private_redis()
    app = other_app(REDIS_URL=redis.url, CACHE_REDIS_URL=redis.url, RATELIMIT_STORAGE_URI=redis.url)
    client = app.test_client()
    product = make_product(app)
    headers = headers_for(app, make_user(app))
    assert client.get(f"{API}/products/{product.id}", headers=headers).status_code == 200
    with app.app_context():
        tracking.flush()
    redis.kill()
    started = time.monotonic()
    for _ in range(5):
        assert client.get(f"{API}/products/{product.id}", headers=headers).status_code == 200
    with app.app_context():
        tracking.flush()  # the batch's send fails: dropped, and none tried for a while
        client.get(f"{API}/products/{product.id}", headers=headers)
        tracking.flush()
        assert app.extensions["tracking"].dropped == 6
    assert time.monotonic() - started < 2.5
    redis.start()
    with app.app_context():
        app.extensions["tracking"].down_until = 0.0
    client.get(f"{API}/products/{product.id}", headers=headers)
    summary = flush(app)
    assert summary["dropped"] == 6 and summary["interactions"] == 1
