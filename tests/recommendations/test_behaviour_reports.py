"""Behaviour in the reports: a product's views, cart adds and conversion per day (live today,
aggregated for closed days, and again when a late fact arrives), and the search report."""

from datetime import UTC, datetime, time, timedelta

import pytest
from redis import Redis
from sqlalchemy import insert

from shop import tracking
from shop.db import db
from shop.reports.aggregates import aggregate_day, today
from shop.reports.models import DirtyDay, Interaction
from tests.conftest import TEST_REDIS_URL
from tests.factories import make_product
from tests.recommendations.helpers import API, SESSION, flush, order, pay


def test_a_product_report_has_views_cart_adds_and_conversion(client, app, as_customer, as_staff):
    product = make_product(app, stock=100)
    for _ in range(4):
        client.get(f"{API}/products/{product.id}", headers=as_customer)
    client.get(f"{API}/products/{product.id}", headers={"X-Session-ID": SESSION})
    client.post(f"{API}/cart/items", headers=as_customer, json={"product_id": product.id,
                                                                "quantity": 1})  # fmt: skip
    pay(client, as_staff, order(client, as_customer, product))
    flush(app)
    report = client.get(f"{API}/reports/products/{product.id}", headers=as_staff).json
    assert (report["views"], report["cart_adds"], report["orders"]) == (5, 1, 1)
    assert report["conversion_rate"] == 0.2
    assert report["rows"][-1] | {"revenue": None} == {
        "date": str(today()), "units_sold": 1, "revenue": None, "orders": 1, "views": 5,
        "cart_adds": 1,
    }  # fmt: skip
    assert report["rows"][0]["views"] == 0
    unseen = make_product(app)
    empty = client.get(f"{API}/reports/products/{unseen.id}", headers=as_staff).json
    assert (empty["views"], empty["conversion_rate"]) == (0, None)


def at(day, hour=12):
    return datetime.combine(day, time(hour), UTC)


def test_closed_days_are_aggregated_and_a_late_fact_makes_its_day_stale(
    client, app, customer, as_staff
):
    product = make_product(app)
    yesterday = today() - timedelta(days=1)
    with app.app_context():
        db.session.execute(
            insert(Interaction),
            [{"user_id": customer.id, "product_id": product.id, "kind": kind,
              "created_at": at(yesterday)} for kind in ("view", "view", "cart_add")],
        )  # fmt: skip
        db.session.commit()
        aggregate_day(yesterday)
    url = f"{API}/reports/products/{product.id}?start={yesterday}&end={yesterday}"
    assert client.get(url, headers=as_staff).json["rows"][0]["views"] == 2
    late = {"kind": "view", "at": at(yesterday, 23).timestamp(), "product_id": product.id,
            "user_id": customer.id}  # fmt: skip
    Redis.from_url(TEST_REDIS_URL).rpush(tracking.FACTS, tracking.json.dumps(late))
    flush(app)
    with app.app_context():
        assert db.session.get(DirtyDay, yesterday) is not None
    assert client.get(url, headers=as_staff).json["rows"][0]["views"] == 3  # read live
    with app.app_context():
        aggregate_day(yesterday)
        assert db.session.get(DirtyDay, yesterday) is None
    assert client.get(url, headers=as_staff).json["rows"][0]["cart_adds"] == 1
    assert client.get(url, headers=as_staff).json["rows"][0]["views"] == 3


def test_searches_are_recorded_and_reported(client, app, as_customer, as_staff, as_admin):
    make_product(app, name="Copper Kettle")
    make_product(app, name="Copper Lamp")
    for q in ("copper", "Copper ", "COPPER  "):
        assert client.get(f"{API}/products", query_string={"q": q}).status_code == 200
    client.get(f"{API}/products", query_string={"q": "copper", "page": 2})  # paging: no search
    client.get(f"{API}/products", query_string={"q": "unicorn"}, headers=as_customer)
    client.get(f"{API}/products/suggestions", query_string={"q": "unicorn"})
    client.get(f"{API}/products/suggestions", query_string={"q": "Cop"})
    client.get(f"{API}/products")  # no query, no search
    assert flush(app)["searches"] == 6
    report = client.get(f"{API}/reports/search", headers=as_staff)
    assert report.status_code == 200
    assert report.json["top_queries"] == [
        {"query": "copper", "searches": 3, "avg_results": 2.0},
        {"query": "unicorn", "searches": 2, "avg_results": 0.0},
        {"query": "cop", "searches": 1, "avg_results": 2.0},
    ]
    assert report.json["zero_result_queries"] == [{"query": "unicorn", "searches": 2}]
    limited = client.get(f"{API}/reports/search?limit=1", headers=as_admin).json
    assert [q["query"] for q in limited["top_queries"]] == ["copper"]
    before = (today() - timedelta(days=40)).isoformat()
    old = client.get(f"{API}/reports/search?start={before}&end={before}", headers=as_staff).json
    assert old["top_queries"] == [] and old["zero_result_queries"] == []


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=101", "format=csv", "start=2026-02-30", "sort=x", "limit=x"]
)
def test_the_search_report_refuses_bad_input(client, as_staff, query):
    assert client.get(f"{API}/reports/search?{query}", headers=as_staff).status_code == 422


def test_the_search_report_is_for_staff(client, as_customer):
    assert client.get(f"{API}/reports/search").status_code == 401
    assert client.get(f"{API}/reports/search", headers=as_customer).status_code == 403
