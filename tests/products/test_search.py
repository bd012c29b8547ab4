"""Full-text search with relevance, SKU fragments and suggestions (PostgreSQL)."""

from decimal import Decimal

from tests.factories import make_category, make_product

API = "/api/v1"


def search(client, query):
    return client.get(f"{API}/products?{query}").json["items"]


def test_name_match_ranks_above_description_match(client, app):
    in_description = make_product(
        app, name="Plain Mug", description="Pairs well with a laptop stand."
    )
    in_name = make_product(app, name="Laptop Sleeve", description="Neoprene.")
    make_product(app, name="Teapot", description="Porcelain.")
    assert [p["id"] for p in search(client, "q=laptop")] == [in_name.id, in_description.id]


def test_category_ranks_between_name_and_description(client, app):
    outdoor = make_category(app, "Outdoor")
    by_category = make_product(app, name="Folding Chair", category_id=outdoor.id)
    by_name = make_product(app, name="Outdoor Lantern")
    by_description = make_product(app, name="Rug", description="Fine for outdoor use.")
    ranked = [p["id"] for p in search(client, "q=outdoor")]
    assert ranked == [by_name.id, by_category.id, by_description.id]


def test_category_rename_reindexes_its_products(client, app, as_admin):
    category = make_category(app, "Misc")
    product = make_product(app, name="Folding Chair", category_id=category.id)
    assert search(client, "q=camping") == []
    client.patch(f"{API}/categories/{category.id}", headers=as_admin, json={"name": "Camping"})
    assert [p["id"] for p in search(client, "q=camping")] == [product.id]


def test_sku_and_sku_fragments_are_found(client, app):
    product = make_product(app, sku="ZX-4471-BLK", name="Mystery Box")
    make_product(app, sku="AB-1000", name="Other Box")
    assert [p["id"] for p in search(client, "q=ZX-4471-BLK")] == [product.id]
    assert [p["id"] for p in search(client, "q=4471")] == [product.id]


def test_prefix_words_and_all_words_required(client, app):
    steel = make_product(app, name="Steel Water Bottle")
    make_product(app, name="Glass Water Jug")
    assert {p["id"] for p in search(client, "q=bott")} == {steel.id}
    assert [p["id"] for p in search(client, "q=steel water")] == [steel.id]


def test_search_combines_with_filters_sort_and_hides_inactive(client, app):
    cheap = make_product(app, name="Desk Lamp", price=Decimal("15.00"))
    dear = make_product(app, name="Desk Lamp Pro", price=Decimal("95.00"))
    make_product(app, name="Desk Lamp Old", is_active=False)
    assert [p["id"] for p in search(client, "q=lamp&sort=-price")] == [dear.id, cheap.id]
    assert [p["id"] for p in search(client, "q=lamp&max_price=20")] == [cheap.id]
    assert client.get(f"{API}/products?q=lamp").json["total"] == 2


def test_search_survives_hostile_input(client, app):
    make_product(app, name="Widget")
    for q in ["'", "a & | !", "%_%", "\\", "():*", "widget:*", "<script>"]:
        response = client.get(f"{API}/products", query_string={"q": q})
        assert response.status_code == 200, q


def test_suggestions_prefix_first_then_typos(client, app):
    laptop = make_product(app, name="Laptop Stand")
    lamp = make_product(app, name="Lamp Shade")
    desk = make_product(app, name="Desk for Laptops")
    make_product(app, name="Laptop Retired", is_active=False)
    by_prefix = client.get(f"{API}/products/suggestions?q=lap").json
    assert by_prefix[0] == {"id": laptop.id, "name": "Laptop Stand"}
    # Prefix, then a word prefix, then the near miss; never the inactive product.
    assert [s["id"] for s in by_prefix] == [laptop.id, desk.id, lamp.id]
    typo = client.get(f"{API}/products/suggestions?q=lptop").json
    assert laptop.id in {s["id"] for s in typo}


def test_suggestions_limit_and_validation(client, app):
    for i in range(12):
        make_product(app, name=f"Candle {i:02d}")
    assert len(client.get(f"{API}/products/suggestions?q=candle").json) == 10
    assert client.get(f"{API}/products/suggestions").status_code == 422
    assert client.get(f"{API}/products/suggestions?q=" + "x" * 101).status_code == 422
