"""Recommendations: the job's lists per customer (collaborative, content-based, hybrid) and per
product (bought together, similar), served in one query; never what the customer ordered, an
inactive product or one out of stock; best sellers for a customer without a history; the job
gives the same rows however often it runs; the endpoints' roles and bad input."""

import pytest
from sqlalchemy import insert, select, update

from shop.db import db
from shop.products.models import Product
from shop.recommendations import algorithms
from shop.recommendations.jobs import refresh_recommendations
from shop.recommendations.models import ProductRecommendation, UserRecommendation
from shop.reports.models import Interaction
from shop.schedule import run_job
from shop.security import Role
from tests.factories import headers_for, make_category, make_product, make_user
from tests.recommendations.helpers import API, flush, interactions, order

ALGORITHMS = ("collaborative", "content_based", "hybrid")


def did(app, user, *products, kind="purchase"):
    with app.app_context():
        db.session.execute(
            insert(Interaction),
            [{"user_id": user.id, "product_id": p.id, "kind": kind} for p in products],
        )
        db.session.commit()


def refresh(app):
    with app.app_context():
        return refresh_recommendations()


def recommended(client, headers, **query):
    response = client.get(f"{API}/recommendations/user", headers=headers, query_string=query)
    assert response.status_code == 200, response.json
    return response.json


def ids(items):
    return [item["product"]["id"] for item in items]


@pytest.fixture
def store(app):
    """Coffee things bought together by the same customers, and books nobody buys with them."""
    coffee, books = make_category(app, name="Coffee"), make_category(app, name="Books")
    made = {
        name: make_product(app, name=title, category_id=category.id, description=text, stock=20)
        for name, title, category, text in (
            ("espresso", "Espresso Machine", coffee, "Pump espresso machine with a steam wand"),
            ("grinder", "Burr Coffee Grinder", coffee, "Burr grinder for espresso and filter"),
            ("kettle", "Gooseneck Kettle", coffee, "Pour-over kettle"),
            ("beans", "Espresso Beans", coffee, "Dark roast beans for espresso"),
            ("novel", "A Long Novel", books, "A novel in three parts"),
            ("atlas", "World Atlas", books, "Maps of every country"),
        )
    }
    buyers = [make_user(app) for _ in range(3)]
    did(app, buyers[0], made["espresso"], made["grinder"], made["beans"])
    did(app, buyers[1], made["espresso"], made["grinder"], made["kettle"])
    did(app, buyers[2], made["novel"], made["atlas"])
    return made


def test_a_customer_gets_what_those_who_bought_the_same_bought(client, app, store):
    customer = make_user(app)
    did(app, customer, store["espresso"])
    summary = refresh(app)
    assert summary["customers"] == 4
    headers = headers_for(app, customer)
    lists = {a: recommended(client, headers, algorithm=a) for a in ALGORITHMS}
    assert recommended(client, headers)["algorithm"] == "hybrid"
    collaborative = lists["collaborative"]["items"]
    assert ids(collaborative)[0] == store["grinder"].id  # bought with it by both
    assert {store["beans"].id, store["kettle"].id} <= set(ids(collaborative))
    assert collaborative[0]["reason"] == "customers_also_bought"
    assert collaborative[0]["score"] == 1.0
    assert collaborative[0]["product"] == {
        "id": store["grinder"].id, "sku": store["grinder"].sku, "name": "Burr Coffee Grinder",
        "price": "10.00", "sale_price": None, "image_url": None, "rating_avg": 0.0,
    }  # fmt: skip
    content = lists["content_based"]["items"]
    assert ids(content)[0] in {store["beans"].id, store["grinder"].id}  # words of espresso
    assert content[0]["reason"] == "like_your_products"
    for algorithm, answer in lists.items():
        assert store["espresso"].id not in ids(answer["items"]), algorithm
        coffee = [i for i in answer["items"] if i["reason"] != "best_seller"]
        assert store["novel"].id not in ids(coffee), algorithm  # only as a best seller


