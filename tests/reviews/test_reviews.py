"""Reviews: only buyers, once each; rating aggregates stay exact, also under concurrency."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.factories import headers_for, make_product, make_user

API = "/api/v1"
SHIP_TO = {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}


def buy(client, headers, product):
    response = client.post(
        f"{API}/orders",
        headers=headers,
        json={"items": [{"product_id": product.id, "quantity": 1}], "shipping_address": SHIP_TO},
    )
    assert response.status_code == 201
    return response.json


def review(client, headers, product, rating, **extra):
    return client.post(
        f"{API}/products/{product.id}/reviews", headers=headers, json={"rating": rating, **extra}
    )


def test_buyer_reviews_once_and_aggregates_update(client, app, customer, as_customer):
    product = make_product(app, stock=5)
    buy(client, as_customer, product)
    created = review(client, as_customer, product, 4, title="Good", body="Works.")
    assert created.status_code == 201
    assert created.json["user_id"] == customer.id and created.json["rating"] == 4
    assert review(client, as_customer, product, 5).status_code == 409
    other = headers_for(app, make_user(app))
    buy(client, other, product)
    review(client, other, product, 5)
    detail = client.get(f"{API}/products/{product.id}").json
    assert (detail["rating_avg"], detail["rating_count"]) == (4.5, 2)
    listed = client.get(f"{API}/products/{product.id}/reviews").json
    assert listed["total"] == 2 and [r["rating"] for r in listed["items"]] == [5, 4]


def test_only_buyers_may_review(client, app, as_customer, as_admin):
    product = make_product(app, stock=5)
    assert review(client, as_customer, product, 3).status_code == 403
    assert review(client, as_admin, product, 3).status_code == 403
    assert (
        client.post(f"{API}/products/{product.id}/reviews", json={"rating": 3}).status_code == 401
    )
    order = buy(client, as_customer, product)
    client.post(f"{API}/orders/{order['id']}/cancel", headers=as_customer)
    assert review(client, as_customer, product, 3).status_code == 403  # cancelled orders


@pytest.mark.parametrize(
    "body",
    [
        {"rating": 0},
        {"rating": 6},
        {"rating": "5"},
        {"rating": 4.5},
        {},
        {"rating": 3, "user_id": 1},
        {"rating": 3, "title": "x" * 201},
    ],
)
def test_review_validation(client, app, as_customer, body):
    product = make_product(app, stock=5)
    buy(client, as_customer, product)
    assert (
        client.post(
            f"{API}/products/{product.id}/reviews", headers=as_customer, json=body
        ).status_code
        == 422
    )


def test_edit_and_delete_own_review_only(client, app, as_customer, as_admin):
    product = make_product(app, stock=5)
    buy(client, as_customer, product)
    created = review(client, as_customer, product, 2).json
    url = f"{API}/products/{product.id}/reviews/{created['id']}"
    intruder = headers_for(app, make_user(app))
    assert client.patch(url, headers=intruder, json={"rating": 1}).status_code == 404
    assert client.delete(url, headers=intruder).status_code == 404
    assert client.patch(url, headers=as_admin, json={"rating": 1}).status_code == 404
    assert client.patch(url, headers=as_customer, json={"rating": 5}).json["rating"] == 5
    assert client.get(f"{API}/products/{product.id}").json["rating_avg"] == 5.0
    assert client.delete(url, headers=as_admin).status_code == 204  # moderation
    detail = client.get(f"{API}/products/{product.id}").json
    assert (detail["rating_avg"], detail["rating_count"]) == (0.0, 0)


def test_reviews_of_unknown_product_are_404(client):
    assert client.get(f"{API}/products/999999/reviews").status_code == 404


def test_concurrent_reviews_keep_the_aggregates_exact(app):
    product = make_product(app, stock=20)
    buyers = [headers_for(app, make_user(app)) for _ in range(8)]
    for headers in buyers:
        buy(app.test_client(), headers, product)
    barrier = threading.Barrier(8)

    def rate(index):
        barrier.wait()
        return review(app.test_client(), buyers[index], product, index % 5 + 1).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(rate, range(8))) == [201] * 8
    detail = app.test_client().get(f"{API}/products/{product.id}").json
    ratings = [i % 5 + 1 for i in range(8)]
    assert detail["rating_count"] == 8
    assert detail["rating_avg"] == round(sum(ratings) / 8, 2)
