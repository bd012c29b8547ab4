"""`GET /products?facets=category,price`: how every match (not only the page) spreads over
categories and price buckets, under the same filters; read with the total (and a search's
ranking) in one statement, cached, and current after a write."""

from decimal import Decimal

import pytest

from tests.factories import make_category, make_product

API = "/api/v1"


@pytest.fixture
def catalog(app):
    garden = make_category(app, "Garden")
    tools = make_category(app, "Tools", parent_id=garden.id)
    lamps = make_category(app, "Lamps")
    for name, price, category in [
        ("Bamboo rake", "9.99", tools),
        ("Steel rake", "24.00", tools),
        ("Garden hose", "25.00", garden),
        ("Bamboo lamp", "120.00", lamps),
        ("Desk lamp", "1500.00", lamps),
        ("Loose thing", "10.00", None),
    ]:
        make_product(
            app, name=name, price=Decimal(price), category_id=category.id if category else None
        )
    return garden, tools, lamps


def facets(client, query):
    response = client.get(f"{API}/products?{query}")
    assert response.status_code == 200, response.json
    return response.json["facets"]


def test_categories_and_prices_over_every_match(client, catalog):
    garden, tools, lamps = catalog
    found = facets(client, "facets=category,price&page_size=1")
    assert found["category"] == [
        {"id": tools.id, "name": "Tools", "count": 2},
        {"id": lamps.id, "name": "Lamps", "count": 2},
        {"id": garden.id, "name": "Garden", "count": 1},
    ]
    assert found["price"] == [
        {"min": "0.00", "max": "10.00", "count": 1},
        {"min": "10.00", "max": "25.00", "count": 2},
        {"min": "25.00", "max": "50.00", "count": 1},
        {"min": "100.00", "max": "250.00", "count": 1},
        {"min": "1000.00", "max": None, "count": 1},
    ]


def test_facets_follow_the_filters_and_the_text_query(client, catalog):
    garden, tools, lamps = catalog
    by_text = facets(client, "q=bamboo&facets=category")
    assert by_text == {"category": [
        {"id": tools.id, "name": "Tools", "count": 1}, {"id": lamps.id, "name": "Lamps", "count": 1}
    ]}  # fmt: skip
    in_garden = facets(client, f"category={garden.id}&facets=price&sort=price")
    assert [(b["min"], b["count"]) for b in in_garden["price"]] == [
        ("0.00", 1), ("10.00", 1), ("25.00", 1)
    ]  # fmt: skip
    assert facets(client, "max_price=9.00&facets=price") == {"price": []}


def test_without_facets_the_answer_has_none(client, catalog):
    assert client.get(f"{API}/products").json["facets"] == {}
    assert client.get(f"{API}/products/featured?facets=price").json["facets"] == {"price": []}


def test_a_write_shows_in_the_facets_at_once(client, app, catalog, as_admin):
    _, tools, _ = catalog
    assert facets(client, "facets=category")["category"][0]["count"] == 2
    make_product(app, name="Third rake", category_id=tools.id)
    client.post(
        f"{API}/products",
        headers=as_admin,
        json={"sku": "RAKE-3", "name": "Fourth rake", "price": "5.00", "category_id": tools.id},
    )
    assert facets(client, "facets=category")["category"][0] == {
        "id": tools.id, "name": "Tools", "count": 4
    }  # fmt: skip


def test_the_query_count_does_not_grow_with_the_page(client, catalog, count_queries):
    counts = []
    client.get(f"{API}/products?facets=category,price&sort=price")  # total and facets cached
    for size in (1, 6):
        with count_queries() as counter:
            client.get(f"{API}/products?facets=category,price&page_size={size}&sort=price")
        counts.append(counter.count)
    assert counts[0] == counts[1]


@pytest.mark.parametrize("query", ["q=bamboo", "category={tools}&sort=price"])
def test_the_matches_are_read_once_for_the_total_the_facets_and_the_ranking(
    client, catalog, count_queries, query
):
    """One statement reads every match, once (a materialised CTE), for the count, both
    facets and a search's ranking; the others read the page. Another page: the page only."""
    _, tools, _ = catalog
    url = f"{API}/products?{query.format(tools=tools.id)}&facets=category,price&page_size=1"
    client.get(f"{API}/products?page_size=1")  # the flash sales running: cached from here
    counts = []
    for page in (1, 2):
        with count_queries() as counter:
            response = client.get(f"{url}&page={page}")
        assert response.status_code == 200
        counts.append(["matches AS MATERIALIZED" in s for s in counter.statements])
    assert (sum(counts[0]), len(counts[0])) == (1, len(counts[1]) + 1)
    assert not any(counts[1])
    assert response.json["total"] == 2
    assert sum(c["count"] for c in response.json["facets"]["category"]) == 2
    assert len(response.json["items"]) == 1


@pytest.mark.parametrize(
    "query", ["facets=colour", "facets=price,size", "facets=category,,", "facets="]
)
def test_unknown_facets_are_422(client, query):
    assert client.get(f"{API}/products?{query}").status_code == 422
