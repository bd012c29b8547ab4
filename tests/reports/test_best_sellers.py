"""`GET /products/best-sellers`: active products ranked by units sold in the last `days` days
(sales only: paid and later, not pending or cancelled), by category with its subcategories,
for anyone, and current after the next sale although it is cached."""

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest

from shop.reports.aggregates import today
from shop.reports.jobs import daily_sales_job
from tests.factories import make_category, make_product
from tests.reports.test_top_products import record_orders

API = "/api/v1"


def at(days_ago):
    return datetime.combine(today() - timedelta(days=days_ago), time(12), tzinfo=UTC)


def best(client, query=""):
    response = client.get(f"{API}/products/best-sellers{query}")
    assert response.status_code == 200, response.json
    return [(i["product"]["name"], i["units_sold"]) for i in response.json["items"]]


@pytest.fixture
def sales(app):
    garden = make_category(app, "Garden")
    tools = make_category(app, "Tools", parent_id=garden.id)
    rake = make_product(app, name="Rake", category_id=tools.id, price=Decimal("9.00"))
    hose = make_product(app, name="Hose", category_id=garden.id)
    lamp = make_product(app, name="Lamp")
    retired = make_product(app, name="Retired", is_active=False)
    record_orders(
        app,
        [
            (at(0), "paid", [(lamp, 5), (rake, 1)]),
            (at(3), "delivered", [(rake, 4), (hose, 2)]),
            (at(10), "shipped", [(hose, 3), (retired, 50)]),
            (at(40), "delivered", [(lamp, 100)]),  # outside 30 days
            (at(1), "pending", [(hose, 30)]),  # not a sale
            (at(1), "cancelled", [(rake, 30)]),
        ],
    )
    return garden, tools


def test_ranked_by_units_in_the_window(client, app, sales):
    expected = [("Rake", 5), ("Hose", 5), ("Lamp", 5)]  # a tie: by product id
    assert best(client) == expected
    assert best(client, "?days=2") == [("Lamp", 5), ("Rake", 1)]
    assert best(client, "?days=90")[0] == ("Lamp", 105)
    assert len(best(client, "?limit=1")) == 1
    # The same figures once the days are aggregated (clean days read from the aggregates).
    with app.app_context():
        daily_sales_job()
    assert best(client) == expected


def test_by_category_with_its_subcategories(client, sales):
    garden, tools = sales
    assert sorted(best(client, f"?category={garden.id}")) == [("Hose", 5), ("Rake", 5)]
    assert best(client, f"?category={tools.id}") == [("Rake", 5)]


def test_the_answer_is_a_list_envelope_of_products(client, sales):
    body = client.get(f"{API}/products/best-sellers?limit=2").json
    assert body["total"] == 2 and body["page"] == 1 and "links" in body
    product = body["items"][0]["product"]
    assert {"id", "name", "price", "stock", "variants"} <= set(product)


def test_a_new_sale_and_an_edit_show_at_once(client, app, as_customer, as_staff, as_admin, sales):
    assert best(client, "?days=1") == [("Lamp", 5), ("Rake", 1)]
    hose = next(
        p for p in client.get(f"{API}/products?q=Hose").json["items"] if p["name"] == "Hose"
    )
    placed = client.post(
        f"{API}/orders",
        headers=as_customer,
        json={
            "items": [{"product_id": hose["id"], "quantity": 7}],
            "shipping_address": {
                "line1": "1 Main St",
                "city": "X",
                "postal_code": "1",
                "country": "US",
            },
        },
    ).json
    assert best(client, "?days=1") == [("Lamp", 5), ("Rake", 1)]  # pending: not a sale yet
    client.post(
        f"{API}/orders/{placed['id']}/payments",
        headers=as_staff,
        json={"amount": placed["total"], "method": "card"},
    )
    assert best(client, "?days=1") == [("Hose", 7), ("Lamp", 5), ("Rake", 1)]
    lamp = next(p for p in client.get(f"{API}/products?q=Lamp").json["items"])
    retired = client.patch(
        f"{API}/products/{lamp['id']}", headers=as_admin, json={"is_active": False}
    )
    assert retired.status_code == 200
    assert best(client, "?days=1") == [("Hose", 7), ("Rake", 1)]


@pytest.mark.parametrize(
    "query", ["?days=0", "?days=366", "?limit=0", "?limit=101", "?category=0", "?by=revenue"]
)
def test_bad_queries_are_422(client, query):
    assert client.get(f"{API}/products/best-sellers{query}").status_code == 422