def test_never_what_was_ordered_inactive_or_out_of_stock(client, app, store):
    customer = make_user(app)
    did(app, customer, store["espresso"])
    refresh(app)
    headers = headers_for(app, customer)
    before = ids(recommended(client, headers, algorithm="collaborative")["items"])
    assert {store["grinder"].id, store["kettle"].id, store["beans"].id} <= set(before)
    order(client, headers, store["grinder"])  # ordered after the job ran
    with app.app_context():
        db.session.execute(update(Product).where(Product.id == store["kettle"].id).values(stock=0))
        db.session.execute(
            update(Product).where(Product.id == store["beans"].id).values(is_active=False)
        )
        db.session.commit()
    for algorithm in ALGORITHMS:
        after = ids(recommended(client, headers, algorithm=algorithm, limit=50)["items"])
        gone = {store[n].id for n in ("espresso", "grinder", "kettle", "beans")}
        assert not gone & set(after), algorithm


def test_a_customer_without_history_gets_best_sellers_of_the_categories_viewed(client, app, store):
    refresh(app)
    with app.app_context():
        for name, sold in (("atlas", 50), ("novel", 10), ("kettle", 90), ("grinder", 70)):
            db.session.execute(
                update(Product).where(Product.id == store[name].id).values(sales_count=sold)
            )
        db.session.commit()
    newcomer = make_user(app)
    headers = headers_for(app, newcomer)
    overall = recommended(client, headers, limit=3)["items"]
    assert ids(overall) == [store["kettle"].id, store["grinder"].id, store["atlas"].id]
    assert {i["reason"] for i in overall} == {"best_seller"} and overall[0]["score"] == 0.0
    client.get(f"{API}/products/{store['novel'].id}", headers=headers)
    flush(app)
    viewed = recommended(client, headers)["items"]
    assert ids(viewed) == [store["atlas"].id, store["novel"].id]
    assert {i["reason"] for i in viewed} == {"best_seller_in_category"}


def test_a_short_list_is_filled_with_best_sellers_once_each(client, app, store):
    customer = make_user(app)
    did(app, customer, store["novel"])
    refresh(app)
    items = recommended(client, headers_for(app, customer), algorithm="collaborative",
                        limit=50)["items"]  # fmt: skip
    assert ids(items)[0] == store["atlas"].id and items[0]["reason"] == "customers_also_bought"
    assert len(ids(items)) == len(set(ids(items))) == 5  # every other product, once
    assert {i["reason"] for i in items[1:]} == {"best_seller"}


def test_product_lists_bought_together_and_similar(client, app, store):
    refresh(app)
    answer = client.get(f"{API}/recommendations/product/{store['espresso'].id}")
    assert answer.status_code == 200
    together = ids(answer.json["bought_together"])
    assert together[0] == store["grinder"].id
    assert set(together) == {store[n].id for n in ("grinder", "beans", "kettle")}
    similar = ids(answer.json["similar"])
    assert set(similar) == {store[n].id for n in ("grinder", "beans", "kettle")}  # coffee only
    assert answer.json["similar"][0]["reason"] == "similar"
    assert answer.json["bought_together"][0]["reason"] == "bought_together"
    one = client.get(f"{API}/recommendations/product/{store['espresso'].id}?limit=1").json
    assert (len(one["bought_together"]), len(one["similar"])) == (1, 1)
    with app.app_context():
        db.session.execute(update(Product).where(Product.id == store["grinder"].id).values(stock=0))
        db.session.commit()
    after = client.get(f"{API}/recommendations/product/{store['espresso'].id}").json
    assert store["grinder"].id not in ids(after["bought_together"]) + ids(after["similar"])
    lonely = make_product(app)
    assert client.get(f"{API}/recommendations/product/{lonely.id}").json == {
        "bought_together": [], "similar": []
    }  # fmt: skip
    assert client.get(f"{API}/recommendations/product/999999").status_code == 404
    hidden = make_product(app, is_active=False)
    assert client.get(f"{API}/recommendations/product/{hidden.id}").status_code == 404


def stored_rows(app):
    with app.app_context():
        products = db.session.execute(select(ProductRecommendation)).scalars()
        users = db.session.execute(select(UserRecommendation)).scalars()
        return (
            sorted((r.product_id, r.list, r.position, r.recommended_id, r.score) for r in products),
            sorted((r.user_id, r.algorithm, r.position, r.recommended_id, r.reason) for r in users),
        )


def test_the_job_gives_the_same_rows_however_often_it_runs(app, store):
    first = refresh(app)
    rows = stored_rows(app)
    assert rows[0] and rows[1]
    second = refresh(app)
    assert stored_rows(app) == rows
    assert first["product_rows"] == second["product_rows"] and first["customer_rows"] == len(
        rows[1]
    )
    with app.app_context():
        assert run_job("recommendations")["customer_rows"] == len(rows[1])
    assert stored_rows(app) == rows


def test_a_rating_is_recorded_as_an_interaction(client, app, customer, as_customer, as_staff):
    product = make_product(app)
    placed = order(client, as_customer, product)
    client.post(f"{API}/orders/{placed['id']}/payments", headers=as_staff,
                json={"amount": placed["total"], "method": "card"})  # fmt: skip
    url = f"{API}/products/{product.id}/reviews"
    review = client.post(url, headers=as_customer, json={"rating": 2})
    assert review.status_code == 201
    client.patch(f"{url}/{review.json['id']}", headers=as_customer, json={"rating": 5})
    client.patch(f"{url}/{review.json['id']}", headers=as_customer, json={"title": "Same"})
    flush(app)
    assert [row for row in interactions(app) if row[3] == "rating"] == [
        (customer.id, None, product.id, "rating", 2),
        (customer.id, None, product.id, "rating", 5),
    ]


def test_the_customer_endpoint_needs_a_user_and_every_role_may_call_it(client, app):
    assert client.get(f"{API}/recommendations/user").status_code == 401
    for role in (Role.CUSTOMER, Role.SELLER, Role.STAFF, Role.ADMIN):
        headers = headers_for(app, make_user(app, role=role))
        assert client.get(f"{API}/recommendations/user", headers=headers).status_code == 200


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=51", "limit=x", "algorithm=random", "algorithm=", "page=2", "sort=score"],
)
def test_bad_input_is_a_422(client, as_customer, store, query):
    user = client.get(f"{API}/recommendations/user?{query}", headers=as_customer)
    assert user.status_code == 422
    if not query.startswith("algorithm"):
        url = f"{API}/recommendations/product/{store['espresso'].id}?{query}"
        assert client.get(url).status_code == 422


def test_one_query_serves_a_list_whatever_its_length(client, app, store, count_queries):
    customer = make_user(app)
    did(app, customer, store["espresso"])
    refresh(app)
    headers = headers_for(app, customer)
    recommended(client, headers)  # warm: the flash sales running are cached
    counts = []
    for limit in (1, 3, 50):  # the stored list has 3: the last is filled with best sellers
        with count_queries() as counter:
            recommended(client, headers, limit=limit)
        counts.append(counter.count)
    with count_queries() as counter:
        client.get(f"{API}/recommendations/product/{store['espresso'].id}?limit=50")
    assert counts == [2, 2, 3]  # the token's user, the list (, the best sellers)
    assert counter.count == 1


def test_a_bounded_similar_pool_still_never_serves_what_was_bought_inactive_or_out_of_stock(
    client, app, store, monkeypatch
):
    monkeypatch.setattr(algorithms, "CANDIDATES", 2)  # coffee's two best sellers
    customer = make_user(app)
    did(app, customer, store["beans"])
    refresh(app)
    similar = client.get(f"{API}/recommendations/product/{store['kettle'].id}").json["similar"]
    assert set(ids(similar)) == {store["espresso"].id, store["grinder"].id}
    with app.app_context():
        db.session.execute(update(Product).where(Product.id == store["grinder"].id).values(stock=0))
        db.session.execute(
            update(Product).where(Product.id == store["espresso"].id).values(is_active=False)
        )
        db.session.commit()
    headers = headers_for(app, customer)
    gone = {store[n].id for n in ("beans", "grinder", "espresso")}
    for algorithm in ALGORITHMS:
        served = ids(recommended(client, headers, algorithm=algorithm, limit=50)["items"])
        assert served and not gone & set(served), algorithm
    answer = client.get(f"{API}/recommendations/product/{store['kettle'].id}").json
    assert not answer["similar"]
